//! CreateBackup under a deadline (the caller's, or the server's `request_timeout_ms`): a
//! backup longer than the deadline is answered RUNNING before it, keeps going, and GetBackup
//! then reports it complete. A backup that fits is answered complete, as before.

mod common;

use midplane_backup_svc::{BackupSettings, BackupSvc};
use midplane_proto::backup::backup_service_client::BackupServiceClient;
use midplane_proto::backup::backup_service_server::BackupServiceServer;
use midplane_proto::backup::{BackupPhase, CreateBackupRequest, GetBackupRequest};
use midplane_runtime::testing::eventually;
use midplane_runtime::{ServerConfig, Service};
use std::time::{Duration, Instant};

/// Incompressible bytes (xorshift), so the backup takes real time.
fn noise(len: usize, mut x: u64) -> Vec<u8> {
    let mut v = Vec::with_capacity(len);
    while v.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        v.extend_from_slice(&x.to_le_bytes());
    }
    v.truncate(len);
    v
}

async fn serve(
    svc: BackupSvc,
    config: ServerConfig,
) -> BackupServiceClient<tonic::transport::Channel> {
    let service = Service::for_test("backup-svc", config);
    let admin = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let grpc = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = grpc.local_addr().expect("addr");
    tokio::spawn(service.serve_on(
        admin,
        grpc,
        midplane_runtime::Routes::new(BackupServiceServer::new(svc)),
    ));
    BackupServiceClient::connect(format!("http://{addr}"))
        .await
        .expect("connect")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_longer_than_the_deadline_answers_running_and_completes() {
    let work = tempfile::tempdir().expect("tempdir");
    let src = work.path().join("src");
    std::fs::create_dir_all(&src).expect("mkdir");
    for i in 0..4 {
        std::fs::write(src.join(format!("f{i}")), noise(2 << 20, 0x9e37_79b9 + i)).expect("w");
    }
    let key = work.path().join("key");
    std::fs::write(&key, [5u8; 32]).expect("key");
    let settings = BackupSettings {
        default_storage: Some(format!("file://{}", work.path().join("store").display())),
        default_key_ref: Some(format!("file:{}", key.display())),
        compression_level: 9,
        deadline_margin_ms: 150,
        ..Default::default()
    };
    let svc = BackupSvc::new(settings.clone());
    let mut client = serve(svc.clone(), ServerConfig::default()).await;

    let mut req = tonic::Request::new(CreateBackupRequest {
        source_path: src.display().to_string(),
        ..Default::default()
    });
    req.set_timeout(Duration::from_millis(400));
    let asked = Instant::now();
    let running = client
        .create_backup(req)
        .await
        .expect("answered before the deadline")
        .into_inner();
    assert!(
        asked.elapsed() < Duration::from_millis(400),
        "{:?}",
        asked.elapsed()
    );
    assert_eq!(running.phase(), BackupPhase::Running);
    assert!(!running.id.is_empty());
    assert!(running.started_at.is_some());

    let polled = client
        .get_backup(GetBackupRequest {
            id: running.id.clone(),
            ..Default::default()
        })
        .await
        .expect("get running")
        .into_inner();
    assert_eq!(
        polled.phase(),
        BackupPhase::Running,
        "still running right after"
    );

    let done = eventually("the backup to complete", 120, || {
        let (mut client, id) = (client.clone(), running.id.clone());
        async move {
            let b = client
                .get_backup(GetBackupRequest {
                    id,
                    ..Default::default()
                })
                .await
                .ok()?
                .into_inner();
            (b.phase() == BackupPhase::Completed).then_some(b)
        }
    })
    .await;
    assert_eq!(done.id, running.id);
    assert_eq!(done.source_bytes, 4 * (2 << 20));
    assert_eq!(done.object_sha256.len(), 64);

    // Without a deadline the call still waits for the whole backup, as before.
    let whole = client
        .create_backup(CreateBackupRequest {
            source_path: src.display().to_string(),
            ..Default::default()
        })
        .await
        .expect("create without deadline")
        .into_inner();
    assert_eq!(whole.phase(), BackupPhase::Completed);

    // A server whose own deadline is shorter than the backup: the caller sets none, yet gets
    // RUNNING instead of the server's CANCELLED, and the backup completes.
    let short = ServerConfig {
        request_timeout_ms: 400,
        ..ServerConfig::default()
    };
    let svc = BackupSvc::new(settings).with_server_timeout(Duration::from_millis(400));
    let mut client = serve(svc, short).await;
    let running = client
        .create_backup(CreateBackupRequest {
            source_path: src.display().to_string(),
            ..Default::default()
        })
        .await
        .expect("answered before the server's deadline")
        .into_inner();
    assert_eq!(running.phase(), BackupPhase::Running);
    eventually("the second backup to complete", 120, || {
        let (mut client, id) = (client.clone(), running.id.clone());
        async move {
            let b = client
                .get_backup(GetBackupRequest {
                    id,
                    ..Default::default()
                })
                .await
                .ok()?
                .into_inner();
            (b.phase() == BackupPhase::Completed).then_some(())
        }
    })
    .await;
}
