//! The real lifecycle-agent binary beside a real redis-server: it reports the
//! pod's life over WatchLifecycle and, on SIGTERM, stops Redis gracefully and
//! publishes stopping then stopped before exiting cleanly.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use midplane_agent_core::testkit::{RedisProcess, free_port};
use midplane_proto::agent::agent_client::AgentClient;
use midplane_proto::agent::health_check_response::State;
use midplane_proto::agent::lifecycle_event::Phase;
use midplane_proto::agent::{GetStatusRequest, HealthCheckRequest, WatchLifecycleRequest};
use midplane_runtime::auth::BearerToken;
use tokio_stream::StreamExt;

struct Agent(std::process::Child);

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_stops_redis_gracefully_and_reports_each_phase() {
    let mut redis = RedisProcess::start("hz 10\n", None)
        .await
        .expect("redis-server");
    let dir = tempfile::tempdir().expect("tempdir");
    let token = dir.path().join("token");
    std::fs::write(&token, "tok\n").expect("token");
    let grpc_port = free_port();
    let admin_port = free_port();
    let config = dir.path().join("lifecycle-agent.yaml");
    std::fs::write(
        &config,
        format!(
            "server:\n  grpc_addr: 127.0.0.1:{grpc_port}\n  admin_addr: 127.0.0.1:{admin_port}\n  auth_token_file: {}\n\
instance: cache-0-0\n\
redis:\n  connect_address: {}\n  config_path: {}\n  state_path: {}\n\
lifecycle:\n  data_dir: {}\n  probe_interval_ms: 100\n  stop_middleware_on_shutdown: true\n  stop_timeout_ms: 5000\n",
            token.display(),
            redis.address(),
            redis.config_path().display(),
            redis.dir().join("agent-state.json").display(),
            redis.dir().display(),
        ),
    )
    .expect("config");
    let mut agent = Agent(
        Command::new(env!("CARGO_BIN_EXE_lifecycle-agent"))
            .env("MIDPLANE_CONFIG", &config)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .spawn()
            .expect("spawn lifecycle-agent"),
    );

    let endpoint = tonic::transport::Endpoint::from_shared(format!("http://127.0.0.1:{grpc_port}"))
        .expect("endpoint");
    let started = Instant::now();
    let channel = loop {
        if let Ok(ch) = endpoint.connect().await {
            break ch;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "agent never listened"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let mut client =
        AgentClient::with_interceptor(channel, BearerToken::new("tok").expect("token"));
    let mut events = client
        .watch_lifecycle(WatchLifecycleRequest {})
        .await
        .expect("WatchLifecycle")
        .into_inner();
    let mut seen = Vec::new();
    while seen.last() != Some(&Phase::Ready) {
        let ev = tokio::time::timeout(Duration::from_secs(5), events.next())
            .await
            .expect("an event within 5 s")
            .expect("stream open")
            .expect("event");
        seen.push(Phase::try_from(ev.phase).expect("phase"));
    }
    let health = client
        .health_check(HealthCheckRequest {})
        .await
        .expect("HealthCheck")
        .into_inner();
    assert_eq!(health.state, State::Serving as i32, "{health:?}");
    let status = client
        .get_status(GetStatusRequest {})
        .await
        .expect("GetStatus")
        .into_inner();
    assert!(
        status.process_up && status.middleware_reachable && status.ready,
        "{status:?}"
    );
    assert_eq!(status.instance, "cache-0-0");
    assert!(status.disk_total_bytes >= status.disk_free_bytes && status.disk_free_bytes > 0);
    assert_eq!(
        status.config_hash.len(),
        64,
        "sha256 of the file Redis started from"
    );

    let pid = agent.0.id().to_string();
    let killed = Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("kill");
    assert!(killed.success());
    loop {
        match tokio::time::timeout(Duration::from_secs(10), events.next())
            .await
            .expect("stream moves within 10 s")
        {
            Some(Ok(ev)) => seen.push(Phase::try_from(ev.phase).expect("phase")),
            Some(Err(e)) => panic!("stream error {e}"),
            None => break,
        }
    }
    let tail: Vec<_> = seen.iter().rev().take(2).rev().copied().collect();
    assert_eq!(tail, vec![Phase::Stopping, Phase::Stopped], "{seen:?}");

    let exited = Instant::now();
    let status = loop {
        if let Some(s) = agent.0.try_wait().expect("wait") {
            break s;
        }
        assert!(
            exited.elapsed() < Duration::from_secs(10),
            "agent did not exit"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(status.success(), "agent exit status {status}");
    let gone = Instant::now();
    while redis.running() {
        assert!(
            gone.elapsed() < Duration::from_secs(5),
            "redis-server still running"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
