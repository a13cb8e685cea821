//! Backup resources against the Kubernetes API emulator over real HTTP: the controller keeps
//! all of a backup's state in the Backup, so a controller stopped while the Job runs is
//! replaced by a new one that finishes the same backup (same id, one Job); an invalid Backup
//! fails naming the field; the policy's retention deletes older scheduled Backups and the
//! finalizer removes their objects from storage; a Job that succeeds without leaving a
//! manifest fails its Backup once the grace has passed, naming the backup id and storage. The emulator cannot run the Pod's command,
//! so the test plays the Pod (`common::run_pod`) and then says how it ended.

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;

use k8s_openapi::api::batch::v1::Job;
use kube::ResourceExt;
use kube::api::{Api, ListParams, PostParams};
use midplane_api::{App, Backup, BackupSpec};
use midplane_backup::{BackupKey, Store};
use midplane_backup_svc::BackupSettings;
use midplane_backup_svc::announce::EventSink;
use midplane_backup_svc::config::JobSettings;
use midplane_backup_svc::job_spec::JOB_SELECTOR;
use midplane_backup_svc::resources::{self, Context, plan, snapshot::LiveFiles};
use midplane_kube_emulator::JobOutcome;
use midplane_runtime::testing::eventually;
use tokio::task::JoinHandle;

fn start_controller(ctx: Arc<Context>) -> (tokio::sync::oneshot::Sender<()>, JoinHandle<()>) {
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(resources::run(ctx, Some("shop"), async move {
        let _ = rx.await;
    }));
    (tx, task)
}

async fn phase_of(api: &Api<Backup>, name: &str, phase: &str) -> Backup {
    eventually(&format!("Backup {name} {phase}"), 30, || async {
        let b = api.get(name).await.ok()?;
        (b.status.as_ref()?.phase == phase).then_some(b)
    })
    .await
}

fn backup(name: &str, component: &str, scheduled: bool) -> Backup {
    let mut b = Backup::new(
        name,
        BackupSpec {
            app: "cache".into(),
            component: component.into(),
            ..Default::default()
        },
    );
    b.metadata.namespace = Some("shop".into());
    if scheduled {
        b.metadata.labels = Some(plan::policy_labels("cache", component, "cache-redis-0"));
    }
    b
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backups_live_in_their_resources() {
    let (emu, client) = common::job_emulator().await;
    Api::<App>::namespaced(client.clone(), "shop")
        .create(
            &PostParams::default(),
            &common::backup_app("0 3 * * *", "aes256-gcm", Some(1)),
        )
        .await
        .expect("create App");
    let work = tempfile::tempdir().expect("tempdir");
    let store_uri = format!("file://{}", work.path().join("store").display());
    let settings = Arc::new(BackupSettings {
        storages: BTreeMap::from([("nightly".into(), store_uri.clone())]),
        ..Default::default()
    });
    let ctx = || {
        Arc::new(Context::new(
            client.clone(),
            settings.clone(),
            JobSettings::default(),
            Arc::new(LiveFiles::default()),
            EventSink::disabled(),
        ))
    };
    let backups: Api<Backup> = Api::namespaced(client.clone(), "shop");
    let jobs: Api<Job> = Api::namespaced(client.clone(), "shop");
    let key = BackupKey::from_array([6u8; 32]);
    let store = Store::from_uri(&store_uri).expect("store");
    let pvc = work.path().join("pvc");
    common::instance_data(&pvc);

    // 1. The controller stops while the Job runs; a new one finishes the same backup.
    let (stop, task) = start_controller(ctx());
    backups
        .create(&PostParams::default(), &backup("first", "redis", true))
        .await
        .expect("create Backup");
    let running = phase_of(&backups, "first", "Running").await;
    let st = running.status.clone().expect("status");
    let id = st.backup_id.clone().expect("an id before the Job");
    let job_name = st.job.clone().expect("the Job");
    assert_eq!(st.instance.as_deref(), Some("cache-redis-0-0"));
    assert_eq!(st.location.as_deref(), Some(store_uri.as_str()));
    assert!(
        running
            .finalizers()
            .contains(&resources::FINALIZER.to_string())
    );
    let _ = stop.send(());
    tokio::time::timeout(std::time::Duration::from_secs(10), task)
        .await
        .expect("controller stops")
        .expect("controller task");
    let job = jobs
        .get(&job_name)
        .await
        .expect("the Job outlives the controller");
    assert_eq!(job.owner_references()[0].kind, "Backup");
    assert_eq!(common::run_pod(&job, &pvc, &key).await, id);
    emu.job_outcome("shop", &job_name, JobOutcome::Succeed)
        .expect("job outcome");
    let (stop, task) = start_controller(ctx());
    let done = phase_of(&backups, "first", "Completed").await;
    let st = done.status.clone().expect("status");
    assert_eq!(
        st.backup_id.as_deref(),
        Some(id.as_str()),
        "the same backup"
    );
    assert!(st.stored_bytes.unwrap_or(0) > 0, "{st:?}");
    assert_eq!(
        st.archive_sha256.as_ref().map(String::len),
        Some(64),
        "{st:?}"
    );
    assert!(st.duration.is_some() && st.completed_at.is_some(), "{st:?}");
    let all_jobs = jobs
        .list(&ListParams::default().labels(JOB_SELECTOR))
        .await
        .expect("jobs");
    assert_eq!(all_jobs.items.len(), 1, "one Job for one backup");
    assert!(store.manifest(&id).await.is_ok());

    // 2. An invalid Backup fails at once, naming the field.
    backups
        .create(&PostParams::default(), &backup("wrong", "nope", false))
        .await
        .expect("create Backup");
    let failed = phase_of(&backups, "wrong", "Failed").await;
    let msg = failed.status.and_then(|s| s.message).unwrap_or_default();
    assert!(
        msg.contains("spec.component") && msg.contains("nope"),
        "{msg}"
    );

    // 3. A second scheduled backup completes; retention (count 1) deletes the first Backup,
    //    and its finalizer removes the first backup's objects from storage.
    backups
        .create(&PostParams::default(), &backup("second", "redis", true))
        .await
        .expect("create Backup");
    let second = phase_of(&backups, "second", "Running").await;
    let st2 = second.status.clone().expect("status");
    let job2 = jobs
        .get(st2.job.as_deref().expect("job"))
        .await
        .expect("job 2");
    common::run_pod(&job2, &pvc, &key).await;
    emu.job_outcome("shop", &job2.name_any(), JobOutcome::Succeed)
        .expect("job outcome");
    phase_of(&backups, "second", "Completed").await;
    eventually("retention deleted Backup first", 30, || async {
        backups.get_opt("first").await.ok()?.is_none().then_some(())
    })
    .await;
    assert!(
        store.manifest(&id).await.is_err(),
        "the deleted Backup's objects are gone"
    );
    let second_id = st2.backup_id.expect("id 2");
    assert!(
        store.manifest(&second_id).await.is_ok(),
        "the kept one stays"
    );
    let _ = stop.send(());
    let _ = task.await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_that_leaves_no_manifest_fails_its_backup() {
    let (emu, client) = common::job_emulator().await;
    Api::<App>::namespaced(client.clone(), "shop")
        .create(
            &PostParams::default(),
            &common::backup_app("0 3 * * *", "aes256-gcm", None),
        )
        .await
        .expect("create App");
    let work = tempfile::tempdir().expect("tempdir");
    let store_uri = format!("file://{}", work.path().join("store").display());
    let mut ctx = Context::new(
        client.clone(),
        Arc::new(BackupSettings {
            storages: BTreeMap::from([("nightly".into(), store_uri.clone())]),
            ..Default::default()
        }),
        JobSettings::default(),
        Arc::new(LiveFiles::default()),
        EventSink::disabled(),
    );
    assert_eq!(ctx.manifest_grace, plan::MANIFEST_GRACE);
    ctx.manifest_grace = std::time::Duration::from_secs(2);
    let (stop, task) = start_controller(Arc::new(ctx));
    let backups: Api<Backup> = Api::namespaced(client.clone(), "shop");
    backups
        .create(&PostParams::default(), &backup("lost", "redis", false))
        .await
        .expect("create Backup");
    let running = phase_of(&backups, "lost", "Running").await;
    let st = running.status.expect("status");
    let id = st.backup_id.expect("id");
    // The Job "succeeds" without running the pipeline: nothing reaches the storage.
    let ended = std::time::Instant::now();
    emu.job_outcome("shop", st.job.as_deref().expect("job"), JobOutcome::Succeed)
        .expect("job outcome");
    let failed = phase_of(&backups, "lost", "Failed").await;
    assert!(
        ended.elapsed() >= std::time::Duration::from_secs(1),
        "the grace (2 s, from the Job's whole-second completionTime) was waited out"
    );
    let msg = failed.status.and_then(|s| s.message).unwrap_or_default();
    assert!(
        msg.starts_with("job: ")
            && msg.contains(&id)
            && msg.contains(&store_uri)
            && msg.contains("no readable manifest"),
        "{msg}"
    );
    let _ = stop.send(());
    let _ = task.await;
}
