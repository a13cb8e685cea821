//! backup-svc over real gRPC on loopback: create, list, get, verify, restore, retention and
//! delete against a file:// location, and the error codes callers rely on.

use std::path::Path;

use midplane_backup_svc::{BackupSettings, BackupSvc};
use midplane_proto::backup::backup_service_client::BackupServiceClient;
use midplane_proto::backup::backup_service_server::BackupServiceServer;
use midplane_proto::backup::{
    ApplyRetentionRequest, CreateBackupRequest, DeleteBackupRequest, Encryption, GetBackupRequest,
    ListBackupsRequest, RestoreRequest, VerifyRequest,
};
use midplane_proto::common::ObjectRef;
use midplane_runtime::{ServerConfig, Service};
use tonic::Code;
use tonic::transport::Channel;

fn files(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(p) = stack.pop() {
        for e in std::fs::read_dir(&p).expect("readdir") {
            let path = e.expect("entry").path();
            if path.is_dir() {
                stack.push(path);
            } else {
                let rel = path.strip_prefix(dir).expect("rel").display().to_string();
                out.push((rel, std::fs::read(&path).expect("read")));
            }
        }
    }
    out.sort();
    out
}

async fn start(
    settings: BackupSettings,
) -> (BackupServiceClient<Channel>, midplane_runtime::Shutdown) {
    let service = Service::for_test("backup-svc", ServerConfig::default());
    let shutdown = service.shutdown();
    let admin = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let grpc = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = grpc.local_addr().expect("addr");
    let routes = midplane_runtime::Routes::new(BackupServiceServer::new(BackupSvc::new(settings)));
    tokio::spawn(service.serve_on(admin, grpc, routes));
    let client = BackupServiceClient::connect(format!("http://{addr}"))
        .await
        .expect("connect");
    (client, shutdown)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backup_service_end_to_end() {
    let work = tempfile::tempdir().expect("tempdir");
    let data_root = work.path().join("data");
    let instance_dir = data_root.join("shop").join("cache-0").join("cache-0-0");
    std::fs::create_dir_all(instance_dir.join("appendonlydir")).expect("mkdir");
    std::fs::write(instance_dir.join("dump.rdb"), vec![7u8; 300_000]).expect("w");
    std::fs::write(
        instance_dir.join("appendonlydir/a.aof"),
        b"SET a 1\n".repeat(1000),
    )
    .expect("w");
    let secrets = work.path().join("secrets");
    std::fs::create_dir_all(secrets.join("shop/backup-key")).expect("mkdir");
    std::fs::write(secrets.join("shop/backup-key/key"), [9u8; 32]).expect("w");
    let wrong_key = work.path().join("wrong.key");
    std::fs::write(&wrong_key, hex::encode([1u8; 32])).expect("w");
    let storage = format!("file://{}", work.path().join("store").display());
    let (mut client, shutdown) = start(BackupSettings {
        default_storage: Some(storage.clone()),
        default_key_ref: Some("secret:shop/backup-key#key".into()),
        data_root: data_root.clone(),
        secrets_dir: secrets,
        compression_level: 6,
        ..Default::default()
    })
    .await;
    let source = ObjectRef {
        namespace: "shop".into(),
        name: "cache-0".into(),
    };

    let mut ids = Vec::new();
    for enc in [
        Encryption::Aes256Gcm,
        Encryption::Aes256Cbc,
        Encryption::Gpg,
    ] {
        let b = client
            .create_backup(CreateBackupRequest {
                source: Some(source.clone()),
                instance: "cache-0-0".into(),
                encryption: enc as i32,
                ..Default::default()
            })
            .await
            .expect("create")
            .into_inner();
        assert_eq!(b.encryption, enc as i32);
        assert_eq!(b.source.as_ref(), Some(&source));
        assert_eq!(b.archive_sha256.len(), 64);
        ids.push(b.id);
    }

    let listed = client
        .list_backups(ListBackupsRequest {
            source: Some(source.clone()),
            ..Default::default()
        })
        .await
        .expect("list")
        .into_inner();
    assert_eq!(listed.backups.len(), 3);
    let other = client
        .list_backups(ListBackupsRequest {
            source: Some(ObjectRef {
                namespace: "shop".into(),
                name: "other".into(),
            }),
            ..Default::default()
        })
        .await
        .expect("list")
        .into_inner();
    assert!(other.backups.is_empty());

    let got = client
        .get_backup(GetBackupRequest {
            id: ids[0].clone(),
            ..Default::default()
        })
        .await
        .expect("get")
        .into_inner();
    assert_eq!(got.id, ids[0]);

    for id in &ids {
        let v = client
            .verify(VerifyRequest {
                id: id.clone(),
                ..Default::default()
            })
            .await
            .expect("verify")
            .into_inner();
        assert!(v.ok);
    }
    // A wrong key is a finding of the check, as the proto documents: ok = false.
    let v = client
        .verify(VerifyRequest {
            id: ids[0].clone(),
            key_ref: format!("file:{}", wrong_key.display()),
            ..Default::default()
        })
        .await
        .expect("verify answers")
        .into_inner();
    assert!(!v.ok);
    assert_eq!(v.error.expect("finding").reason, "WRONG_KEY");

    // Restore the gpg backup into another instance's directory.
    let restored = client
        .restore(RestoreRequest {
            id: ids[2].clone(),
            target: Some(source.clone()),
            target_instance: "cache-0-1".into(),
            ..Default::default()
        })
        .await
        .expect("restore")
        .into_inner();
    assert!(restored.success);
    assert_eq!(
        files(&data_root.join("shop/cache-0/cache-0-1")),
        files(&instance_dir)
    );

    let bad = client
        .restore(RestoreRequest {
            id: ids[0].clone(),
            target_path: "/".into(),
            key_ref: "nonsense".into(),
            ..Default::default()
        })
        .await
        .expect_err("bad key ref");
    assert_eq!(bad.code(), Code::InvalidArgument);
    let bad = client
        .create_backup(CreateBackupRequest {
            source: Some(ObjectRef {
                namespace: "..".into(),
                name: "x".into(),
            }),
            instance: "y".into(),
            ..Default::default()
        })
        .await
        .expect_err("path traversal");
    assert_eq!(bad.code(), Code::InvalidArgument);

    // Retention: a dry run plans, a real run deletes all but the newest.
    let plan = client
        .apply_retention(ApplyRetentionRequest {
            source: Some(source.clone()),
            keep_last: 1,
            dry_run: true,
            ..Default::default()
        })
        .await
        .expect("retention")
        .into_inner();
    assert_eq!(plan.deleted_ids.len(), 2);
    let count = |c: &mut BackupServiceClient<Channel>| {
        let mut c = c.clone();
        async move {
            c.list_backups(ListBackupsRequest::default())
                .await
                .expect("list")
                .into_inner()
                .backups
                .len()
        }
    };
    assert_eq!(count(&mut client).await, 3);
    let done = client
        .apply_retention(ApplyRetentionRequest {
            source: Some(source.clone()),
            keep_last: 1,
            ..Default::default()
        })
        .await
        .expect("retention")
        .into_inner();
    assert_eq!(done.kept_ids.len(), 1);
    assert_eq!(count(&mut client).await, 1);

    client
        .delete_backup(DeleteBackupRequest {
            id: done.kept_ids[0].clone(),
            ..Default::default()
        })
        .await
        .expect("delete");
    assert_eq!(count(&mut client).await, 0);
    let gone = client
        .get_backup(GetBackupRequest {
            id: done.kept_ids[0].clone(),
            ..Default::default()
        })
        .await
        .expect_err("deleted");
    assert_eq!(gone.code(), Code::NotFound);
    shutdown.trigger();
}
