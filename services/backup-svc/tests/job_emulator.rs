//! Job mode over real HTTP: `KubeJobs` (server-side apply + a label-selected Job watch) and the
//! Runner against the Kubernetes API emulator's built-in batch/v1 Jobs: apiserver defaulting
//! and validation, and its job controller runs a Pod per attempt. The emulator cannot run the
//! Pod's command, so its Job Pods are held (`JobOutcome::Hold`) while the test runs the command
//! in-process (`common::run_pod`), then told how the Pod ended (`EmulatorHandle::job_outcome`);
//! the Job's Complete/Failed conditions come from the emulator's controller. Storage and the
//! bus are real.

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;

use common::Tail;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Pod;
use kube::ResourceExt;
use kube::api::{Api, ListParams, PostParams};
use midplane_api::App;
use midplane_backup::{BackupKey, BackupOptions, Store, create_backup};
use midplane_backup_svc::BackupSettings;
use midplane_backup_svc::announce::EventSink;
use midplane_backup_svc::config::JobSettings;
use midplane_backup_svc::execute::Runner;
use midplane_backup_svc::job_client::KubeJobs;
use midplane_backup_svc::job_spec::JOB_SELECTOR;
use midplane_backup_svc::policy;
use midplane_bus::Publisher;
use midplane_bus::catalogue::{BackupCompleted, BackupFailed};
use midplane_kube_emulator::JobOutcome;
use midplane_runtime::testing::eventually;

async fn job_named(jobs: &Api<Job>, n: usize) -> Job {
    eventually(&format!("Backup Job #{n}"), 30, || async {
        let mut items = jobs
            .list(&ListParams::default().labels(JOB_SELECTOR))
            .await
            .ok()?
            .items;
        items.sort_by_key(|j| j.metadata.creation_timestamp.clone().map(|t| t.0));
        items.get(n).cloned()
    })
    .await
}

/// The Job once the emulator's controller reports its Pod running and ready.
async fn running(jobs: &Api<Job>, name: &str) -> Job {
    eventually(&format!("Job {name} running"), 30, || async {
        let j = jobs.get(name).await.ok()?;
        let s = j.status.as_ref()?;
        (s.active == Some(1) && s.ready == Some(1)).then_some(j)
    })
    .await
}

/// The phases of the Pods the emulator ran for a Job.
async fn pod_phases(pods: &Api<Pod>, job: &str) -> Vec<String> {
    pods.list(&ListParams::default().labels(&format!("batch.kubernetes.io/job-name={job}")))
        .await
        .expect("list pods")
        .items
        .into_iter()
        .map(|p| p.status.and_then(|s| s.phase).unwrap_or_default())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backup_jobs_are_applied_tracked_and_acted_on() {
    // The test runs each Pod's command itself, then says how the Pod ended.
    let (emu, client) = common::job_emulator().await;

    // The App exists on the cluster, so the Job's controller reference points at a real uid.
    let app = common::backup_app("0 3 * * *", "gpg", Some(1));
    let app = Api::<App>::namespaced(client.clone(), "shop")
        .create(&PostParams::default(), &app)
        .await
        .expect("create App");
    let work = tempfile::tempdir().expect("tempdir");
    let store_uri = format!("file://{}", work.path().join("store").display());
    let settings = Arc::new(BackupSettings {
        storages: BTreeMap::from([("nightly".into(), store_uri.clone())]),
        ..Default::default()
    });
    let (mut targets, errs) = policy::targets(&app, &settings);
    assert!(errs.is_empty(), "{errs:?}");
    let target = targets.remove(0);
    let key = BackupKey::from_array([6u8; 32]);
    let store = Store::from_uri(&store_uri).expect("store");
    let old = work.path().join("old");
    common::instance_data(&old);
    create_backup(
        &store,
        &old,
        &key,
        &BackupOptions {
            id: Some("20200101T000000Z-000001".into()),
            labels: target.manifest_labels("schedule"),
            ..Default::default()
        },
    )
    .await
    .expect("older backup");

    let bus = common::test_bus("job-emu").await;
    let tail = Tail::start(&bus).await;
    let (sink, publisher) =
        EventSink::start(Publisher::connect(bus.clone()).await.expect("publisher"));
    let (kube_jobs, watch) = KubeJobs::start(client.clone(), Some("shop"));
    let runner = Runner::job(
        settings.clone(),
        JobSettings::default(),
        Arc::new(kube_jobs),
        sink,
    );
    let jobs: Api<Job> = Api::namespaced(client.clone(), "shop");
    let pods: Api<Pod> = Api::namespaced(client.clone(), "shop");

    // 1. A Job that completes: the backup it stored is found, retention (count 1) applies.
    let (r, t) = (runner.clone(), target.clone());
    let run = tokio::spawn(async move { r.run(&t, "20261127T030000Z-0000a1").await });
    let job = job_named(&jobs, 0).await;
    assert_eq!(job.labels()["midplane.dev/instance"], "cache-redis-0-0");
    let owner = &job.owner_references()[0];
    assert_eq!(
        (owner.kind.as_str(), owner.uid.as_str()),
        ("App", app.uid().expect("uid").as_str())
    );
    assert_eq!(
        job.managed_fields()
            .first()
            .and_then(|f| f.manager.as_deref()),
        Some(midplane_backup_svc::job_client::FIELD_MANAGER)
    );
    let pvc = work.path().join("pvc");
    common::instance_data(&pvc);
    assert_eq!(
        common::run_pod(&job, &pvc, &key).await,
        "20261127T030000Z-0000a1"
    );
    // The apiserver defaulted the applied Job; its controller runs one Pod for it.
    let spec = job.spec.as_ref().expect("spec");
    assert_eq!(spec.completions, Some(1));
    assert!(
        spec.selector
            .as_ref()
            .and_then(|s| s.match_labels.as_ref())
            .is_some_and(|l| l.contains_key("batch.kubernetes.io/controller-uid"))
    );
    // A Job that is merely running leaves the runner waiting.
    running(&jobs, &job.name_any()).await;
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert!(!run.is_finished());
    assert_eq!(pod_phases(&pods, &job.name_any()).await, ["Running"]);
    emu.job_outcome("shop", &job.name_any(), JobOutcome::Succeed)
        .expect("the backup Pod succeeds");
    let report = tokio::time::timeout(std::time::Duration::from_secs(30), run)
        .await
        .expect("the runner noticed the Complete condition")
        .expect("join")
        .expect("backup completed");
    assert_eq!(report.deleted, ["20200101T000000Z-000001"]);
    let left: Vec<String> = store
        .list()
        .await
        .expect("list")
        .complete
        .into_iter()
        .map(|m| m.id)
        .collect();
    assert_eq!(left, ["20261127T030000Z-0000a1"]);
    let done = jobs.get(&job.name_any()).await.expect("Job");
    assert_eq!(done.status.as_ref().and_then(|s| s.succeeded), Some(1));
    assert_eq!(pod_phases(&pods, &job.name_any()).await, ["Succeeded"]);

    // 2. A Job whose Pods fail: retried up to backoffLimit (1), then Failed; a failed event,
    // nothing deleted.
    let (r, t) = (runner.clone(), target.clone());
    let run = tokio::spawn(async move { r.run(&t, "20261127T040000Z-0000a2").await });
    let job = job_named(&jobs, 1).await;
    running(&jobs, &job.name_any()).await;
    emu.job_outcome("shop", &job.name_any(), JobOutcome::Fail)
        .expect("the backup Pods fail");
    let err = tokio::time::timeout(std::time::Duration::from_secs(30), run)
        .await
        .expect("the runner noticed the Failed condition")
        .expect("join")
        .expect_err("failed job");
    assert_eq!(err.stage, "job");
    assert!(
        err.message.contains("BackoffLimitExceeded"),
        "{}",
        err.message
    );
    assert_eq!(
        pod_phases(&pods, &job.name_any()).await,
        ["Failed", "Failed"],
        "two attempts with backoffLimit 1"
    );
    assert_eq!(store.list().await.expect("list").complete.len(), 1);

    let events = tail.wait_for(5).await;
    assert_eq!(
        Tail::types(&events),
        [
            "midplane.backup.started",
            "midplane.backup.completed",
            "midplane.backup.deleted",
            "midplane.backup.started",
            "midplane.backup.failed"
        ]
    );
    let completed: BackupCompleted = events[1].decode().expect("completed");
    assert_eq!(completed.backup_id, "20261127T030000Z-0000a1");
    let failed: BackupFailed = events[4].decode().expect("failed");
    assert_eq!(
        (failed.backup_id.as_str(), failed.stage.as_str()),
        ("20261127T040000Z-0000a2", "job")
    );
    tail.stop().await;
    publisher.abort();
    watch.abort();
    emu.shutdown().await;
}
