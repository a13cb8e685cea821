//! Deleting a Group in order (docs/design.md, "Deletion"): Pods (through
//! their Deployments) first, then Services, ConfigMaps and PVCs, then the
//! Group. What is left is read from the watch caches; each step waits for
//! the previous one to be gone.

use crate::Context;
use crate::live::LiveObjects;
use kube::ResourceExt;
use kube::runtime::controller::Action;
use midplane_api::Group;
use midplane_operator::{FINALIZER, ReconcileError, finalizer};
use std::time::Duration;

pub async fn run(group: &Group, ctx: &Context) -> Result<Action, ReconcileError> {
    if !finalizer::has(group, FINALIZER) {
        return Ok(Action::await_change());
    }
    let ns = group.namespace().unwrap_or_default();
    let uid = group.uid().unwrap_or_default();
    let again = Ok(Action::requeue(Duration::from_millis(500)));
    // Kinds a plugin rendered beyond the cached ones are known from the last render.
    let other_kinds = ctx
        .renders
        .get_any(&uid)
        .map(|s| s.kinds())
        .unwrap_or_default();
    let live = LiveObjects::fetch(group, &other_kinds, &ctx.owned, &ctx.client).await?;
    let owned = |deployments: bool| {
        live.objects
            .iter()
            .filter(move |o| o.controlled && (o.resource.kind == "Deployment") == deployments)
    };
    // 1. Workloads, in the foreground so their Pods go first; 2. the rest.
    for workloads in [true, false] {
        let left = owned(workloads).next().is_some() || (workloads && !live.pods.is_empty());
        if left {
            for o in owned(workloads).filter(|o| !o.deleting) {
                ctx.applier.delete(&o.resource, &ns, &o.name).await?;
            }
            return again;
        }
    }
    // 3. The Group itself.
    ctx.applier.remove_finalizer(group, FINALIZER).await?;
    ctx.renders.forget(&uid);
    ctx.rollouts.forget(group);
    ctx.observers.forget(&ns, &group.name_any());
    Ok(Action::await_change())
}
