//! The BackupService implementation.
//!
//! CreateBackup runs the pipeline in a task of its own: the caller's cancellation or deadline
//! (or the server's `request_timeout_ms`) never aborts a backup half-way. A backup that
//! finishes in time is answered complete, as before; otherwise the call returns shortly before
//! the earlier of the two deadlines with phase RUNNING and the backup's id, which GetBackup
//! then reports as RUNNING, FAILED (with the error), or complete.
//!
//! RequestAppBackup, GetAppBackup and ListAppBackups work on Backup resources
//! (`crate::app_backups`) and need the Backup controller's Kubernetes client.

use midplane_api::labels;
use std::collections::{BTreeMap, HashMap, VecDeque};

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use midplane_backup::retention::{self, RetentionPolicy};
use midplane_backup::{
    BackupOptions, Manifest, RestoreOptions, create_backup, restore_backup, verify_backup,
};
use midplane_bus::catalogue::{DeleteReason, RestoreCompleted, RestoreFailed};
use midplane_proto::backup::backup_service_server::BackupService;
use midplane_proto::backup::{
    AppBackup, ApplyRetentionRequest, ApplyRetentionResponse, Backup, BackupPhase,
    CreateBackupRequest, DeleteBackupRequest, DeleteBackupResponse, GetAppBackupRequest,
    GetBackupRequest, ListAppBackupsRequest, ListAppBackupsResponse, ListBackupsRequest,
    ListBackupsResponse, RequestAppBackupRequest, RestoreRequest, RestoreResponse, VerifyRequest,
    VerifyResponse,
};
use midplane_proto::common::ErrorDetail;
use midplane_runtime::status::{ApiError, reason};
use tonic::{Request, Response, Status};

use crate::announce::{self, EventSink, Subject};
use crate::app_backups::AppBackups;
use crate::config::BackupSettings;
use crate::convert::{
    algorithm, backup_error, catalog_status, encryption, matches_source, resolve_error,
    restore_status, timestamp, to_proto, verify_outcome,
};
use crate::resolve;

/// Failed CreateBackup runs remembered for GetBackup.
const FAILED_KEPT: usize = 256;

#[derive(Default)]
struct Flights {
    /// Backups started by CreateBackup that have not completed: RUNNING or FAILED.
    by_id: HashMap<String, Backup>,
    failed_order: VecDeque<String>,
}

#[derive(Clone)]
pub struct BackupSvc {
    settings: Arc<BackupSettings>,
    events: EventSink,
    flights: Arc<Mutex<Flights>>,
    /// The server's own deadline for a call (`server.request_timeout_ms`).
    server_timeout: Option<Duration>,
    /// Backup resources; None without the Backup controller (`controller.enabled`).
    app_backups: Option<Arc<AppBackups>>,
}

impl BackupSvc {
    pub fn new(settings: BackupSettings) -> Self {
        Self {
            settings: Arc::new(settings),
            events: EventSink::disabled(),
            flights: Arc::default(),
            server_timeout: None,
            app_backups: None,
        }
    }

    /// Serves RequestAppBackup, GetAppBackup and ListAppBackups through `client` (backup-svc's
    /// own identity); call it when the Backup controller runs (`controller.enabled`).
    pub fn with_backup_resources(mut self, client: kube::Client) -> Self {
        self.app_backups = Some(Arc::new(AppBackups::new(client, self.settings.clone())));
        self
    }

    fn app_backups(&self) -> Result<&AppBackups, Status> {
        self.app_backups.as_deref().ok_or_else(|| {
            ApiError::new(
                tonic::Code::FailedPrecondition,
                reason::CONTROLLER_NOT_CONFIGURED,
                "backup-svc runs without the Backup controller (controller.enabled), which Backup resources need",
            )
            .into_status()
        })
    }

    /// The earlier of the caller's deadline and the server's own limit, if any.
    fn deadline(&self, metadata: &tonic::metadata::MetadataMap) -> Option<Duration> {
        match (
            midplane_runtime::deadline::client_timeout_of(metadata),
            self.server_timeout,
        ) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// The server cancels calls after `d` (`server.request_timeout_ms`): CreateBackup answers
    /// RUNNING before that too, not only before the caller's own deadline.
    pub fn with_server_timeout(mut self, d: Duration) -> Self {
        self.server_timeout = Some(d);
        self
    }

    /// Publishes backup and restore events to `events`.
    pub fn with_events(mut self, events: EventSink) -> Self {
        self.events = events;
        self
    }

    pub fn settings(&self) -> Arc<BackupSettings> {
        self.settings.clone()
    }

    fn flights(&self) -> std::sync::MutexGuard<'_, Flights> {
        self.flights
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn flight_failed(&self, mut b: Backup, error: &ApiError) {
        b.phase = BackupPhase::Failed as i32;
        b.error = Some(ErrorDetail {
            reason: error.reason().to_string(),
            message: error.message().to_string(),
            fields: Vec::new(),
            retryable: matches!(error.code(), tonic::Code::Unavailable),
        });
        let mut f = self.flights();
        f.failed_order.push_back(b.id.clone());
        f.by_id.insert(b.id.clone(), b);
        while f.failed_order.len() > FAILED_KEPT {
            if let Some(old) = f.failed_order.pop_front() {
                f.by_id.remove(&old);
            }
        }
    }
}

/// Request fields the storage, key and directory of a call come from, by
/// the name `resolve` puts first in its messages.
const STORAGE: &[(&str, &str)] = &[("storage", "storage")];
const KEY: &[(&str, &str)] = &[("key_ref", "key_ref")];
const SOURCE: &[(&str, &str)] = &[
    ("source_path", "source_path"),
    ("namespace", "source.namespace"),
    ("name", "source.name"),
    ("instance", "instance"),
];
const TARGET: &[(&str, &str)] = &[
    ("target_path", "target_path"),
    ("namespace", "target.namespace"),
    ("name", "target.name"),
    ("instance", "target_instance"),
];

#[tonic::async_trait]
impl BackupService for BackupSvc {
    async fn create_backup(
        &self,
        request: Request<CreateBackupRequest>,
    ) -> Result<Response<Backup>, Status> {
        let deadline = self.deadline(request.metadata());
        let received = Instant::now();
        let req = request.into_inner();
        let store = resolve::store(&self.settings, &req.storage)
            .map_err(|s| resolve_error(s, STORAGE, reason::STORAGE_INVALID))?;
        let key = resolve::key(&self.settings, &req.key_ref)
            .map_err(|s| resolve_error(s, KEY, reason::KEY_UNAVAILABLE))?;
        let dir = resolve::instance_dir(
            &self.settings,
            "source_path",
            &req.source_path,
            req.source.as_ref(),
            &req.instance,
        )
        .map_err(|s| resolve_error(s, SOURCE, reason::PATH_UNUSABLE))?;
        let mut labels: BTreeMap<String, String> = req.labels.clone().into_iter().collect();
        let mut source_label = dir.display().to_string();
        if let Some(obj) = &req.source {
            labels.insert(labels::BACKUP_NAMESPACE.into(), obj.namespace.clone());
            labels.insert(labels::BACKUP_APP_NAME.into(), obj.name.clone());
            labels.insert(labels::MIDDLEWARE_INSTANCE.into(), req.instance.clone());
            source_label = format!("{}/{}/{}", obj.namespace, obj.name, req.instance);
        }
        labels
            .entry(labels::BACKUP_TRIGGER.into())
            .or_insert_with(|| "api".into());
        let started_at = chrono::Utc::now();
        let id = midplane_backup::manifest::new_backup_id(started_at);
        let algorithm = algorithm(req.encryption());
        let subject = Subject::from_labels(&labels);
        let running = Backup {
            id: id.clone(),
            source: req.source.clone(),
            instance: req.instance.clone(),
            storage: store.describe(),
            encryption: encryption(algorithm) as i32,
            phase: BackupPhase::Running as i32,
            started_at: Some(timestamp(started_at)),
            labels: labels.clone().into_iter().collect(),
            ..Default::default()
        };
        self.flights().by_id.insert(id.clone(), running.clone());
        self.events
            .publish(&announce::started(&subject, &id, &store, algorithm));
        let opts = BackupOptions {
            algorithm,
            level: self.settings.compression_level,
            source_label: Some(source_label),
            labels,
            id: Some(id.clone()),
            ..Default::default()
        };
        let svc = self.clone();
        let failure_labels = opts.labels.clone();
        midplane_backup::metrics::record_started(&failure_labels);
        let work = tokio::spawn({
            let (running, id) = (running.clone(), id.clone());
            async move {
                match create_backup(&store, &dir, &key, &opts).await {
                    Ok(m) => {
                        metrics::counter!("midplane_backups_created_total", "trigger" => "api")
                            .increment(1);
                        metrics::counter!("midplane_backup_stored_bytes_total")
                            .increment(m.sizes.stored_bytes);
                        midplane_backup::metrics::record_completed(&m);
                        tracing::info!(id = %m.id, storage = %store.describe(), bytes = m.sizes.stored_bytes, "backup completed");
                        svc.events
                            .publish(&announce::completed(&subject, &m, &store));
                        svc.flights().by_id.remove(&m.id);
                        Ok(to_proto(&m, &store.describe()))
                    }
                    Err(e) => {
                        metrics::counter!("midplane_backups_failed_total", "trigger" => "api")
                            .increment(1);
                        midplane_backup::metrics::record_failed(
                            &failure_labels,
                            announce::backup_stage(&e),
                        );
                        tracing::warn!(%id, error = %e, "backup failed");
                        svc.events.publish(&announce::failed(
                            &subject,
                            &id,
                            announce::backup_stage(&e),
                            e.to_string(),
                        ));
                        let error = backup_error(e);
                        svc.flight_failed(running, &error);
                        Err(error.into_status())
                    }
                }
            }
        });
        let joined = match deadline {
            None => work.await,
            Some(d) => {
                let margin = Duration::from_millis(self.settings.deadline_margin_ms);
                let wait = d.saturating_sub(margin).saturating_sub(received.elapsed());
                match tokio::time::timeout(wait, work).await {
                    Ok(joined) => joined,
                    Err(_) => {
                        tracing::info!(%id, "backup outlasts the caller's deadline; answering RUNNING");
                        return Ok(Response::new(running));
                    }
                }
            }
        };
        joined
            .map_err(|e| ApiError::internal(format!("backup {id}: task failed: {e}")))?
            .map(Response::new)
    }

    async fn list_backups(
        &self,
        request: Request<ListBackupsRequest>,
    ) -> Result<Response<ListBackupsResponse>, Status> {
        let req = request.into_inner();
        let store = resolve::store(&self.settings, &req.storage)
            .map_err(|s| resolve_error(s, STORAGE, reason::STORAGE_INVALID))?;
        let listing = store.list().await.map_err(catalog_status)?;
        let backups = listing
            .complete
            .iter()
            .filter(|m| matches_source(m, req.source.as_ref()))
            .map(|m| to_proto(m, &store.describe()))
            .collect();
        Ok(Response::new(ListBackupsResponse {
            backups,
            incomplete_ids: listing.incomplete,
        }))
    }

    async fn get_backup(
        &self,
        request: Request<GetBackupRequest>,
    ) -> Result<Response<Backup>, Status> {
        let req = request.into_inner();
        if let Some(b) = self.flights().by_id.get(&req.id) {
            return Ok(Response::new(b.clone()));
        }
        let store = resolve::store(&self.settings, &req.storage)
            .map_err(|s| resolve_error(s, STORAGE, reason::STORAGE_INVALID))?;
        let m = store.manifest(&req.id).await.map_err(catalog_status)?;
        Ok(Response::new(to_proto(&m, &store.describe())))
    }

    async fn delete_backup(
        &self,
        request: Request<DeleteBackupRequest>,
    ) -> Result<Response<DeleteBackupResponse>, Status> {
        let req = request.into_inner();
        let store = resolve::store(&self.settings, &req.storage)
            .map_err(|s| resolve_error(s, STORAGE, reason::STORAGE_INVALID))?;
        // Deleting what does not exist is an error the caller should see.
        let m = store.manifest(&req.id).await.map_err(catalog_status)?;
        store.delete(&req.id).await.map_err(catalog_status)?;
        metrics::counter!("midplane_backups_deleted_total").increment(1);
        self.events
            .publish(&announce::deleted(&m, &store, DeleteReason::Manual));
        Ok(Response::new(DeleteBackupResponse {}))
    }

    async fn restore(
        &self,
        request: Request<RestoreRequest>,
    ) -> Result<Response<RestoreResponse>, Status> {
        let req = request.into_inner();
        let store = resolve::store(&self.settings, &req.storage)
            .map_err(|s| resolve_error(s, STORAGE, reason::STORAGE_INVALID))?;
        let key = resolve::key(&self.settings, &req.key_ref)
            .map_err(|s| resolve_error(s, KEY, reason::KEY_UNAVAILABLE))?;
        let dir = resolve::instance_dir(
            &self.settings,
            "target_path",
            &req.target_path,
            req.target.as_ref(),
            &req.target_instance,
        )
        .map_err(|s| resolve_error(s, TARGET, reason::PATH_UNUSABLE))?;
        let started = Instant::now();
        let restore_id = format!(
            "rs-{}",
            midplane_backup::manifest::new_backup_id(chrono::Utc::now())
        );
        let mut subject = match store.manifest(&req.id).await {
            Ok(m) => Subject::from_labels(&m.labels),
            Err(_) => Subject::from_labels(&BTreeMap::new()),
        };
        if let Some(t) = &req.target {
            subject.app.namespace = t.namespace.clone();
            subject.group = t.name.clone();
        }
        let report = match restore_backup(&store, &req.id, &key, &dir, &RestoreOptions::default())
            .await
        {
            Ok(r) => r,
            Err(e) => {
                metrics::counter!("midplane_restores_failed_total").increment(1);
                tracing::warn!(id = %req.id, error = %e, "restore failed; target left untouched");
                self.events.publish(&RestoreFailed {
                    restore_id,
                    backup_id: req.id.clone(),
                    app: subject.app,
                    component: subject.component,
                    stage: announce::restore_stage(&e).into(),
                    message: e.to_string(),
                });
                return Err(restore_status(e));
            }
        };
        metrics::counter!("midplane_restores_total").increment(1);
        self.events.publish(&RestoreCompleted {
            restore_id,
            backup_id: req.id.clone(),
            app: subject.app,
            component: subject.component,
            group: subject.group,
            duration_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
        });
        Ok(Response::new(RestoreResponse {
            success: true,
            restored_bytes: report.tar_bytes,
            error: None,
            archive_sha256: report.archive_sha256,
            entries: report.entries,
        }))
    }

    async fn verify(
        &self,
        request: Request<VerifyRequest>,
    ) -> Result<Response<VerifyResponse>, Status> {
        let req = request.into_inner();
        let store = resolve::store(&self.settings, &req.storage)
            .map_err(|s| resolve_error(s, STORAGE, reason::STORAGE_INVALID))?;
        let key = resolve::key(&self.settings, &req.key_ref)
            .map_err(|s| resolve_error(s, KEY, reason::KEY_UNAVAILABLE))?;
        match verify_backup(&store, &req.id, &key, &RestoreOptions::default()).await {
            Ok(report) => Ok(Response::new(VerifyResponse {
                ok: true,
                archive_sha256: report.archive_sha256,
                error: None,
                object_sha256: report.stored_sha256,
                entries: report.entries,
            })),
            // The backup was checked and fails: an answer, not a failed call.
            Err(e) => verify_outcome(e).map(|finding| {
                tracing::info!(id = %req.id, reason = %finding.reason, "backup failed verification");
                Response::new(VerifyResponse {
                    ok: false,
                    error: Some(finding),
                    ..VerifyResponse::default()
                })
            }),
        }
    }

    async fn apply_retention(
        &self,
        request: Request<ApplyRetentionRequest>,
    ) -> Result<Response<ApplyRetentionResponse>, Status> {
        let req = request.into_inner();
        let store = resolve::store(&self.settings, &req.storage)
            .map_err(|s| resolve_error(s, STORAGE, reason::STORAGE_INVALID))?;
        let listing = store.list().await.map_err(catalog_status)?;
        let mine: Vec<Manifest> = listing
            .complete
            .into_iter()
            .filter(|m| matches_source(m, req.source.as_ref()))
            .collect();
        let policy = RetentionPolicy {
            keep_last: (req.keep_last > 0).then_some(req.keep_last as usize),
            max_age: (req.max_age_seconds > 0).then(|| {
                chrono::Duration::seconds(i64::try_from(req.max_age_seconds).unwrap_or(i64::MAX))
            }),
        };
        let plan = retention::plan(&mine, policy, chrono::Utc::now());
        if !req.dry_run {
            for id in &plan.delete {
                store.delete(id).await.map_err(catalog_status)?;
                if let Some(m) = mine.iter().find(|m| &m.id == id) {
                    announce::retention_deleted(&self.events, &store, m);
                }
            }
        }
        Ok(Response::new(ApplyRetentionResponse {
            deleted_ids: plan.delete,
            kept_ids: plan.keep,
        }))
    }

    async fn request_app_backup(
        &self,
        request: Request<RequestAppBackupRequest>,
    ) -> Result<Response<AppBackup>, Status> {
        let margin = Duration::from_millis(self.settings.deadline_margin_ms);
        let until = self
            .deadline(request.metadata())
            .map(|d| Instant::now() + d.saturating_sub(margin));
        let api = self.app_backups()?;
        api.request(request.into_inner(), until)
            .await
            .map(Response::new)
    }

    async fn get_app_backup(
        &self,
        request: Request<GetAppBackupRequest>,
    ) -> Result<Response<AppBackup>, Status> {
        self.app_backups()?
            .get(request.into_inner())
            .await
            .map(Response::new)
    }

    async fn list_app_backups(
        &self,
        request: Request<ListAppBackupsRequest>,
    ) -> Result<Response<ListAppBackupsResponse>, Status> {
        self.app_backups()?
            .list(request.into_inner())
            .await
            .map(Response::new)
    }
}
