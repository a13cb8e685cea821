//! Wiring the Group controller: what it owns, the Pods it reports on, and the
//! plugin ConfigMaps whose change re-renders every Group using the plugin.

use crate::{Context, reconcile};
use futures::StreamExt;
use k8s_openapi::api::core::v1::{ConfigMap, Pod};
use kube::runtime::reflector::ObjectRef;
use kube::runtime::{Controller, watcher};
use kube::{Api, ResourceExt};
use midplane_api::{Group, labels};
use midplane_operator::cache::{trim, trimmed_watch};
use midplane_operator::plugin_store::Update;
use midplane_operator::slim;
use midplane_operator::{instrumented, on_error};
use midplane_runtime::Shutdown;
use std::sync::Arc;

pub async fn run_controller(ctx: Arc<Context>, plugin_namespace: String, shutdown: Shutdown) {
    midplane_operator::metrics::describe();
    let client = ctx.client.clone();
    let owned = &ctx.owned;
    // Only what carries the Group label: the caches index by it.
    let by_group = watcher::Config::default().labels(labels::GROUP);
    let (group_stream, group_store) = trimmed_watch::<Group>(client.clone());
    let controller = Controller::for_stream(group_stream, group_store);
    let groups = controller.store();
    let plugin_ctx = ctx.clone();
    let stop = shutdown.clone();
    controller
        // Owned kinds come through the caches the reconcile reads from.
        .owns_stream(owned.deployments.watch::<slim::Spec>(client.clone(), by_group.clone(), Some(trim::deployment)))
        .owns_stream(owned.services.watch::<slim::SpecAndStatus>(client.clone(), by_group.clone(), None))
        .owns_stream(owned.config_maps.watch::<slim::Data>(client.clone(), by_group.clone(), None))
        .owns_stream(owned.pvcs.watch::<slim::SpecAndStatus>(client.clone(), by_group.clone(), None))
        // Pods belong to Deployments, not to the Group: map them by label.
        .watches_stream(owned.pods.watch::<slim::Spec>(client.clone(), by_group.clone(), Some(trim::pod)), |pod: Pod| {
            let ns = pod.namespace();
            pod.labels()
                .get(labels::GROUP)
                .cloned()
                .map(|g| ObjectRef::<Group>::new(&g).within(ns.as_deref().unwrap_or_default()))
        })
        // A plugin ConfigMap changed: load it (a broken one keeps the last good
        // version) and re-render every Group that uses the plugin.
        .watches(
            Api::<ConfigMap>::namespaced(client.clone(), &plugin_namespace),
            watcher::Config::default().labels(labels::PLUGIN),
            move |cm: ConfigMap| {
                if !plugin_ctx.watch_plugin_configmaps {
                    return Vec::new();
                }
                let update = plugin_ctx.plugins.apply_config_map(&cm);
                let affected: Vec<ObjectRef<Group>> = match &update {
                    Update::Accepted(p) => {
                        tracing::info!(plugin = %p.id(), hash = %p.content_hash, "plugin changed; re-rendering its Groups");
                        groups
                            .state()
                            .iter()
                            .filter(|g| g.spec.middleware.plugin == p.metadata.name)
                            .map(|g| ObjectRef::from_obj(g.as_ref()))
                            .collect()
                    }
                    Update::Rejected { plugin, error, .. } => {
                        tracing::warn!(%plugin, %error, "plugin update refused; last good version keeps serving");
                        let (events, cm, reason, note) = (plugin_ctx.events.clone(), cm.clone(), error.reason(), error.to_string());
                        tokio::spawn(async move {
                            events.warning(&cm, reason, "LoadPlugin", format!("refused, last good version kept: {note}")).await;
                        });
                        Vec::new()
                    }
                    Update::Unchanged => Vec::new(),
                };
                affected
            },
        )
        .with_config(midplane_operator::controller_config())
        .graceful_shutdown_on(async move { stop.wait().await })
        .run(
            |group, ctx: Arc<Context>| async move {
                let fut = reconcile::reconcile(group.clone(), ctx.clone());
                instrumented(reconcile::CONTROLLER, group.as_ref(), &ctx.backoff, fut).await
            },
            |group, err, ctx| on_error(reconcile::CONTROLLER, &group, err, &ctx.events, &ctx.backoff),
            ctx,
        )
        .for_each(|_| async {})
        .await;
}
