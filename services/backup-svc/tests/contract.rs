//! BackupService as an outside team's generated client sees it: the
//! backup-svc binary, called over plain HTTP/2 with no server internals.
//! Every method's error codes and google.rpc details as backup.proto
//! documents them (the Backup resource calls: without the controller), Verify's
//! `ok = false` findings, health by service name,
//! reflection v1 and v1alpha, and a start with MIDPLANE_KUBECONFIG set.

use midplane_proto::backup::backup_service_client::BackupServiceClient;
use midplane_proto::backup::{self as pb, BackupPhase};
use midplane_proto::common::ObjectRef;
use midplane_runtime::testing::SpawnedService;
use midplane_runtime::testing::contract::{
    PlainTransport, assert_error, assert_health, assert_reflection, has_retry_info,
    plain_transport, resource,
};
use std::path::Path;
use tonic::Code;

const SERVICE: &str = "midplane.backup.v1.BackupService";

fn write_key(path: &Path, byte: u8) -> String {
    std::fs::write(path, hex::encode([byte; 32])).expect("key");
    format!("file:{}", path.display())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_method_answers_its_documented_errors() {
    let work = tempfile::tempdir().expect("tempdir");
    let store = work.path().join("store");
    let data = work.path().join("data");
    let source = data.join("shop/cache-0/cache-0-0");
    std::fs::create_dir_all(&source).expect("source dir");
    std::fs::write(source.join("dump.rdb"), b"REDIS0011 some data").expect("data");
    let key = write_key(&work.path().join("key"), 7);
    let wrong_key = write_key(&work.path().join("wrong"), 8);
    let storage = format!("file://{}", store.display());
    let closed_endpoint = format!(
        "http://127.0.0.1:{}",
        midplane_runtime::testing::free_port().expect("port")
    );

    let svc = SpawnedService::start(
        env!("CARGO_BIN_EXE_backup-svc"),
        &[
            ("MIDPLANE_BACKUP__DEFAULT_STORAGE", storage.as_str()),
            ("MIDPLANE_BACKUP__DEFAULT_KEY_REF", key.as_str()),
            ("MIDPLANE_BACKUP__DATA_ROOT", data.to_str().expect("utf8")),
            ("MIDPLANE_SERVER__LOG__LEVEL", "warn"),
            ("MINIO_ACCESS_KEY", "contract-test"),
            ("MINIO_SECRET_KEY", "contract-test-secret"),
            // The CLI's variable: warned about, not fatal.
            ("MIDPLANE_KUBECONFIG", "/nonexistent/kubeconfig"),
        ],
    )
    .expect("start backup-svc");
    assert_health(svc.grpc_addr, &[SERVICE]).await;
    assert_reflection(svc.grpc_addr, None, &[SERVICE]).await;
    let (transport, origin) = plain_transport(svc.grpc_addr);
    let mut api: BackupServiceClient<PlainTransport> =
        BackupServiceClient::with_origin(transport, origin);
    let group = Some(ObjectRef {
        namespace: "shop".into(),
        name: "cache-0".into(),
    });

    // CreateBackup
    let err = api
        .create_backup(pb::CreateBackupRequest::default())
        .await
        .expect_err("nothing to back up");
    assert_error(
        &err,
        Code::InvalidArgument,
        "REQUEST_INVALID",
        &["source_path"],
    );
    let err = api
        .create_backup(pb::CreateBackupRequest {
            source: Some(ObjectRef {
                namespace: "shop".into(),
                name: "..".into(),
            }),
            instance: "cache-0-0".into(),
            ..Default::default()
        })
        .await
        .expect_err("a name that walks paths");
    assert_error(
        &err,
        Code::InvalidArgument,
        "REQUEST_INVALID",
        &["source.name"],
    );
    let err = api
        .create_backup(pb::CreateBackupRequest {
            source: group.clone(),
            instance: "cache-0-0".into(),
            storage: "nosuch://bucket".into(),
            ..Default::default()
        })
        .await
        .expect_err("unknown storage scheme");
    assert_error(&err, Code::InvalidArgument, "STORAGE_INVALID", &["storage"]);
    let err = api
        .create_backup(pb::CreateBackupRequest {
            source: group.clone(),
            instance: "cache-0-0".into(),
            key_ref: "vault:thing".into(),
            ..Default::default()
        })
        .await
        .expect_err("malformed key reference");
    assert_error(&err, Code::InvalidArgument, "REQUEST_INVALID", &["key_ref"]);
    let err = api
        .create_backup(pb::CreateBackupRequest {
            source: group.clone(),
            instance: "cache-0-0".into(),
            key_ref: "file:/nonexistent/key".into(),
            ..Default::default()
        })
        .await
        .expect_err("no key there");
    assert_error(&err, Code::FailedPrecondition, "KEY_UNAVAILABLE", &[]);
    let err = api
        .create_backup(pb::CreateBackupRequest {
            source_path: work.path().join("missing").display().to_string(),
            ..Default::default()
        })
        .await
        .expect_err("no such directory");
    assert_error(&err, Code::FailedPrecondition, "PATH_UNUSABLE", &[]);
    let backup = api
        .create_backup(pb::CreateBackupRequest {
            source: group.clone(),
            instance: "cache-0-0".into(),
            ..Default::default()
        })
        .await
        .expect("backup")
        .into_inner();
    assert_eq!(backup.phase(), BackupPhase::Completed);
    let id = backup.id.clone();

    // GetBackup and DeleteBackup
    for bad in ["", "../etc"] {
        let err = api
            .get_backup(pb::GetBackupRequest {
                id: bad.into(),
                storage: String::new(),
            })
            .await
            .expect_err("bad id");
        assert_error(&err, Code::InvalidArgument, "REQUEST_INVALID", &["id"]);
    }
    let err = api
        .get_backup(pb::GetBackupRequest {
            id: "20260101T000000Z-nope".into(),
            storage: String::new(),
        })
        .await
        .expect_err("missing");
    assert_error(&err, Code::NotFound, "BACKUP_NOT_FOUND", &[]);
    assert_eq!(
        resource(&err),
        Some(("Backup".to_string(), "20260101T000000Z-nope".to_string()))
    );
    let err = api
        .delete_backup(pb::DeleteBackupRequest {
            id: "20260101T000000Z-nope".into(),
            storage: String::new(),
        })
        .await
        .expect_err("missing");
    assert_error(&err, Code::NotFound, "BACKUP_NOT_FOUND", &[]);

    // Verify: findings are answers, the rest are errors.
    let v = api
        .verify(pb::VerifyRequest {
            id: id.clone(),
            storage: String::new(),
            key_ref: wrong_key.clone(),
        })
        .await
        .expect("a wrong key is a finding")
        .into_inner();
    assert!(!v.ok);
    assert_eq!(v.error.expect("finding").reason, "WRONG_KEY");
    let err = api
        .verify(pb::VerifyRequest {
            id: "20260101T000000Z-nope".into(),
            storage: String::new(),
            key_ref: String::new(),
        })
        .await
        .expect_err("missing");
    assert_error(&err, Code::NotFound, "BACKUP_NOT_FOUND", &[]);
    let err = api
        .verify(pb::VerifyRequest {
            id: id.clone(),
            storage: String::new(),
            key_ref: "file:/nonexistent/key".into(),
        })
        .await
        .expect_err("no key there");
    assert_error(&err, Code::FailedPrecondition, "KEY_UNAVAILABLE", &[]);

    // Restore
    let err = api
        .restore(pb::RestoreRequest {
            id: id.clone(),
            ..Default::default()
        })
        .await
        .expect_err("no target");
    assert_error(
        &err,
        Code::InvalidArgument,
        "REQUEST_INVALID",
        &["target_path"],
    );
    let target = work.path().join("restored");
    let err = api
        .restore(pb::RestoreRequest {
            id: id.clone(),
            target_path: target.display().to_string(),
            key_ref: wrong_key,
            ..Default::default()
        })
        .await
        .expect_err("wrong key");
    assert_error(&err, Code::FailedPrecondition, "WRONG_KEY", &[]);
    assert!(!target.exists(), "the target is untouched");

    // A corrupted archive: Verify finds it, Restore refuses it.
    let object = std::fs::read_dir(store.join(&id))
        .expect("backup folder")
        .map(|e| e.expect("entry").path())
        .find(|p| p.to_string_lossy().contains("archive"))
        .expect("archive object");
    let mut bytes = std::fs::read(&object).expect("archive");
    let at = bytes.len() / 2;
    bytes[at] ^= 0xff;
    std::fs::write(&object, bytes).expect("corrupt");
    let v = api
        .verify(pb::VerifyRequest {
            id: id.clone(),
            ..Default::default()
        })
        .await
        .expect("corruption is a finding")
        .into_inner();
    assert!(!v.ok);
    assert_eq!(v.error.expect("finding").reason, "BACKUP_CORRUPT");
    let err = api
        .restore(pb::RestoreRequest {
            id: id.clone(),
            target_path: target.display().to_string(),
            ..Default::default()
        })
        .await
        .expect_err("corrupt");
    assert_error(&err, Code::DataLoss, "BACKUP_CORRUPT", &[]);

    // A manifest that does not parse: listing the storage is DATA_LOSS.
    let fake = store.join("20260101T000000Z-broken");
    std::fs::create_dir_all(&fake).expect("folder");
    std::fs::write(fake.join("manifest.json"), b"{ not json").expect("manifest");
    let err = api
        .list_backups(pb::ListBackupsRequest::default())
        .await
        .expect_err("broken manifest");
    assert_error(&err, Code::DataLoss, "BACKUP_CORRUPT", &[]);
    let err = api
        .apply_retention(pb::ApplyRetentionRequest {
            keep_last: 1,
            dry_run: true,
            ..Default::default()
        })
        .await
        .expect_err("broken manifest");
    assert_error(&err, Code::DataLoss, "BACKUP_CORRUPT", &[]);
    std::fs::remove_dir_all(&fake).expect("clean up");

    // ListBackups and ApplyRetention name the storage.
    let err = api
        .list_backups(pb::ListBackupsRequest {
            source: None,
            storage: "nosuch://bucket".into(),
        })
        .await
        .expect_err("unknown storage");
    assert_error(&err, Code::InvalidArgument, "STORAGE_INVALID", &["storage"]);
    let err = api
        .apply_retention(pb::ApplyRetentionRequest {
            storage: "nosuch://bucket".into(),
            ..Default::default()
        })
        .await
        .expect_err("unknown storage");
    assert_error(&err, Code::InvalidArgument, "STORAGE_INVALID", &["storage"]);

    // Object storage that does not answer: UNAVAILABLE, worth a retry.
    let err = api
        .list_backups(pb::ListBackupsRequest {
            source: None,
            storage: format!("minio://backups/midplane?endpoint={closed_endpoint}"),
        })
        .await
        .expect_err("storage down");
    assert_error(&err, Code::Unavailable, "STORAGE_UNAVAILABLE", &[]);
    assert!(has_retry_info(&err), "{err:?}");

    // Backup resources need the Backup controller, which this backup-svc runs without.
    let err = api
        .request_app_backup(pb::RequestAppBackupRequest {
            namespace: "shop".into(),
            app: "cache".into(),
            component: "redis".into(),
            ..Default::default()
        })
        .await
        .expect_err("no controller");
    assert_error(
        &err,
        Code::FailedPrecondition,
        "CONTROLLER_NOT_CONFIGURED",
        &[],
    );
    let err = api
        .get_app_backup(pb::GetAppBackupRequest { r#ref: group })
        .await
        .expect_err("no controller");
    assert_error(
        &err,
        Code::FailedPrecondition,
        "CONTROLLER_NOT_CONFIGURED",
        &[],
    );
    let err = api
        .list_app_backups(pb::ListAppBackupsRequest::default())
        .await
        .expect_err("no controller");
    assert_error(
        &err,
        Code::FailedPrecondition,
        "CONTROLLER_NOT_CONFIGURED",
        &[],
    );
}
