//! RequestAppBackup, GetAppBackup and ListAppBackups with per-caller authorization
//! (`server.authorization.mode: kubernetes`) against the Kubernetes API emulator's
//! TokenReview and SubjectAccessReview: each caller's own RBAC decides.

mod common;

use std::collections::BTreeMap;

use kube::api::{Api, PostParams};
use midplane_api::App;
use midplane_backup_svc::{BackupSettings, BackupSvc};
use midplane_proto::backup::backup_service_client::BackupServiceClient;
use midplane_proto::backup::{GetAppBackupRequest, ListAppBackupsRequest};
use midplane_runtime::ServerConfig;
use midplane_runtime::testing::contract::{assert_error, object_ref};
use tonic::Code;
use tonic::transport::Channel;

type Grpc = BackupServiceClient<Channel>;

use common::app_backup_request as request;

/// With `server.authorization.mode: kubernetes` the caller's own RBAC decides: `create
/// backups` in the namespace for RequestAppBackup, `get` and `list` for the reads.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn callers_need_create_backups_to_request_one() {
    use midplane_runtime::{AuthorizationConfig, AuthorizationMode};
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let emu = midplane_kube_emulator::Emulator::start(midplane_kube_emulator::EmulatorConfig {
        crd_dir: Some(root.join("k8s/crds")),
        namespaces: vec!["shop".into(), "callers".into()],
        secure_addr: Some("127.0.0.1:0".parse().expect("addr")),
        ..Default::default()
    })
    .await
    .expect("emulator");
    let dir = tempfile::tempdir().expect("tempdir");
    // backup-svc's own identity (the administrator here), for its work and the reviews.
    let kubeconfig = dir.path().join("backup-svc.kubeconfig");
    emu.write_kubeconfig(&kubeconfig).expect("kubeconfig");
    let admin = midplane_operator::kube_client(Some(&kubeconfig))
        .await
        .expect("client");
    Api::<App>::namespaced(admin.clone(), "shop")
        .create(
            &PostParams::default(),
            &common::backup_app("0 3 * * *", "aes256-gcm", None),
        )
        .await
        .expect("create App");
    let reader = common::caller(&emu, &admin, "reader", &["get", "list"]).await;
    let writer = common::caller(&emu, &admin, "writer", &["create", "get"]).await;
    let settings = BackupSettings {
        storages: BTreeMap::from([("nightly".into(), "file:///nonexistent".into())]),
        ..Default::default()
    };
    let config = ServerConfig {
        authorization: AuthorizationConfig {
            mode: AuthorizationMode::Kubernetes,
            kubeconfig: Some(kubeconfig.clone()),
            cache_ttl_ms: 0,
        },
        ..ServerConfig::default()
    };
    let svc = BackupSvc::new(settings).with_backup_resources(admin.clone());
    let (channel, server) = common::serve(svc, config).await;
    let mut api = Grpc::new(channel);

    let err = api
        .request_app_backup(common::as_caller(&reader, request("by-reader")))
        .await
        .expect_err("reader may not create Backups");
    assert_error(&err, Code::PermissionDenied, "PERMISSION_MISSING", &[]);
    assert!(
        err.message()
            .contains("may not create backups.midplane.dev")
            && err.message().contains("in namespace \"shop\""),
        "{err:?}"
    );
    let made = api
        .request_app_backup(common::as_caller(&writer, request("by-writer")))
        .await
        .expect("writer may")
        .into_inner();
    assert_eq!(made.name, "by-writer");
    let got = api
        .get_app_backup(common::as_caller(
            &reader,
            GetAppBackupRequest {
                r#ref: object_ref("shop", "by-writer"),
            },
        ))
        .await
        .expect("reader may get")
        .into_inner();
    assert_eq!(got.spec.map(|s| s.app).as_deref(), Some("cache"));
    let list = |namespace: &str| ListAppBackupsRequest {
        namespace: namespace.into(),
        ..Default::default()
    };
    let listed = api
        .list_app_backups(common::as_caller(&reader, list("shop")))
        .await
        .expect("reader may list in shop")
        .into_inner();
    assert_eq!(listed.backups.len(), 1);
    let err = api
        .list_app_backups(common::as_caller(&writer, list("shop")))
        .await
        .expect_err("writer may not list");
    assert_error(&err, Code::PermissionDenied, "PERMISSION_MISSING", &[]);
    let err = api
        .list_app_backups(common::as_caller(&reader, list("")))
        .await
        .expect_err("nor anyone across namespaces");
    assert_error(&err, Code::PermissionDenied, "PERMISSION_MISSING", &[]);
    server.trigger();
}
