//! Job mode: the Runner applies the Backup Job, tracks it to completion and reacts to its
//! outcome. The Kubernetes API emulator has no batch/v1 Jobs, so the Job boundary
//! (`JobApi`: apply, wait) is an in-process fake here; storage and the bus are real. The fake
//! "runs" the Backup Pod by running the pipeline with exactly the id, labels, source, URI and
//! encryption the Job carries.

mod common;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use common::Tail;
use futures::future::BoxFuture;
use k8s_openapi::api::batch::v1::Job;
use kube::ResourceExt;
use midplane_backup::{Algorithm, BackupKey, BackupOptions, Store, create_backup};
use midplane_backup_svc::BackupSettings;
use midplane_backup_svc::announce::EventSink;
use midplane_backup_svc::config::JobSettings;
use midplane_backup_svc::execute::Runner;
use midplane_backup_svc::job_client::{JobApi, JobError, JobOutcome};
use midplane_backup_svc::policy::{self, Target};
use midplane_bus::Publisher;
use midplane_bus::catalogue::{BackupCompleted, BackupDeleted, BackupFailed, DeleteReason};
use midplane_runtime::testing::eventually;
use tokio::sync::Notify;

/// Jobs kept in memory; a test decides how each one ends.
#[derive(Default)]
struct FakeJobs {
    applied: Mutex<Vec<Job>>,
    outcomes: Mutex<HashMap<String, JobOutcome>>,
    changed: Notify,
}

impl FakeJobs {
    fn finish(&self, name: &str, outcome: JobOutcome) {
        self.outcomes
            .lock()
            .expect("lock")
            .insert(name.into(), outcome);
        self.changed.notify_waiters();
    }

    async fn applied_job(&self) -> Job {
        eventually("the Backup Job to be applied", 30, || async {
            self.applied.lock().expect("lock").last().cloned()
        })
        .await
    }
}

impl JobApi for FakeJobs {
    fn apply<'a>(&'a self, job: &'a Job) -> BoxFuture<'a, Result<(), JobError>> {
        Box::pin(async move {
            self.applied.lock().expect("lock").push(job.clone());
            Ok(())
        })
    }

    fn wait<'a>(
        &'a self,
        _ns: &'a str,
        name: &'a str,
    ) -> BoxFuture<'a, Result<JobOutcome, JobError>> {
        Box::pin(async move {
            loop {
                let notified = self.changed.notified();
                futures::pin_mut!(notified);
                notified.as_mut().enable();
                if let Some(o) = self.outcomes.lock().expect("lock").get(name).cloned() {
                    return Ok(o);
                }
                notified.await;
            }
        })
    }
}

struct Fixture {
    work: tempfile::TempDir,
    target: Target,
    settings: Arc<BackupSettings>,
}

fn fixture() -> Fixture {
    let work = tempfile::tempdir().expect("tempdir");
    let store = format!("file://{}", work.path().join("store").display());
    let mut app = common::backup_app("0 3 * * *", "aes256-cbc", Some(2));
    app.metadata.uid = Some("uid-1".into());
    let settings = BackupSettings {
        storages: BTreeMap::from([("nightly".into(), store)]),
        secrets_dir: work.path().join("secrets"),
        ..Default::default()
    };
    let (mut targets, errs) = policy::targets(&app, &settings);
    assert!(errs.is_empty(), "{errs:?}");
    Fixture {
        target: targets.remove(0),
        work,
        settings: Arc::new(settings),
    }
}

async fn old_backup(f: &Fixture, key: &BackupKey, id: &str) {
    let dir = f.work.path().join("old");
    common::instance_data(&dir);
    let store = Store::from_uri(&f.target.storage_uri).expect("store");
    let opts = BackupOptions {
        id: Some(id.into()),
        labels: f.target.manifest_labels("schedule"),
        ..Default::default()
    };
    create_backup(&store, &dir, key, &opts)
        .await
        .expect("old backup");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn completed_job_applies_retention_and_publishes() {
    let f = fixture();
    let bus = common::test_bus("job-ok").await;
    let tail = Tail::start(&bus).await;
    let (sink, task) = EventSink::start(Publisher::connect(bus.clone()).await.expect("publisher"));
    let key = BackupKey::from_array([4u8; 32]);
    // Two older backups of the same instance, and one of another instance (never touched).
    old_backup(&f, &key, "20200101T000000Z-000001").await;
    old_backup(&f, &key, "20200102T000000Z-000002").await;
    let store = Store::from_uri(&f.target.storage_uri).expect("store");
    let other = f.work.path().join("other");
    common::instance_data(&other);
    create_backup(
        &store,
        &other,
        &key,
        &BackupOptions {
            id: Some("20190101T000000Z-0000ff".into()),
            ..Default::default()
        },
    )
    .await
    .expect("unrelated backup");

    let jobs = Arc::new(FakeJobs::default());
    let runner = Runner::job(
        f.settings.clone(),
        JobSettings::default(),
        jobs.clone(),
        sink,
    );
    let target = f.target.clone();
    let run = tokio::spawn(async move { runner.run(&target, "20261127T030000Z-abcdef").await });

    let job = jobs.applied_job().await;
    assert_eq!(job.namespace().as_deref(), Some("shop"));
    assert_eq!(
        job.labels()["midplane.dev/backup-id"],
        "20261127T030000Z-abcdef"
    );
    let pvc = f.work.path().join("pvc");
    common::instance_data(&pvc);
    let id = common::run_pod(&job, &pvc, &key).await;
    assert_eq!(
        id, "20261127T030000Z-abcdef",
        "the Pod stores under the id backup-svc chose"
    );
    assert!(
        !run.is_finished(),
        "the runner waits for the Job, not for the object"
    );
    jobs.finish(&job.name_any(), JobOutcome::Succeeded);

    let report = run.await.expect("join").expect("backup completed");
    assert_eq!(report.manifest.id, id);
    assert_eq!(report.manifest.algorithm, Algorithm::Aes256Cbc);
    assert_eq!(
        report.manifest.labels["midplane.dev/instance"],
        "cache-redis-0-0"
    );
    // Retention keeps 2 of this instance's 3 backups; the oldest goes, the other instance's stays.
    assert_eq!(report.deleted, ["20200101T000000Z-000001"]);
    let mut left: Vec<String> = store
        .list()
        .await
        .expect("list")
        .complete
        .into_iter()
        .map(|m| m.id)
        .collect();
    left.sort();
    assert_eq!(
        left,
        [
            "20190101T000000Z-0000ff",
            "20200102T000000Z-000002",
            "20261127T030000Z-abcdef"
        ]
    );

    let events = tail.wait_for(3).await;
    assert_eq!(
        Tail::types(&events),
        [
            "midplane.backup.started",
            "midplane.backup.completed",
            "midplane.backup.deleted"
        ]
    );
    let completed: BackupCompleted = events[1].decode().expect("completed");
    assert_eq!(completed.backup_id, id);
    assert_eq!(
        (completed.component.as_str(), completed.group.as_str()),
        ("redis", "cache-redis-0")
    );
    assert_eq!(completed.sha256, report.manifest.sha256.stored);
    let deleted: BackupDeleted = events[2].decode().expect("deleted");
    assert_eq!(deleted.backup_id, "20200101T000000Z-000001");
    assert_eq!(deleted.reason, DeleteReason::Retention);
    assert_eq!(deleted.app.name, "cache");
    tail.stop().await;
    task.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_job_publishes_failed_and_deletes_nothing() {
    let f = fixture();
    let bus = common::test_bus("job-fail").await;
    let tail = Tail::start(&bus).await;
    let (sink, task) = EventSink::start(Publisher::connect(bus.clone()).await.expect("publisher"));
    let key = BackupKey::from_array([4u8; 32]);
    for id in [
        "20200101T000000Z-000001",
        "20200102T000000Z-000002",
        "20200103T000000Z-000003",
    ] {
        old_backup(&f, &key, id).await;
    }
    let jobs = Arc::new(FakeJobs::default());
    let runner = Runner::job(
        f.settings.clone(),
        JobSettings::default(),
        jobs.clone(),
        sink,
    );

    // 1. The Job fails (its Pod never got a clean run).
    let target = f.target.clone();
    let r = runner.clone();
    let run = tokio::spawn(async move { r.run(&target, "20261127T030000Z-000fa1").await });
    let job = jobs.applied_job().await;
    jobs.finish(
        &job.name_any(),
        JobOutcome::Failed {
            reason: "BackoffLimitExceeded".into(),
            message: "Job has reached the specified backoff limit".into(),
        },
    );
    let err = run.await.expect("join").expect_err("failed job");
    assert_eq!(err.stage, "job");
    assert!(
        err.message.contains("BackoffLimitExceeded"),
        "{}",
        err.message
    );

    // 2. The Job claims success but stored nothing: that is a failure too, not a completion.
    let target = f.target.clone();
    let r = runner.clone();
    let run = tokio::spawn(async move { r.run(&target, "20261127T040000Z-000fa2").await });
    let job = eventually("a second Job", 30, || async {
        let applied = jobs.applied.lock().expect("lock");
        (applied.len() == 2).then(|| applied[1].clone())
    })
    .await;
    jobs.finish(&job.name_any(), JobOutcome::Succeeded);
    let err = run.await.expect("join").expect_err("no manifest");
    assert_eq!(err.stage, "upload");
    assert!(
        err.message.contains("20261127T040000Z-000fa2"),
        "{}",
        err.message
    );

    // Retention never ran: all three old backups are still there.
    let store = Store::from_uri(&f.target.storage_uri).expect("store");
    assert_eq!(store.list().await.expect("list").complete.len(), 3);
    let events = tail.wait_for(4).await;
    assert_eq!(
        Tail::types(&events),
        [
            "midplane.backup.started",
            "midplane.backup.failed",
            "midplane.backup.started",
            "midplane.backup.failed"
        ]
    );
    let failed: BackupFailed = events[1].decode().expect("failed");
    assert_eq!(failed.backup_id, "20261127T030000Z-000fa1");
    assert_eq!(failed.stage, "job");
    assert_eq!(failed.component, "redis");
    assert!(
        failed.message.contains("backoff limit"),
        "{}",
        failed.message
    );
    tail.stop().await;
    task.abort();
}
