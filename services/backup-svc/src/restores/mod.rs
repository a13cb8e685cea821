//! In-place restores as Kubernetes resources (docs/backups.md, "Restore into a running
//! Group"): the `Restore` controller. It holds the Group (group-svc stops every
//! instance), replaces each instance's volume by a Job next to the data, and releases the
//! Group; all of its state lives in the resource's status.

pub mod plan;
mod reconcile;

use std::sync::Arc;

use futures::StreamExt;
use k8s_openapi::api::batch::v1::Job;
use kube::Api;
use kube::runtime::{Controller, watcher};
use midplane_api::Restore;
use midplane_operator::{instrumented, on_error};

pub use reconcile::{CONTROLLER, Context, FIELD_MANAGER, FINALIZER, reconcile};

/// Runs the Restore controller (every namespace, or `namespace`) until `stop` resolves.
pub async fn run(
    ctx: Arc<Context>,
    namespace: Option<&str>,
    stop: impl std::future::Future<Output = ()> + Send + Sync + 'static,
) {
    let (restores, jobs): (Api<Restore>, Api<Job>) = match namespace {
        Some(ns) => (
            Api::namespaced(ctx.client.clone(), ns),
            Api::namespaced(ctx.client.clone(), ns),
        ),
        None => (Api::all(ctx.client.clone()), Api::all(ctx.client.clone())),
    };
    Controller::new(restores, watcher::Config::default())
        .owns(jobs, watcher::Config::default().labels(plan::JOB_SELECTOR))
        .with_config(midplane_operator::controller_config())
        .graceful_shutdown_on(stop)
        .run(
            |r, ctx: Arc<Context>| async move {
                let fut = reconcile(r.clone(), ctx.clone());
                instrumented(CONTROLLER, r.as_ref(), &ctx.backoff, fut).await
            },
            |r, err, ctx| on_error(CONTROLLER, &r, err, &ctx.recorder, &ctx.backoff),
            ctx,
        )
        .for_each(|_| async {})
        .await;
}
