//! RequestAppBackup, GetAppBackup and ListAppBackups over real gRPC against the Kubernetes API
//! emulator (real HTTP, CRDs from k8s/crds) with the Backup controller running: a request
//! becomes the Backup `midplane backup create` makes (spec, labels, no owner), Get follows its
//! status to Completed, a waiting request answers the final phase (or its phase shortly before
//! the deadline), List filters by App and component, bad input names the request field, a
//! missing App or component is NOT_FOUND. The test plays each Job's Pod (`common::run_pod`).

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::api::batch::v1::Job;
use kube::api::{Api, PostParams};
use kube::{Client, ResourceExt};
use midplane_api::{App, Backup, BackupSpec};
use midplane_backup::BackupKey;
use midplane_backup_svc::announce::EventSink;
use midplane_backup_svc::config::JobSettings;
use midplane_backup_svc::resources::{self, Context, snapshot::LiveFiles};
use midplane_backup_svc::{BackupSettings, BackupSvc};
use midplane_kube_emulator::{EmulatorHandle, JobOutcome};
use midplane_proto::backup::backup_service_client::BackupServiceClient;
use midplane_proto::backup::backup_service_server::BackupService;
use midplane_proto::backup::{
    AppBackup, GetAppBackupRequest, ListAppBackupsRequest, RequestAppBackupRequest,
};
use midplane_runtime::testing::contract::{assert_error, object_ref, resource};
use midplane_runtime::testing::eventually;
use midplane_runtime::{ServerConfig, Shutdown};
use tonic::transport::Channel;
use tonic::{Code, Request};

type Grpc = BackupServiceClient<Channel>;

fn request(name: &str) -> RequestAppBackupRequest {
    common::app_backup_request(name)
}

async fn get(api: &mut Grpc, name: &str) -> AppBackup {
    api.get_app_backup(GetAppBackupRequest {
        r#ref: object_ref("shop", name),
    })
    .await
    .expect("GetAppBackup")
    .into_inner()
}

fn phase(b: &AppBackup) -> &str {
    b.status.as_ref().map_or("", |s| s.phase.as_str())
}

/// Waits until GetAppBackup reports `want`.
async fn phase_of(api: &Grpc, name: &str, want: &str) -> AppBackup {
    eventually(&format!("Backup {name} {want}"), 30, || async {
        let b = get(&mut api.clone(), name).await;
        (phase(&b) == want).then_some(b)
    })
    .await
}

/// Plays the Pod of the Backup's Job (once it runs), then lets the Job succeed.
async fn finish_job(emu: &EmulatorHandle, client: &Client, name: &str, key: &BackupKey) {
    let pvc = tempfile::tempdir().expect("tempdir");
    common::instance_data(pvc.path());
    let backups: Api<Backup> = Api::namespaced(client.clone(), "shop");
    let job = eventually(&format!("the Job of {name}"), 30, || async {
        backups.get(name).await.ok()?.status?.job
    })
    .await;
    let job = Api::<Job>::namespaced(client.clone(), "shop")
        .get(&job)
        .await
        .expect("Job");
    common::run_pod(&job, pvc.path(), key).await;
    emu.job_outcome("shop", &job.name_any(), JobOutcome::Succeed)
        .expect("job outcome");
}

fn start_controller(client: &Client, settings: Arc<BackupSettings>) -> Shutdown {
    let ctx = Arc::new(Context::new(
        client.clone(),
        settings,
        JobSettings::default(),
        Arc::new(LiveFiles::default()),
        EventSink::disabled(),
    ));
    let stop = Shutdown::new();
    let wait = stop.clone();
    tokio::spawn(resources::run(ctx, Some("shop"), async move {
        wait.wait().await;
    }));
    stop
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn app_components_are_backed_up_through_backup_resources() {
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
    let settings = BackupSettings {
        storages: BTreeMap::from([("nightly".into(), store_uri.clone())]),
        ..Default::default()
    };
    let controller = start_controller(&client, Arc::new(settings.clone()));
    let svc = BackupSvc::new(settings.clone()).with_backup_resources(client.clone());
    let (channel, server) = common::serve(svc, ServerConfig::default()).await;
    let mut api = Grpc::new(channel);
    let backups: Api<Backup> = Api::namespaced(client.clone(), "shop");
    let key = BackupKey::from_array([6u8; 32]);

    // 1. A request becomes the Backup the CLI makes: spec, labels, no owner.
    let asked = api
        .request_app_backup(request(""))
        .await
        .expect("RequestAppBackup")
        .into_inner();
    let first = asked.name.clone();
    assert!(first.starts_with("cache-redis-"), "{first}");
    assert_eq!(asked.namespace, "shop");
    let made = backups.get(&first).await.expect("the Backup resource");
    assert_eq!(
        made.spec,
        BackupSpec {
            app: "cache".into(),
            component: "redis".into(),
            ..Default::default()
        }
    );
    let labels = made.labels();
    assert_eq!(labels["midplane.dev/app"], "cache");
    assert_eq!(labels["midplane.dev/component"], "redis");
    assert_eq!(labels["midplane.dev/backup-trigger"], "api");
    assert!(made.owner_references().is_empty(), "outlives its App");
    assert_eq!(asked.labels["midplane.dev/backup-trigger"], "api");

    // 2. Get follows its status as the controller writes it.
    let running = phase_of(&api, &first, "Running").await;
    let st = running.status.clone().expect("status");
    assert_eq!(st.instance, "cache-redis-0-0");
    assert_eq!(st.group, "cache-redis-0");
    assert_eq!(st.location, store_uri);
    assert_eq!(st.key_secret, "cache-key");
    assert!(!st.backup_id.is_empty() && !st.job.is_empty(), "{st:?}");
    assert!(
        st.conditions
            .iter()
            .any(|c| c.r#type == "Ready" && c.status == "False" && c.reason == "Running"),
        "{st:?}"
    );
    finish_job(&emu, &client, &first, &key).await;
    let done = phase_of(&api, &first, "Completed").await;
    let done_st = done.status.clone().expect("status");
    assert_eq!(done_st.backup_id, st.backup_id, "the same backup");
    assert!(done_st.stored_bytes > 0 && done_st.source_bytes > 0 && done_st.entries > 0);
    assert_eq!(done_st.archive_sha256.len(), 64, "{done_st:?}");
    assert!(done_st.duration.ends_with('s'), "{done_st:?}");
    assert!(done_st.started_at.is_some() && done_st.completed_at.is_some());
    // No agent gateway: the Job read the live files, so no role, term or offset.
    assert_eq!(
        (
            done_st.role.as_str(),
            done_st.term,
            done_st.replication_offset
        ),
        ("", None, None)
    );
    assert!(
        done_st
            .conditions
            .iter()
            .any(|c| c.r#type == "Ready" && c.status == "True"),
        "{done_st:?}"
    );

    // 3. A waiting request answers the final phase.
    let waiting = {
        let mut api = api.clone();
        tokio::spawn(async move {
            let mut r = Request::new(RequestAppBackupRequest {
                wait: true,
                ..request("waited")
            });
            r.set_timeout(Duration::from_secs(30));
            api.request_app_backup(r).await
        })
    };
    finish_job(&emu, &client, "waited", &key).await;
    let waited = waiting
        .await
        .expect("task")
        .expect("RequestAppBackup with wait")
        .into_inner();
    assert_eq!(phase(&waited), "Completed", "{waited:?}");
    // ... or, when the backup outlasts the deadline, its phase shortly before it.
    let started = Instant::now();
    let mut r = Request::new(RequestAppBackupRequest {
        wait: true,
        ..request("short")
    });
    r.set_timeout(Duration::from_secs(2));
    let short = api
        .request_app_backup(r)
        .await
        .expect("answered before the deadline")
        .into_inner();
    assert!(started.elapsed() < Duration::from_secs(2));
    assert!(
        !matches!(phase(&short), "Completed" | "Failed"),
        "{short:?}"
    );

    // 4. List: every Backup of the namespace, filtered by App and component.
    let mut other = Backup::new(
        "other-by-kubectl",
        BackupSpec {
            app: "other".into(),
            component: "redis".into(),
            ..Default::default()
        },
    );
    other.metadata.namespace = Some("shop".into());
    backups
        .create(&PostParams::default(), &other)
        .await
        .expect("a Backup made with kubectl");
    // Oldest first: by creation time (whole seconds), then name.
    let names = |r: midplane_proto::backup::ListAppBackupsResponse| -> Vec<String> {
        let keys: Vec<(i64, String)> = r
            .backups
            .iter()
            .map(|b| (b.created_at.map_or(0, |t| t.seconds), b.name.clone()))
            .collect();
        assert!(keys.is_sorted(), "{keys:?}");
        keys.into_iter().map(|(_, n)| n).collect()
    };
    let list = |app: &str, component: &str| ListAppBackupsRequest {
        namespace: "shop".into(),
        app: app.into(),
        component: component.into(),
    };
    let of_cache = names(
        api.list_app_backups(list("cache", ""))
            .await
            .expect("list")
            .into_inner(),
    );
    let mut sorted = of_cache.clone();
    sorted.sort();
    assert_eq!(sorted, [first.as_str(), "short", "waited"], "{of_cache:?}");
    let all = names(
        api.list_app_backups(list("", ""))
            .await
            .expect("list")
            .into_inner(),
    );
    assert_eq!(all.len(), 4, "{all:?}");
    assert!(all.contains(&"other-by-kubectl".to_string()), "{all:?}");
    let none = names(
        api.list_app_backups(list("cache", "sentinel"))
            .await
            .expect("list")
            .into_inner(),
    );
    assert!(none.is_empty(), "{none:?}");

    // 5. Errors name the request field; a missing App or component is NOT_FOUND.
    let refuse = |r: RequestAppBackupRequest| {
        let mut api = api.clone();
        async move { api.request_app_backup(r).await.expect_err("refused") }
    };
    let err = refuse(RequestAppBackupRequest {
        component: String::new(),
        ..request("")
    })
    .await;
    assert_error(
        &err,
        Code::InvalidArgument,
        "REQUEST_INVALID",
        &["component"],
    );
    let err = refuse(RequestAppBackupRequest {
        namespace: "Shop".into(),
        instance: "cache_0".into(),
        encryption: 42,
        ..request("")
    })
    .await;
    assert_error(
        &err,
        Code::InvalidArgument,
        "REQUEST_INVALID",
        &["namespace", "instance", "encryption"],
    );
    let err = refuse(RequestAppBackupRequest {
        instance: "cache-redis-0-7".into(),
        ..request("")
    })
    .await;
    assert_error(
        &err,
        Code::InvalidArgument,
        "REQUEST_INVALID",
        &["instance"],
    );
    assert!(err.message().contains("cache-redis-0-0"), "{err:?}");
    let err = refuse(RequestAppBackupRequest {
        storage: "nowhere".into(),
        ..request("")
    })
    .await;
    assert_error(&err, Code::InvalidArgument, "STORAGE_INVALID", &["storage"]);
    let err = refuse(RequestAppBackupRequest {
        component: "nope".into(),
        ..request("")
    })
    .await;
    assert_error(&err, Code::NotFound, "COMPONENT_NOT_FOUND", &[]);
    assert_eq!(
        resource(&err),
        Some(("Component".into(), "shop/cache-nope".into()))
    );
    assert!(err.message().contains("it has: redis"), "{err:?}");
    let err = refuse(RequestAppBackupRequest {
        app: "ghost".into(),
        ..request("")
    })
    .await;
    assert_error(&err, Code::NotFound, "APP_NOT_FOUND", &[]);
    assert_eq!(resource(&err), Some(("App".into(), "shop/ghost".into())));
    let err = refuse(request("waited")).await;
    assert_error(&err, Code::AlreadyExists, "ALREADY_EXISTS", &[]);
    let err = api
        .get_app_backup(GetAppBackupRequest {
            r#ref: object_ref("shop", "missing"),
        })
        .await
        .expect_err("no such Backup");
    assert_error(&err, Code::NotFound, "BACKUP_NOT_FOUND", &[]);
    assert_eq!(
        resource(&err),
        Some(("Backup".into(), "shop/missing".into()))
    );
    let err = api
        .get_app_backup(GetAppBackupRequest { r#ref: None })
        .await
        .expect_err("no ref");
    assert_error(&err, Code::InvalidArgument, "REQUEST_INVALID", &["ref"]);
    let err = api
        .list_app_backups(list("Cache", ""))
        .await
        .expect_err("bad app");
    assert_error(&err, Code::InvalidArgument, "REQUEST_INVALID", &["app"]);
    assert_eq!(
        backups
            .list(&Default::default())
            .await
            .expect("list")
            .items
            .len(),
        4,
        "no refused request created a Backup"
    );

    // 6. Without the Backup controller there are no Backup resources to serve.
    let bare = BackupSvc::new(settings);
    let err = bare
        .request_app_backup(Request::new(request("")))
        .await
        .expect_err("no controller");
    assert_error(
        &err,
        Code::FailedPrecondition,
        "CONTROLLER_NOT_CONFIGURED",
        &[],
    );
    let err = bare
        .list_app_backups(Request::new(list("", "")))
        .await
        .expect_err("no controller");
    assert_error(
        &err,
        Code::FailedPrecondition,
        "CONTROLLER_NOT_CONFIGURED",
        &[],
    );
    server.trigger();
    controller.trigger();
}
