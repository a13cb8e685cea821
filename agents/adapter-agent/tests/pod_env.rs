//! The real adapter-agent binary configured the way the Redis plugin's pod
//! template configures it (flat MIDPLANE_* env, `--adapter redis`), beside a
//! real redis-server: it answers GetRole with auth and serves the exporter.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use midplane_agent_core::testkit::{RedisProcess, free_port};
use midplane_proto::agent::agent_client::AgentClient;
use midplane_proto::agent::{GetRoleRequest, Role};
use midplane_runtime::auth::BearerToken;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

struct Agent(std::process::Child);

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runs_from_the_pod_template_env() {
    let redis = RedisProcess::start("hz 10\n", None)
        .await
        .expect("redis-server");
    let dir = tempfile::tempdir().expect("tempdir");
    let token = dir.path().join("token");
    std::fs::write(&token, "tok\n").expect("token");
    let (grpc, admin, exporter) = (free_port(), free_port(), free_port());
    let _agent = Agent(
        Command::new(env!("CARGO_BIN_EXE_adapter-agent"))
            .args(["--adapter", "redis"])
            .env("POD_NAME", "cache-0-0-abc")
            .env("POD_IP", "127.0.0.1")
            .env("MIDPLANE_INSTANCE", "cache-0-0")
            .env("MIDPLANE_GROUP", "shop-cache-0")
            .env("MIDPLANE_MIDDLEWARE_ADDR", redis.address())
            .env("MIDPLANE_CONFIG_PATH", redis.config_path())
            .env("MIDPLANE_DATA_DIR", redis.dir())
            .env("MIDPLANE_SERVER__AUTH_TOKEN_FILE", &token)
            .env("MIDPLANE_SERVER__GRPC_ADDR", format!("127.0.0.1:{grpc}"))
            .env("MIDPLANE_SERVER__ADMIN_ADDR", format!("127.0.0.1:{admin}"))
            .env("MIDPLANE_EXPORTER_ADDR", format!("127.0.0.1:{exporter}"))
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .spawn()
            .expect("spawn adapter-agent"),
    );
    let endpoint = tonic::transport::Endpoint::from_shared(format!("http://127.0.0.1:{grpc}"))
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
    let role = client
        .get_role(GetRoleRequest { fresh: true })
        .await
        .expect("GetRole")
        .into_inner();
    assert_eq!(role.instance, "cache-0-0");
    assert_eq!(role.role, Role::Primary as i32);
    assert_eq!(role.address, redis.address(), "POD_IP:port is announced");
    assert!(
        redis.dir().join("midplane-agent-state.json").exists(),
        "the state lives on the data volume"
    );

    let mut s = tokio::net::TcpStream::connect(("127.0.0.1", exporter))
        .await
        .expect("exporter listening");
    s.write_all(b"GET /metrics HTTP/1.0\r\n\r\n")
        .await
        .expect("request");
    let mut body = String::new();
    s.read_to_string(&mut body).await.expect("response");
    assert!(
        body.contains("midplane_middleware_role{instance_name=\"cache-0-0\",middleware=\"redis\",role=\"primary\"} 1"),
        "{body}"
    );

    let bad = Command::new(env!("CARGO_BIN_EXE_adapter-agent"))
        .args(["--adapter", "mysql"])
        .stderr(Stdio::piped())
        .output()
        .expect("run");
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("mysql"));
}
