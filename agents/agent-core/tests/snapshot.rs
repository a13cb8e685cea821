//! Snapshot and prepare-data against real redis-server processes: the
//! snapshot file of a primary and of a replica loads into a fresh server with
//! every key; saves already running (and AOF rewrites) are waited for; a
//! restored RDB loads into a server with `appendonly yes` once prepare-data
//! ran.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use midplane_agent_core::adapter::{Adapter, Role};
use midplane_agent_core::redis::prepare::prepare_data;
use midplane_agent_core::redis::{RedisAdapter, RedisSettings};
use midplane_agent_core::resp::parse_info;
use midplane_agent_core::testkit::{RedisProcess, replication_group};

const CONF: &str = "hz 10\n";
const KEYS: usize = 1000;

fn adapter(p: &RedisProcess) -> RedisAdapter {
    RedisAdapter::open(RedisSettings {
        connect_address: p.address(),
        config_path: Some(p.config_path()),
        state_path: p.dir().join("agent-state.json"),
        command_timeout_ms: 2_000,
        ..Default::default()
    })
    .expect("open adapter")
}

async fn text(p: &RedisProcess, args: &[&str]) -> String {
    let mut c = p.connect().await.expect("connect");
    c.cmd(args)
        .await
        .expect("command")
        .as_text()
        .unwrap_or_default()
}

async fn write_keys(p: &RedisProcess, n: usize) {
    let mut c = p.connect().await.expect("connect");
    for i in 0..n {
        c.cmd(&["SET", &format!("k{i}"), &format!("v{i}")])
            .await
            .expect("set");
    }
}

async fn wait_dbsize(p: &RedisProcess, n: usize) {
    let started = Instant::now();
    while text(p, &["DBSIZE"]).await != n.to_string() {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{} never reached {n} keys",
            p.address()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A fresh redis-server whose data directory holds `rdb` as dump.rdb.
async fn load(rdb: &Path, config: &str, extra: &[&str]) -> RedisProcess {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::copy(rdb, dir.path().join("dump.rdb")).expect("copy rdb");
    RedisProcess::start_in(dir, config, extra)
        .await
        .expect("fresh redis-server")
}

async fn persistence(p: &RedisProcess, field: &str) -> String {
    let info = parse_info(&text(p, &["INFO", "persistence"]).await);
    info.get(field).cloned().unwrap_or_default()
}

async fn rdb_saves(p: &RedisProcess) -> i64 {
    persistence(p, "rdb_saves")
        .await
        .parse()
        .expect("rdb_saves")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snapshots_of_primary_and_replica_load_with_every_key() {
    let group = replication_group(CONF, 1).await.expect("redis group");
    let (primary, replica) = (adapter(&group[0]), adapter(&group[1]));
    primary.promote(3).await.expect("term 3 on the primary");
    replica
        .follow(&group[0].address(), 3)
        .await
        .expect("term 3 on the replica");
    write_keys(&group[0], KEYS).await;
    wait_dbsize(&group[1], KEYS).await;

    for (p, a, role, id) in [
        (&group[0], &primary, Role::Primary, "b-primary"),
        (&group[1], &replica, Role::Replica, "b-replica"),
    ] {
        let out = a
            .snapshot(id, Duration::from_secs(20))
            .await
            .expect("snapshot");
        assert_eq!(out.role.role, role);
        assert_eq!(out.role.term, 3);
        assert!(
            out.role.replication_offset > 0,
            "offset {}",
            out.role.replication_offset
        );
        assert_eq!(role == Role::Replica, out.role.primary_link_up);
        assert_eq!(out.path, format!(".midplane/snapshots/{id}"));
        assert_eq!(out.files, vec!["dump.rdb".to_string()]);
        let file = p.dir().join(&out.path).join("dump.rdb");
        assert_eq!(std::fs::metadata(&file).expect("stat").len(), out.bytes);
        assert!(out.bytes > 1000, "{} bytes for {KEYS} keys", out.bytes);
        let fresh = load(&file, CONF, &[]).await;
        assert_eq!(text(&fresh, &["DBSIZE"]).await, KEYS.to_string());
        assert_eq!(text(&fresh, &["GET", "k999"]).await, "v999");
    }

    // A later save replaces dump.rdb; the snapshot keeps what it had.
    let file = group[0]
        .dir()
        .join(".midplane/snapshots/b-primary/dump.rdb");
    let kept = std::fs::read(&file).expect("read snapshot");
    write_keys(&group[0], KEYS + 10).await;
    text(&group[0], &["SAVE"]).await;
    assert_ne!(
        std::fs::read(group[0].dir().join("dump.rdb")).expect("read dump"),
        kept
    );
    assert_eq!(std::fs::read(&file).expect("read snapshot"), kept);

    let err = primary
        .snapshot("../x", Duration::from_secs(1))
        .await
        .expect_err("id outside [a-z0-9-]");
    assert_eq!(err.reason(), "Invalid", "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_save_in_progress_is_waited_for_and_calls_run_one_at_a_time() {
    let p = RedisProcess::start(CONF, None).await.expect("redis");
    let a = Arc::new(adapter(&p));
    write_keys(&p, KEYS).await;
    // 1000 keys at 500 µs each: every save takes about half a second.
    text(&p, &["CONFIG", "SET", "rdb-key-save-delay", "500"]).await;
    let before = rdb_saves(&p).await;
    assert_eq!(text(&p, &["BGSAVE"]).await, "Background saving started");
    let started = Instant::now();
    let calls = ["s-1", "s-2"].map(|id| {
        let a = a.clone();
        tokio::spawn(async move { a.snapshot(id, Duration::from_secs(20)).await })
    });
    for c in calls {
        let out = c.await.expect("join").expect("snapshot");
        let file = p.dir().join(&out.path).join("dump.rdb");
        let fresh = load(&file, CONF, &[]).await;
        assert_eq!(text(&fresh, &["DBSIZE"]).await, KEYS.to_string());
    }
    let took = started.elapsed();
    // The running save, then one save per call, never shared.
    assert_eq!(rdb_saves(&p).await - before, 3);
    assert!(took >= Duration::from_millis(1000), "took {took:?}");
    eprintln!("two snapshots behind a running save: {took:?}");

    let err = a
        .snapshot("s-3", Duration::from_millis(100))
        .await
        .expect_err("a save takes longer");
    assert_eq!(err.reason(), "Timeout", "{err}");

    // An AOF rewrite running: BGSAVE is scheduled behind it, and waited for.
    let started = Instant::now();
    while persistence(&p, "rdb_bgsave_in_progress").await != "0" {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "save never ended"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    text(&p, &["CONFIG", "SET", "appendonly", "yes"]).await;
    assert_eq!(persistence(&p, "aof_rewrite_in_progress").await, "1");
    let before = rdb_saves(&p).await;
    let out = a
        .snapshot("s-4", Duration::from_secs(20))
        .await
        .expect("snapshot behind an AOF rewrite");
    assert_eq!(persistence(&p, "aof_rewrite_in_progress").await, "0");
    assert_eq!(rdb_saves(&p).await - before, 1);
    let fresh = load(&p.dir().join(&out.path).join("dump.rdb"), CONF, &[]).await;
    assert_eq!(text(&fresh, &["DBSIZE"]).await, KEYS.to_string());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prepare_data_makes_an_aof_server_load_a_restored_rdb() {
    let source = RedisProcess::start(CONF, None).await.expect("redis");
    write_keys(&source, KEYS).await;
    text(&source, &["SAVE"]).await;
    let rdb = source.dir().join("dump.rdb");

    // Without it, Redis with appendonly yes ignores dump.rdb.
    let aof = "appendonly yes\n";
    let ignored = load(&rdb, aof, &["--appendonly", "yes"]).await;
    assert_eq!(text(&ignored, &["DBSIZE"]).await, "0");

    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::copy(&rdb, dir.path().join("dump.rdb")).expect("copy");
    let conf = dir.path().join("redis.conf");
    std::fs::write(&conf, aof).expect("conf");
    let line = prepare_data(dir.path(), &conf).expect("prepare-data");
    assert!(line.contains("moved"), "{line}");
    assert!(!dir.path().join("dump.rdb").exists());
    let loaded = RedisProcess::start_in(dir, aof, &["--appendonly", "yes"])
        .await
        .expect("redis with appendonly yes");
    assert_eq!(text(&loaded, &["DBSIZE"]).await, KEYS.to_string());
    assert_eq!(text(&loaded, &["GET", "k0"]).await, "v0");
    let manifest =
        std::fs::read_to_string(loaded.dir().join("appendonlydir/appendonly.aof.manifest"))
            .expect("manifest");
    assert!(
        manifest.contains("appendonly.aof.1.base.rdb") && manifest.contains("type i"),
        "Redis added its incremental file: {manifest}"
    );

    // appendonly no: nothing changes and Redis loads dump.rdb itself.
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::copy(&rdb, dir.path().join("dump.rdb")).expect("copy");
    let conf = dir.path().join("redis.conf");
    std::fs::write(&conf, "appendonly no\n").expect("conf");
    let listing = |d: &Path| {
        let mut v: Vec<_> = std::fs::read_dir(d)
            .expect("read dir")
            .map(|e| e.expect("entry").file_name())
            .collect();
        v.sort();
        v
    };
    let before = listing(dir.path());
    let line = prepare_data(dir.path(), &conf).expect("prepare-data");
    assert!(line.contains("nothing to do"), "{line}");
    assert_eq!(listing(dir.path()), before);
    let plain = RedisProcess::start_in(dir, "appendonly no\n", &[])
        .await
        .expect("redis");
    assert_eq!(text(&plain, &["DBSIZE"]).await, KEYS.to_string());
}
