//! Agent 1 as stock gRPC tooling sees it: started with MIDPLANE_KUBECONFIG
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
    let (grpc, admin) = (free_port(), free_port());
    let config = dir.path().join("lifecycle-agent.yaml");
    std::fs::write(
        &config,
        format!(
            "server:\n  grpc_addr: 127.0.0.1:{grpc}\n  admin_addr: 127.0.0.1:{admin}\n  auth_token_file: {}\n\
instance: cache-0-0\n\
redis:\n  connect_address: {}\n  config_path: {}\n  state_path: {}\n\
lifecycle:\n  data_dir: {}\n  probe_interval_ms: 100\n",
            token.display(),
            redis.address(),
            redis.config_path().display(),
            redis.dir().join("agent-state.json").display(),
            redis.dir().display(),
        ),
    )
    .expect("config");
    let _agent = Agent(
        Command::new(env!("CARGO_BIN_EXE_lifecycle-agent"))
            .env("MIDPLANE_CONFIG", &config)
            .env("RUST_LOG", "warn")
            // The CLI's variable: warned about, not fatal.
            .env("MIDPLANE_KUBECONFIG", "/nonexistent/kubeconfig")
            .stdout(Stdio::null())
            .spawn()
            .expect("spawn lifecycle-agent"),
    );
    let addr = ([127, 0, 0, 1], grpc).into();
    assert_health(addr, &["midplane.agent.v1.Agent"]).await;
    assert_reflection(addr, Some("tok"), &["midplane.agent.v1.Agent"]).await;
}
