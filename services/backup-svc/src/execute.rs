//! One scheduled backup of one target, start to finish: run the pipeline (in process, or as a
//! Backup Job tracked to completion), then apply the policy's retention, publish the events
//! and record the outcome (metrics, a Kubernetes Event on the App).

use std::sync::Arc;

use kube::ResourceExt;
use midplane_api::App;
use midplane_backup::retention;
use midplane_backup::{BackupOptions, Manifest, Store, create_backup};
use midplane_bus::catalogue::ObjectRef;
use midplane_operator::EventRecorder;

use crate::announce::{self, EventSink, Subject};
use crate::config::{BackupSettings, JobSettings, Mode};
use crate::job_client::{JobApi, JobOutcome};
use crate::job_spec::backup_job;
use crate::policy::Target;
use crate::resolve;

/// What a finished backup left behind.
#[derive(Clone, Debug)]
pub struct RunReport {
    pub manifest: Manifest,
    /// Ids removed by retention afterwards, newest first.
    pub deleted: Vec<String>,
}

/// Why a scheduled backup did not complete; `stage` is the catalogue's (`snapshot`,
/// `archive`, `upload`…, or `job` for a Backup Job that failed).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{stage}: {message}")]
pub struct RunError {
    pub stage: &'static str,
    pub message: String,
}

fn fail(stage: &'static str, message: impl Into<String>) -> RunError {
    RunError {
        stage,
        message: message.into(),
    }
}

#[derive(Clone)]
pub struct Runner {
    settings: Arc<BackupSettings>,
    mode: Mode,
    job_settings: JobSettings,
    jobs: Option<Arc<dyn JobApi>>,
    events: EventSink,
    recorder: Option<EventRecorder>,
}

impl Runner {
    /// Runs backups in this process.
    pub fn inline(settings: Arc<BackupSettings>, events: EventSink) -> Self {
        Self {
            settings,
            mode: Mode::Inline,
            job_settings: JobSettings::default(),
            jobs: None,
            events,
            recorder: None,
        }
    }

    /// Runs backups as Backup Jobs through `jobs`.
    pub fn job(
        settings: Arc<BackupSettings>,
        job_settings: JobSettings,
        jobs: Arc<dyn JobApi>,
        events: EventSink,
    ) -> Self {
        Self {
            settings,
            mode: Mode::Job,
            job_settings,
            jobs: Some(jobs),
            events,
            recorder: None,
        }
    }

    /// Also records each outcome as a Kubernetes Event on the App.
    pub fn with_recorder(mut self, recorder: EventRecorder) -> Self {
        self.recorder = Some(recorder);
        self
    }

    /// One backup of `target` as `id`, then retention. Events: started, then completed (plus
    /// deleted per retention victim) or failed.
    pub async fn run(&self, target: &Target, id: &str) -> Result<RunReport, RunError> {
        let subject = Subject {
            app: ObjectRef::new(&target.key.namespace, &target.key.app),
            component: target.key.component.clone(),
            group: target.group.clone(),
        };
        midplane_backup::metrics::record_started(&target.key.metric_labels());
        let result = self.run_inner(target, id, &subject).await;
        match &result {
            Ok(r) => {
                metrics::counter!("midplane_backups_created_total", "trigger" => "schedule")
                    .increment(1);
                midplane_backup::metrics::record_completed(&r.manifest);
                tracing::info!(target = %target.key, id, deleted = r.deleted.len(), "scheduled backup completed");
                self.record(
                    target,
                    false,
                    "BackupCompleted",
                    format!(
                        "backup {id} of {} completed ({} bytes stored){}",
                        target.key.instance,
                        r.manifest.sizes.stored_bytes,
                        if r.deleted.is_empty() {
                            String::new()
                        } else {
                            format!("; retention removed {}", r.deleted.join(", "))
                        }
                    ),
                )
                .await;
            }
            Err(e) => {
                metrics::counter!("midplane_backups_failed_total", "trigger" => "schedule")
                    .increment(1);
                midplane_backup::metrics::record_failed(&target.key.metric_labels(), e.stage);
                tracing::warn!(target = %target.key, id, error = %e, "scheduled backup failed");
                self.events
                    .publish(&announce::failed(&subject, id, e.stage, e.message.clone()));
                self.record(
                    target,
                    true,
                    "BackupFailed",
                    format!("backup {id} of {} failed at {e}", target.key.instance),
                )
                .await;
            }
        }
        result
    }

    async fn run_inner(
        &self,
        target: &Target,
        id: &str,
        subject: &Subject,
    ) -> Result<RunReport, RunError> {
        let store = resolve::store(&self.settings, &target.storage_uri)
            .map_err(|s| fail("upload", s.message()))?;
        self.events
            .publish(&announce::started(subject, id, &store, target.algorithm));
        let manifest = match self.mode {
            Mode::Inline => self.inline_backup(target, id, &store).await?,
            Mode::Job => self.job_backup(target, id, &store).await?,
            // The scheduler creates Backup resources instead of calling a runner.
            Mode::Resources => {
                return Err(fail(
                    "job",
                    "scheduler.mode resources runs backups as Backup resources, not here",
                ));
            }
        };
        self.events
            .publish(&announce::completed(subject, &manifest, &store));
        let deleted = self.retention(target, &store).await;
        Ok(RunReport { manifest, deleted })
    }

    async fn inline_backup(
        &self,
        target: &Target,
        id: &str,
        store: &Store,
    ) -> Result<Manifest, RunError> {
        let key = resolve::secret_key(
            &self.settings,
            &target.key.namespace,
            &target.key_secret,
            "key",
        )
        .map_err(|s| fail("snapshot", s.message()))?;
        let dir = resolve::default_instance_dir(
            &self.settings,
            &target.key.namespace,
            &target.group,
            &target.key.instance,
        );
        let opts = BackupOptions {
            algorithm: target.algorithm,
            level: self.settings.compression_level,
            source_label: Some(target.source_label()),
            labels: target.manifest_labels("schedule"),
            id: Some(id.to_string()),
            ..Default::default()
        };
        create_backup(store, &dir, &key, &opts)
            .await
            .map_err(|e| fail(announce::backup_stage(&e), e.to_string()))
    }

    async fn job_backup(
        &self,
        target: &Target,
        id: &str,
        store: &Store,
    ) -> Result<Manifest, RunError> {
        let jobs = self
            .jobs
            .as_ref()
            .ok_or_else(|| fail("job", "job mode without a Kubernetes client"))?;
        let job = backup_job(target, id, &self.job_settings);
        let name = job.name_any();
        let ns = target.key.namespace.as_str();
        jobs.apply(&job)
            .await
            .map_err(|e| fail("job", format!("applying Job {ns}/{name}: {e}")))?;
        tracing::info!(target = %target.key, id, job = %name, "Backup Job applied");
        match jobs
            .wait(ns, &name)
            .await
            .map_err(|e| fail("job", e.to_string()))?
        {
            JobOutcome::Succeeded => store.manifest(id).await.map_err(|e| {
                fail(
                    "upload",
                    format!(
                        "Job {ns}/{name} succeeded but backup {id} is not in {}: {e}",
                        store.describe()
                    ),
                )
            }),
            JobOutcome::Failed { reason, message } => Err(fail(
                "job",
                format!("Job {ns}/{name} failed: {reason}: {message}"),
            )),
        }
    }

    /// Applies the target's retention to the backups of its instance; returns deleted ids.
    /// A retention problem is logged and recorded, never turned into a failed backup.
    async fn retention(&self, target: &Target, store: &Store) -> Vec<String> {
        if target.retention == retention::RetentionPolicy::default() {
            return Vec::new();
        }
        let listing = match store.list().await {
            Ok(l) => l,
            Err(e) => {
                tracing::warn!(target = %target.key, error = %e, "retention: listing failed");
                return Vec::new();
            }
        };
        let mine: Vec<Manifest> = listing
            .complete
            .into_iter()
            .filter(|m| same_instance(m, target))
            .collect();
        let plan = retention::plan(&mine, target.retention, chrono::Utc::now());
        let mut deleted = Vec::new();
        for id in plan.delete {
            let Some(m) = mine.iter().find(|m| m.id == id) else {
                continue;
            };
            match store.delete(&id).await {
                Ok(()) => {
                    announce::retention_deleted(&self.events, store, m);
                    deleted.push(id);
                }
                Err(e) => {
                    tracing::warn!(target = %target.key, %id, error = %e, "retention: delete failed");
                }
            }
        }
        deleted
    }

    async fn record(&self, target: &Target, warning: bool, reason: &str, note: String) {
        let Some(rec) = &self.recorder else {
            return;
        };
        let mut app = App::new(&target.owner.name, Default::default());
        app.metadata.namespace = Some(target.key.namespace.clone());
        app.metadata.uid = Some(target.owner.uid.clone());
        if warning {
            rec.warning(&app, reason, "Backup", note).await;
        } else {
            rec.normal(&app, reason, "Backup", note).await;
        }
    }
}

/// Whether a manifest is a backup of the target's instance.
pub fn same_instance(m: &Manifest, target: &Target) -> bool {
    use midplane_api::labels;
    let is = |k: &str, v: &str| m.labels.get(k).map(String::as_str) == Some(v);
    is(labels::BACKUP_NAMESPACE, &target.key.namespace)
        && is(labels::BACKUP_APP_NAME, &target.group)
        && is(labels::MIDDLEWARE_INSTANCE, &target.key.instance)
}
