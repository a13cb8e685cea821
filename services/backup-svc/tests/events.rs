//! Backup events on the real RabbitMQ: what an outside subscriber bound to
//! `midplane.backup.#` / `midplane.restore.#` sees when backups go through the gRPC API.

mod common;

use std::collections::HashMap;

use common::Tail;
use midplane_backup_svc::announce::EventSink;
use midplane_backup_svc::{BackupSettings, BackupSvc};
use midplane_bus::Publisher;
use midplane_bus::catalogue::{
    BackupCompleted, BackupDeleted, BackupFailed, BackupStarted, DeleteReason, Encryption,
    ObjectRef, RestoreCompleted,
};
use midplane_proto::backup::backup_service_client::BackupServiceClient;
use midplane_proto::backup::backup_service_server::BackupServiceServer;
use midplane_proto::backup::{CreateBackupRequest, DeleteBackupRequest, RestoreRequest};
use midplane_proto::common::ObjectRef as ProtoRef;
use midplane_runtime::{ServerConfig, Service};

async fn serve(svc: BackupSvc) -> BackupServiceClient<tonic::transport::Channel> {
    let service = Service::for_test("backup-svc", ServerConfig::default());
    let admin = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let grpc = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = grpc.local_addr().expect("addr");
    let routes = midplane_runtime::Routes::new(BackupServiceServer::new(svc));
    tokio::spawn(service.serve_on(admin, grpc, routes));
    BackupServiceClient::connect(format!("http://{addr}"))
        .await
        .expect("connect")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_backups_publish_started_completed_deleted_and_restore_events() {
    let bus = common::test_bus("grpc").await;
    let tail = Tail::start(&bus).await;
    let (sink, publisher_task) =
        EventSink::start(Publisher::connect(bus.clone()).await.expect("publisher"));

    let work = tempfile::tempdir().expect("tempdir");
    let data_root = work.path().join("data");
    common::instance_data(&data_root.join("shop/cache-redis-0/cache-redis-0-0"));
    let secrets = work.path().join("secrets");
    common::secret(&secrets, "shop", "cache-key", 3);
    let store_dir = work.path().join("store");
    let svc = BackupSvc::new(BackupSettings {
        default_storage: Some(format!("file://{}", store_dir.display())),
        default_key_ref: Some("secret:shop/cache-key#key".into()),
        data_root,
        secrets_dir: secrets,
        ..Default::default()
    })
    .with_events(sink);
    let mut client = serve(svc).await;

    let created = client
        .create_backup(CreateBackupRequest {
            source: Some(ProtoRef {
                namespace: "shop".into(),
                name: "cache-redis-0".into(),
            }),
            instance: "cache-redis-0-0".into(),
            labels: HashMap::from([
                ("midplane.dev/app".into(), "cache".into()),
                ("midplane.dev/component".into(), "redis".into()),
            ]),
            ..Default::default()
        })
        .await
        .expect("create")
        .into_inner();

    let events = tail.wait_for(2).await;
    assert_eq!(
        Tail::types(&events),
        ["midplane.backup.started", "midplane.backup.completed"]
    );
    let started: BackupStarted = events[0].decode().expect("started payload");
    assert_eq!(
        started,
        BackupStarted {
            backup_id: created.id.clone(),
            app: ObjectRef::new("shop", "cache"),
            component: "redis".into(),
            group: "cache-redis-0".into(),
            storage: "fs".into(),
            encryption: Encryption::Aes256Gcm,
        }
    );
    assert_eq!(events[0].source, "/midplane/backup-svc");
    assert_eq!(
        events[0].subject.as_deref(),
        Some(format!("backups/shop/{}", created.id).as_str())
    );
    let completed: BackupCompleted = events[1].decode().expect("completed payload");
    assert_eq!(completed.backup_id, created.id);
    assert_eq!(completed.app, ObjectRef::new("shop", "cache"));
    assert_eq!(
        (completed.component.as_str(), completed.group.as_str()),
        ("redis", "cache-redis-0")
    );
    assert_eq!(completed.size_bytes, created.stored_bytes);
    assert_eq!(completed.sha256, created.object_sha256);
    assert_eq!(completed.encryption, Encryption::Aes256Gcm);
    assert_eq!(
        completed.location,
        format!(
            "file://{}/{}/archive.tar.gz.mpbk",
            store_dir.display(),
            created.id
        )
    );
    assert!(std::path::Path::new(completed.location.trim_start_matches("file://")).is_file());

    // A restore into another instance directory, then a deletion by hand.
    let target = work.path().join("restored");
    client
        .restore(RestoreRequest {
            id: created.id.clone(),
            target_path: target.display().to_string(),
            ..Default::default()
        })
        .await
        .expect("restore");
    client
        .delete_backup(DeleteBackupRequest {
            id: created.id.clone(),
            ..Default::default()
        })
        .await
        .expect("delete");
    // A backup of a directory that does not exist fails at the snapshot stage.
    let err = client
        .create_backup(CreateBackupRequest {
            source_path: work.path().join("missing").display().to_string(),
            ..Default::default()
        })
        .await
        .expect_err("missing source");
    assert_eq!(err.code(), tonic::Code::FailedPrecondition);

    let events = tail.wait_for(6).await;
    assert_eq!(
        Tail::types(&events[2..]),
        [
            "midplane.restore.completed",
            "midplane.backup.deleted",
            "midplane.backup.started",
            "midplane.backup.failed"
        ]
    );
    let restored: RestoreCompleted = events[2].decode().expect("restore payload");
    assert_eq!(restored.backup_id, created.id);
    assert_eq!(restored.app, ObjectRef::new("shop", "cache"));
    assert_eq!(restored.component, "redis");
    assert!(
        restored.restore_id.starts_with("rs-"),
        "{}",
        restored.restore_id
    );
    let deleted: BackupDeleted = events[3].decode().expect("deleted payload");
    assert_eq!(deleted.backup_id, created.id);
    assert_eq!(deleted.reason, DeleteReason::Manual);
    assert_eq!(deleted.location, completed.location);
    let failed_started: BackupStarted = events[4].decode().expect("started");
    let failed: BackupFailed = events[5].decode().expect("failed payload");
    assert_eq!(failed.backup_id, failed_started.backup_id);
    assert_eq!(failed.stage, "snapshot");
    assert!(failed.message.contains("missing"), "{}", failed.message);

    drop(client);
    tail.stop().await;
    publisher_task.abort();
}
