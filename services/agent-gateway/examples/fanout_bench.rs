//! Gateway fan-out: GetRoles across a Group of 200 agents (real adapter
//! agents over a real redis-server primary/replica pair, bearer auth on), and
//! the same 200 GetRole calls made directly by the client as the baseline of
//! the same run. Everything runs in this one process on this machine's cores.
//!
//!   cargo run --release -p midplane-agent-gateway --example fanout_bench -- [agents] [concurrency] [seconds] [tls]
//!
//! With `tls` every agent serves mTLS (certificates made by `openssl` at
//! start) and both the gateway and the direct baseline dial them over it.
//!
//! Targets: gateway GetRoles p99 under 20 ms, at least 20,000 agent RPCs/s.

#[path = "../tests/support/mod.rs"]
mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use midplane_agent_core::testkit::replication_group;
use midplane_agent_gateway::config::AgentsConfig;
use midplane_agent_gateway::resolver::StaticGroup;
use midplane_proto::agent::GetRoleRequest;
use midplane_proto::agent::agent_client::AgentClient;
use midplane_proto::gateway as gw;
use midplane_runtime::auth::BearerToken;
use support::*;
use tokio::io::AsyncBufReadExt;
use tonic::transport::{Certificate, ClientTlsConfig, Endpoint, Identity};

/// The files the agents' process made for an mTLS run.
#[derive(Default)]
struct TlsFiles {
    ca: Option<std::path::PathBuf>,
    cert: Option<std::path::PathBuf>,
    key: Option<std::path::PathBuf>,
}

impl TlsFiles {
    fn agents_config(&self) -> Option<midplane_agent_gateway::agent_tls::AgentTlsConfig> {
        Some(midplane_agent_gateway::agent_tls::AgentTlsConfig {
            ca_file: self.ca.clone()?,
            cert_file: self.cert.clone(),
            key_file: self.key.clone(),
            server_name: midplane_agent_gateway::agent_tls::DEFAULT_AGENT_SERVER_NAME.into(),
            reload_interval_ms: 0,
        })
    }

    /// A direct client's channel to one agent, over mTLS when configured.
    async fn connect(
        &self,
        addr: std::net::SocketAddr,
    ) -> anyhow::Result<tonic::transport::Channel> {
        let Some(ca) = &self.ca else {
            return Ok(connect(addr).await);
        };
        let (Some(cert), Some(key)) = (&self.cert, &self.key) else {
            anyhow::bail!("agents process sent a CA without a client certificate");
        };
        let tls = ClientTlsConfig::new()
            .ca_certificate(Certificate::from_pem(std::fs::read(ca)?))
            .identity(Identity::from_pem(
                std::fs::read(cert)?,
                std::fs::read(key)?,
            ))
            .domain_name(midplane_agent_gateway::agent_tls::DEFAULT_AGENT_SERVER_NAME);
        Ok(Endpoint::from_shared(format!("https://{addr}"))?
            .tcp_nodelay(true)
            .tls_config(tls)?
            .connect()
            .await?)
    }
}

struct Run {
    latencies: Vec<Duration>,
    errors: usize,
    elapsed: Duration,
    /// CPU time this process (client, and the gateway when used) spent measuring.
    cpu: Duration,
    /// CPU time the agents' process spent measuring.
    agents_cpu: Duration,
}

/// user + system CPU time of this process, from /proc/self/stat (clock ticks).
fn cpu_time() -> Duration {
    cpu_time_of("self")
}

/// The same for another process (the agents' process).
fn cpu_time_of(pid: &str) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the parenthesised command name; utime and stime are 14 and 15.
    let rest = stat.rsplit_once(") ").map(|(_, r)| r).unwrap_or("");
    let f: Vec<u64> = rest
        .split_whitespace()
        .map(|x| x.parse().unwrap_or(0))
        .collect();
    let ticks = f.get(11).copied().unwrap_or(0) + f.get(12).copied().unwrap_or(0);
    Duration::from_millis(ticks * 10)
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

fn report(name: &str, agents: usize, mut r: Run) -> (f64, f64) {
    r.latencies.sort();
    let pct = |p: f64| {
        let i = ((r.latencies.len() as f64 - 1.0) * p).round() as usize;
        r.latencies[i].as_secs_f64() * 1e3
    };
    let calls = r.latencies.len();
    let per_s = calls as f64 / r.elapsed.as_secs_f64();
    let rpcs = per_s * agents as f64;
    let per_rpc = |d: Duration| d.as_secs_f64() * 1e6 / (calls * agents).max(1) as f64;
    let (cpu_us, agents_us) = (per_rpc(r.cpu), per_rpc(r.agents_cpu));
    println!(
        "{name:<26} {calls:>7} {per_s:>9.1} {rpcs:>14.0} {:>8.2} {:>8.2} {:>8.2} {:>7} {cpu_us:>14.1} {agents_us:>14.1}",
        pct(0.5),
        pct(0.99),
        pct(1.0),
        r.errors
    );
    (pct(0.99), rpcs)
}

/// Runs `concurrency` loops of `call` for `seconds`, after a one-second warm-up.
async fn drive<F, Fut>(concurrency: usize, seconds: u64, agents_pid: &str, call: F) -> Run
where
    F: Fn() -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = usize> + Send,
{
    let call = Arc::new(call);
    let stop = Arc::new(AtomicBool::new(false));
    let measuring = Arc::new(AtomicBool::new(false));
    let tasks: Vec<_> = (0..concurrency)
        .map(|_| {
            let (call, stop, measuring) = (call.clone(), stop.clone(), measuring.clone());
            tokio::spawn(async move {
                let mut lat = Vec::new();
                let mut errors = 0;
                while !stop.load(Ordering::Relaxed) {
                    let t = Instant::now();
                    let e = call().await;
                    if measuring.load(Ordering::Relaxed) {
                        lat.push(t.elapsed());
                        errors += e;
                    }
                }
                (lat, errors)
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_secs(1)).await;
    measuring.store(true, Ordering::Relaxed);
    let started = Instant::now();
    let (cpu0, agents0) = (cpu_time(), cpu_time_of(agents_pid));
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    measuring.store(false, Ordering::Relaxed);
    let elapsed = started.elapsed();
    let cpu = cpu_time().saturating_sub(cpu0);
    let agents_cpu = cpu_time_of(agents_pid).saturating_sub(agents0);
    stop.store(true, Ordering::Relaxed);
    let mut run = Run {
        latencies: Vec::new(),
        errors: 0,
        elapsed,
        cpu,
        agents_cpu,
    };
    for t in tasks {
        if let Ok((l, e)) = t.await {
            run.latencies.extend(l);
            run.errors += e;
        }
    }
    run
}

#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let agents: usize = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(200);
    let concurrency: usize = args.get(2).and_then(|a| a.parse().ok()).unwrap_or(2);
    let seconds: u64 = args.get(3).and_then(|a| a.parse().ok()).unwrap_or(5);
    let tls = args.get(4).map(String::as_str) == Some("tls");

    if args.get(1).map(String::as_str) == Some("serve-agents") {
        let n = args.get(2).and_then(|a| a.parse().ok()).unwrap_or(200);
        return serve_agents(n, args.get(3).map(String::as_str) == Some("tls")).await;
    }
    // The agents run in a child process, as they run in other pods: the CPU
    // each side spends is then measured separately.
    let mut child = tokio::process::Command::new(std::env::current_exe()?)
        .args([
            "serve-agents",
            &agents.to_string(),
            if tls { "tls" } else { "plain" },
        ])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()?;
    let agents_pid = child.id().map(|p| p.to_string()).unwrap_or_default();
    let mut lines = tokio::io::BufReader::new(child.stdout.take().expect("stdout")).lines();
    let mut token_file = None;
    let mut tls_files = TlsFiles::default();
    let mut addrs: Vec<std::net::SocketAddr> = Vec::new();
    while let Some(line) = lines.next_line().await? {
        if let Some(t) = line.strip_prefix("TOKEN ") {
            token_file = Some(std::path::PathBuf::from(t));
        } else if let Some(p) = line.strip_prefix("TLS_CA ") {
            tls_files.ca = Some(p.into());
        } else if let Some(p) = line.strip_prefix("TLS_CLIENT_CERT ") {
            tls_files.cert = Some(p.into());
        } else if let Some(p) = line.strip_prefix("TLS_CLIENT_KEY ") {
            tls_files.key = Some(p.into());
        } else if let Some(a) = line.strip_prefix("AGENT ") {
            addrs.push(a.parse()?);
        } else if line == "READY" {
            break;
        }
    }
    let token_file = token_file.ok_or_else(|| anyhow::anyhow!("agents process sent no token"))?;
    anyhow::ensure!(
        addrs.len() == agents,
        "agents process started {} of {agents}",
        addrs.len()
    );
    let pods: Vec<_> = addrs
        .iter()
        .enumerate()
        .map(|(i, a)| static_pod(&format!("pod-{i}"), *a, None))
        .collect();
    let (gateway, gateway_stop) = start_gateway(
        &token_file,
        vec![StaticGroup {
            namespace: NAMESPACE.into(),
            name: GROUP.into(),
            pods,
        }],
        AgentsConfig {
            tls: tls_files.agents_config(),
            ..AgentsConfig::default()
        },
    )
    .await;
    let token = BearerToken::new(TOKEN)?;
    let gw_client =
        midplane_proto::gateway::agent_gateway_client::AgentGatewayClient::with_interceptor(
            connect(gateway).await,
            token.clone(),
        );
    let mut direct = Vec::new();
    for a in &addrs {
        direct.push(AgentClient::with_interceptor(
            tls_files.connect(*a).await?,
            token.clone(),
        ));
    }
    let direct = Arc::new(direct);
    // Every agent answers before measuring.
    let check = gw_client
        .clone()
        .get_roles(gw::GroupRequest {
            group: group_ref(),
            timeout_ms: 2_000,
            fresh: true,
        })
        .await?
        .into_inner();
    let answered = check.pods.iter().filter(|p| p.role.is_some()).count();
    anyhow::ensure!(
        answered == agents,
        "only {answered}/{agents} agents answered: {:?}",
        check.pods.iter().find(|p| p.error.is_some())
    );

    println!(
        "GetRoles fan-out over {agents} agents{}, {concurrency} concurrent callers, {seconds} s per mode",
        if tls { " (mTLS to the agents)" } else { "" }
    );
    println!(
        "machine load average before: {} (2 cores; other work on the machine inflates latency)",
        loadavg()
    );
    println!(
        "{:<26} {:>7} {:>9} {:>14} {:>8} {:>8} {:>8} {:>7} {:>14} {:>14}",
        "mode",
        "calls",
        "calls/s",
        "agent RPCs/s",
        "p50 ms",
        "p99 ms",
        "max ms",
        "errors",
        "caller us/RPC",
        "agents us/RPC"
    );
    println!(
        "(CPU per agent RPC; caller = this process: the client, plus the gateway in gateway mode; agents = the agents' process)"
    );
    let d = direct.clone();
    let base = drive(concurrency, seconds, &agents_pid, move || {
        let d = d.clone();
        async move {
            let calls = d.iter().map(|c| {
                let mut c = c.clone();
                async move {
                    let mut req = tonic::Request::new(GetRoleRequest { fresh: false });
                    req.set_timeout(Duration::from_secs(1));
                    c.get_role(req).await.is_err()
                }
            });
            futures::future::join_all(calls)
                .await
                .into_iter()
                .filter(|e| *e)
                .count()
        }
    })
    .await;
    report("direct (client -> agents)", agents, base);

    let g = gw_client.clone();
    let run = drive(concurrency, seconds, &agents_pid, move || {
        let mut g = g.clone();
        async move {
            match g
                .get_roles(gw::GroupRequest {
                    group: group_ref(),
                    timeout_ms: 1_000,
                    fresh: false,
                })
                .await
            {
                Ok(r) => r
                    .into_inner()
                    .pods
                    .iter()
                    .filter(|p| p.error.is_some())
                    .count(),
                Err(_) => agents,
            }
        }
    })
    .await;
    let (p99, rpcs) = report("gateway GetRoles", agents, run);
    println!("machine load average after: {}", loadavg());
    println!();
    println!(
        "gateway p99 {p99:.2} ms (target < 20 ms) -> {}; agent RPCs/s {rpcs:.0} (target >= 20000) -> {}",
        if p99 < 20.0 { "PASS" } else { "FAIL" },
        if rpcs >= 20_000.0 { "PASS" } else { "FAIL" }
    );
    gateway_stop.trigger();
    // Closing its stdin lets the agents' process stop its redis-servers and exit.
    drop(child.stdin.take());
    let _ = tokio::time::timeout(Duration::from_secs(10), child.wait()).await;
    Ok(())
}

/// Child mode: a redis-server pair and `n` adapter agents (serving mTLS when
/// `tls`); prints their addresses and serves until stdin closes.
async fn serve_agents(n: usize, tls: bool) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let token_file = dir.path().join("token");
    std::fs::write(&token_file, TOKEN)?;
    let redis = replication_group(CONF, 1).await?;
    println!("TOKEN {}", token_file.display());
    let server_tls = if tls {
        use midplane_runtime::testing::pki::TestCa;
        let agents_ca = TestCa::new(dir.path(), "agents")?;
        let gateway_ca = TestCa::new(dir.path(), "gateway")?;
        let agent = agents_ca.issue(
            "agent",
            &[midplane_agent_gateway::agent_tls::DEFAULT_AGENT_SERVER_NAME],
        )?;
        let client = gateway_ca.issue("agent-gateway", &["agent-gateway.midplane.internal"])?;
        println!("TLS_CA {}", agents_ca.files.cert.display());
        println!("TLS_CLIENT_CERT {}", client.cert.display());
        println!("TLS_CLIENT_KEY {}", client.key.display());
        Some(midplane_runtime::TlsConfig {
            cert_file: agent.cert,
            key_file: agent.key,
            client_ca_file: Some(gateway_ca.files.cert),
            reload_interval_ms: 0,
        })
    } else {
        None
    };
    let mut stops = Vec::new();
    for i in 0..n {
        let r = &redis[i % redis.len()];
        let settings = redis_settings(r, dir.path().join(format!("agent-{i}.json")));
        let (grpc, _, stop) = start_adapter_agent(
            &format!("pod-{i}"),
            settings,
            &token_file,
            server_tls.clone(),
        )
        .await;
        println!("AGENT {grpc}");
        stops.push(stop);
    }
    println!("READY");
    // Serve until the parent closes our stdin (or exits).
    let _ = tokio::task::spawn_blocking(|| {
        let mut sink = Vec::new();
        std::io::Read::read_to_end(&mut std::io::stdin(), &mut sink)
    })
    .await;
    for s in stops {
        s.trigger();
    }
    Ok(())
}
