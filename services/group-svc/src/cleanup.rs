//! Deleting a Group in the seed's order (§6.2): Pods (through their
//! Deployments) first, then Services, ConfigMaps and PVCs, then the Group.

use crate::Context;
use crate::error::GroupError;
use crate::reconcile::{pruned_kinds, selector};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, DynamicObject, ListParams};
use kube::runtime::controller::Action;
use kube::{Resource, ResourceExt};
use midplane_api::Group;
use midplane_operator::apply::controlled_by;
use midplane_operator::{FINALIZER, finalizer};
use std::time::Duration;

pub async fn run(group: &Group, groups: &Api<Group>, ctx: &Context) -> Result<Action, GroupError> {
    if !finalizer::has(group, FINALIZER) {
        return Ok(Action::await_change());
    }
    let ns = group.namespace().unwrap_or_default();
    let uid = group.uid().unwrap_or_default();
    let lp = ListParams::default().labels(&selector(group));
    let again = Ok(Action::requeue(Duration::from_millis(500)));

    // 1. Workloads, in the foreground so their Pods go first.
    let deploy_ar = kube::api::ApiResource::erase::<Deployment>(&());
    let deployments: Api<Deployment> = Api::namespaced(ctx.client.clone(), &ns);
    let live: Vec<Deployment> = deployments
        .list(&lp)
        .await?
        .items
        .into_iter()
        .filter(|d| controlled_by(d, &uid))
        .collect();
    let pods: Api<Pod> = Api::namespaced(ctx.client.clone(), &ns);
    let pods_left = pods.list(&lp).await?.items.len();
    if !live.is_empty() || pods_left > 0 {
        for d in live
            .iter()
            .filter(|d| d.meta().deletion_timestamp.is_none())
        {
            ctx.applier
                .delete_dynamic(&deploy_ar, &ns, &d.name_any())
                .await?;
        }
        return again;
    }

    // 2. Everything else the Group owns.
    let mut remaining = 0;
    for ar in pruned_kinds()
        .into_iter()
        .filter(|k| k.kind != "Deployment")
    {
        let api: Api<DynamicObject> = Api::namespaced_with(ctx.client.clone(), &ns, &ar);
        for o in api
            .list(&lp)
            .await?
            .items
            .into_iter()
            .filter(|o| controlled_by(o, &uid))
        {
            remaining += 1;
            if o.meta().deletion_timestamp.is_none() {
                ctx.applier.delete_dynamic(&ar, &ns, &o.name_any()).await?;
            }
        }
    }
    if remaining > 0 {
        return again;
    }

    // 3. The Group itself.
    finalizer::remove(groups, group, FINALIZER).await?;
    Ok(Action::await_change())
}
