//! Snapshot through the gateway against a real Redis group (one primary, two
//! replicas, an agent pair per pod): the gateway picks a healthy replica, its
//! agent keeps a snapshot that loads into a fresh redis-server with every
//! key; named, unknown and unreachable instances answer as documented.

mod support;

use std::time::{Duration, Instant};

use midplane_agent_core::testkit::RedisProcess;
use midplane_proto::agent::Role;
use midplane_proto::agent::agent_client::AgentClient;
use midplane_proto::gateway as gw;
use midplane_runtime::auth::BearerToken;
use support::*;

const KEYS: usize = 1000;

async fn dbsize(p: &RedisProcess) -> String {
    let mut c = p.connect().await.expect("connect");
    c.cmd(&["DBSIZE"])
        .await
        .expect("dbsize")
        .as_text()
        .unwrap_or_default()
}

fn request(instance: &str, id: &str) -> gw::GroupSnapshotRequest {
    gw::GroupSnapshotRequest {
        group: group_ref(),
        instance: instance.into(),
        snapshot_id: id.into(),
        timeout_ms: 20_000,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snapshot_on_the_best_replica_loads_with_every_key() {
    let mut cluster = Cluster::start(2).await;
    let mut client = cluster.client().await;
    let mut c = cluster.pods[0].redis.connect().await.expect("connect");
    for i in 0..KEYS {
        c.cmd(&["SET", &format!("k{i}"), "v"]).await.expect("set");
    }
    let started = Instant::now();
    for p in &cluster.pods[1..] {
        while dbsize(&p.redis).await != KEYS.to_string() {
            assert!(started.elapsed() < Duration::from_secs(10), "replication");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    let started = Instant::now();
    let out = client
        .snapshot(request("", "backup-1"))
        .await
        .expect("Snapshot")
        .into_inner();
    eprintln!("gateway Snapshot of {KEYS} keys: {:?}", started.elapsed());
    let target = out.target.expect("target");
    let snap = out.snapshot.expect("snapshot");
    let role = snap.role.expect("role");
    assert_ne!(target.instance, "cache-0-0", "a replica, not the primary");
    assert_eq!(role.role, Role::Replica as i32);
    assert!(
        role.primary_link_up && role.replication_offset > 0,
        "{role:?}"
    );
    assert_eq!(role.instance, target.instance);
    assert_eq!(out.skipped.len(), 2, "{:?}", out.skipped);
    assert!(
        out.skipped
            .iter()
            .any(|s| s == "cache-0-0: primary; a healthy replica is preferred"),
        "{:?}",
        out.skipped
    );
    assert_eq!(snap.path, ".midplane/snapshots/backup-1");
    assert_eq!(snap.files, vec!["dump.rdb".to_string()]);
    let file = cluster
        .pod(&target.instance)
        .redis
        .dir()
        .join(&snap.path)
        .join("dump.rdb");
    assert_eq!(std::fs::metadata(&file).expect("stat").len(), snap.bytes);
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::copy(&file, dir.path().join("dump.rdb")).expect("copy");
    let fresh = RedisProcess::start_in(dir, CONF, &[]).await.expect("fresh");
    assert_eq!(dbsize(&fresh).await, KEYS.to_string());

    // A named instance: the primary, as asked.
    let out = client
        .snapshot(request("cache-0-0", "backup-2"))
        .await
        .expect("Snapshot")
        .into_inner();
    assert_eq!(
        out.snapshot.and_then(|s| s.role).map(|r| r.role),
        Some(Role::Primary as i32)
    );
    assert!(out.skipped.is_empty());

    let err = client
        .snapshot(request("cache-0-9", "backup-3"))
        .await
        .expect_err("not a pod of the group");
    assert_eq!(err.code(), tonic::Code::NotFound, "{err:?}");
    // The agent's INVALID_ARGUMENT, passed through.
    let err = client
        .snapshot(request("cache-0-1", "Backup_3"))
        .await
        .expect_err("invalid id");
    assert_eq!(err.code(), tonic::Code::InvalidArgument, "{err:?}");
    assert!(err.message().contains("cache-0-1"), "{err:?}");

    // Agent 1 does not serve it.
    let mut agent1 = AgentClient::with_interceptor(
        connect(cluster.pods[0].lifecycle_addr).await,
        BearerToken::new(TOKEN).expect("token"),
    );
    let err = agent1
        .snapshot(midplane_proto::agent::SnapshotRequest {
            snapshot_id: "x".into(),
            timeout_ms: 0,
        })
        .await
        .expect_err("agent 1");
    assert_eq!(err.code(), tonic::Code::Unimplemented, "{err:?}");

    for p in &mut cluster.pods {
        p.redis.kill();
    }
    let err = client
        .snapshot(request("", "backup-4"))
        .await
        .expect_err("nobody answers");
    assert_eq!(err.code(), tonic::Code::FailedPrecondition, "{err:?}");
    assert!(
        err.message().contains("shop/cache-0") && err.message().contains("no instance answered"),
        "{err:?}"
    );
}
