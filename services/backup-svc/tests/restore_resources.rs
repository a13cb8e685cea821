//! Restore resources against the Kubernetes API emulator over real HTTP (no group-svc and no
//! Pods here: `cli/tests/dev_restore.rs` runs the whole flow on real redis-server processes).
//! An incompatible backup fails the Restore naming the field and touches nothing; a valid
//! one holds the Group, runs one Job per instance (owned by the Restore), survives a
//! controller restart, releases the hold when the Jobs succeeded and completes once the
//! Group is Ready; a Restore deleted while it holds its Group takes the hold off first.
//! Each outcome is announced on the bus (a real broker, on the test's own exchange).

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;

use k8s_openapi::api::batch::v1::Job;
use kube::ResourceExt;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use midplane_api::backup::{BackupStatus, phase as backup_phase};
use midplane_api::{App, Backup, BackupSpec, Group, Restore, RestoreFrom, RestoreSpec, labels};
use midplane_backup_svc::BackupSettings;
use midplane_backup_svc::announce::EventSink;
use midplane_backup_svc::config::JobSettings;
use midplane_backup_svc::resources::{self, Context, snapshot::LiveFiles};
use midplane_kube_emulator::JobOutcome;
use midplane_runtime::testing::eventually;
use serde_json::json;

fn start(client: &kube::Client, sink: &EventSink) -> tokio::sync::oneshot::Sender<()> {
    let ctx = Arc::new(Context::new(
        client.clone(),
        Arc::new(BackupSettings {
            storages: BTreeMap::from([("nightly".into(), "file:///var/empty/b".into())]),
            ..Default::default()
        }),
        JobSettings::default(),
        Arc::new(LiveFiles::default()),
        sink.clone(),
    ));
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(resources::run(ctx, Some("shop"), async move {
        let _ = rx.await;
    }));
    tx
}

async fn completed_backup(client: &kube::Client, name: &str, plugin: &str) {
    let api: Api<Backup> = Api::namespaced(client.clone(), "shop");
    let mut b = Backup::new(
        name,
        BackupSpec {
            app: "cache".into(),
            component: "redis".into(),
            ..Default::default()
        },
    );
    b.metadata.namespace = Some("shop".into());
    api.create(&PostParams::default(), &b)
        .await
        .expect("Backup");
    let status = BackupStatus {
        phase: backup_phase::COMPLETED.into(),
        plugin: Some(plugin.into()),
        middleware_version: Some("7.2".into()),
        location: Some("file:///var/empty/b".into()),
        backup_id: Some("20261203T100000Z-abcdef".into()),
        key_secret: Some("cache-key".into()),
        ..Default::default()
    };
    api.patch_status(
        name,
        &PatchParams::default(),
        &Patch::Merge(json!({ "status": status })),
    )
    .await
    .expect("Backup status");
}

fn restore(name: &str, backup: &str) -> Restore {
    let mut r = Restore::new(
        name,
        RestoreSpec {
            app: "cache".into(),
            component: "redis".into(),
            group: String::new(),
            from: RestoreFrom {
                backup: backup.into(),
                ..Default::default()
            },
        },
    );
    r.metadata.namespace = Some("shop".into());
    r
}

async fn phase_of(api: &Api<Restore>, name: &str, phase: &str) -> Restore {
    eventually(&format!("Restore {name} {phase}"), 30, || async {
        let r = api.get(name).await.ok()?;
        let st = r.status.as_ref()?;
        assert!(
            st.phase != "Failed" || phase == "Failed",
            "{name} failed: {:?}",
            st.message
        );
        (st.phase == phase).then_some(r)
    })
    .await
}

async fn hold_of(groups: &Api<Group>) -> Option<String> {
    groups
        .get("cache-redis-0")
        .await
        .expect("Group")
        .annotations()
        .get(labels::HOLD)
        .cloned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restore_holds_the_group_runs_its_jobs_and_releases_it() {
    let (emu, client) = common::job_emulator().await;
    let app = common::backup_app("0 3 * * *", "aes256-gcm", None);
    Api::<App>::namespaced(client.clone(), "shop")
        .create(&PostParams::default(), &app)
        .await
        .expect("App");
    // The Group as the Component controller creates it (no app-svc here).
    let component = &midplane_api::expand::components(&app)[0];
    let group = midplane_api::expand::groups(component).remove(0);
    let groups: Api<Group> = Api::namespaced(client.clone(), "shop");
    groups
        .create(&PostParams::default(), &group)
        .await
        .expect("Group");
    completed_backup(&client, "other", "mysql").await;
    completed_backup(&client, "nightly", "redis").await;
    let restores: Api<Restore> = Api::namespaced(client.clone(), "shop");
    let jobs: Api<Job> = Api::namespaced(client.clone(), "shop");
    let bus = common::test_bus("restore").await;
    let tail = common::Tail::start(&bus).await;
    let (sink, publisher) = EventSink::start(
        midplane_bus::Publisher::connect(bus.clone())
            .await
            .expect("publisher"),
    );
    let stop = start(&client, &sink);

    // Another plugin's backup: refused naming the field, the Group untouched.
    restores
        .create(&PostParams::default(), &restore("wrong", "other"))
        .await
        .expect("Restore");
    let failed = phase_of(&restores, "wrong", "Failed").await;
    let message = failed.status.and_then(|s| s.message).unwrap_or_default();
    assert!(
        message.contains("spec.from.backup") && message.contains("plugin mysql"),
        "{message}"
    );
    assert_eq!(hold_of(&groups).await, None);

    // A valid one: the hold, then one Job per instance owned by the Restore.
    restores
        .create(&PostParams::default(), &restore("back", "nightly"))
        .await
        .expect("Restore");
    let restoring = phase_of(&restores, "back", "Restoring").await;
    assert_eq!(hold_of(&groups).await.as_deref(), Some("restore/back"));
    let st = restoring.status.clone().expect("status");
    assert_eq!(st.instances, ["cache-redis-0-0"]);
    assert_eq!(st.backup_id.as_deref(), Some("20261203T100000Z-abcdef"));
    let job = jobs.get(&st.jobs[0]).await.expect("the Job");
    assert_eq!(job.owner_references()[0].kind, "Restore");
    let pod = job.spec.and_then(|s| s.template.spec).expect("pod");
    let command = pod.containers[0].command.clone().unwrap_or_default();
    assert!(command.contains(&"--force".to_string()), "{command:?}");

    // backup-svc restarts while the Job runs; its successor carries on.
    let _ = stop.send(());
    emu.job_outcome("shop", &st.jobs[0], JobOutcome::Succeed)
        .expect("job outcome");
    let stop = start(&client, &sink);
    phase_of(&restores, "back", "Starting").await;
    assert_eq!(
        hold_of(&groups).await,
        None,
        "released once the Jobs succeeded"
    );
    // group-svc would report the Group Ready again; here the test does.
    let generation = groups
        .get("cache-redis-0")
        .await
        .expect("Group")
        .metadata
        .generation;
    groups
        .patch_status(
            "cache-redis-0",
            &PatchParams::default(),
            &Patch::Merge(
                json!({"status": {"observedGeneration": generation, "conditions": [
                {"type": "Ready", "status": "True", "reason": "Ready", "message": "1/1",
                 "lastTransitionTime": "2026-12-03T10:00:00Z"}]}}),
            ),
        )
        .await
        .expect("Group status");
    let done = phase_of(&restores, "back", "Completed").await;
    assert!(done.status.and_then(|s| s.duration).is_some());

    // A Restore deleted while it holds the Group takes the hold off first.
    restores
        .create(&PostParams::default(), &restore("abandoned", "nightly"))
        .await
        .expect("Restore");
    phase_of(&restores, "abandoned", "Restoring").await;
    assert_eq!(hold_of(&groups).await.as_deref(), Some("restore/abandoned"));
    restores
        .delete("abandoned", &DeleteParams::default())
        .await
        .expect("delete");
    eventually("the abandoned Restore gone", 30, || async {
        restores
            .get_opt("abandoned")
            .await
            .ok()?
            .is_none()
            .then_some(())
    })
    .await;
    assert_eq!(hold_of(&groups).await, None);
    let _ = stop.send(());

    // On the bus: the refused one failed at validate, the other completed, by name.
    let events = tail.wait_for(2).await;
    assert_eq!(
        common::Tail::types(&events),
        ["midplane.restore.failed", "midplane.restore.completed"]
    );
    assert_eq!(events[0].data["stage"], "validate");
    assert_eq!(events[1].data["restoreId"], "back");
    assert_eq!(events[1].data["group"], "cache-redis-0");
    drop(sink);
    let _ = publisher.await;
    tail.stop().await;
}
