//! Deleting a Group in the seed's order (§6.2): Pods (through their
//! Deployments) first, then Services, ConfigMaps and PVCs, then the Group.
//! What is left is read from the watch caches; each step waits for the
//! previous one to be gone.

use crate::Context;
use crate::error::GroupError;
use crate::live::LiveObjects;
use kube::ResourceExt;
use kube::api::Api;
use kube::runtime::controller::Action;
use midplane_api::Group;
use midplane_operator::{FINALIZER, finalizer};
use std::time::Duration;

pub async fn run(group: &Group, groups: &Api<Group>, ctx: &Context) -> Result<Action, GroupError> {
    if !finalizer::has(group, FINALIZER) {
        return Ok(Action::await_change());
    }
    let ns = group.namespace().unwrap_or_default();
    let again = Ok(Action::requeue(Duration::from_millis(500)));
    // Kinds a plugin rendered beyond the cached ones are known from the last render.
    let other_kinds = ctx
        .renders
        .get_any(&group.uid().unwrap_or_default())
        .map(|s| s.kinds())
        .unwrap_or_default();
    let live = LiveObjects::fetch(group, &other_kinds, &ctx.owned, &ctx.client).await?;
    let owned = |deployments: bool| {
        live.objects
            .iter()
            .filter(move |o| o.controlled && (o.resource.kind == "Deployment") == deployments)
    };

    // 1. Workloads, in the foreground so their Pods go first.
    if owned(true).next().is_some() || !live.pods.is_empty() {
        for o in owned(true).filter(|o| !o.deleting) {
            ctx.applier
                .delete_dynamic(&o.resource, &ns, &o.name)
                .await?;
        }
        return again;
    }

    // 2. Everything else the Group owns.
    if owned(false).next().is_some() {
        for o in owned(false).filter(|o| !o.deleting) {
            ctx.applier
                .delete_dynamic(&o.resource, &ns, &o.name)
                .await?;
        }
        return again;
    }

    // 3. The Group itself.
    finalizer::remove(groups, group, FINALIZER).await?;
    ctx.renders.forget(&group.uid().unwrap_or_default());
    ctx.expected.forget(&group.uid().unwrap_or_default());
    ctx.rollouts.forget(group);
    Ok(Action::await_change())
}
