//! Backups as Kubernetes resources (docs/backups.md): the `Backup` controller. Each Backup
//! runs as a Job next to its data, reading a snapshot the agents had the middleware write,
//! and all of its state lives in the resource's status.

pub mod plan;
mod reconcile;
pub mod snapshot;
pub mod snapshot_gateway;

use std::sync::Arc;

use futures::StreamExt;
use k8s_openapi::api::batch::v1::Job;
use kube::Api;
use kube::runtime::{Controller, watcher};
use midplane_api::Backup;
use midplane_operator::{instrumented, on_error};

pub use reconcile::{CONTROLLER, Context, FIELD_MANAGER, FINALIZER, reconcile};

use crate::job_spec::JOB_SELECTOR;

/// Runs the Backup controller and beside it the Restore controller (`crate::restores`),
/// over every namespace or `namespace`, until `stop` resolves.
pub async fn run(
    ctx: Arc<Context>,
    namespace: Option<&str>,
    stop: impl std::future::Future<Output = ()> + Send + Sync + 'static,
) {
    use futures::FutureExt;
    let stop = stop.shared();
    let restores = Arc::new(crate::restores::Context::new(
        ctx.client.clone(),
        ctx.job.clone(),
        ctx.events.clone(),
    ));
    futures::join!(
        run_backups(ctx, namespace, stop.clone()),
        crate::restores::run(restores, namespace, stop),
    );
}

async fn run_backups(
    ctx: Arc<Context>,
    namespace: Option<&str>,
    stop: impl std::future::Future<Output = ()> + Send + Sync + 'static,
) {
    midplane_operator::metrics::describe();
    let (backups, jobs): (Api<Backup>, Api<Job>) = match namespace {
        Some(ns) => (
            Api::namespaced(ctx.client.clone(), ns),
            Api::namespaced(ctx.client.clone(), ns),
        ),
        None => (Api::all(ctx.client.clone()), Api::all(ctx.client.clone())),
    };
    Controller::new(backups, watcher::Config::default())
        .owns(jobs, watcher::Config::default().labels(JOB_SELECTOR))
        .with_config(midplane_operator::controller_config())
        .graceful_shutdown_on(stop)
        .run(
            |b, ctx: Arc<Context>| async move {
                let fut = reconcile(b.clone(), ctx.clone());
                instrumented(CONTROLLER, b.as_ref(), &ctx.backoff, fut).await
            },
            |b, err, ctx| on_error(CONTROLLER, &b, err, &ctx.recorder, &ctx.backoff),
            ctx,
        )
        .for_each(|_| async {})
        .await;
}

/// `scheduler.mode: resources`: the Backup resource for one due slot of `target`'s Group,
/// named after the Group and the slot's backup id; returns its name. An existing one (the
/// same slot, created before a restart) is kept.
pub async fn create_scheduled(
    client: &kube::Client,
    target: &crate::policy::Target,
    id: &str,
) -> Result<String, crate::execute::RunError> {
    use kube::api::PostParams;
    let name = format!("{}-{}", target.group, id.to_ascii_lowercase());
    let mut backup = Backup::new(
        &name,
        midplane_api::BackupSpec {
            app: target.key.app.clone(),
            component: target.key.component.clone(),
            group: target.group.clone(),
            ..Default::default()
        },
    );
    backup.metadata.namespace = Some(target.key.namespace.clone());
    backup.metadata.labels = Some(plan::policy_labels(
        &target.key.app,
        &target.key.component,
        &target.group,
    ));
    let api: Api<Backup> = Api::namespaced(client.clone(), &target.key.namespace);
    match api.create(&PostParams::default(), &backup).await {
        Ok(_) => Ok(name),
        Err(kube::Error::Api(e)) if e.code == 409 => Ok(name),
        Err(e) => Err(crate::execute::RunError {
            stage: "job",
            message: format!("creating Backup {}/{name}: {e}", target.key.namespace),
        }),
    }
}
