//! Wiring the controllers: watches, error policy, plugin watcher, shutdown.

use crate::{Context, app_controller, component_controller};
use futures::StreamExt;
use kube::runtime::{Controller, watcher};
use midplane_api::{App, Component};
use midplane_operator::cache::trimmed_watch;
use midplane_operator::slim::ManagedFields;
use midplane_operator::{instrumented, on_error, plugin_store};
use midplane_runtime::Shutdown;
use std::sync::Arc;

/// Runs the App and Component controllers and the plugin watcher until
/// `shutdown` completes.
pub async fn run_controllers(ctx: Arc<Context>, plugin_namespace: String, shutdown: Shutdown) {
    let stop = move || {
        let s = shutdown.clone();
        async move { s.wait().await }
    };
    midplane_operator::metrics::describe();
    let client = ctx.client.clone();
    // Children come through the caches the reconciles read from.
    let component_stream =
        ctx.components
            .watch::<ManagedFields>(client.clone(), watcher::Config::default(), None);
    let group_stream =
        ctx.groups
            .watch::<ManagedFields>(client.clone(), watcher::Config::default(), None);
    let (app_stream, app_store) = trimmed_watch::<App>(client.clone());
    let (comp_stream, comp_store) = trimmed_watch::<Component>(client.clone());
    let apps = Controller::for_stream(app_stream, app_store)
        .owns_stream(component_stream)
        .with_config(midplane_operator::controller_config())
        .graceful_shutdown_on(stop())
        .run(
            |app, ctx: Arc<Context>| {
                let c = ctx.clone();
                async move {
                    let fut = app_controller::reconcile(app.clone(), c.clone());
                    instrumented(app_controller::CONTROLLER, app.as_ref(), &c.backoff, fut).await
                }
            },
            |app, err, ctx| {
                on_error(
                    app_controller::CONTROLLER,
                    &app,
                    err,
                    &ctx.events,
                    &ctx.backoff,
                )
            },
            ctx.clone(),
        )
        .for_each(|_| async {});
    let components = Controller::for_stream(comp_stream, comp_store)
        .owns_stream(group_stream)
        .with_config(midplane_operator::controller_config())
        .graceful_shutdown_on(stop())
        .run(
            |comp, ctx: Arc<Context>| {
                let c = ctx.clone();
                async move {
                    let fut = component_controller::reconcile(comp.clone(), c.clone());
                    instrumented(
                        component_controller::CONTROLLER,
                        comp.as_ref(),
                        &c.backoff,
                        fut,
                    )
                    .await
                }
            },
            |comp, err, ctx| {
                on_error(
                    component_controller::CONTROLLER,
                    &comp,
                    err,
                    &ctx.events,
                    &ctx.backoff,
                )
            },
            ctx.clone(),
        )
        .for_each(|_| async {});
    let plugins = plugin_store::watch(
        client,
        &plugin_namespace,
        ctx.plugins.clone(),
        ctx.events.clone(),
        |_| {},
    );
    tokio::select! {
        _ = futures::future::join(apps, components) => {}
        _ = plugins => {}
        _ = stop() => {}
    }
}
