//! A whole Group on this machine: real redis-server processes (one primary,
//! N replicas), an in-process agent pair per pod with bearer auth (and mTLS
//! when asked: `Cluster::start_tls`), and the gateway with the static resolver.
//! Shared by the tests and the benchmarks.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use midplane_agent_core::app::{
    AdapterAgentConfig, LifecycleAgentConfig, Listeners, run_adapter_agent, run_lifecycle_agent,
};
use midplane_agent_core::lifecycle_agent::LifecycleSettings;
use midplane_agent_core::redis::RedisSettings;
use midplane_agent_core::testkit::{RedisProcess, replication_group_shared};
use midplane_agent_gateway::GatewayConfig;
use midplane_agent_gateway::config::AgentsConfig;
use midplane_agent_gateway::resolver::{StaticGroup, StaticPod};
use midplane_proto::common::ObjectRef;
use midplane_proto::gateway::agent_gateway_client::AgentGatewayClient;
use midplane_runtime::auth::BearerToken;
use midplane_runtime::{ServerConfig, Service, Shutdown, TlsConfig};
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;

pub const TOKEN: &str = "s3cret-agent-token";
pub const NAMESPACE: &str = "shop";
pub const GROUP: &str = "cache-0";
pub const CONF: &str = "hz 10\nmaxmemory-policy noeviction\ndatabases 16\n";

pub type GatewayClient = AgentGatewayClient<InterceptedService<Channel, BearerToken>>;

pub struct Pod {
    pub instance: String,
    pub redis: RedisProcess,
    pub adapter_addr: SocketAddr,
    pub lifecycle_addr: SocketAddr,
    pub exporter_addr: SocketAddr,
    pub shutdown: Vec<Shutdown>,
}

pub struct Cluster {
    pub dir: tempfile::TempDir,
    pub token_file: PathBuf,
    pub config_path: PathBuf,
    pub pods: Vec<Pod>,
    pub gateway_addr: SocketAddr,
    pub gateway_shutdown: Shutdown,
}

/// Bearer auth, and TLS / mTLS when `tls` is set.
pub fn server_config(token_file: &Path, tls: Option<TlsConfig>) -> ServerConfig {
    ServerConfig {
        auth_token_file: Some(token_file.to_path_buf()),
        shutdown_grace_ms: 2_000,
        tls,
        ..ServerConfig::default()
    }
}

/// Starts agent 2 (adapter) in this process, serving TLS / mTLS when `tls` is set:
/// (gRPC, exporter, shutdown).
pub async fn start_adapter_agent(
    instance: &str,
    settings: RedisSettings,
    token_file: &Path,
    tls: Option<TlsConfig>,
) -> (SocketAddr, SocketAddr, Shutdown) {
    let server = server_config(token_file, tls);
    let service = Service::for_test("adapter-agent", server.clone());
    let stop = service.shutdown();
    let listeners = Listeners::local(true).await.expect("bind agent 2");
    let grpc = listeners.grpc.local_addr().expect("addr");
    let exporter = listeners
        .exporter
        .as_ref()
        .and_then(|l| l.local_addr().ok())
        .expect("exporter addr");
    let config = AdapterAgentConfig {
        server,
        instance: Some(instance.to_string()),
        redis: settings,
        exporter_addr: "127.0.0.1:0".into(),
        role_cache_ms: 100,
        enforce_interval_ms: 200,
        ..AdapterAgentConfig::default()
    };
    tokio::spawn(async move {
        if let Err(e) = run_adapter_agent(service, config, listeners).await {
            eprintln!("adapter agent: {e}");
        }
    });
    (grpc, exporter, stop)
}

pub fn redis_settings(redis: &RedisProcess, state_path: PathBuf) -> RedisSettings {
    RedisSettings {
        connect_address: redis.address(),
        announce_address: None,
        password_file: None,
        config_path: Some(redis.config_path()),
        state_path,
        command_timeout_ms: 1_000,
    }
}

/// Starts both agents of one pod in this process, serving TLS / mTLS when `tls` is set.
pub async fn start_agents(
    instance: &str,
    redis: &RedisProcess,
    token_file: &Path,
    tls: Option<TlsConfig>,
) -> (SocketAddr, SocketAddr, SocketAddr, Vec<Shutdown>) {
    let settings = redis_settings(redis, redis.dir().join("agent-state.json"));
    let (adapter_addr, exporter_addr, adapter_stop) =
        start_adapter_agent(instance, settings.clone(), token_file, tls.clone()).await;

    let server = server_config(token_file, tls);
    let lifecycle_service = Service::for_test("lifecycle-agent", server.clone());
    let lifecycle_stop = lifecycle_service.shutdown();
    let listeners = Listeners::local(false).await.expect("bind agent 1");
    let lifecycle_addr = listeners.grpc.local_addr().expect("addr");
    let config = LifecycleAgentConfig {
        server,
        instance: Some(instance.to_string()),
        redis: settings,
        lifecycle: LifecycleSettings {
            data_dir: redis.dir().to_path_buf(),
            pid_file: None,
            probe_interval_ms: 100,
            stop_middleware_on_shutdown: false,
            stop_timeout_ms: 5_000,
        },
        ..LifecycleAgentConfig::default()
    };
    tokio::spawn(async move {
        if let Err(e) = run_lifecycle_agent(lifecycle_service, config, listeners).await {
            eprintln!("lifecycle agent: {e}");
        }
    });
    (
        adapter_addr,
        lifecycle_addr,
        exporter_addr,
        vec![adapter_stop, lifecycle_stop],
    )
}

/// Starts the gateway serving `groups` through the static resolver.
pub async fn start_gateway(
    token_file: &Path,
    groups: Vec<StaticGroup>,
    agents: AgentsConfig,
) -> (SocketAddr, Shutdown) {
    let config = GatewayConfig {
        server: server_config(token_file, None),
        agents: AgentsConfig {
            token_file: Some(token_file.to_path_buf()),
            ..agents
        },
        resolver: midplane_agent_gateway::config::ResolverKind::Static,
        static_groups: groups,
    };
    let routes = midplane_agent_gateway::routes(&config)
        .await
        .expect("gateway routes");
    let service = Service::for_test("agent-gateway", config.server.clone());
    let stop = service.shutdown();
    let grpc = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let admin = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = grpc.local_addr().expect("addr");
    tokio::spawn(async move {
        if let Err(e) = service.serve_on(admin, grpc, routes).await {
            eprintln!("gateway: {e}");
        }
    });
    (addr, stop)
}

pub fn static_pod(instance: &str, adapter: SocketAddr, lifecycle: Option<SocketAddr>) -> StaticPod {
    StaticPod {
        pod: instance.to_string(),
        instance: Some(instance.to_string()),
        address: adapter.to_string(),
        lifecycle_address: lifecycle.map(|a| a.to_string()),
    }
}

impl Cluster {
    /// One primary and `replicas` replicas sharing one redis.conf, agents, gateway.
    pub async fn start(replicas: usize) -> Self {
        Self::start_with(replicas, AgentsConfig::default(), Vec::new()).await
    }

    /// `extra` pods are added to the static group as they are (e.g. a hanging agent).
    pub async fn start_with(replicas: usize, agents: AgentsConfig, extra: Vec<StaticPod>) -> Self {
        Self::start_tls(replicas, agents, extra, |_| None).await
    }

    /// [`Cluster::start_with`] where pod `i`'s agents serve `agent_tls(i)`
    /// (TLS / mTLS when `Some`); `agents.tls` is how the gateway dials them.
    pub async fn start_tls(
        replicas: usize,
        agents: AgentsConfig,
        extra: Vec<StaticPod>,
        agent_tls: impl Fn(usize) -> Option<TlsConfig>,
    ) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let token_file = dir.path().join("agent-token");
        std::fs::write(&token_file, format!("{TOKEN}\n")).expect("token");
        let config_path = dir.path().join("redis.conf");
        std::fs::write(&config_path, CONF).expect("conf");
        let group = replication_group_shared(&config_path, replicas)
            .await
            .expect("redis-server group (run scripts/services/redis.sh if it is missing)");
        let mut pods = Vec::new();
        for (i, redis) in group.into_iter().enumerate() {
            let instance = format!("{GROUP}-{i}");
            let (adapter_addr, lifecycle_addr, exporter_addr, shutdown) =
                start_agents(&instance, &redis, &token_file, agent_tls(i)).await;
            pods.push(Pod {
                instance,
                redis,
                adapter_addr,
                lifecycle_addr,
                exporter_addr,
                shutdown,
            });
        }
        let mut static_pods: Vec<_> = pods
            .iter()
            .map(|p| static_pod(&p.instance, p.adapter_addr, Some(p.lifecycle_addr)))
            .collect();
        static_pods.extend(extra);
        let (gateway_addr, gateway_shutdown) = start_gateway(
            &token_file,
            vec![StaticGroup {
                namespace: NAMESPACE.into(),
                name: GROUP.into(),
                pods: static_pods,
            }],
            agents,
        )
        .await;
        Self {
            dir,
            token_file,
            config_path,
            pods,
            gateway_addr,
            gateway_shutdown,
        }
    }

    pub async fn client(&self) -> GatewayClient {
        let channel = connect(self.gateway_addr).await;
        AgentGatewayClient::with_interceptor(channel, BearerToken::new(TOKEN).expect("token"))
    }

    pub fn pod(&self, instance: &str) -> &Pod {
        self.pods
            .iter()
            .find(|p| p.instance == instance)
            .unwrap_or_else(|| panic!("no pod {instance}"))
    }

    pub fn pod_mut(&mut self, instance: &str) -> &mut Pod {
        self.pods
            .iter_mut()
            .find(|p| p.instance == instance)
            .unwrap_or_else(|| panic!("no pod {instance}"))
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.gateway_shutdown.trigger();
        for p in &self.pods {
            for s in &p.shutdown {
                s.trigger();
            }
        }
    }
}

pub fn group_ref() -> Option<ObjectRef> {
    Some(ObjectRef {
        namespace: NAMESPACE.into(),
        name: GROUP.into(),
    })
}

/// Connects, retrying while the server task starts listening.
pub async fn connect(addr: SocketAddr) -> Channel {
    let endpoint = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
        .expect("endpoint")
        .tcp_nodelay(true);
    for _ in 0..100 {
        if let Ok(ch) = endpoint.connect().await {
            return ch;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("cannot connect to {addr}");
}
