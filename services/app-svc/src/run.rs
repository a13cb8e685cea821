//! Wiring the App and Component controllers: watches, in-process plugin
//! triggers, error policy, shutdown.

use crate::{Context, app_controller, component_controller};
use futures::StreamExt;
use kube::runtime::{Controller, watcher};
use midplane_api::{App, Component};
use midplane_operator::cache::trimmed_watch;
use midplane_operator::plugins::sources;
use midplane_operator::slim::ManagedFields;
use midplane_operator::{instrumented, on_error};
use midplane_runtime::Shutdown;
use std::sync::Arc;

/// Runs the App and Component controllers until `shutdown` completes. The
/// plugin store in `ctx` is kept current by whoever built it; a plugin that
/// arrives or changes re-reconciles every App and Component using it, so an
/// App validated before its plugin existed does not stay Invalid.
pub async fn run_controllers(ctx: Arc<Context>, shutdown: Shutdown) {
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
    let apps = Controller::for_stream(app_stream, app_store);
    let app_plugins = sources::triggers(&ctx.plugins, apps.store(), |app: &App, plugin| {
        app.spec.components.iter().any(|c| c.spec.plugin == plugin)
    });
    let apps = apps
        .owns_stream(component_stream)
        .reconcile_on(app_plugins)
        .with_config(midplane_operator::controller_config())
        .graceful_shutdown_on(stop())
        .run(
            |app, ctx: Arc<Context>| async move {
                let fut = app_controller::reconcile(app.clone(), ctx.clone());
                instrumented(app_controller::CONTROLLER, app.as_ref(), &ctx.backoff, fut).await
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
    let components = Controller::for_stream(comp_stream, comp_store);
    let comp_plugins =
        sources::triggers(&ctx.plugins, components.store(), |c: &Component, plugin| {
            c.spec.middleware.plugin == plugin
        });
    let components = components
        .owns_stream(group_stream)
        .reconcile_on(comp_plugins)
        .with_config(midplane_operator::controller_config())
        .graceful_shutdown_on(stop())
        .run(
            |comp, ctx: Arc<Context>| async move {
                let fut = component_controller::reconcile(comp.clone(), ctx.clone());
                instrumented(
                    component_controller::CONTROLLER,
                    comp.as_ref(),
                    &ctx.backoff,
                    fut,
                )
                .await
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
    tokio::select! {
        _ = futures::future::join(apps, components) => {}
        _ = stop() => {}
    }
}
