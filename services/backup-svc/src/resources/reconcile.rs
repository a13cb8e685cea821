//! The Backup controller's reconcile: a Backup moves Pending → Running → Completed or Failed,
//! and every step is written to its status before the next begins, so backup-svc can stop at
//! any point and its successor carries on from the resource (docs/backups.md).
//!
//! - new: resolve the App, component, Group, storage and key (pure, `plan`); an invalid
//!   Backup fails at once, naming the field. The backup id is written (Pending) before
//!   anything else, so every later step is idempotent on it.
//! - Pending: the snapshot through the agents, then the Job (server-side apply, named from
//!   the id, owned by the Backup); Running records both.
//! - Running: the Job's outcome; on success the manifest from storage fills sizes and
//!   checksums (Completed), and the policy's retention deletes older scheduled Backups. A
//!   manifest still missing `manifest_grace` after the Job succeeded fails the Backup.
//! - deleted: the finalizer removes the backup's objects from storage first.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use k8s_openapi::api::batch::v1::Job;
use kube::api::{Api, DeleteParams, ListParams};
use kube::runtime::controller::Action;
use kube::{Client, ResourceExt};
use midplane_api::backup::phase;
use midplane_api::{App, Backup, BackupStatus};
use midplane_backup::catalog::CatalogError;
use midplane_backup::retention::RetentionPolicy;
use midplane_bus::catalogue::ObjectRef;
use midplane_operator::apply::Applier;
use midplane_operator::backoff::Backoff;
use midplane_operator::condition;
use midplane_operator::{EventRecorder, ReconcileError, finalizer};

use super::plan::{self, PlanError, Resolved, SnapshotTaken};
use super::snapshot::Snapshots;
use crate::announce::{self, EventSink, Subject};
use crate::config::{BackupSettings, JobSettings};
use crate::job_client::{self, JobOutcome};
use crate::policy::TargetKey;
use crate::resolve;

pub const CONTROLLER: &str = "backup";
/// The field manager of Backup statuses and the Jobs they run.
pub const FIELD_MANAGER: &str = job_client::FIELD_MANAGER;
/// Kept on each Backup until its objects are gone from storage.
pub const FINALIZER: &str = "midplane.dev/backup-objects";

pub struct Context {
    pub client: Client,
    pub applier: Applier,
    pub settings: Arc<BackupSettings>,
    pub job: JobSettings,
    pub snapshots: Arc<dyn Snapshots>,
    pub events: EventSink,
    pub recorder: EventRecorder,
    pub backoff: Backoff,
    /// How long a succeeded Job's manifest may be missing ([`plan::MANIFEST_GRACE`]).
    pub manifest_grace: Duration,
}

impl Context {
    pub fn new(
        client: Client,
        settings: Arc<BackupSettings>,
        job: JobSettings,
        snapshots: Arc<dyn Snapshots>,
        events: EventSink,
    ) -> Self {
        Self {
            applier: Applier::new(client.clone(), FIELD_MANAGER),
            recorder: EventRecorder::new(client.clone(), "midplane-backup-svc"),
            client,
            settings,
            job,
            snapshots,
            events,
            backoff: Backoff::new(Duration::from_millis(500), Duration::from_secs(60)),
            manifest_grace: plan::MANIFEST_GRACE,
        }
    }
}

fn step_error(category: &'static str, message: String, transient: bool) -> ReconcileError {
    ReconcileError::Agents {
        category,
        message,
        transient,
    }
}

pub async fn reconcile(b: Arc<Backup>, ctx: Arc<Context>) -> Result<Action, ReconcileError> {
    let ns = b
        .namespace()
        .ok_or_else(|| ReconcileError::NoNamespace(b.name_any()))?;
    if finalizer::is_deleting(b.as_ref()) {
        if finalizer::has(b.as_ref(), FINALIZER) {
            delete_objects(&b, &ctx).await?;
            ctx.applier.remove_finalizer(b.as_ref(), FINALIZER).await?;
        }
        return Ok(Action::await_change());
    }
    let b = if finalizer::has(b.as_ref(), FINALIZER) {
        b
    } else {
        Arc::new(ctx.applier.add_finalizer(b.as_ref(), FINALIZER).await?)
    };
    let status = b.status.clone().unwrap_or_default();
    match status.phase.as_str() {
        phase::COMPLETED | phase::FAILED => Ok(Action::await_change()),
        phase::PENDING => start_job(&b, &ns, status, &ctx).await,
        phase::RUNNING => track_job(&b, &ns, status, &ctx).await,
        _ => accept(&b, &ns, status, &ctx).await,
    }
}

async fn app_of(ctx: &Context, ns: &str, name: &str) -> Result<Option<App>, ReconcileError> {
    Ok(Api::<App>::namespaced(ctx.client.clone(), ns)
        .get_opt(name)
        .await?)
}

async fn resolved(b: &Backup, ns: &str, ctx: &Context) -> Result<Resolved, Resolution> {
    let app = app_of(ctx, ns, &b.spec.app)
        .await
        .map_err(Resolution::Api)?;
    plan::resolve(b, app.as_ref(), &ctx.settings).map_err(Resolution::Invalid)
}

enum Resolution {
    Api(ReconcileError),
    Invalid(PlanError),
}

/// A new Backup: resolved, given its id, Pending.
async fn accept(
    b: &Backup,
    ns: &str,
    mut status: BackupStatus,
    ctx: &Context,
) -> Result<Action, ReconcileError> {
    let r = match resolved(b, ns, ctx).await {
        Ok(r) => r,
        Err(Resolution::Api(e)) => return Err(e),
        Err(Resolution::Invalid(e)) => {
            return fail(b, status, "validate", e.to_string(), ctx).await;
        }
    };
    let id = midplane_backup::manifest::new_backup_id(Utc::now());
    status.phase = phase::PENDING.into();
    status.backup_id = Some(id);
    status.location = Some(r.storage_uri.clone());
    status.group = Some(r.group.clone());
    status.plugin = Some(r.plugin.clone());
    status.middleware_version = Some(r.middleware_version.clone()).filter(|v| !v.is_empty());
    status.encryption = Some(r.algorithm.as_str().to_string());
    status.key_secret = Some(r.key_secret.clone());
    status.credentials_secret = ctx.job.credentials_secret.clone();
    status.started_at = Some(Utc::now().to_rfc3339());
    write(b, status, false, "Pending", "taking a snapshot", ctx).await?;
    Ok(Action::requeue(Duration::from_millis(10)))
}

/// Pending: snapshot, then the Job.
async fn start_job(
    b: &Backup,
    ns: &str,
    mut status: BackupStatus,
    ctx: &Context,
) -> Result<Action, ReconcileError> {
    let id = status.backup_id.clone().unwrap_or_default();
    let r = match resolved(b, ns, ctx).await {
        Ok(r) => r,
        Err(Resolution::Api(e)) => return Err(e),
        Err(Resolution::Invalid(e)) => {
            return fail(b, status, "validate", e.to_string(), ctx).await;
        }
    };
    let snap = match ctx
        .snapshots
        .take(ns, &r.group, &b.spec.instance, &plan::snapshot_id(&id))
        .await
    {
        Ok(s) => s,
        Err(e) if e.transient => {
            return Err(step_error(
                "SnapshotFailed",
                format!("snapshot of Group {}: {e}", r.group),
                true,
            ));
        }
        Err(e) => {
            let msg = format!("snapshot of Group {}: {e}", r.group);
            return fail(b, status, "snapshot", msg, ctx).await;
        }
    };
    let subject = plan::subject(&r);
    if let Ok(store) = resolve::store(&ctx.settings, &r.storage_uri) {
        ctx.events
            .publish(&announce::started(&subject, &id, &store, r.algorithm));
    }
    midplane_backup::metrics::record_started(&plan::target_key(&r, &snap.instance).metric_labels());
    let job = plan::job(b, &r, &id, &snap, &ctx.job);
    let name = job.name_any();
    ctx.applier.apply(&job).await?;
    record_snapshot(&mut status, &snap);
    status.phase = phase::RUNNING.into();
    status.job = Some(name.clone());
    let how = match &snap.path {
        Some(_) => format!(
            "Job {name} archives the snapshot {} wrote as {} (term {}, offset {})",
            snap.instance, snap.role, snap.term, snap.replication_offset
        ),
        None => format!(
            "Job {name} archives the live files of {} (no agent gateway to take a snapshot)",
            snap.instance
        ),
    };
    write(b, status, false, "Running", &how, ctx).await?;
    ctx.recorder
        .normal(b, "BackupStarted", "Backup", format!("backup {id}: {how}"))
        .await;
    Ok(Action::requeue(Duration::from_secs(30)))
}

fn record_snapshot(status: &mut BackupStatus, snap: &SnapshotTaken) {
    status.instance = Some(snap.instance.clone());
    status.snapshot = snap.path.clone();
    if !snap.role.is_empty() {
        status.role = Some(snap.role.clone());
        status.term = Some(snap.term);
        status.replication_offset = Some(snap.replication_offset);
    }
}

/// Running: follow the Job to its end.
async fn track_job(
    b: &Backup,
    ns: &str,
    status: BackupStatus,
    ctx: &Context,
) -> Result<Action, ReconcileError> {
    let id = status.backup_id.clone().unwrap_or_default();
    let name = status.job.clone().unwrap_or_default();
    let job = Api::<Job>::namespaced(ctx.client.clone(), ns)
        .get_opt(&name)
        .await?;
    let Some(job) = job else {
        let msg = format!("Job {name} disappeared before it finished");
        return fail(b, status, "job", msg, ctx).await;
    };
    match job_client::outcome(&job) {
        None => Ok(Action::requeue(Duration::from_secs(30))),
        Some(JobOutcome::Failed { reason, message }) => {
            let msg = format!("Job {name} failed: {reason}: {message}");
            fail(b, status, "job", msg, ctx).await
        }
        Some(JobOutcome::Succeeded) => {
            let uri = status.location.clone().unwrap_or_default();
            let store = resolve::store(&ctx.settings, &uri)
                .map_err(|s| step_error("StorageInvalid", s.message().to_string(), false))?;
            let manifest = match store.manifest(&id).await {
                Ok(m) => m,
                Err(e @ (CatalogError::NotFound { .. } | CatalogError::Manifest(_)))
                    if plan::manifest_overdue(
                        plan::job_finished_at(&job),
                        status.started_at.as_deref(),
                        Utc::now(),
                        ctx.manifest_grace,
                    ) =>
                {
                    let msg = format!(
                        "Job {name} succeeded, but backup {id} has no readable manifest in {} {} after the Job ended: {e}",
                        store.describe(),
                        plan::format_duration(ctx.manifest_grace)
                    );
                    return fail(b, status, "job", msg, ctx).await;
                }
                Err(e) => {
                    return Err(step_error(
                        "StorageUnavailable",
                        format!(
                            "Job {name} succeeded but backup {id} cannot be read from {}: {e}",
                            store.describe()
                        ),
                        true,
                    ));
                }
            };
            let status = plan::completed(status, &manifest, Utc::now());
            let note = format!(
                "backup {id} of {} completed: {} bytes stored in {}",
                status.instance.as_deref().unwrap_or_default(),
                manifest.sizes.stored_bytes,
                status.duration.as_deref().unwrap_or_default()
            );
            write(b, status.clone(), true, "Completed", &note, ctx).await?;
            metrics::counter!("midplane_backups_created_total", "trigger" => plan::trigger(b).to_string())
                .increment(1);
            midplane_backup::metrics::record_completed(&manifest);
            let subject = Subject::from_labels(&manifest.labels);
            ctx.events
                .publish(&announce::completed(&subject, &manifest, &store));
            ctx.recorder
                .normal(b, "BackupCompleted", "Backup", note)
                .await;
            if plan::trigger(b) == "schedule" {
                retention(b, ns, ctx).await;
            }
            Ok(Action::await_change())
        }
    }
}

/// Final failure: phase Failed naming the step; counted, announced and recorded once.
async fn fail(
    b: &Backup,
    mut status: BackupStatus,
    stage: &'static str,
    message: String,
    ctx: &Context,
) -> Result<Action, ReconcileError> {
    let id = status.backup_id.clone().unwrap_or_default();
    status.phase = phase::FAILED.into();
    status.message = Some(format!("{stage}: {message}"));
    status.completed_at = Some(Utc::now().to_rfc3339());
    let reason = if stage == "validate" {
        "InvalidBackup"
    } else {
        "BackupFailed"
    };
    write(
        b,
        status,
        false,
        reason,
        &format!("{stage}: {message}"),
        ctx,
    )
    .await?;
    metrics::counter!("midplane_backups_failed_total", "trigger" => plan::trigger(b).to_string())
        .increment(1);
    let labels = TargetKey {
        namespace: b.namespace().unwrap_or_default(),
        app: b.spec.app.clone(),
        component: b.spec.component.clone(),
        instance: String::new(),
    }
    .metric_labels();
    midplane_backup::metrics::record_failed(&labels, stage);
    let subject = Subject {
        app: ObjectRef::new(&b.namespace().unwrap_or_default(), &b.spec.app),
        component: b.spec.component.clone(),
        group: b.spec.group.clone(),
    };
    ctx.events
        .publish(&announce::failed(&subject, &id, stage, message.clone()));
    ctx.recorder
        .warning(b, reason, "Backup", format!("{stage}: {message}"))
        .await;
    Ok(Action::await_change())
}

/// Writes the status with its Ready condition (true only once Completed).
async fn write(
    b: &Backup,
    mut status: BackupStatus,
    ready: bool,
    reason: &str,
    message: &str,
    ctx: &Context,
) -> Result<(), ReconcileError> {
    let generation = b.metadata.generation;
    condition::set(
        &mut status.conditions,
        condition::READY,
        ready,
        reason,
        message,
        generation,
    );
    status.observed_generation = generation;
    ctx.applier.apply_status(b, &status).await?;
    Ok(())
}

/// The finalizer's work: the backup's objects go from storage before the resource does.
async fn delete_objects(b: &Backup, ctx: &Context) -> Result<(), ReconcileError> {
    let Some(status) = &b.status else {
        return Ok(());
    };
    let (Some(id), Some(uri)) = (&status.backup_id, &status.location) else {
        return Ok(());
    };
    let store = match resolve::store(&ctx.settings, uri) {
        Ok(s) => s,
        Err(s) => {
            // A location that no longer parses cannot hold anything this service can reach.
            tracing::warn!(backup = %b.name_any(), error = %s.message(), "storage of a deleted Backup is unusable; nothing removed");
            return Ok(());
        }
    };
    // Objects already gone are fine (delete ignores them).
    match store.delete(id).await {
        Ok(()) => {
            tracing::info!(backup = %b.name_any(), %id, "objects of a deleted Backup removed");
            metrics::counter!("midplane_backups_deleted_total").increment(1);
            Ok(())
        }
        Err(e) => Err(step_error(
            "StorageUnavailable",
            format!("removing backup {id} from {}: {e}", store.describe()),
            true,
        )),
    }
}

/// The backup policy's retention over the Completed scheduled Backups of the same Group:
/// deleting a Backup removes its objects too (finalizer). Problems are logged, never a
/// failed backup.
async fn retention(b: &Backup, ns: &str, ctx: &Context) {
    let Ok(Some(app)) = app_of(ctx, ns, &b.spec.app).await else {
        return;
    };
    let Some(policy) = app
        .spec
        .components
        .iter()
        .find(|c| c.name == b.spec.component)
        .and_then(|c| c.spec.backup.as_ref())
        .and_then(|p| p.retention.clone())
    else {
        return;
    };
    let policy = RetentionPolicy {
        keep_last: policy.count.filter(|c| *c > 0).map(|c| c as usize),
        max_age: policy
            .max_age
            .as_deref()
            .and_then(midplane_api::validate::parse_duration_secs)
            .and_then(|s| i64::try_from(s).ok())
            .map(chrono::Duration::seconds),
    };
    let group = b
        .status
        .as_ref()
        .and_then(|s| s.group.clone())
        .unwrap_or_default();
    let selector = plan::policy_labels(&b.spec.app, &b.spec.component, &group)
        .into_iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",");
    let api = Api::<Backup>::namespaced(ctx.client.clone(), ns);
    let list = match api.list(&ListParams::default().labels(&selector)).await {
        Ok(l) => l,
        Err(e) => {
            tracing::warn!(backup = %b.name_any(), error = %e, "retention: listing Backups failed");
            return;
        }
    };
    let done: Vec<(String, chrono::DateTime<Utc>)> = list
        .items
        .iter()
        .filter_map(|x| {
            let s = x.status.as_ref()?;
            (s.phase == phase::COMPLETED).then_some(())?;
            let at = chrono::DateTime::parse_from_rfc3339(s.completed_at.as_deref()?).ok()?;
            Some((x.name_any(), at.with_timezone(&Utc)))
        })
        .collect();
    for victim in plan::retention_victims(&done, policy.keep_last, policy.max_age, Utc::now()) {
        match api.delete(&victim, &DeleteParams::default()).await {
            Ok(_) => {
                tracing::info!(backup = %victim, "Backup removed by retention");
                ctx.recorder
                    .normal(
                        b,
                        "RetentionDeleted",
                        "Backup",
                        format!("retention removed Backup {victim}"),
                    )
                    .await;
            }
            Err(kube::Error::Api(e)) if e.code == 404 => {}
            Err(e) => {
                tracing::warn!(backup = %victim, error = %e, "retention: deleting a Backup failed");
            }
        }
    }
}
