//! Agent 2 as stock gRPC tooling sees it: started with MIDPLANE_KUBECONFIG
//! set, health by service name (open, no token) and reflection over v1 and
//! v1alpha (with the token), listing only the Agent service this port serves.

use std::process::{Command, Stdio};

use midplane_agent_core::testkit::{RedisProcess, free_port};
use midplane_runtime::testing::contract::{assert_health, assert_reflection};

struct Agent(std::process::Child);

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_by_service_name_and_reflection_v1_and_v1alpha() {
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
            .env("MIDPLANE_INSTANCE", "cache-0-0")
            .env("MIDPLANE_MIDDLEWARE_ADDR", redis.address())
            .env("MIDPLANE_CONFIG_PATH", redis.config_path())
            .env("MIDPLANE_DATA_DIR", redis.dir())
            .env("MIDPLANE_SERVER__AUTH_TOKEN_FILE", &token)
            .env("MIDPLANE_SERVER__GRPC_ADDR", format!("127.0.0.1:{grpc}"))
            .env("MIDPLANE_SERVER__ADMIN_ADDR", format!("127.0.0.1:{admin}"))
            .env("MIDPLANE_EXPORTER_ADDR", format!("127.0.0.1:{exporter}"))
            .env("RUST_LOG", "warn")
            // The CLI's variable: warned about, not fatal.
            .env("MIDPLANE_KUBECONFIG", "/nonexistent/kubeconfig")
            .stdout(Stdio::null())
            .spawn()
            .expect("spawn adapter-agent"),
    );
    let addr = ([127, 0, 0, 1], grpc).into();
    assert_health(addr, &["midplane.agent.v1.Agent"]).await;
    assert_reflection(addr, Some("tok"), &["midplane.agent.v1.Agent"]).await;
}
