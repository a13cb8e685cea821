//! Step 7, announce: what happened to a Group, as Kubernetes Events and as
//! bus events (catalogue: `midplane.group.*`). Rendered fires when an apply
//! changed objects;
//! a rollout is tracked from the first pass that finds an instance running
//! other content to the pass that finds every instance updated and Ready
//! (or one Failed), so a subscriber sees started → completed|failed once per
//! rollout. The tracker lives in memory: after a restart mid-rollout,
//! `started` may be seen again (consumers dedup by Group and content hash).

use crate::Context;
use crate::memo::RenderSummary;
use crate::status::Outcome;
use kube::ResourceExt;
use midplane_api::{Group, GroupStatus, labels};
use midplane_bus::catalogue::{
    GroupRendered, GroupRolloutCompleted, GroupRolloutFailed, GroupRolloutStarted, GroupSwitchover,
    ObjectRef, RolloutReason,
};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

/// A rollout begins: `rollout.started`, once per target content.
pub fn rollout_started(
    group: &Group,
    status: &GroupStatus,
    summary: &RenderSummary,
    order: Vec<String>,
    ctx: &Context,
) {
    let reason = reason(
        status.plugin_hash.as_deref(),
        &format!("{}/{}", summary.plugin_id, summary.plugin_hash),
        status.replicas != summary.instances.len() as i32,
    );
    if let Some(ev) = ctx
        .rollouts
        .started(group, &content_hash(summary), reason, order)
    {
        ctx.bus.publish(&ev);
    }
}

/// The primary waits for its replicas: an Event the first pass that holds it.
pub async fn replicas_first(group: &Group, status: &GroupStatus, held: &str, ctx: &Context) {
    if status
        .conditions
        .iter()
        .any(|c| c.reason == "ReplicasFirst")
    {
        return;
    }
    let note =
        format!("primary {held} waits until every replica runs the new content and is ready");
    ctx.events
        .normal(group, "ReplicasFirst", "Rollout", note)
        .await;
}

/// After the status step: an Event per instance phase change, the end of a
/// rollout on the bus, and Ready when it turned true.
pub async fn outcome(group: &Group, outcome: &Outcome, primary: &str, ctx: &Context) {
    for ((warning, reason), instance, phase) in &outcome.transitions {
        let note = format!("instance {instance} is {phase}");
        if *warning {
            ctx.events.warning(group, reason, "Lifecycle", note).await;
        } else {
            ctx.events.normal(group, reason, "Lifecycle", note).await;
        }
    }
    if outcome.all_ready
        && let Some(ev) = ctx.rollouts.completed(group, primary)
    {
        ctx.bus.publish(&ev);
    }
    if let Some((instance, why)) = &outcome.rollout_failed {
        ctx.events
            .warning(group, "RolloutFailed", "Rollout", why.clone())
            .await;
        if let Some(ev) = ctx
            .rollouts
            .failed(group, Some(instance.clone()), why.clone())
        {
            ctx.bus.publish(&ev);
        }
    }
    if let Some(message) = &outcome.became_ready {
        ctx.events
            .normal(group, "Ready", "Reconcile", message.clone())
            .await;
    }
}

pub fn group_ref(group: &Group) -> ObjectRef {
    ObjectRef::new(
        group.namespace().as_deref().unwrap_or_default(),
        &group.name_any(),
    )
}

fn sha(s: &str) -> String {
    format!("sha256:{s}")
}

/// `sha256:` over every instance's content hash, in instance order: the
/// Group's content as one value.
pub fn content_hash(summary: &RenderSummary) -> String {
    let mut h = Sha256::new();
    for (name, hash) in &summary.instance_hashes {
        h.update(name.as_bytes());
        h.update([0]);
        h.update(hash.as_bytes());
        h.update([0]);
    }
    sha(&hex::encode(h.finalize()))
}

pub fn rendered(
    group: &Group,
    plugin: &midplane_plugin::Plugin,
    summary: &RenderSummary,
    changed: Vec<String>,
) -> GroupRendered {
    let unchanged = summary.objects.len().saturating_sub(changed.len());
    GroupRendered {
        group: group_ref(group),
        component: group
            .labels()
            .get(labels::COMPONENT_NAME)
            .cloned()
            .unwrap_or_default(),
        plugin: plugin.metadata.name.clone(),
        plugin_version: plugin.metadata.version.clone(),
        plugin_hash: sha(&plugin.content_hash),
        content_hash: content_hash(summary),
        changed,
        unchanged: u32::try_from(unchanged).unwrap_or(u32::MAX),
    }
}

pub fn switchover(group: &Group, from: &str, to: &str, started: Instant) -> GroupSwitchover {
    GroupSwitchover {
        group: group_ref(group),
        from: from.to_string(),
        to: to.to_string(),
        reason: "Rollout".to_string(),
        duration_ms: started.elapsed().as_millis() as u64,
    }
}

struct Rollout {
    content_hash: String,
    rolled: Vec<String>,
    started: Instant,
}

/// Rollouts in progress, by Group uid.
#[derive(Default)]
pub struct Rollouts {
    by_uid: Mutex<HashMap<String, Rollout>>,
    /// Groups whose failed rollout was resumed (ResumeRollout).
    resumed: Mutex<std::collections::HashSet<String>>,
}

impl Rollouts {
    /// A pass found `changed` instances running other content: the start of a
    /// rollout to `content_hash` unless one to it is already tracked.
    pub fn started(
        &self,
        group: &Group,
        content_hash: &str,
        reason: RolloutReason,
        order: Vec<String>,
    ) -> Option<GroupRolloutStarted> {
        let uid = group.uid().unwrap_or_default();
        let mut m = self
            .by_uid
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if m.get(&uid).is_some_and(|r| r.content_hash == content_hash) {
            return None;
        }
        m.insert(
            uid,
            Rollout {
                content_hash: content_hash.to_string(),
                rolled: order.clone(),
                started: Instant::now(),
            },
        );
        Some(GroupRolloutStarted {
            group: group_ref(group),
            reason,
            content_hash: content_hash.to_string(),
            order,
        })
    }

    /// Every instance runs the new content and is Ready.
    pub fn completed(&self, group: &Group, primary: &str) -> Option<GroupRolloutCompleted> {
        let r = self.take(group)?;
        Some(GroupRolloutCompleted {
            group: group_ref(group),
            content_hash: r.content_hash,
            rolled: r.rolled,
            primary: primary.to_string(),
            duration_ms: r.started.elapsed().as_millis() as u64,
        })
    }

    /// An instance failed while rolling: the rollout stops here.
    pub fn failed(
        &self,
        group: &Group,
        instance: Option<String>,
        message: String,
    ) -> Option<GroupRolloutFailed> {
        let r = self.take(group)?;
        Some(GroupRolloutFailed {
            group: group_ref(group),
            content_hash: r.content_hash,
            instance,
            reason: "InstanceFailed".to_string(),
            message,
        })
    }

    /// An explicit resume: the rollout (failed or not) is tracked afresh,
    /// and the next reconcile tries a failed step once more.
    pub fn resume(&self, group: &Group) {
        self.take(group);
        self.resumed
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(group.uid().unwrap_or_default());
    }

    /// Whether the Group was resumed since the last call.
    pub fn take_resume(&self, group: &Group) -> bool {
        self.resumed
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(&group.uid().unwrap_or_default())
    }

    pub fn forget(&self, group: &Group) {
        self.take(group);
    }

    fn take(&self, group: &Group) -> Option<Rollout> {
        let uid = group.uid().unwrap_or_default();
        self.by_uid
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(&uid)
    }
}

/// Why instances need rolling: the plugin changed under the Group, the
/// Group's instance count changed, or its spec did.
pub fn reason(previous_plugin_hash: Option<&str>, current: &str, scaled: bool) -> RolloutReason {
    if previous_plugin_hash.is_some_and(|p| p != current) {
        RolloutReason::PluginUpdated
    } else if scaled {
        RolloutReason::Scaled
    } else {
        RolloutReason::SpecChanged
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn group() -> Group {
        let mut g = Group::new("g", Default::default());
        g.metadata.namespace = Some("ns".into());
        g.metadata.uid = Some("u1".into());
        g
    }

    #[test]
    fn a_rollout_is_announced_once_and_ends_once() {
        let r = Rollouts::default();
        let g = group();
        let order = vec!["g-1".to_string(), "g-0".to_string()];
        let s = r.started(&g, "sha256:a", RolloutReason::SpecChanged, order.clone());
        assert_eq!(s.map(|s| s.order), Some(order.clone()));
        assert!(
            r.started(&g, "sha256:a", RolloutReason::SpecChanged, order.clone())
                .is_none(),
            "the next pass of the same rollout is not a new one"
        );
        let done = r.completed(&g, "g-1").expect("tracked");
        assert_eq!((done.rolled, done.primary.as_str()), (order, "g-1"));
        assert!(r.completed(&g, "g-1").is_none(), "completed only once");
        assert!(r.failed(&g, None, "x".into()).is_none());
    }

    #[test]
    fn content_hash_follows_every_instance() {
        let s = |h: &str| RenderSummary {
            objects: vec![],
            instances: vec!["g-0".into(), "g-1".into()],
            instance_hashes: BTreeMap::from([("g-0".into(), "a".into()), ("g-1".into(), h.into())]),
            template_hashes: BTreeMap::new(),
            config_hash: None,
            plugin_id: "redis@7".into(),
            plugin_hash: "p".into(),
        };
        assert_ne!(content_hash(&s("b")), content_hash(&s("c")));
        assert!(content_hash(&s("b")).starts_with("sha256:"));
        assert_eq!(
            reason(Some("x"), "y", true),
            RolloutReason::PluginUpdated,
            "a plugin change wins"
        );
        assert_eq!(reason(Some("y"), "y", true), RolloutReason::Scaled);
    }
}
