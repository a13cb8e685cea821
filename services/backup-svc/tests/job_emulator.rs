//! Job mode over real HTTP: `KubeJobs` (server-side apply + a label-selected Job watch) and the
//! Runner against the Kubernetes API emulator. The emulator has no built-in batch/v1 Job, so
//! the test registers a CustomResourceDefinition named `jobs.batch` (schemaless, with a status
//! subresource) as a stand-in: same URL, same apply/watch/status mechanics, no Job defaulting
//! or validation, and no Job controller (the test writes the Job's status, as the emulator
//! cannot run Pods' commands). Storage and the bus are real.

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;

use common::Tail;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::ResourceExt;
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use midplane_api::App;
use midplane_backup::{BackupKey, BackupOptions, Store, create_backup};
use midplane_backup_svc::BackupSettings;
use midplane_backup_svc::config::JobSettings;
use midplane_backup_svc::events::EventSink;
use midplane_backup_svc::job::JOB_SELECTOR;
use midplane_backup_svc::jobs::KubeJobs;
use midplane_backup_svc::policy;
use midplane_backup_svc::runner::Runner;
use midplane_bus::Publisher;
use midplane_bus::catalogue::{BackupCompleted, BackupFailed};
use midplane_runtime::testing::eventually;

const JOB_CRD: &str = r#"
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: jobs.batch}
spec:
  group: batch
  scope: Namespaced
  names: {plural: jobs, singular: job, kind: Job, listKind: JobList}
  versions:
  - name: v1
    served: true
    storage: true
    subresources: {status: {}}
    schema:
      openAPIV3Schema: {type: object, x-kubernetes-preserve-unknown-fields: true}
"#;

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

async fn set_condition(jobs: &Api<Job>, name: &str, type_: &str, reason: &str) {
    let status = serde_json::json!({"status": {"conditions": [{
        "type": type_, "status": "True", "reason": reason, "message": format!("{type_}: {reason}")
    }]}});
    jobs.patch_status(name, &PatchParams::default(), &Patch::Merge(&status))
        .await
        .expect("patch Job status");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backup_jobs_are_applied_tracked_and_acted_on() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let emu = midplane_kube_emulator::Emulator::start(midplane_kube_emulator::EmulatorConfig {
        crd_dir: Some(root.join("k8s/crds")),
        namespaces: vec!["shop".into()],
        ..Default::default()
    })
    .await
    .expect("emulator");
    let client =
        kube::Client::try_from(kube::Config::new(emu.url().parse().expect("url"))).expect("client");
    let crd: CustomResourceDefinition = serde_yaml::from_str(JOB_CRD).expect("crd yaml");
    Api::<CustomResourceDefinition>::all(client.clone())
        .create(&PostParams::default(), &crd)
        .await
        .expect("register the jobs.batch stand-in");

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
        Some("midplane")
    );
    let pvc = work.path().join("pvc");
    common::instance_data(&pvc);
    assert_eq!(
        common::run_pod(&job, &pvc, &key).await,
        "20261127T030000Z-0000a1"
    );
    // A Job that is merely running leaves the runner waiting.
    set_condition(&jobs, &job.name_any(), "Suspended", "NotYet").await;
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert!(!run.is_finished());
    set_condition(&jobs, &job.name_any(), "Complete", "CompletionsReached").await;
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

    // 2. A Job that fails: a failed event, nothing deleted.
    let (r, t) = (runner.clone(), target.clone());
    let run = tokio::spawn(async move { r.run(&t, "20261127T040000Z-0000a2").await });
    let job = job_named(&jobs, 1).await;
    set_condition(&jobs, &job.name_any(), "Failed", "DeadlineExceeded").await;
    let err = tokio::time::timeout(std::time::Duration::from_secs(30), run)
        .await
        .expect("the runner noticed the Failed condition")
        .expect("join")
        .expect_err("failed job");
    assert_eq!(err.stage, "job");
    assert!(err.message.contains("DeadlineExceeded"), "{}", err.message);
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
