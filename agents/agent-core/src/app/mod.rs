//! What the two agent binaries run: configuration and wiring, so `main.rs`
//! only loads the config and calls [`run_lifecycle_agent`] or
//! [`run_adapter_agent`], and tests run the very same code in-process.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use midplane_runtime::{ServerConfig, Service};
use serde::Deserialize;
use tokio::net::TcpListener;

use crate::adapter_agent::AdapterAgent;
use crate::lifecycle_agent::{LifecycleAgent, LifecycleSettings};
use crate::redis::{RedisAdapter, RedisSettings, RedisSetupError};

#[derive(Debug, thiserror::Error)]
pub enum AgentRunError {
    #[error("redis adapter: {0}")]
    Redis(#[from] RedisSetupError),
    #[error("bind {what} {addr}: {source}")]
    Bind {
        what: &'static str,
        addr: String,
        source: std::io::Error,
    },
    #[error(transparent)]
    Runtime(#[from] midplane_runtime::RuntimeError),
    #[error("command line: {0}")]
    Args(String),
    #[error("prepare-data: {0}")]
    PrepareData(crate::redis::prepare::PrepareDataError),
    /// A file the agent's own configuration names cannot be used. The
    /// middleware is left running: an agent's configuration problem is
    /// never a reason to stop it.
    #[error("{key} {path}: {message} (the middleware keeps running)")]
    Setup {
        key: &'static str,
        path: PathBuf,
        message: String,
    },
}

/// Checks the files the agent's server needs (bearer token, TLS certificate,
/// key and client CA) before anything starts, so a missing Secret is one
/// clear error naming the file, and the agent exits without touching the
/// middleware.
pub fn preflight(server: &ServerConfig) -> Result<(), AgentRunError> {
    let setup = |key, path: &std::path::Path, message: String| AgentRunError::Setup {
        key,
        path: path.to_path_buf(),
        message,
    };
    if let Some(path) = &server.auth_token_file {
        match std::fs::read_to_string(path) {
            Ok(t) if t.trim().is_empty() => {
                return Err(setup("server.auth_token_file", path, "is empty".into()));
            }
            Ok(_) => {}
            Err(e) => {
                return Err(setup(
                    "server.auth_token_file",
                    path,
                    format!("{e} (is the agent token Secret mounted?)"),
                ));
            }
        }
    }
    if let Some(tls) = &server.tls {
        let files = [
            ("server.tls.cert_file", Some(&tls.cert_file)),
            ("server.tls.key_file", Some(&tls.key_file)),
            ("server.tls.client_ca_file", tls.client_ca_file.as_ref()),
        ];
        for (key, path) in files {
            if let Some(path) = path
                && let Err(e) = std::fs::read(path)
            {
                return Err(setup(key, path, e.to_string()));
            }
        }
        midplane_runtime::tls::ServerTls::load(tls)
            .map_err(|e| setup("server.tls", &tls.cert_file, e.to_string()))?;
    }
    Ok(())
}

/// Agent 1's command line: none. An unknown argument (`--version`, say) is
/// an error before anything binds, never an agent serving on the default
/// address.
pub fn check_lifecycle_args(args: impl IntoIterator<Item = String>) -> Result<(), AgentRunError> {
    match args.into_iter().next() {
        None => Ok(()),
        Some(a) => Err(AgentRunError::Args(format!(
            "unknown argument {a:?} (agent 1 takes none; configure it with MIDPLANE_* or its config file)"
        ))),
    }
}

/// What agent 2's command line asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AdapterCommand {
    /// No subcommand: serve.
    Serve,
    /// `prepare-data --data DIR --config FILE`: make a restored RDB load (see
    /// [`crate::redis::prepare`]), print one line, exit.
    PrepareData { data: PathBuf, config: PathBuf },
}

/// Checks agent 2's command line: `[--adapter redis] [prepare-data --data DIR
/// --config FILE]` (the pod template names the adapter; Redis is the only
/// one so far). Options take their value as the next argument or after `=`.
pub fn check_adapter_args(
    args: impl IntoIterator<Item = String>,
) -> Result<AdapterCommand, AgentRunError> {
    let mut args = args.into_iter();
    let mut prepare = false;
    let (mut data, mut config) = (None, None);
    while let Some(a) = args.next() {
        if a == "prepare-data" {
            prepare = true;
            continue;
        }
        let (name, inline) = match a.split_once('=') {
            Some((n, v)) => (n.to_string(), Some(v.to_string())),
            None => (a.clone(), None),
        };
        if !matches!(name.as_str(), "--adapter" | "--data" | "--config") {
            return Err(AgentRunError::Args(format!("unknown argument {a:?}")));
        }
        let Some(value) = inline.or_else(|| args.next()) else {
            return Err(AgentRunError::Args(format!("{name} needs a value")));
        };
        match name.as_str() {
            "--adapter" if value != "redis" => {
                return Err(AgentRunError::Args(format!(
                    "--adapter {value:?}: only \"redis\" is built in"
                )));
            }
            "--data" => data = Some(PathBuf::from(value)),
            "--config" => config = Some(PathBuf::from(value)),
            _ => {}
        }
    }
    match (prepare, data, config) {
        (false, None, None) => Ok(AdapterCommand::Serve),
        (false, _, _) => Err(AgentRunError::Args(
            "--data and --config belong to prepare-data".into(),
        )),
        (true, Some(data), Some(config)) => Ok(AdapterCommand::PrepareData { data, config }),
        (true, _, _) => Err(AgentRunError::Args(
            "prepare-data needs --data DIR and --config FILE".into(),
        )),
    }
}

/// Runs `prepare-data`: the line to print, or an error naming the file.
pub fn prepare_data(
    data: &std::path::Path,
    config: &std::path::Path,
) -> Result<String, AgentRunError> {
    crate::redis::prepare::prepare_data(data, config).map_err(AgentRunError::PrepareData)
}

/// Agent 1's config file (`/etc/midplane/lifecycle-agent.yaml`, then `MIDPLANE_*`).
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LifecycleAgentConfig {
    pub server: ServerConfig,
    /// Instance name; defaults to `POD_NAME`, then the host name.
    pub instance: Option<String>,
    /// Pod-level keys the plugin sets as `MIDPLANE_GROUP`,
    /// `MIDPLANE_MIDDLEWARE_ADDR`, `MIDPLANE_CONFIG_PATH`, `MIDPLANE_DATA_DIR`;
    /// they fill the nested settings (see [`PodEnv`]).
    pub group: Option<String>,
    pub middleware_addr: Option<String>,
    pub config_path: Option<PathBuf>,
    pub data_dir: Option<PathBuf>,
    pub redis: RedisSettings,
    pub lifecycle: LifecycleSettings,
}

impl Default for LifecycleAgentConfig {
    fn default() -> Self {
        Self {
            server: agent_server("0.0.0.0:50051", "0.0.0.0:9001"),
            instance: None,
            group: None,
            middleware_addr: None,
            config_path: None,
            data_dir: None,
            redis: RedisSettings::default(),
            lifecycle: LifecycleSettings::default(),
        }
    }
}

/// Agent 2's config file (`/etc/midplane/adapter-agent.yaml`, then `MIDPLANE_*`).
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AdapterAgentConfig {
    pub server: ServerConfig,
    pub instance: Option<String>,
    /// Pod-level keys the plugin sets as `MIDPLANE_GROUP`,
    /// `MIDPLANE_MIDDLEWARE_ADDR`, `MIDPLANE_CONFIG_PATH`, `MIDPLANE_DATA_DIR`;
    /// they fill the nested settings (see [`PodEnv`]).
    pub group: Option<String>,
    pub middleware_addr: Option<String>,
    pub config_path: Option<PathBuf>,
    pub data_dir: Option<PathBuf>,
    pub redis: RedisSettings,
    /// Prometheus exporter listen address.
    pub exporter_addr: String,
    /// How long GetRole may answer from cache (GetRole{fresh} bypasses it).
    pub role_cache_ms: u64,
    /// How often the enforcer re-applies the recorded role.
    pub enforce_interval_ms: u64,
}

impl Default for AdapterAgentConfig {
    fn default() -> Self {
        Self {
            server: agent_server("0.0.0.0:50052", "0.0.0.0:9002"),
            instance: None,
            group: None,
            middleware_addr: None,
            config_path: None,
            data_dir: None,
            redis: RedisSettings::default(),
            exporter_addr: "0.0.0.0:9090".into(),
            role_cache_ms: 100,
            enforce_interval_ms: 1_000,
        }
    }
}

/// What the pod template passes to both agents.
#[derive(Debug, Clone, Default)]
pub struct PodEnv {
    /// The middleware inside the pod, e.g. 127.0.0.1:6379.
    pub middleware_addr: Option<String>,
    /// The mounted config file.
    pub config_path: Option<PathBuf>,
    /// The data volume (agent state file, disk figures).
    pub data_dir: Option<PathBuf>,
}

impl PodEnv {
    /// Fills `redis` from the pod keys; `pod_ip` (downward API `POD_IP`)
    /// makes the announced address the one the primary sees its replicas at.
    pub fn apply(&self, redis: &mut RedisSettings, pod_ip: Option<&str>) {
        if let Some(a) = &self.middleware_addr {
            redis.connect_address = a.clone();
        }
        if let Some(p) = &self.config_path {
            redis.config_path = Some(p.clone());
        }
        if let Some(d) = &self.data_dir {
            redis.state_path = d.join("midplane-agent-state.json");
        }
        if redis.announce_address.is_none()
            && let Some(ip) = pod_ip.filter(|ip| !ip.is_empty())
            && let Some((_, port)) = redis.connect_address.rsplit_once(':')
        {
            redis.announce_address = Some(format!("{ip}:{port}"));
        }
    }
}

fn pod_env(
    middleware_addr: &Option<String>,
    config_path: &Option<PathBuf>,
    data_dir: &Option<PathBuf>,
) -> PodEnv {
    PodEnv {
        middleware_addr: middleware_addr.clone(),
        config_path: config_path.clone(),
        data_dir: data_dir.clone(),
    }
}

fn agent_server(grpc: &str, admin: &str) -> ServerConfig {
    ServerConfig {
        grpc_addr: grpc.into(),
        admin_addr: admin.into(),
        ..ServerConfig::default()
    }
}

/// A `server:` section given without addresses keeps the agent's ports
/// rather than the generic service defaults.
pub fn fill_agent_ports(server: &mut ServerConfig, grpc: &str, admin: &str) {
    let generic = ServerConfig::default();
    if server.grpc_addr == generic.grpc_addr {
        server.grpc_addr = grpc.into();
    }
    if server.admin_addr == generic.admin_addr {
        server.admin_addr = admin.into();
    }
}

impl LifecycleAgentConfig {
    pub fn load() -> Result<Self, midplane_runtime::RuntimeError> {
        let mut c: Self = midplane_runtime::load("lifecycle-agent")?;
        fill_agent_ports(&mut c.server, "0.0.0.0:50051", "0.0.0.0:9001");
        pod_env(&c.middleware_addr, &c.config_path, &c.data_dir)
            .apply(&mut c.redis, std::env::var("POD_IP").ok().as_deref());
        if let Some(d) = &c.data_dir {
            c.lifecycle.data_dir = d.clone();
        }
        Ok(c)
    }
}

impl AdapterAgentConfig {
    pub fn load() -> Result<Self, midplane_runtime::RuntimeError> {
        let mut c: Self = midplane_runtime::load("adapter-agent")?;
        fill_agent_ports(&mut c.server, "0.0.0.0:50052", "0.0.0.0:9002");
        pod_env(&c.middleware_addr, &c.config_path, &c.data_dir)
            .apply(&mut c.redis, std::env::var("POD_IP").ok().as_deref());
        Ok(c)
    }
}

pub fn instance_name(configured: Option<&str>) -> String {
    configured
        .map(str::to_string)
        .or_else(|| std::env::var("POD_NAME").ok())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "local".into())
}

async fn bind(what: &'static str, addr: &str) -> Result<TcpListener, AgentRunError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| AgentRunError::Bind {
            what,
            addr: addr.to_string(),
            source,
        })
}

/// The sockets an agent serves on; tests bind them on port 0.
pub struct Listeners {
    pub grpc: TcpListener,
    pub admin: TcpListener,
    /// Agent 2 only.
    pub exporter: Option<TcpListener>,
}

impl Listeners {
    pub async fn bind(
        server: &ServerConfig,
        exporter: Option<&str>,
    ) -> Result<Self, AgentRunError> {
        Ok(Self {
            grpc: bind("gRPC", &server.grpc_addr).await?,
            admin: bind("admin", &server.admin_addr).await?,
            exporter: match exporter {
                Some(a) => Some(bind("exporter", a).await?),
                None => None,
            },
        })
    }

    /// All on free 127.0.0.1 ports.
    pub async fn local(with_exporter: bool) -> Result<Self, AgentRunError> {
        Ok(Self {
            grpc: bind("gRPC", "127.0.0.1:0").await?,
            admin: bind("admin", "127.0.0.1:0").await?,
            exporter: if with_exporter {
                Some(bind("exporter", "127.0.0.1:0").await?)
            } else {
                None
            },
        })
    }
}

/// Agent 1: serves until the service's shutdown, then stops the middleware
/// (when configured) and returns once STOPPED was published.
pub async fn run_lifecycle_agent(
    service: Service,
    config: LifecycleAgentConfig,
    listeners: Listeners,
) -> Result<(), AgentRunError> {
    preflight(&config.server)?;
    // Agent 1 mounts the data volume read-only: it never writes agent state.
    let adapter = Arc::new(RedisAdapter::open_read_only(config.redis)?);
    let instance = instance_name(config.instance.as_deref());
    let agent = Arc::new(LifecycleAgent::new(adapter, instance, config.lifecycle));
    let stop = service.shutdown().token();
    let monitor = agent.spawn_monitor(service.health(), stop);
    let routes = midplane_runtime::Routes::new(agent.clone().into_server());
    let served = service
        .serve_on(listeners.admin, listeners.grpc, routes)
        .await;
    let _ = monitor.await;
    Ok(served?)
}

/// Agent 2: the adapter service, its enforcer and its exporter.
pub async fn run_adapter_agent(
    service: Service,
    config: AdapterAgentConfig,
    listeners: Listeners,
) -> Result<(), AgentRunError> {
    preflight(&config.server)?;
    let adapter = Arc::new(RedisAdapter::open(config.redis)?);
    let instance = instance_name(config.instance.as_deref());
    let agent = Arc::new(AdapterAgent::new(
        adapter.clone(),
        instance.clone(),
        Duration::from_millis(config.role_cache_ms),
    ));
    let stop = service.shutdown().token();
    let enforcer = agent.spawn_enforcer(
        Duration::from_millis(config.enforce_interval_ms.max(10)),
        stop.clone(),
    );
    let exporter_listener = match listeners.exporter {
        Some(l) => l,
        None => bind("exporter", &config.exporter_addr).await?,
    };
    let exporter = tokio::spawn(crate::exporter::serve(
        exporter_listener,
        adapter,
        instance,
        agent.rpc_stats(),
        stop,
    ));
    let routes = midplane_runtime::Routes::new(agent.clone().into_server());
    let served = service
        .serve_on(listeners.admin, listeners.grpc, routes)
        .await;
    let _ = enforcer.await;
    let _ = exporter.await;
    Ok(served?)
}

#[cfg(test)]
mod tests;
