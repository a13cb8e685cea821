//! Step 2, plan the rollout (pure). Role-ordered rollout (docs/design.md,
//! "Rollouts"): instances are separate Deployments so the controller, not
//! the Deployment strategy, decides the order. Replicas take a
//! change first; the primary's Deployment is held back until every replica
//! runs the new content and is ready.

use crate::lifecycle::pod_of;
use crate::observe::{PodSeen, Seen};
use crate::render::Rendered;
use k8s_openapi::api::apps::v1::Deployment;
use kube::ResourceExt;
use midplane_api::{GroupStatus, RolloutStatus, labels};
use midplane_render::RenderedObject;
use std::borrow::Borrow;
use std::collections::BTreeMap;

/// A live instance Deployment as the rollout sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct LiveInstance {
    pub content_hash: Option<String>,
    /// The workload's pod template hash (`labels::TEMPLATE_HASH`).
    pub template_hash: Option<String>,
    pub ready: bool,
}

/// From the instance Deployments (owned or shared from the watch cache).
pub fn live_instances<D: Borrow<Deployment>>(deployments: &[D]) -> BTreeMap<String, LiveInstance> {
    deployments
        .iter()
        .map(|d| {
            let d = d.borrow();
            let st = d.status.as_ref();
            let current = st.and_then(|s| s.observed_generation).unwrap_or_default()
                >= d.metadata.generation.unwrap_or_default();
            (
                d.name_any(),
                LiveInstance {
                    content_hash: d.annotations().get(labels::CONTENT_HASH).cloned(),
                    template_hash: d.annotations().get(labels::TEMPLATE_HASH).cloned(),
                    ready: current
                        && st.and_then(|s| s.ready_replicas).unwrap_or_default() >= 1
                        && st.and_then(|s| s.updated_replicas).unwrap_or(1) >= 1,
                },
            )
        })
        .collect()
}

/// What to apply now, and which instance's workload waits.
#[derive(Debug, PartialEq)]
pub struct Plan {
    /// Indexes into the rendered objects, in apply order.
    pub apply: Vec<usize>,
    /// The primary instance held back until the replicas are done.
    pub deferred: Option<String>,
    /// Instances whose Pod restarts in this pass (their pod template changes).
    pub changed: Vec<String>,
    /// Instances whose content changes but not their pod template: a config
    /// change they take live (see `reload`).
    pub live_changes: Vec<String>,
    /// The primary's content changes now and an up-to-date, ready replica
    /// exists: move the role there first (switchover), then roll the old primary.
    pub switchover_first: bool,
}

/// What the plan step hands on.
pub struct RolloutStep {
    /// The instance holding the primary role.
    pub primary: String,
    /// The instance Deployments as they run.
    pub live: BTreeMap<String, LiveInstance>,
    /// `live` as the rollout counts it: a replica is ready only once in sync
    /// ([`in_sync_gate`]). The plan and switchovers go by this.
    pub rollout_live: BTreeMap<String, LiveInstance>,
    /// What to apply; None when this pass has nothing to apply.
    pub plan: Option<Plan>,
}

/// Plans this pass from the Group's status, the render step and what the
/// agents report.
pub fn step(status: &GroupStatus, r: &Rendered, seen: &Seen) -> RolloutStep {
    let live = live_instances(&r.live.deployments);
    let instances = &r.summary.instances;
    let primary = status
        .primary
        .clone()
        .filter(|p| instances.contains(p))
        .or_else(|| instances.first().cloned())
        .unwrap_or_default();
    let current: BTreeMap<String, String> = instances
        .iter()
        .filter_map(|i| Some((i.clone(), pod_of(&r.live.pods, i)?.name_any())))
        .collect();
    let rollout_live = in_sync_gate(&live, seen, &current, &primary);
    let plan = r.objects.as_ref().map(|o| {
        plan(
            &o.objects,
            &o.instance_hashes,
            &o.template_hashes,
            &rollout_live,
            &primary,
        )
    });
    RolloutStep {
        primary,
        live,
        rollout_live,
        plan,
    }
}

/// With the agents heard (the gateway's stream up), a replica counts as
/// ready for the rollout only once its agent reports it following a primary
/// with the link up: its sync is done, so the next step never takes another
/// copy of the data down (or switches over to it) while this one still
/// loads. `current` maps each instance to its current Pod. Without agents
/// the Pod's readiness alone decides, as before.
pub fn in_sync_gate(
    live: &BTreeMap<String, LiveInstance>,
    seen: &Seen,
    current: &BTreeMap<String, String>,
    primary: &str,
) -> BTreeMap<String, LiveInstance> {
    live.iter()
        .map(|(name, l)| {
            let mut l = l.clone();
            if seen.connected && name != primary && l.ready {
                l.ready = current
                    .get(name)
                    .and_then(|pod| seen.pods.get(pod))
                    .is_some_and(PodSeen::in_sync_replica);
            }
            (name.clone(), l)
        })
        .collect()
}

pub const PROGRESSING: &str = "Progressing";
pub const PAUSED: &str = "Paused";
pub const FAILED: &str = "Failed";
pub const COMPLETE: &str = "Complete";

/// Why the rollout to `target` must not go on: it failed (until the target
/// changes or it is resumed) or the Group is paused.
pub fn hold(status: &GroupStatus, target: &str, paused: bool) -> Option<&'static str> {
    let failed = status
        .rollout
        .as_ref()
        .is_some_and(|r| r.state == FAILED && r.target_hash == target);
    if failed {
        Some("failed")
    } else if paused {
        Some("paused")
    } else {
        None
    }
}

/// Holds a plan: the workloads of instances still to roll are not applied
/// and nothing switches over (their other objects still are).
pub fn hold_plan(plan: &mut Plan, rendered: &[RenderedObject]) {
    let changed = plan.changed.clone();
    plan.apply.retain(|i| {
        rendered.get(*i).is_none_or(|o| {
            !(matches!(o.kind(), "Deployment" | "StatefulSet")
                && o.instance.as_ref().is_some_and(|n| changed.contains(n)))
        })
    });
    plan.switchover_first = false;
}

/// Records a rollout to `target` in progress (a new one when the target changed).
pub fn progressing(status: &mut GroupStatus, target: &str, order: &[String]) {
    let same = status
        .rollout
        .as_ref()
        .is_some_and(|r| r.target_hash == target && r.state == PROGRESSING);
    if same {
        return;
    }
    let switchovers = status
        .rollout
        .as_ref()
        .filter(|r| r.target_hash == target)
        .map(|r| r.switchovers)
        .unwrap_or_default();
    status.rollout = Some(RolloutStatus {
        state: PROGRESSING.into(),
        target_hash: target.to_string(),
        instance: order.first().cloned(),
        message: format!("rolling {}", order.join(", ")),
        rolled: Vec::new(),
        switchovers,
    });
}

/// The order a rollout takes: replicas first, the primary last.
pub fn order(changed: &[String], primary: &str) -> Vec<String> {
    let mut order: Vec<String> = changed.iter().filter(|i| *i != primary).cloned().collect();
    order.extend(changed.iter().filter(|i| *i == primary).cloned());
    order
}

/// An updated, ready replica to move the primary role to before the primary
/// rolls.
pub fn switchover_candidate(
    desired_hashes: &BTreeMap<String, String>,
    live: &BTreeMap<String, LiveInstance>,
    primary: &str,
) -> Option<String> {
    desired_hashes.iter().find_map(|(name, hash)| {
        let l = live.get(name)?;
        (name != primary && l.ready && l.content_hash.as_ref() == Some(hash)).then(|| name.clone())
    })
}

/// Plans one pass. `primary` is the instance holding the primary role.
pub fn plan(
    rendered: &[RenderedObject],
    desired_hashes: &BTreeMap<String, String>,
    templates: &BTreeMap<String, String>,
    live: &BTreeMap<String, LiveInstance>,
    primary: &str,
) -> Plan {
    let differs: Vec<(&String, &LiveInstance)> = desired_hashes
        .iter()
        .filter_map(|(name, hash)| {
            live.get(name)
                .filter(|l| l.content_hash.as_ref() != Some(hash))
                .map(|l| (name, l))
        })
        .collect();
    // Same pod template (known on both sides): applying does not restart
    // the Pod; the instance takes the change live.
    let live_only = |name: &String, l: &LiveInstance| {
        l.template_hash.is_some() && l.template_hash.as_ref() == templates.get(name)
    };
    let changed: Vec<String> = differs
        .iter()
        .filter(|(n, l)| !live_only(n, l))
        .map(|(n, _)| (*n).clone())
        .collect();
    let live_changes: Vec<String> = differs
        .iter()
        .filter(|(n, l)| live_only(n, l))
        .map(|(n, _)| (*n).clone())
        .collect();
    let replicas_settled = desired_hashes
        .iter()
        .filter(|(name, _)| name.as_str() != primary)
        .all(|(name, hash)| match live.get(name) {
            Some(l) => l.content_hash.as_ref() == Some(hash) && l.ready,
            // A new replica need not be ready for the primary to change.
            None => true,
        });
    let hold_primary = changed.iter().any(|c| c == primary) && !replicas_settled;
    // One instance at a time (maxUnavailable 1): while an updated instance
    // is not ready yet, no other starts; else the first replica to roll.
    let in_progress = desired_hashes.iter().any(|(name, hash)| {
        live.get(name)
            .is_some_and(|l| l.content_hash.as_ref() == Some(hash) && !l.ready)
    });
    let next = if in_progress {
        None
    } else {
        order(&changed, primary)
            .into_iter()
            .find(|i| i.as_str() != primary)
    };
    let waiting: Vec<&String> = changed
        .iter()
        .filter(|c| c.as_str() != primary && Some(*c) != next.as_ref())
        .collect();
    let deferred = hold_primary.then(|| primary.to_string());
    let ready_replica = desired_hashes.iter().any(|(name, hash)| {
        name.as_str() != primary
            && live
                .get(name)
                .is_some_and(|l| l.ready && l.content_hash.as_ref() == Some(hash))
    });
    let switchover_first = changed.iter().any(|c| c == primary) && !hold_primary && ready_replica;
    let apply = rendered
        .iter()
        .enumerate()
        .filter(|(_, o)| {
            let workload = matches!(o.kind(), "Deployment" | "StatefulSet");
            let held = (hold_primary && o.instance.as_deref() == Some(primary))
                || o.instance.as_ref().is_some_and(|i| waiting.contains(&i));
            !(workload && held)
        })
        .map(|(i, _)| i)
        .collect();
    Plan {
        apply,
        deferred,
        changed,
        live_changes,
        switchover_first,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj(kind: &str, instance: &str) -> RenderedObject {
        RenderedObject {
            template: "t".into(),
            instance: Some(instance.into()),
            object: json!({"kind": kind, "metadata": {"name": instance}}),
        }
    }

    fn live(hash: &str, ready: bool) -> LiveInstance {
        LiveInstance {
            content_hash: Some(hash.into()),
            template_hash: None,
            ready,
        }
    }

    #[test]
    fn primary_waits_for_replicas_then_goes() {
        let rendered = vec![
            obj("Deployment", "g-0"),
            obj("Deployment", "g-1"),
            obj("PersistentVolumeClaim", "g-0"),
        ];
        let desired = BTreeMap::from([
            ("g-0".to_string(), "new".to_string()),
            ("g-1".to_string(), "new".to_string()),
        ]);

        // Nothing rolled yet: replicas go, the primary's Deployment waits (its PVC still applies).
        let l = BTreeMap::from([
            ("g-0".to_string(), live("old", true)),
            ("g-1".to_string(), live("old", true)),
        ]);
        let p = plan(&rendered, &desired, &BTreeMap::new(), &l, "g-0");
        assert_eq!(p.deferred.as_deref(), Some("g-0"));
        assert_eq!(p.apply, vec![1, 2]);
        assert_eq!(p.changed, vec!["g-0".to_string(), "g-1".to_string()]);

        // The replica runs the new content but is not ready yet: still waiting.
        let l = BTreeMap::from([
            ("g-0".to_string(), live("old", true)),
            ("g-1".to_string(), live("new", false)),
        ]);
        assert_eq!(
            plan(&rendered, &desired, &BTreeMap::new(), &l, "g-0")
                .deferred
                .as_deref(),
            Some("g-0")
        );

        // Ready: the primary goes.
        let l = BTreeMap::from([
            ("g-0".to_string(), live("old", true)),
            ("g-1".to_string(), live("new", true)),
        ]);
        let p = plan(&rendered, &desired, &BTreeMap::new(), &l, "g-0");
        assert_eq!(p.deferred, None);
        assert_eq!(p.apply, vec![0, 1, 2]);
        assert!(
            p.switchover_first,
            "the role moves to the updated replica before the primary rolls"
        );
        assert_eq!(
            switchover_candidate(&desired, &l, "g-0").as_deref(),
            Some("g-1")
        );
        let changed = ["g-0".to_string(), "g-1".to_string()];
        assert_eq!(order(&changed, "g-0"), ["g-1", "g-0"], "replicas first");
    }

    #[test]
    fn a_fresh_group_applies_everything() {
        let rendered = vec![obj("Deployment", "g-0"), obj("Deployment", "g-1")];
        let desired = BTreeMap::from([
            ("g-0".to_string(), "h".to_string()),
            ("g-1".to_string(), "h".to_string()),
        ]);
        let p = plan(
            &rendered,
            &desired,
            &BTreeMap::new(),
            &BTreeMap::new(),
            "g-0",
        );
        assert_eq!(p.apply, vec![0, 1]);
        assert!(p.changed.is_empty());
        assert_eq!(p.deferred, None);
        assert!(!p.switchover_first);
    }

    #[test]
    fn a_config_only_change_is_live_not_a_rollout() {
        let rendered = vec![obj("Deployment", "g-0"), obj("Deployment", "g-1")];
        let desired = BTreeMap::from([
            ("g-0".to_string(), "new".to_string()),
            ("g-1".to_string(), "new".to_string()),
        ]);
        let templates = BTreeMap::from([
            ("g-0".to_string(), "t".to_string()),
            ("g-1".to_string(), "t2".to_string()),
        ]);
        let with_template = |t: &str| LiveInstance {
            template_hash: Some(t.into()),
            ..live("old", true)
        };
        let l = BTreeMap::from([
            ("g-0".to_string(), with_template("t")),
            ("g-1".to_string(), with_template("t")),
        ]);
        let p = plan(&rendered, &desired, &templates, &l, "g-0");
        assert_eq!(p.live_changes, ["g-0"], "same template: live");
        assert_eq!(p.changed, ["g-1"], "its template changed: it rolls");
        assert_eq!(
            p.deferred, None,
            "the primary is not held for a live change"
        );
    }

    #[test]
    fn with_agents_a_replica_is_ready_for_the_rollout_once_in_sync() {
        use midplane_proto::agent::{Role, RoleReport};
        let live = BTreeMap::from([
            ("g-0".to_string(), live("h", true)),
            ("g-1".to_string(), live("h", true)),
            ("g-2".to_string(), live("h", true)),
        ]);
        let current = BTreeMap::from([
            ("g-0".to_string(), "p0".to_string()),
            ("g-1".to_string(), "p1".to_string()),
            ("g-2".to_string(), "p2".to_string()),
        ]);
        let seen_pod = |instance: &str, link: bool| PodSeen {
            instance: instance.into(),
            phase: None,
            message: String::new(),
            role: Some(RoleReport {
                role: Role::Replica as i32,
                primary_link_up: link,
                ..Default::default()
            }),
            error: None,
        };
        let mut seen = Seen {
            pods: BTreeMap::from([
                ("p1".to_string(), seen_pod("g-1", true)),
                ("p2".to_string(), seen_pod("g-2", false)),
            ]),
            ..Default::default()
        };
        // Without the agents' stream, the Pods' readiness decides.
        assert_eq!(in_sync_gate(&live, &seen, &current, "g-0"), live);
        seen.connected = true;
        let gated = in_sync_gate(&live, &seen, &current, "g-0");
        assert!(gated["g-0"].ready, "the primary is not gated");
        assert!(gated["g-1"].ready, "link up: in sync");
        assert!(!gated["g-2"].ready, "link down: still syncing");
        // An instance whose current Pod the agents have not reported yet waits too.
        let fresh = BTreeMap::from([("g-1".to_string(), "p1-new".to_string())]);
        assert!(!in_sync_gate(&live, &seen, &fresh, "g-0")["g-1"].ready);
    }
}
