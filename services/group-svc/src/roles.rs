//! Roles. Roles are runtime state: with an agent gateway, the agents say
//! who is primary under which term ([`from_agents`], before the rollout is
//! planned; see `observe`); the Group's status names the primary, and step
//! 5 labels each instance's Pod `midplane.dev/role` to match, so the client
//! Service (selector `midplane.dev/role: primary`) follows switchovers and
//! failovers, and a restarted old primary never claims the role from its
//! template.

use crate::Context;
use crate::announce;
use crate::lifecycle;
use crate::observe::Seen;
use crate::render::Rendered;
use k8s_openapi::api::core::v1::Pod;
use kube::{Resource, ResourceExt};
use midplane_api::{Group, GroupStatus, labels};
use midplane_bus::catalogue::GroupFailover;
use midplane_operator::ReconcileError;
use midplane_operator::apply::Applied;
use midplane_operator::condition;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

/// The condition a failover sets (True until the failed primary follows
/// the new one again).
pub const FAILED_OVER: &str = "FailedOver";
/// Deadline of a rejoin through the gateway.
const REJOIN_TIMEOUT: Duration = Duration::from_secs(5);

/// Roles from the agents: starts the Group's watch, announces the
/// failovers it made, sets `status.primary` and `status.term` from what the
/// agents report and tells astray instances (a returning old primary) to
/// follow the primary. Returns the reports (empty without a gateway).
pub async fn from_agents(
    group: &Group,
    status: &mut GroupStatus,
    rendered: &Rendered,
    ctx: &Arc<Context>,
) -> Seen {
    let Some(gateway) = &ctx.gateway else {
        return Seen::default();
    };
    let ns = group.namespace().unwrap_or_default();
    let name = group.name_any();
    let wake = ctx.wake.clone();
    let (wns, wname) = (ns.clone(), name.clone());
    ctx.observers
        .ensure(&ns, &name, gateway, move || _ = wake.group(&wns, &wname));
    let generation = group.meta().generation;
    for f in ctx.observers.failovers(&ns, &name) {
        let note = format!(
            "primary {} lost for {} ms; {} promoted under term {}",
            f.failed_primary,
            f.after.as_millis(),
            f.new_primary,
            f.term
        );
        ctx.events
            .warning(group, "Failover", "Failover", note.clone())
            .await;
        ctx.bus.publish(&GroupFailover {
            group: announce::group_ref(group),
            failed_primary: f.failed_primary.clone(),
            new_primary: f.new_primary.clone(),
            detected_by: "agents (lifecycle stream)".into(),
            lag_bytes: None,
        });
        condition::set(
            &mut status.conditions,
            FAILED_OVER,
            true,
            "PrimaryLost",
            note,
            generation,
        );
        status.primary = Some(f.new_primary);
        status.term = status.term.max(f.term);
    }
    let current: BTreeMap<String, String> = rendered
        .summary
        .instances
        .iter()
        .filter_map(|i| {
            let pod = lifecycle::pod_of(&rendered.live.pods, i)?;
            Some((i.clone(), pod.name_any()))
        })
        .collect();
    let seen = ctx.observers.seen(&ns, &name);
    if let Some((primary, term)) = seen.primary(&current) {
        if status.primary.as_deref() != Some(primary.as_str()) {
            let note = format!(
                "the agents name {primary} primary under term {term} (was {})",
                status.primary.as_deref().unwrap_or("none")
            );
            ctx.events
                .normal(group, "PrimaryChanged", "Roles", note)
                .await;
            status.primary = Some(primary.clone());
        }
        status.term = status.term.max(term);
        let astray = seen.astray(&current, &primary);
        if !astray.is_empty() {
            match gateway
                .rejoin(&ns, &name, astray.clone(), REJOIN_TIMEOUT)
                .await
            {
                Ok(r) if r.success => {
                    let note = format!("{} follow {primary} again", astray.join(", "));
                    ctx.events.normal(group, "Rejoined", "Roles", note).await;
                }
                Ok(r) => {
                    tracing::info!(group = %name, ?astray, error = ?r.error, "rejoin not done");
                }
                Err(e) => tracing::warn!(group = %name, error = %e, "rejoin call"),
            }
        } else if condition::is_true(&status.conditions, FAILED_OVER)
            && current.len() == rendered.summary.instances.len()
            && current
                .values()
                .all(|p| seen.pods.get(p).is_some_and(|s| s.error.is_none()))
        {
            condition::set(
                &mut status.conditions,
                FAILED_OVER,
                false,
                "Rejoined",
                format!("every instance follows {primary}"),
                generation,
            );
        }
    }
    let primary = status.primary.clone().unwrap_or_default();
    let pods: Vec<String> = current.values().cloned().collect();
    ctx.observers.update(&ns, &name, &primary, &pods);
    seen
}

pub const PRIMARY: &str = "primary";
pub const REPLICA: &str = "replica";

/// Labels every instance's Pod with its role. Returns whether a relabel sent
/// a moment ago is still not in the Pod cache (the Group looks again once
/// that expectation has expired).
pub async fn relabel(
    rendered: &Rendered,
    primary: &str,
    ctx: &Context,
) -> Result<bool, ReconcileError> {
    let pods: Vec<(&str, &Pod)> = rendered
        .summary
        .instances
        .iter()
        .filter_map(|i| lifecycle::pod_of(&rendered.live.pods, i).map(|p| (i.as_str(), p)))
        .collect();
    let mut expecting = false;
    for (pod, role) in relabels(&pods, primary) {
        let label = BTreeMap::from([(labels::ROLE.to_string(), role.to_string())]);
        // Sent a moment ago and not in the Pod cache yet: not sent again.
        if ctx.applier.apply_labels(pod, &label).await? == Applied::Expected {
            expecting = true;
        }
    }
    Ok(expecting)
}

/// Pods whose role label differs from what `primary` implies: (pod, role).
pub fn relabels<'a>(pods: &'a [(&'a str, &'a Pod)], primary: &str) -> Vec<(&'a Pod, &'static str)> {
    pods.iter()
        .filter(|(_, p)| p.metadata.deletion_timestamp.is_none())
        .filter_map(|(instance, pod)| {
            let want = if *instance == primary {
                PRIMARY
            } else {
                REPLICA
            };
            (pod.labels().get(labels::ROLE).map(String::as_str) != Some(want))
                .then_some((*pod, want))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(role: Option<&str>) -> Pod {
        let mut p = Pod::default();
        if let Some(r) = role {
            p.metadata.labels = Some(BTreeMap::from([(labels::ROLE.to_string(), r.to_string())]));
        }
        p
    }

    #[test]
    fn only_pods_with_the_wrong_role_are_relabelled() {
        let (a, b, c) = (pod(Some(PRIMARY)), pod(None), pod(Some(PRIMARY)));
        let pods = [("g-0", &a), ("g-1", &b), ("g-2", &c)];
        let out: Vec<&str> = relabels(&pods, "g-0").into_iter().map(|(_, r)| r).collect();
        assert_eq!(out, [REPLICA, REPLICA]);
        let out = relabels(&pods, "g-2");
        assert_eq!(out.len(), 2, "g-0 loses the role, g-1 gets replica");
    }
}
