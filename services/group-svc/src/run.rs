//! Wiring the Group controller: what it owns, the Pods it reports on, and the
//! in-process triggers (a plugin changed, a re-render was asked for).

use crate::context::CONTROLLER;
use crate::{Context, reconcile};
use futures::StreamExt;
use k8s_openapi::api::core::v1::Pod;
use kube::ResourceExt;
use kube::runtime::reflector::ObjectRef;
use kube::runtime::{Controller, watcher};
use midplane_api::{Group, labels};
use midplane_operator::cache::{trim, trimmed_watch};
use midplane_operator::plugins::sources;
use midplane_operator::slim;
use midplane_operator::{instrumented, on_error};
use midplane_runtime::Shutdown;
use std::sync::Arc;

/// Runs the Group controller until `shutdown`. The plugin store in `ctx` is
/// kept current by whoever built it (see `midplane_operator::plugins::sources`).
pub async fn run_controller(ctx: Arc<Context>, shutdown: Shutdown) {
    midplane_operator::metrics::describe();
    let client = ctx.client.clone();
    let owned = &ctx.owned;
    // Only what carries the Group label: the caches index by it.
    let by_group = watcher::Config::default().labels(labels::GROUP);
    let (group_stream, group_store) = trimmed_watch::<Group>(client.clone());
    let controller = Controller::for_stream(group_stream, group_store);
    let plugin_changes =
        sources::triggers(&ctx.plugins, controller.store(), |g: &Group, plugin| {
            g.spec.middleware.plugin == plugin
        });
    let woken = ctx.wake.take().map(|rx| {
        futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|r| (r, rx)) })
    });
    let stop = shutdown.clone();
    let controller = controller
        // Owned kinds come through the caches the reconcile reads from.
        // Deployments, Services and ConfigMaps keep the fields a hand edit
        // breaks (replicas, selector, data: see `drift`); a Deployment's pod
        // template is dropped once decoded.
        .owns_stream(owned.deployments.watch::<slim::ManagedFields>(
            client.clone(),
            by_group.clone(),
            Some(trim::deployment),
        ))
        .owns_stream(owned.services.watch::<slim::ManagedFields>(
            client.clone(),
            by_group.clone(),
            None,
        ))
        .owns_stream(owned.config_maps.watch::<slim::ManagedFields>(
            client.clone(),
            by_group.clone(),
            None,
        ))
        .owns_stream(owned.pvcs.watch::<slim::SpecAndStatus>(
            client.clone(),
            by_group.clone(),
            None,
        ))
        // Pods belong to Deployments, not to the Group: map them by label.
        .watches_stream(
            owned
                .pods
                .watch::<slim::Spec>(client.clone(), by_group, Some(trim::pod)),
            |pod: Pod| {
                let ns = pod.namespace();
                pod.labels()
                    .get(labels::GROUP)
                    .cloned()
                    .map(|g| ObjectRef::<Group>::new(&g).within(ns.as_deref().unwrap_or_default()))
            },
        )
        .reconcile_on(plugin_changes);
    let controller = match woken {
        Some(woken) => controller.reconcile_on(woken),
        None => controller,
    };
    controller
        .with_config(midplane_operator::controller_config())
        .graceful_shutdown_on(async move { stop.wait().await })
        .run(
            |group, ctx: Arc<Context>| async move {
                let fut = reconcile::reconcile(group.clone(), ctx.clone());
                instrumented(CONTROLLER, group.as_ref(), &ctx.backoff, fut).await
            },
            |group, err, ctx| on_error(CONTROLLER, &group, err, &ctx.events, &ctx.backoff),
            ctx,
        )
        .for_each(|_| async {})
        .await;
}
