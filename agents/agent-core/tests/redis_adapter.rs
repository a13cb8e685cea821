//! The Redis adapter against real redis-server processes: one primary, two replicas.

use std::time::Duration;

use midplane_agent_core::adapter::{Adapter, ReloadRequest, Role};
use midplane_agent_core::redis::{RedisAdapter, RedisSettings};
use midplane_agent_core::testkit::{RedisProcess, replication_group};

const CONF: &str = "hz 10\nmaxmemory-policy noeviction\ndatabases 16\n";

fn adapter(p: &RedisProcess) -> RedisAdapter {
    RedisAdapter::open(RedisSettings {
        connect_address: p.address(),
        config_path: Some(p.config_path()),
        state_path: p.dir().join("agent-state.json"),
        command_timeout_ms: 1_000,
        ..Default::default()
    })
    .expect("open adapter")
}

async fn wait_role(a: &RedisAdapter, role: Role, primary: Option<&str>) {
    for _ in 0..200 {
        if let Ok(r) = a.role().await
            && r.role == role
            && (primary.is_none() || r.primary_address.as_deref() == primary)
            && (role != Role::Replica || r.primary_link_up)
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!(
        "{} never became {role:?} following {primary:?}: {:?}",
        a.address(),
        a.role().await
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn switchover_keeps_writes_and_stale_terms_are_refused() {
    let group = replication_group(CONF, 2).await.expect("redis group");
    let a: Vec<_> = group.iter().map(adapter).collect();
    let r0 = a[0].role().await.expect("role");
    assert_eq!(r0.role, Role::Primary);
    assert_eq!(r0.replicas.len(), 2);
    assert_eq!(a[1].role().await.expect("role").role, Role::Replica);

    let mut c = group[0].connect().await.expect("connect");
    for i in 0..100 {
        c.cmd(&["SET", &format!("k{i}"), "v"]).await.expect("set");
    }
    let out = a[0]
        .switchover(&group[1].address(), 1, Duration::from_secs(5))
        .await
        .expect("switchover");
    assert_eq!(out.role.role, Role::Replica);
    assert_eq!(
        out.role.primary_address.as_deref(),
        Some(&*group[1].address())
    );
    assert_eq!(a[0].term(), 1);
    a[1].promote(1).await.expect("confirm promotion");
    a[2].follow(&group[1].address(), 1).await.expect("follow");
    wait_role(&a[1], Role::Primary, None).await;
    wait_role(&a[2], Role::Replica, Some(&group[1].address())).await;
    let mut c1 = group[1].connect().await.expect("connect new primary");
    let n = c1.cmd(&["DBSIZE"]).await.expect("dbsize");
    assert_eq!(n.as_text().as_deref(), Some("100"));

    let err = a[2]
        .follow(&group[0].address(), 0)
        .await
        .expect_err("stale term must be refused");
    assert!(err.to_string().contains("stale term 0"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fenced_old_primary_follows_when_it_returns() {
    let mut group = replication_group(CONF, 2).await.expect("redis group");
    let a: Vec<_> = group.iter().map(adapter).collect();
    group[0].kill();
    a[1].promote(1).await.expect("forced promotion");
    a[2].follow(&group[1].address(), 1).await.expect("follow");
    // The old primary's agent records the fence even though Redis is down.
    let err = a[0]
        .fence(Some(&group[1].address()), 1)
        .await
        .expect_err("redis is down");
    assert_eq!(err.reason(), "Unavailable");
    group[0].restart().await.expect("old primary back");
    // Redis restarted as a primary, but its agent recorded the fence: no
    // primary claim (reported as the replica it is about to be).
    assert_eq!(a[0].role().await.expect("role").role, Role::Replica);
    let did = a[0].enforce().await.expect("enforce");
    assert!(did.is_some(), "enforcer must demote the returning primary");
    wait_role(&a[0], Role::Replica, Some(&group[1].address())).await;

    // Without a known primary the fence refuses writes.
    a[2].fence(None, 2).await.expect("fence");
    let mut c2 = group[2].connect().await.expect("connect");
    c2.cmd(&["REPLICAOF", "NO", "ONE"]).await.expect("detach");
    let err = c2.cmd(&["SET", "x", "1"]).await.expect_err("fenced");
    assert!(err.to_string().contains("NOREPLICAS"), "{err}");
    assert_eq!(a[2].role().await.expect("role").role, Role::Fenced);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reload_applies_dynamic_changes_and_refuses_static_ones() {
    let p = RedisProcess::start(CONF, None).await.expect("redis");
    let a = adapter(&p);
    let mut c = p.connect().await.expect("connect");
    let get = |v: midplane_agent_core::resp::Value| {
        v.into_array()
            .get(1)
            .and_then(midplane_agent_core::resp::Value::as_text)
            .unwrap_or_default()
    };

    let dynamic = "hz 20\nmaxmemory-policy allkeys-lru\ndatabases 16\nmaxmemory 64mb\n";
    std::fs::write(p.config_path(), dynamic).expect("write conf");
    let hash = midplane_agent_core::redis::config::file_hash(&p.config_path()).expect("hash");
    let out = a
        .reload_config(ReloadRequest {
            config_path: p.config_path(),
            content_hash: hash.clone(),
            wait_timeout: Duration::from_secs(2),
            restart_required: vec![],
        })
        .await
        .expect("reload");
    assert!(out.applied && !out.requires_restart, "{out:?}");
    let names: Vec<_> = out
        .applied_changes
        .iter()
        .map(|c| c.name.as_str())
        .collect();
    assert_eq!(names, vec!["hz", "maxmemory", "maxmemory-policy"]);
    assert_eq!(out.config_hash, hash);
    assert_eq!(
        get(c.cmd(&["CONFIG", "GET", "hz"]).await.expect("get")),
        "20"
    );
    assert_eq!(
        get(c.cmd(&["CONFIG", "GET", "maxmemory"]).await.expect("get")),
        "67108864"
    );

    // A static change with a dynamic one: nothing is applied.
    std::fs::write(
        p.config_path(),
        "hz 30\nmaxmemory-policy allkeys-lru\ndatabases 32\nmaxmemory 64mb\n",
    )
    .expect("write conf");
    let out = a
        .reload_config(ReloadRequest {
            config_path: p.config_path(),
            content_hash: String::new(),
            wait_timeout: Duration::from_secs(1),
            restart_required: vec![],
        })
        .await
        .expect("reload");
    assert!(!out.applied && out.requires_restart, "{out:?}");
    let names: Vec<_> = out
        .restart_required_changes
        .iter()
        .map(|c| c.name.as_str())
        .collect();
    assert_eq!(names, vec!["databases"]);
    assert_eq!(
        get(c.cmd(&["CONFIG", "GET", "hz"]).await.expect("get")),
        "20"
    );
    assert_eq!(out.config_hash, hash, "the running hash is unchanged");

    // A hash the file never reaches: the wait times out naming both hashes.
    let err = a
        .reload_config(ReloadRequest {
            config_path: p.config_path(),
            content_hash: "00".repeat(32),
            wait_timeout: Duration::from_millis(300),
            restart_required: vec![],
        })
        .await
        .expect_err("hash never matches");
    assert!(err.to_string().contains(&"00".repeat(32)), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_waits_for_the_supervised_server_to_come_back() {
    let p = RedisProcess::start(CONF, None).await.expect("redis");
    let a = adapter(&p);
    let before = a.stats().await.expect("stats").run_id;
    // A stand-in for the kubelet: start redis-server again when it exits.
    let p = std::sync::Arc::new(tokio::sync::Mutex::new(p));
    let sup = p.clone();
    let supervisor = tokio::spawn(async move {
        loop {
            {
                let mut g = sup.lock().await;
                if !g.running() {
                    g.restart().await.expect("restart redis-server");
                    return;
                }
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    });
    a.restart(true, Duration::from_secs(10))
        .await
        .expect("restart");
    tokio::time::timeout(Duration::from_secs(20), supervisor)
        .await
        .expect("redis-server restarted within 20 s")
        .expect("supervisor");
    let after = a.stats().await.expect("stats").run_id;
    assert_ne!(before, after, "a new redis-server process answers");

    // Unsupervised: the stop succeeds but the restart reports it never returned.
    let err = a
        .restart(false, Duration::from_millis(500))
        .await
        .expect_err("nobody restarts it");
    assert_eq!(err.reason(), "Timeout", "{err}");
    assert!(!p.lock().await.running());
}
