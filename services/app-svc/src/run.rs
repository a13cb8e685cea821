//! Wiring the controllers: watches, error policy, plugin watcher, shutdown.

use crate::{Context, app_controller, component_controller};
use futures::StreamExt;
use kube::Api;
use kube::runtime::{Controller, watcher};
use midplane_api::{App, Component, Group};
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
    let apps = Controller::new(Api::<App>::all(client.clone()), watcher::Config::default())
        .owns(
            Api::<Component>::all(client.clone()),
            watcher::Config::default(),
        )
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
    let components = Controller::new(
        Api::<Component>::all(client.clone()),
        watcher::Config::default(),
    )
    .owns(
        Api::<Group>::all(client.clone()),
        watcher::Config::default(),
    )
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
