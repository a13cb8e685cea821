//! The Restore controller's reconcile. A Restore moves Pending → Stopping → Restoring →
//! Starting → Completed, or Failed; each step is written to its status before the next
//! begins, so backup-svc can stop anywhere and its successor carries on.
//!
//! - new: resolve the App, Group and backup (pure, `plan`); invalid fails at once naming
//!   the field; a Backup not yet Completed is waited for.
//! - Pending: the hold annotation on the Group (group-svc stops every instance).
//! - Stopping: once no instance Pod is left, one Job per instance replaces its volume.
//! - Restoring: every Job succeeded → release the hold (Starting); one failed → release
//!   the hold and fail (a failed Job left its volume untouched; replicas resync from the
//!   primary, whichever data it holds).
//! - Starting: the Group is Ready again → Completed.
//! - deleted: the finalizer releases a hold this Restore still has.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ListParams};
use kube::runtime::controller::Action;
use kube::{Client, Resource, ResourceExt};
use midplane_api::restore::phase;
use midplane_api::{App, Backup, Group, Restore, RestoreStatus, labels};
use midplane_operator::apply::Applier;
use midplane_operator::backoff::Backoff;
use midplane_operator::condition;
use midplane_operator::{EventRecorder, ReconcileError, finalizer};
use serde_json::json;

use midplane_bus::EventSink;
use midplane_bus::catalogue::{ObjectRef, RestoreCompleted, RestoreFailed};

use super::plan::{self, Resolved, Unresolved};
use crate::config::JobSettings;
use crate::job_client::{self, JobOutcome};
use crate::resources::plan::format_duration;

pub const CONTROLLER: &str = "restore";
/// The field manager of Restore statuses, their Jobs and the Group's hold annotation.
pub const FIELD_MANAGER: &str = "midplane/restore";
/// Kept on each Restore while it may hold its Group.
pub const FINALIZER: &str = "midplane.dev/restore-hold";
/// How often a Restore looks again while it waits (Pods stopping, the Group starting).
const POLL: Duration = Duration::from_secs(2);

pub struct Context {
    pub client: Client,
    pub applier: Applier,
    pub job: JobSettings,
    /// `midplane.restore.completed` / `.failed` on the bus.
    pub events: EventSink,
    pub recorder: EventRecorder,
    pub backoff: Backoff,
}

impl Context {
    pub fn new(client: Client, job: JobSettings, events: EventSink) -> Self {
        Self {
            applier: Applier::new(client.clone(), FIELD_MANAGER),
            recorder: EventRecorder::new(client.clone(), "midplane-backup-svc"),
            client,
            job,
            events,
            backoff: Backoff::new(Duration::from_millis(500), Duration::from_secs(60)),
        }
    }
}

fn app_ref(r: &Restore) -> ObjectRef {
    ObjectRef::new(&r.namespace().unwrap_or_default(), &r.spec.app)
}

pub async fn reconcile(r: Arc<Restore>, ctx: Arc<Context>) -> Result<Action, ReconcileError> {
    let ns = r
        .namespace()
        .ok_or_else(|| ReconcileError::NoNamespace(r.name_any()))?;
    if finalizer::is_deleting(r.as_ref()) {
        if finalizer::has(r.as_ref(), FINALIZER) {
            release(&r, &ns, &ctx).await?;
            ctx.applier.remove_finalizer(r.as_ref(), FINALIZER).await?;
        }
        return Ok(Action::await_change());
    }
    let status = r.status.clone().unwrap_or_default();
    if phase::is_final(&status.phase) {
        return Ok(Action::await_change());
    }
    let r = if finalizer::has(r.as_ref(), FINALIZER) {
        r
    } else {
        Arc::new(ctx.applier.add_finalizer(r.as_ref(), FINALIZER).await?)
    };
    match status.phase.as_str() {
        phase::PENDING => hold(&r, &ns, status, &ctx).await,
        phase::STOPPING => start_jobs(&r, &ns, status, &ctx).await,
        phase::RESTORING => track_jobs(&r, &ns, status, &ctx).await,
        phase::STARTING => await_ready(&r, &ns, status, &ctx).await,
        _ => accept(&r, &ns, status, &ctx).await,
    }
}

/// A new Restore: resolved and Pending, or Failed naming the field.
async fn accept(
    r: &Restore,
    ns: &str,
    mut status: RestoreStatus,
    ctx: &Context,
) -> Result<Action, ReconcileError> {
    let app = Api::<App>::namespaced(ctx.client.clone(), ns)
        .get_opt(&r.spec.app)
        .await?;
    let backup = match r.spec.from.backup.as_str() {
        "" => None,
        name => {
            Api::<Backup>::namespaced(ctx.client.clone(), ns)
                .get_opt(name)
                .await?
        }
    };
    match plan::resolve(r, app.as_ref(), backup.as_ref()) {
        Ok(resolved) => {
            record(&mut status, &resolved);
            status.phase = phase::PENDING.into();
            status.started_at = Some(Utc::now().to_rfc3339());
            status.message = None;
            write(r, status, false, "Pending", "accepted", ctx).await?;
            Ok(Action::requeue(Duration::ZERO))
        }
        Err(Unresolved::Waiting(m)) => {
            if status.message.as_deref() != Some(m.as_str()) {
                status.message = Some(m.clone());
                write(r, status, false, "WaitingForBackup", &m, ctx).await?;
            }
            Ok(Action::requeue(Duration::from_secs(5)))
        }
        Err(Unresolved::Invalid(e)) => {
            fail(
                r,
                status,
                "validate",
                format!("{}: {}", e.field, e.message),
                ctx,
            )
            .await
        }
    }
}

fn record(status: &mut RestoreStatus, resolved: &Resolved) {
    status.group = Some(resolved.group.clone());
    status.instances = resolved.instances.clone();
    status.backup_id = Some(resolved.source.id.clone());
    status.location = Some(resolved.source.storage.clone());
    status.key_secret = resolved.source.key_secret.clone();
    status.credentials_secret = resolved.source.credentials_secret.clone();
}

/// The hold's value on the Group.
fn holder(r: &Restore) -> String {
    format!("restore/{}", r.name_any())
}

/// Pending: hold the Group (unless another Restore holds it: then wait).
async fn hold(
    r: &Restore,
    ns: &str,
    mut status: RestoreStatus,
    ctx: &Context,
) -> Result<Action, ReconcileError> {
    let group_name = status.group.clone().unwrap_or_default();
    let Some(group) = Api::<Group>::namespaced(ctx.client.clone(), ns)
        .get_opt(&group_name)
        .await?
    else {
        return fail(
            r,
            status,
            "hold",
            format!("Group {ns}/{group_name} does not exist"),
            ctx,
        )
        .await;
    };
    let me = holder(r);
    if let Some(other) = group.annotations().get(labels::HOLD).filter(|h| **h != me) {
        let m = format!("Group {group_name} is held by {other}; waiting for it to end");
        if status.message.as_deref() != Some(m.as_str()) {
            status.message = Some(m.clone());
            write(r, status, false, "Waiting", &m, ctx).await?;
        }
        return Ok(Action::requeue(Duration::from_secs(5)));
    }
    set_hold(ns, &group_name, Some(&me), ctx).await?;
    status.phase = phase::STOPPING.into();
    status.message = Some(format!("stopping every instance of {group_name}"));
    let m = status.message.clone().unwrap_or_default();
    write(r, status, false, "Stopping", &m, ctx).await?;
    ctx.recorder
        .normal(
            r,
            "Holding",
            "Restore",
            format!("holding Group {group_name}: every instance stops"),
        )
        .await;
    Ok(Action::requeue(POLL))
}

/// Sets (Some) or takes away (None) this controller's hold annotation on a Group: a
/// server-side apply under [`FIELD_MANAGER`], which owns only that annotation.
async fn set_hold(
    ns: &str,
    group: &str,
    value: Option<&str>,
    ctx: &Context,
) -> Result<(), ReconcileError> {
    let mut metadata = json!({"name": group, "namespace": ns});
    if let Some(v) = value {
        metadata["annotations"] = json!({ labels::HOLD: v });
    }
    let body = json!({
        "apiVersion": Group::api_version(&()),
        "kind": Group::kind(&()),
        "metadata": metadata,
    });
    ctx.applier.apply_json(&body).await?;
    Ok(())
}

/// Takes this Restore's hold off its Group, if it is still there.
async fn release(r: &Restore, ns: &str, ctx: &Context) -> Result<(), ReconcileError> {
    let Some(group_name) = r.status.as_ref().and_then(|s| s.group.clone()) else {
        return Ok(());
    };
    let group = Api::<Group>::namespaced(ctx.client.clone(), ns)
        .get_opt(&group_name)
        .await?;
    let held_by_me = group
        .as_ref()
        .and_then(|g| g.annotations().get(labels::HOLD).cloned())
        .is_some_and(|h| h == holder(r));
    if held_by_me {
        set_hold(ns, &group_name, None, ctx).await?;
    }
    Ok(())
}

/// Stopping: once no instance Pod of the Group is left, a Job per instance.
async fn start_jobs(
    r: &Restore,
    ns: &str,
    mut status: RestoreStatus,
    ctx: &Context,
) -> Result<Action, ReconcileError> {
    let group = status.group.clone().unwrap_or_default();
    let selector = format!("{}={group},{}", labels::GROUP, labels::MIDDLEWARE_INSTANCE);
    let pods = Api::<Pod>::namespaced(ctx.client.clone(), ns)
        .list(&ListParams::default().labels(&selector))
        .await?;
    if !pods.items.is_empty() {
        return Ok(Action::requeue(POLL));
    }
    let resolved = Resolved {
        group: group.clone(),
        instances: status.instances.clone(),
        source: midplane_api::RestoreFrom {
            backup: r.spec.from.backup.clone(),
            storage: status.location.clone().unwrap_or_default(),
            id: status.backup_id.clone().unwrap_or_default(),
            key_secret: status.key_secret.clone(),
            credentials_secret: status.credentials_secret.clone(),
        },
    };
    let mut jobs = Vec::new();
    for instance in &resolved.instances {
        let job = plan::job(r, &resolved, instance, &ctx.job);
        let body = serde_json::to_value(&job).map_err(|e| ReconcileError::Agents {
            category: "RestoreFailed",
            message: format!("serialize Job: {e}"),
            transient: false,
        })?;
        ctx.applier.apply_json(&body).await?;
        jobs.push(job.metadata.name.unwrap_or_default());
    }
    status.jobs = jobs;
    status.phase = phase::RESTORING.into();
    status.message = Some(format!(
        "replacing the volumes of {}",
        resolved.instances.join(", ")
    ));
    let m = status.message.clone().unwrap_or_default();
    write(r, status, false, "Restoring", &m, ctx).await?;
    Ok(Action::requeue(POLL))
}

/// Restoring: the Jobs' outcomes.
async fn track_jobs(
    r: &Restore,
    ns: &str,
    mut status: RestoreStatus,
    ctx: &Context,
) -> Result<Action, ReconcileError> {
    let api: Api<Job> = Api::namespaced(ctx.client.clone(), ns);
    let mut running = false;
    for name in status.jobs.clone() {
        let job = api.get_opt(&name).await?;
        match job.as_ref().map(job_client::outcome) {
            Some(Some(JobOutcome::Succeeded)) => {}
            Some(Some(JobOutcome::Failed { reason, message })) => {
                release(r, ns, ctx).await?;
                let why = format!("Job {name} failed ({reason}): {message}");
                return fail(r, status, "restore", why, ctx).await;
            }
            Some(None) => running = true,
            None => {
                release(r, ns, ctx).await?;
                return fail(r, status, "restore", format!("Job {name} is gone"), ctx).await;
            }
        }
    }
    if running {
        return Ok(Action::requeue(POLL));
    }
    release(r, ns, ctx).await?;
    status.phase = phase::STARTING.into();
    let group = status.group.clone().unwrap_or_default();
    status.message = Some(format!("every volume replaced; {group} starts"));
    let m = status.message.clone().unwrap_or_default();
    write(r, status, false, "Starting", &m, ctx).await?;
    Ok(Action::requeue(POLL))
}

/// Starting: Completed once the Group is Ready again on the restored data.
async fn await_ready(
    r: &Restore,
    ns: &str,
    mut status: RestoreStatus,
    ctx: &Context,
) -> Result<Action, ReconcileError> {
    let group_name = status.group.clone().unwrap_or_default();
    let Some(group) = Api::<Group>::namespaced(ctx.client.clone(), ns)
        .get_opt(&group_name)
        .await?
    else {
        return fail(
            r,
            status,
            "start",
            format!("Group {ns}/{group_name} is gone"),
            ctx,
        )
        .await;
    };
    let gs = group.status.clone().unwrap_or_default();
    let ready = gs.held.is_none()
        && gs.observed_generation == group.metadata.generation
        && condition::is_true(&gs.conditions, condition::READY);
    if !ready {
        return Ok(Action::requeue(POLL));
    }
    let now = Utc::now();
    status.completed_at = Some(now.to_rfc3339());
    let took = status
        .started_at
        .as_deref()
        .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
        .and_then(|started| (now - started.with_timezone(&Utc)).to_std().ok())
        .unwrap_or_default();
    status.duration = Some(format_duration(took));
    ctx.events.publish(&RestoreCompleted {
        restore_id: r.name_any(),
        backup_id: status.backup_id.clone().unwrap_or_default(),
        app: app_ref(r),
        component: r.spec.component.clone(),
        group: group_name.clone(),
        duration_ms: u64::try_from(took.as_millis()).unwrap_or(u64::MAX),
    });
    status.phase = phase::COMPLETED.into();
    let note = format!(
        "restored backup {} into {group_name} ({} instances); the Group is Ready",
        status.backup_id.clone().unwrap_or_default(),
        status.instances.len()
    );
    status.message = Some(note.clone());
    write(r, status, true, "Completed", &note, ctx).await?;
    ctx.recorder
        .normal(r, "RestoreCompleted", "Restore", note)
        .await;
    Ok(Action::await_change())
}

/// Final failure, naming the step.
async fn fail(
    r: &Restore,
    mut status: RestoreStatus,
    stage: &'static str,
    message: String,
    ctx: &Context,
) -> Result<Action, ReconcileError> {
    let text = format!("{stage}: {message}");
    status.phase = phase::FAILED.into();
    status.message = Some(text.clone());
    status.completed_at = Some(Utc::now().to_rfc3339());
    let reason = if stage == "validate" {
        "InvalidRestore"
    } else {
        "RestoreFailed"
    };
    ctx.events.publish(&RestoreFailed {
        restore_id: r.name_any(),
        backup_id: status.backup_id.clone().unwrap_or_default(),
        app: app_ref(r),
        component: r.spec.component.clone(),
        stage: stage.into(),
        message,
    });
    write(r, status, false, reason, &text, ctx).await?;
    ctx.recorder.warning(r, reason, "Restore", text).await;
    Ok(Action::await_change())
}

/// Writes the status with its Ready condition (true only once Completed).
async fn write(
    r: &Restore,
    mut status: RestoreStatus,
    ready: bool,
    reason: &str,
    message: &str,
    ctx: &Context,
) -> Result<(), ReconcileError> {
    let generation = r.metadata.generation;
    condition::set(
        &mut status.conditions,
        condition::READY,
        ready,
        reason,
        message,
        generation,
    );
    status.observed_generation = generation;
    ctx.applier.apply_status(r, &status).await?;
    Ok(())
}
