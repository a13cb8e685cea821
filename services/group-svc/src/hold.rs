//! A held Group (`midplane.dev/hold`, set by a Restore: docs/backups.md): every
//! instance stops and nothing else is applied, so a Job can replace the data in
//! the volumes while no middleware runs on them. The hold scales each instance's
//! workload to zero under its own field manager ([`HOLD_FIELD_MANAGER`]), which
//! owns only `spec.replicas`; releasing gives each workload its one replica
//! back the same way, so drift repair sees nothing changed by hand.

use crate::Context;
use crate::render::Rendered;
use kube::ResourceExt;
use kube::runtime::controller::Action;
use midplane_api::{Group, GroupStatus, labels};
use midplane_operator::ReconcileError;
use midplane_operator::condition::{self, Summary};
use serde_json::json;
use std::time::Duration;

/// The field manager of the hold's writes (only `spec.replicas` of workloads).
pub const HOLD_FIELD_MANAGER: &str = "midplane/group-hold";
/// The replicas of an instance workload when it runs: one instance, one Pod.
const RUNNING_REPLICAS: i32 = 1;

/// What holds `group`, if anything (the annotation's value).
pub fn held_by(group: &Group) -> Option<&str> {
    group
        .annotations()
        .get(labels::HOLD)
        .map(String::as_str)
        .filter(|v| !v.is_empty())
}

/// Keeps a held Group stopped: its workloads at zero replicas, its status
/// saying who holds it and how many instances still run. Nothing else of the
/// pipeline runs (no rollout, no switchover, no reload, no prune).
pub async fn keep_stopped(
    group: &Group,
    by: &str,
    current: Option<&GroupStatus>,
    rendered: &Rendered,
    ctx: &Context,
) -> Result<Action, ReconcileError> {
    // A primary stopped on purpose is not lost: no failover while held (the
    // next pass after the release names the primary to the watch again).
    let ns = group.namespace().unwrap_or_default();
    ctx.observers.update(&ns, &group.name_any(), "", &[]);
    for d in &rendered.live.deployments {
        if d.spec.as_ref().and_then(|s| s.replicas) != Some(0) {
            scale(group, &d.name_any(), 0, ctx).await?;
        }
    }
    let running = rendered
        .live
        .pods
        .iter()
        .filter(|p| p.labels().contains_key(labels::MIDDLEWARE_INSTANCE))
        .count();
    let mut next = current.cloned().unwrap_or_default();
    let generation = group.metadata.generation;
    let message = if running == 0 {
        format!("held by {by}: every instance stopped")
    } else {
        format!("held by {by}: {running} instance Pod(s) still stopping")
    };
    let summary = Summary::new(false, "Held", message).waiting();
    let changed = condition::set_summary(&mut next.conditions, &summary, generation);
    next.observed_generation = generation;
    next.held = Some(by.to_string());
    next.ready_replicas = 0;
    // The count of Pods going is what the holder waits on: a transition.
    let transition = changed || current.and_then(|c| c.held.as_deref()) != Some(by) || running == 0;
    ctx.status.write(group, current, &next, transition).await?;
    if changed {
        let note = format!("{by} holds the Group: every instance stops");
        ctx.events.normal(group, "Held", "Hold", note).await;
    }
    // Pods going wake us through the Pod watch; look again in a while anyway.
    Ok(Action::requeue(Duration::from_secs(5)))
}

/// The hold is gone: every workload the hold scaled down runs again, all at
/// once (no rollout order: nothing runs to switch over to). Returns whether
/// anything was released.
pub async fn release(
    group: &Group,
    status: &mut GroupStatus,
    rendered: &Rendered,
    ctx: &Context,
) -> Result<bool, ReconcileError> {
    let Some(by) = status.held.take() else {
        return Ok(false);
    };
    for d in &rendered.live.deployments {
        if d.spec.as_ref().and_then(|s| s.replicas) == Some(0) {
            scale(group, &d.name_any(), RUNNING_REPLICAS, ctx).await?;
        }
    }
    let note = format!("{by} released the Group: every instance starts");
    ctx.events.normal(group, "Released", "Hold", note).await;
    // The status step of this pass writes `held` gone (Held → not ready is a
    // transition); a crash before that releases again, which changes nothing.
    Ok(true)
}

async fn scale(
    group: &Group,
    deployment: &str,
    replicas: i32,
    ctx: &Context,
) -> Result<(), ReconcileError> {
    let body = json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": deployment, "namespace": group.namespace()},
        "spec": {"replicas": replicas},
    });
    ctx.hold.apply_json(&body).await?;
    Ok(())
}
