//! The Redis adapter. Switchover uses Redis 7 `FAILOVER TO host port` (the
//! primary pauses writes, waits for the candidate to reach its offset, then
//! swaps roles), so no acknowledged write is lost; forced promotion is
//! `REPLICAOF NO ONE`; an old primary is fenced by following the new one, or
//! by an unreachable `min-replicas-to-write` when no primary is known.

pub mod config;
pub mod prepare;
mod reload;
mod role;
mod shutdown;
pub mod snapshot;

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use tokio::sync::Mutex;

pub use crate::adapter::ParameterChange;
use crate::adapter::{
    Adapter, AdapterError, ReloadOutcome, ReloadRequest, ReplicaLink, Role, RoleState,
    SnapshotOutcome, Stats, SwitchoverOutcome,
};
pub(super) use crate::resp::parse_info;
use crate::resp::{Connection, RespError, Value};
use crate::state::{Intent, StateError, StateStore};

/// `min-replicas-to-write` while fenced: no instance can ever have that many replicas.
pub(super) const FENCE_MIN_REPLICAS: &str = "2147483647";

#[derive(Debug, Clone, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RedisSettings {
    /// Address the agent connects to (usually 127.0.0.1:6379 inside the pod).
    pub connect_address: String,
    /// Address peers use to reach this instance ("host:port"); what replicas
    /// follow and what FAILOVER TO names. Defaults to `connect_address`.
    pub announce_address: Option<String>,
    /// File with the Redis password (mounted Secret), if `requirepass` is set.
    pub password_file: Option<PathBuf>,
    /// The mounted redis.conf the middleware started from.
    pub config_path: Option<PathBuf>,
    /// Where the agent keeps its term and decisions (the data volume).
    pub state_path: PathBuf,
    /// Deadline of one command to Redis.
    pub command_timeout_ms: u64,
}

impl Default for RedisSettings {
    fn default() -> Self {
        Self {
            connect_address: "127.0.0.1:6379".into(),
            announce_address: None,
            password_file: None,
            config_path: None,
            state_path: PathBuf::from("/data/midplane-agent-state.json"),
            command_timeout_ms: 2_000,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RedisSetupError {
    #[error("redis password file {path}: {source}")]
    Password {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    State(#[from] StateError),
    #[error(transparent)]
    Config(#[from] config::ConfigFileError),
}

pub struct RedisAdapter {
    settings: RedisSettings,
    announce: String,
    password: Option<String>,
    timeout: Duration,
    state: StateStore,
    /// Reused for reads; mutating and blocking commands open their own.
    conn: Mutex<Option<Connection>>,
    /// Serialises role changes, reloads, restarts and the enforcer.
    ops: Mutex<()>,
    /// Serialises snapshots (apart from `ops`: a save must not hold up a failover).
    snapshots: Mutex<()>,
    /// Primary names a replica follows, resolved (see `resolved`).
    resolved: Mutex<HashMap<String, (String, Instant)>>,
}

/// How long a resolved primary name is trusted.
const RESOLVED_FOR: Duration = Duration::from_secs(5);

impl RedisAdapter {
    /// Opens the adapter that owns the agent state (agent 2).
    pub fn open(settings: RedisSettings) -> Result<Self, RedisSetupError> {
        Self::open_with(settings, true)
    }

    /// Opens an adapter that only reads the agent state (agent 1, whose data
    /// volume is mounted read-only).
    pub fn open_read_only(settings: RedisSettings) -> Result<Self, RedisSetupError> {
        Self::open_with(settings, false)
    }

    fn open_with(settings: RedisSettings, owner: bool) -> Result<Self, RedisSetupError> {
        let password = match &settings.password_file {
            Some(path) => Some(
                std::fs::read_to_string(path)
                    .map_err(|source| RedisSetupError::Password {
                        path: path.clone(),
                        source,
                    })?
                    .trim()
                    .to_string(),
            ),
            None => None,
        };
        let state = StateStore::open(&settings.state_path)?;
        // The file found at first start is what redis-server read: remember it
        // so later reloads can diff directives CONFIG GET cannot report.
        if let Some(path) = &settings.config_path
            && owner
            && state.get().config_hash.is_empty()
            && path.exists()
        {
            let hash = config::file_hash(path)?;
            let text =
                std::fs::read_to_string(path).map_err(|source| config::ConfigFileError::Read {
                    path: path.clone(),
                    source,
                })?;
            let parsed = config::parse(path, &text)?;
            state.update(|s| {
                s.config_hash = hash;
                s.applied_config = parsed;
            })?;
        }
        Ok(Self {
            announce: settings
                .announce_address
                .clone()
                .unwrap_or_else(|| settings.connect_address.clone()),
            timeout: Duration::from_millis(settings.command_timeout_ms.max(1)),
            settings,
            password,
            state,
            conn: Mutex::new(None),
            ops: Mutex::new(()),
            snapshots: Mutex::new(()),
            resolved: Mutex::new(HashMap::new()),
        })
    }

    pub fn state(&self) -> &StateStore {
        &self.state
    }

    pub fn connect_address(&self) -> &str {
        &self.settings.connect_address
    }

    fn map_resp(&self, operation: &'static str, e: RespError) -> AdapterError {
        if e.is_unreachable() {
            AdapterError::Unreachable {
                address: self.settings.connect_address.clone(),
                message: e.to_string(),
            }
        } else {
            AdapterError::Middleware {
                operation,
                message: e.to_string(),
            }
        }
    }

    async fn dedicated(&self, operation: &'static str) -> Result<Connection, AdapterError> {
        Connection::connect(
            &self.settings.connect_address,
            self.password.as_deref(),
            self.timeout,
        )
        .await
        .map_err(|e| self.map_resp(operation, e))
    }

    /// One read command on the shared connection, reconnecting once when the
    /// reused connection turned out to be dead (e.g. after a restart).
    async fn query(&self, operation: &'static str, args: &[&str]) -> Result<Value, AdapterError> {
        let mut guard = self.conn.lock().await;
        let reused = guard.is_some();
        if guard.is_none() {
            *guard = Some(self.dedicated(operation).await?);
        }
        let Some(conn) = guard.as_mut() else {
            return Err(AdapterError::Unreachable {
                address: self.settings.connect_address.clone(),
                message: "no connection".into(),
            });
        };
        match conn.cmd(args).await {
            Ok(v) => Ok(v),
            Err(e) if e.is_unreachable() => {
                *guard = None;
                if !reused {
                    return Err(self.map_resp(operation, e));
                }
                let mut fresh = self.dedicated(operation).await?;
                let v = fresh
                    .cmd(args)
                    .await
                    .map_err(|e| self.map_resp(operation, e))?;
                *guard = Some(fresh);
                Ok(v)
            }
            Err(e) => Err(self.map_resp(operation, e)),
        }
    }

    async fn info(
        &self,
        operation: &'static str,
        section: Option<&str>,
    ) -> Result<HashMap<String, String>, AdapterError> {
        let mut args = vec!["INFO"];
        args.extend(section);
        let v = self.query(operation, &args).await?;
        let text = v.as_text().ok_or_else(|| AdapterError::Middleware {
            operation,
            message: format!("INFO answered {v:?}"),
        })?;
        Ok(parse_info(&text))
    }

    fn role_from_info(&self, info: &HashMap<String, String>) -> RoleState {
        let int = |k: &str| info.get(k).and_then(|v| v.parse::<i64>().ok()).unwrap_or(0);
        let is_master = info.get("role").map(String::as_str) == Some("master");
        let intent = self.state.get().intent;
        let role = match (is_master, &intent) {
            (true, Intent::Fenced { .. }) => Role::Fenced,
            // Told to follow but (re)started as a primary: not a primary
            // claim; the enforcer makes it follow (see `do_enforce`).
            (true, Intent::Replica { .. }) => Role::Replica,
            (true, _) => Role::Primary,
            (false, _) if info.contains_key("role") => Role::Replica,
            _ => Role::Unknown,
        };
        let mut replicas = Vec::new();
        for i in 0..int("connected_slaves").max(0) {
            if let Some(line) = info.get(&format!("slave{i}")) {
                let f: HashMap<&str, &str> = line
                    .split(',')
                    .filter_map(|kv| kv.split_once('='))
                    .collect();
                replicas.push(ReplicaLink {
                    address: format!(
                        "{}:{}",
                        f.get("ip").unwrap_or(&""),
                        f.get("port").unwrap_or(&"")
                    ),
                    offset: f.get("offset").and_then(|o| o.parse().ok()).unwrap_or(0),
                    online: f.get("state") == Some(&"online"),
                });
            }
        }
        let (offset, primary_address, link_up) = if is_master {
            let intended = match &intent {
                Intent::Replica { primary } => Some(primary.clone()),
                _ => None,
            };
            (int("master_repl_offset"), intended, false)
        } else {
            (
                int("slave_repl_offset"),
                info.get("master_host")
                    .map(|h| format!("{h}:{}", int("master_port"))),
                info.get("master_link_status").map(String::as_str) == Some("up"),
            )
        };
        RoleState {
            role,
            term: self.state.term(),
            replication_offset: offset,
            primary_address,
            primary_link_up: link_up,
            replicas,
        }
    }

    /// `host:port` with the host resolved to an address: a replica started
    /// with `--replicaof <name>` reports the name, while peers announce
    /// addresses; both must compare equal. Answers are kept for
    /// [`RESOLVED_FOR`]; an unresolvable name is reported as it is.
    async fn resolved(&self, address: String) -> String {
        let Some((host, _)) = address.rsplit_once(':') else {
            return address;
        };
        if host.parse::<std::net::IpAddr>().is_ok() {
            return address;
        }
        if let Some((ip, at)) = self.resolved.lock().await.get(&address)
            && at.elapsed() < RESOLVED_FOR
        {
            return ip.clone();
        }
        let lookup = tokio::time::timeout(self.timeout, tokio::net::lookup_host(address.clone()));
        let Ok(Ok(mut found)) = lookup.await else {
            return address;
        };
        let Some(ip) = found
            .find(std::net::SocketAddr::is_ipv4)
            .map(|a| a.to_string())
        else {
            return address;
        };
        let mut cache = self.resolved.lock().await;
        if cache.len() > 64 {
            cache.clear();
        }
        cache.insert(address, (ip.clone(), Instant::now()));
        ip
    }

    fn advance(&self, term: i64, intent: Intent) -> Result<(), AdapterError> {
        match self.state.advance(term, intent) {
            Ok(_) => Ok(()),
            Err(StateError::Stale { held, requested }) => {
                Err(AdapterError::StaleTerm { held, requested })
            }
            Err(e) => Err(e.into()),
        }
    }
}

pub(super) fn split_address<'a>(
    address: &'a str,
    operation: &'static str,
) -> Result<(&'a str, &'a str), AdapterError> {
    address
        .rsplit_once(':')
        .filter(|(h, p)| !h.is_empty() && p.parse::<u16>().is_ok())
        .ok_or_else(|| AdapterError::Rejected {
            operation,
            message: format!("address {address:?} is not host:port"),
        })
}

impl Adapter for RedisAdapter {
    fn kind(&self) -> &'static str {
        "redis"
    }

    fn address(&self) -> &str {
        &self.announce
    }

    fn term(&self) -> i64 {
        self.state.term()
    }

    async fn ping(&self) -> Result<(), AdapterError> {
        self.query("ping", &["PING"]).await.map(|_| ())
    }

    async fn role(&self) -> Result<RoleState, AdapterError> {
        let info = self.info("role", Some("replication")).await?;
        let mut state = self.role_from_info(&info);
        if let Some(primary) = state.primary_address.take() {
            state.primary_address = Some(self.resolved(primary).await);
        }
        Ok(state)
    }

    async fn stats(&self) -> Result<Stats, AdapterError> {
        let info = self.info("stats", None).await?;
        let u = |k: &str| info.get(k).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
        let mut keyspace: Vec<(String, u64, u64)> = info
            .iter()
            .filter(|(k, _)| k.starts_with("db") && k[2..].parse::<u32>().is_ok())
            .map(|(db, v)| {
                let f: HashMap<&str, u64> = v
                    .split(',')
                    .filter_map(|kv| kv.split_once('='))
                    .filter_map(|(k, v)| Some((k, v.parse().ok()?)))
                    .collect();
                (
                    db.clone(),
                    f.get("keys").copied().unwrap_or(0),
                    f.get("expires").copied().unwrap_or(0),
                )
            })
            .collect();
        keyspace.sort();
        Ok(Stats {
            version: info.get("redis_version").cloned().unwrap_or_default(),
            uptime_seconds: u("uptime_in_seconds"),
            used_memory_bytes: u("used_memory"),
            max_memory_bytes: u("maxmemory"),
            connected_clients: u("connected_clients"),
            ops_per_second: u("instantaneous_ops_per_sec"),
            commands_processed_total: u("total_commands_processed"),
            keyspace_hits_total: u("keyspace_hits"),
            keyspace_misses_total: u("keyspace_misses"),
            expired_keys_total: u("expired_keys"),
            evicted_keys_total: u("evicted_keys"),
            keyspace,
            loading: u("loading") == 1,
            run_id: info.get("run_id").cloned().unwrap_or_default(),
        })
    }

    async fn switchover(
        &self,
        candidate: &str,
        term: i64,
        timeout: Duration,
    ) -> Result<SwitchoverOutcome, AdapterError> {
        self.do_switchover(candidate, term, timeout).await
    }

    async fn promote(&self, term: i64) -> Result<RoleState, AdapterError> {
        self.do_promote(term).await
    }

    async fn follow(&self, primary: &str, term: i64) -> Result<RoleState, AdapterError> {
        self.do_follow(primary, term).await
    }

    async fn fence(&self, new_primary: Option<&str>, term: i64) -> Result<RoleState, AdapterError> {
        self.do_fence(new_primary, term).await
    }

    async fn enforce(&self) -> Result<Option<String>, AdapterError> {
        self.do_enforce().await
    }

    async fn reload_config(&self, request: ReloadRequest) -> Result<ReloadOutcome, AdapterError> {
        self.do_reload_config(request).await
    }

    fn config_hash(&self) -> String {
        let recorded = self.state.get().config_hash;
        if !recorded.is_empty() {
            return recorded;
        }
        // Nothing recorded yet (agent 2 not started): the file Redis started from.
        self.settings
            .config_path
            .as_deref()
            .and_then(|p| config::file_hash(p).ok())
            .unwrap_or_default()
    }

    async fn stop(&self, graceful: bool, timeout: Duration) -> Result<(), AdapterError> {
        let _ops = self.ops.lock().await;
        self.shutdown("stop", graceful, timeout).await
    }

    async fn restart(&self, graceful: bool, timeout: Duration) -> Result<(), AdapterError> {
        const OP: &str = "restart";
        let _ops = self.ops.lock().await;
        let before = self.stats().await?.run_id;
        self.shutdown(OP, graceful, timeout).await?;
        // The supervisor (kubelet, or the local runner) starts it again.
        let started = Instant::now();
        loop {
            if let Ok(stats) = self.stats().await
                && stats.run_id != before
                && !stats.loading
            {
                return Ok(());
            }
            if started.elapsed() > timeout {
                return Err(AdapterError::Timeout {
                    operation: OP,
                    timeout,
                    message: "redis-server stopped but did not come back; is it supervised?".into(),
                });
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn snapshot(&self, id: &str, timeout: Duration) -> Result<SnapshotOutcome, AdapterError> {
        self.do_snapshot(id, timeout).await
    }
}
