//! Agent 2's exporter against a real primary/replica pair: the figures are
//! there and the scrape passes `promtool check metrics`.

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

use midplane_agent_core::app::{AdapterAgentConfig, Listeners, run_adapter_agent};
use midplane_agent_core::redis::RedisSettings;
use midplane_agent_core::testkit::replication_group;
use midplane_proto::agent::agent_client::AgentClient;
use midplane_runtime::auth::BearerToken;
use midplane_runtime::{ServerConfig, Service};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

async fn scrape(addr: std::net::SocketAddr) -> String {
    let mut s = tokio::net::TcpStream::connect(addr)
        .await
        .expect("connect exporter");
    s.write_all(b"GET /metrics HTTP/1.0\r\nHost: x\r\n\r\n")
        .await
        .expect("request");
    let mut body = String::new();
    s.read_to_string(&mut body).await.expect("response");
    let (head, body) = body.split_once("\r\n\r\n").expect("http response");
    assert!(
        head.starts_with("HTTP/1.0 200") || head.starts_with("HTTP/1.1 200"),
        "{head}"
    );
    body.to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scrape_has_the_figures_and_passes_promtool() {
    let group = replication_group("hz 10\n", 1).await.expect("redis group");
    let dir = tempfile::tempdir().expect("tempdir");
    let token = dir.path().join("token");
    std::fs::write(&token, "tok\n").expect("token");
    let server = ServerConfig {
        auth_token_file: Some(token.clone()),
        ..ServerConfig::default()
    };
    let service = Service::for_test("adapter-agent", server.clone());
    let stop = service.shutdown();
    let listeners = Listeners::local(true).await.expect("bind");
    let grpc = listeners.grpc.local_addr().expect("addr");
    let exporter = listeners
        .exporter
        .as_ref()
        .and_then(|l| l.local_addr().ok())
        .expect("exporter addr");
    let config = AdapterAgentConfig {
        server,
        instance: Some("cache-0-0".into()),
        redis: RedisSettings {
            connect_address: group[0].address(),
            state_path: group[0].dir().join("agent-state.json"),
            ..RedisSettings::default()
        },
        ..AdapterAgentConfig::default()
    };
    let agent = tokio::spawn(run_adapter_agent(service, config, listeners));

    let mut c = group[0].connect().await.expect("connect");
    for i in 0..10 {
        c.cmd(&["SET", &format!("k{i}"), "v"]).await.expect("set");
    }
    c.cmd(&["SET", "ttl", "v", "EX", "100"]).await.expect("set");
    let endpoint =
        tonic::transport::Endpoint::from_shared(format!("http://{grpc}")).expect("endpoint");
    let mut channel = None;
    for _ in 0..100 {
        if let Ok(ch) = endpoint.connect().await {
            channel = Some(ch);
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut client = AgentClient::with_interceptor(
        channel.expect("agent 2 listening"),
        BearerToken::new("tok").expect("token"),
    );
    for _ in 0..3 {
        client
            .get_role(midplane_proto::agent::GetRoleRequest { fresh: true })
            .await
            .expect("GetRole");
    }
    client
        .get_status(midplane_proto::agent::GetStatusRequest {})
        .await
        .expect_err("agent 2 does not serve GetStatus");

    let needles = [
        "midplane_middleware_up{instance_name=\"cache-0-0\",middleware=\"redis\"} 1",
        "midplane_middleware_role{instance_name=\"cache-0-0\",middleware=\"redis\",role=\"primary\"} 1",
        "midplane_middleware_role{instance_name=\"cache-0-0\",middleware=\"redis\",role=\"replica\"} 0",
        "midplane_middleware_connected_replicas{instance_name=\"cache-0-0\",middleware=\"redis\"} 1",
        "midplane_middleware_term{instance_name=\"cache-0-0\",middleware=\"redis\"} 0",
        "midplane_middleware_db_keys{instance_name=\"cache-0-0\",middleware=\"redis\",db=\"db0\"} 11",
        "midplane_middleware_db_expiring_keys{instance_name=\"cache-0-0\",middleware=\"redis\",db=\"db0\"} 1",
        "midplane_agent_rpc_total{instance_name=\"cache-0-0\",method=\"GetRole\",code=\"OK\"} 3",
        "midplane_agent_rpc_total{instance_name=\"cache-0-0\",method=\"GetStatus\",code=\"UNIMPLEMENTED\"} 1",
        "midplane_middleware_replication_lag_bytes",
        "midplane_middleware_memory_used_bytes",
        "midplane_middleware_operations_per_second",
    ];
    // The primary sees its replica online a moment after the replica sees the link.
    let mut text = String::new();
    for _ in 0..100 {
        text = scrape(exporter).await;
        if needles.iter().all(|n| text.contains(n)) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for needle in needles {
        assert!(text.contains(needle), "scrape lacks {needle}:\n{text}");
    }

    let mut promtool = match Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
    {
        Ok(p) => p,
        Err(e) => panic!("promtool is not installed (run scripts/services/promtool.sh): {e}"),
    };
    promtool
        .stdin
        .take()
        .expect("stdin")
        .write_all(text.as_bytes())
        .expect("feed promtool");
    let out = promtool.wait_with_output().expect("promtool");
    assert!(
        out.status.success(),
        "promtool check metrics failed:\n{}{}\n---\n{text}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );

    // With Redis gone the exporter still answers, reporting it down.
    drop(group);
    let text = scrape(exporter).await;
    assert!(
        text.contains("midplane_middleware_up{instance_name=\"cache-0-0\",middleware=\"redis\"} 0"),
        "{text}"
    );
    stop.trigger();
    agent.await.expect("join").expect("agent 2 stops cleanly");
}
