//! The scheduler against the Kubernetes API emulator: Apps are watched, backup policies fire
//! on their cron schedule (driven by a manual clock), retention follows each run, missed slots
//! after downtime give one run, and a bad policy is reported with the App's field.

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::Duration;
use k8s_openapi::api::events::v1::Event as KubeEvent;
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use midplane_api::App;
use midplane_backup::Store;
use midplane_backup_svc::BackupSettings;
use midplane_backup_svc::announce::EventSink;
use midplane_backup_svc::cron::ManualClock;
use midplane_backup_svc::execute::Runner;
use midplane_backup_svc::scheduler::{Report, SchedulerLoop};
use midplane_operator::EventRecorder;
use midplane_runtime::Shutdown;
use midplane_runtime::testing::eventually;
use tokio::sync::mpsc;

async fn emulator() -> (midplane_kube_emulator::EmulatorHandle, kube::Client) {
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
    (emu, client)
}

fn app(schedule: &str) -> App {
    common::backup_app(schedule, "aes256-gcm", Some(2))
}

struct Running {
    stop: Shutdown,
    reports: mpsc::UnboundedReceiver<Report>,
    task: tokio::task::JoinHandle<()>,
}

fn start(
    client: &kube::Client,
    settings: &Arc<BackupSettings>,
    clock: &Arc<ManualClock>,
) -> Running {
    let recorder = EventRecorder::new(client.clone(), "midplane-backup-svc");
    let runner =
        Runner::inline(settings.clone(), EventSink::disabled()).with_recorder(recorder.clone());
    let lp = SchedulerLoop {
        resources: false,
        client: client.clone(),
        namespace: Some("shop".into()),
        settings: settings.clone(),
        runner: Arc::new(runner),
        clock: clock.clone(),
        max_concurrent: 2,
        recorder: Some(recorder),
    };
    let stop = Shutdown::new();
    let (tx, reports) = mpsc::unbounded_channel();
    let s = stop.clone();
    let task = tokio::spawn(async move { lp.run(async move { s.wait().await }, Some(tx)).await });
    Running {
        stop,
        reports,
        task,
    }
}

impl Running {
    async fn next(&mut self, what: &str) -> Report {
        tokio::time::timeout(std::time::Duration::from_secs(60), self.reports.recv())
            .await
            .unwrap_or_else(|_| panic!("timed out waiting for {what}"))
            .unwrap_or_else(|| panic!("scheduler stopped before {what}"))
    }

    /// The next run's backup id (it must have succeeded).
    async fn finished(&mut self) -> String {
        loop {
            if let Report::Finished { key, result } = self.next("a finished backup").await {
                assert_eq!(key.instance, "cache-redis-0-0");
                return result.expect("scheduled backup succeeded");
            }
        }
    }

    async fn stop(self) {
        self.stop.trigger();
        self.task.await.expect("scheduler loop");
    }
}

async fn ids(store: &Store) -> Vec<String> {
    store
        .list()
        .await
        .expect("list")
        .complete
        .into_iter()
        .map(|m| m.id)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn app_policies_fire_on_schedule_with_retention_and_catch_up_once() {
    let (_emu, client) = emulator().await;
    let work = tempfile::tempdir().expect("tempdir");
    let data_root = work.path().join("data");
    common::instance_data(&data_root.join("shop/cache-redis-0/cache-redis-0-0"));
    let secrets = work.path().join("secrets");
    common::secret(&secrets, "shop", "cache-key", 8);
    let store_uri = format!("file://{}", work.path().join("store").display());
    let settings = Arc::new(BackupSettings {
        storages: BTreeMap::from([("nightly".into(), store_uri.clone())]),
        data_root,
        secrets_dir: secrets,
        ..Default::default()
    });
    let store = Store::from_uri(&store_uri).expect("store");
    let apps: Api<App> = Api::namespaced(client.clone(), "shop");
    apps.create(&PostParams::default(), &app("0 * * * *"))
        .await
        .expect("create App");

    let clock = Arc::new(ManualClock::new(chrono::Utc::now()));
    let mut sched = start(&client, &settings, &clock);
    match sched.next("the App to be scheduled").await {
        Report::Scheduled { app, targets } => {
            assert_eq!(app, ("shop".to_string(), "cache".to_string()));
            assert_eq!(targets, 1);
        }
        other => panic!("expected Scheduled, got {other:?}"),
    }
    // Nothing is due before the first slot.
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    assert!(ids(&store).await.is_empty());

    // The next hour's slot passes: one backup, labelled with where it came from.
    clock.advance(Duration::hours(1));
    let first = sched.finished().await;
    let m = store.manifest(&first).await.expect("manifest");
    assert_eq!(m.labels["midplane.dev/instance"], "cache-redis-0-0");
    assert_eq!(m.labels["midplane.dev/name"], "cache-redis-0");
    assert_eq!(m.labels["midplane.dev/backup-trigger"], "schedule");

    // Five hours pass at once (the clock jumps): one run, not five.
    clock.advance(Duration::hours(5));
    let second = sched.finished().await;
    tokio::time::sleep(std::time::Duration::from_millis(2500)).await;
    assert_eq!(ids(&store).await, [first.clone(), second.clone()]);

    // backup-svc restarts three hours later: the new process reads the newest backup from the
    // storage and runs once for the missed slots.
    sched.stop().await;
    clock.advance(Duration::hours(3));
    let mut sched = start(&client, &settings, &clock);
    let third = sched.finished().await;
    // Retention (count 2) removed the oldest.
    assert_eq!(ids(&store).await, [second.clone(), third.clone()]);
    tokio::time::sleep(std::time::Duration::from_millis(2500)).await;
    assert_eq!(ids(&store).await.len(), 2, "no second catch-up run");

    // Outcomes are recorded as Events on the App.
    let events: Api<KubeEvent> = Api::namespaced(client.clone(), "shop");
    let note = eventually("a BackupCompleted Event", 30, || {
        let events = events.clone();
        async move {
            events
                .list(&ListParams::default())
                .await
                .ok()?
                .items
                .into_iter()
                .find_map(|e| {
                    (e.reason.as_deref() == Some("BackupCompleted"))
                        .then(|| e.note.unwrap_or_default())
                })
        }
    })
    .await;
    assert!(note.contains("cache-redis-0-0"), "{note}");

    // A broken schedule: reported with the App's field, and the App has no targets any more.
    let patch = serde_json::json!({"spec": {"components": [{
        "name": "redis", "plugin": "redis", "replicas": 1, "shards": 1,
        "backup": {"enabled": true, "schedule": "0 3 * *", "storage": "nightly", "keySecret": "cache-key"}
    }]}});
    apps.patch("cache", &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .expect("patch App");
    loop {
        match sched.next("the policy error").await {
            Report::PolicyInvalid { errors, .. } => {
                assert_eq!(errors.len(), 1, "{errors:?}");
                assert_eq!(errors[0].field, "spec.components[0].backup.schedule");
                assert!(
                    errors[0].message.contains("0 3 * *"),
                    "{}",
                    errors[0].message
                );
                break;
            }
            Report::Finished { .. } => panic!("no backup may run for a broken policy"),
            Report::Scheduled { .. } => {}
        }
    }
    match sched.next("the App rescheduled").await {
        Report::Scheduled { targets, .. } => assert_eq!(targets, 0),
        other => panic!("expected Scheduled, got {other:?}"),
    }
    let note = eventually("a BackupPolicyInvalid Event", 30, || {
        let events = events.clone();
        async move {
            events
                .list(&ListParams::default())
                .await
                .ok()?
                .items
                .into_iter()
                .find_map(|e| {
                    (e.reason.as_deref() == Some("BackupPolicyInvalid"))
                        .then(|| e.note.unwrap_or_default())
                })
        }
    })
    .await;
    assert!(
        note.starts_with("spec.components[0].backup.schedule"),
        "{note}"
    );
    clock.advance(Duration::hours(2));
    tokio::time::sleep(std::time::Duration::from_millis(2500)).await;
    assert_eq!(ids(&store).await.len(), 2);
    sched.stop().await;
}
