//! The contract between agent 2 and a middleware. Redis implements it first;
//! PostgreSQL and MySQL adapters implement the same trait so the agent server,
//! the exporter and the gateway's orchestrations stay middleware-agnostic.

use std::future::Future;
use std::time::Duration;

use crate::state::StateError;

/// What an instance claims to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Primary,
    Replica,
    /// Refusing writes until it follows a primary again.
    Fenced,
    Unknown,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Primary => "primary",
            Role::Replica => "replica",
            Role::Fenced => "fenced",
            Role::Unknown => "unknown",
        }
    }
}

/// A replica as its primary sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplicaLink {
    pub address: String,
    pub offset: i64,
    pub online: bool,
}

/// A role claim with the term it was made under; see [`crate::state`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoleState {
    pub role: Role,
    pub term: i64,
    pub replication_offset: i64,
    /// For a replica: the primary it follows ("host:port").
    pub primary_address: Option<String>,
    pub primary_link_up: bool,
    pub replicas: Vec<ReplicaLink>,
}

impl RoleState {
    /// Bytes the slowest online replica is behind (primary), 0 otherwise.
    pub fn max_replica_lag_bytes(&self) -> i64 {
        self.replicas
            .iter()
            .map(|r| (self.replication_offset - r.offset).max(0))
            .max()
            .unwrap_or(0)
    }
}

/// A planned switchover as the old primary saw it.
#[derive(Debug, Clone)]
pub struct SwitchoverOutcome {
    pub role: RoleState,
    /// Upper bound of the time writes were refused or held.
    pub write_pause: Duration,
}

/// One parameter that differs between the mounted file and the running middleware.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParameterChange {
    pub name: String,
    pub old_value: String,
    pub new_value: String,
}

/// A config reload request, as the controller sends it.
#[derive(Debug, Clone)]
pub struct ReloadRequest {
    pub config_path: std::path::PathBuf,
    /// sha256 hex of the rendered file; empty accepts whatever is mounted.
    pub content_hash: String,
    pub wait_timeout: Duration,
    /// Parameters the plugin classes as restart-required (on top of the adapter's own).
    pub restart_required: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReloadOutcome {
    pub applied: bool,
    pub requires_restart: bool,
    pub applied_changes: Vec<ParameterChange>,
    pub restart_required_changes: Vec<ParameterChange>,
    pub config_hash: String,
}

/// A snapshot the middleware wrote, kept for a backup to read.
#[derive(Debug, Clone)]
pub struct SnapshotOutcome {
    /// Role, term and offset read before the save was asked for...
    pub role: RoleState,
    /// ...at this time.
    pub role_observed_at: std::time::SystemTime,
    /// Directory of the snapshot, relative to the middleware's data directory.
    pub path: String,
    /// File names inside `path`.
    pub files: Vec<String>,
    /// When the agent saw the save finish.
    pub taken_at: std::time::SystemTime,
    /// Total size of `files`.
    pub bytes: u64,
}

/// Snapshot ids name a directory: 1..63 characters of `[a-z0-9-]`, so an id
/// can never climb out of the snapshots directory.
pub fn valid_snapshot_id(id: &str) -> bool {
    (1..=63).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

/// Figures the exporter publishes.
#[derive(Debug, Clone, Default)]
pub struct Stats {
    pub version: String,
    pub uptime_seconds: u64,
    pub used_memory_bytes: u64,
    pub max_memory_bytes: u64,
    pub connected_clients: u64,
    pub ops_per_second: u64,
    pub commands_processed_total: u64,
    pub keyspace_hits_total: u64,
    pub keyspace_misses_total: u64,
    pub expired_keys_total: u64,
    pub evicted_keys_total: u64,
    /// (database, keys, keys with an expiry)
    pub keyspace: Vec<(String, u64, u64)>,
    pub loading: bool,
    pub run_id: String,
}

#[derive(Debug, thiserror::Error)]
pub enum AdapterError {
    #[error("middleware at {address} unreachable: {message}")]
    Unreachable { address: String, message: String },
    #[error("stale term {requested}: this instance already holds term {held}")]
    StaleTerm { held: i64, requested: i64 },
    #[error("{operation} refused: {message}")]
    Rejected {
        operation: &'static str,
        message: String,
    },
    #[error("{operation} did not finish within {timeout:?}: {message}")]
    Timeout {
        operation: &'static str,
        timeout: Duration,
        message: String,
    },
    #[error("middleware error during {operation}: {message}")]
    Middleware {
        operation: &'static str,
        message: String,
    },
    /// The middleware refused parameter values; nothing was applied.
    #[error("{operation}: the middleware refused {}: {message}; nothing was applied", parameters.join(", "))]
    Refused {
        operation: &'static str,
        parameters: Vec<String>,
        message: String,
    },
    #[error("config file: {0}")]
    Config(#[from] crate::redis::config::ConfigFileError),
    #[error("snapshot: {0}")]
    Snapshot(#[from] crate::redis::snapshot::SnapshotError),
    #[error("agent state: {0}")]
    State(#[from] StateError),
}

impl AdapterError {
    /// The parameters the middleware refused, for a [`AdapterError::Refused`].
    pub fn refused_parameters(&self) -> &[String] {
        match self {
            AdapterError::Refused { parameters, .. } => parameters,
            _ => &[],
        }
    }

    /// Stable category for `ErrorDetail.reason`.
    pub fn reason(&self) -> &'static str {
        match self {
            AdapterError::Unreachable { .. } => "Unavailable",
            AdapterError::StaleTerm { .. } => "StaleTerm",
            AdapterError::Rejected { .. } => "FailedPrecondition",
            AdapterError::Timeout { .. } => "Timeout",
            AdapterError::Middleware { .. } => "MiddlewareError",
            AdapterError::Refused { .. } => "Refused",
            AdapterError::Config(_) => "Invalid",
            AdapterError::Snapshot(e) if e.is_invalid_id() => "Invalid",
            AdapterError::Snapshot(_) | AdapterError::State(_) => "Internal",
        }
    }

    pub fn retryable(&self) -> bool {
        matches!(
            self,
            AdapterError::Unreachable { .. } | AdapterError::Timeout { .. }
        )
    }
}

/// A middleware as agent 2 drives it. Every mutating call carries the term it
/// is made under; an adapter refuses a term lower than the one it holds, and
/// persists the new term before acting, so a stale controller or a restarted
/// old primary can never win over a newer decision.
pub trait Adapter: Send + Sync + 'static {
    /// "redis", "postgresql", ...
    fn kind(&self) -> &'static str;
    /// The middleware's address as peers reach it ("host:port").
    fn address(&self) -> &str;

    /// Whether the middleware answers.
    fn ping(&self) -> impl Future<Output = Result<(), AdapterError>> + Send;
    /// The current role, term and replication offset.
    fn role(&self) -> impl Future<Output = Result<RoleState, AdapterError>> + Send;
    /// Figures for the exporter and status.
    fn stats(&self) -> impl Future<Output = Result<Stats, AdapterError>> + Send;
    /// Held term without touching the middleware.
    fn term(&self) -> i64;

    /// Planned switchover, run on the current primary: hand the primary role to
    /// `candidate` without losing acknowledged writes, then follow it.
    fn switchover(
        &self,
        candidate: &str,
        term: i64,
        timeout: Duration,
    ) -> impl Future<Output = Result<SwitchoverOutcome, AdapterError>> + Send;
    /// Become primary under `term` (forced failover, or confirming a switchover).
    fn promote(&self, term: i64) -> impl Future<Output = Result<RoleState, AdapterError>> + Send;
    /// Replicate from `primary` under `term`.
    fn follow(
        &self,
        primary: &str,
        term: i64,
    ) -> impl Future<Output = Result<RoleState, AdapterError>> + Send;
    /// Stop taking writes under `term`: follow `new_primary` when known, else
    /// refuse writes. The decision is persisted first, so an unreachable
    /// middleware is fenced as soon as it returns.
    fn fence(
        &self,
        new_primary: Option<&str>,
        term: i64,
    ) -> impl Future<Output = Result<RoleState, AdapterError>> + Send;
    /// Re-apply the persisted decision if the middleware drifted from it (an old
    /// primary restarting as primary). Returns what it did, if anything.
    fn enforce(&self) -> impl Future<Output = Result<Option<String>, AdapterError>> + Send;

    /// Apply the mounted config file: all dynamic changes or none.
    fn reload_config(
        &self,
        request: ReloadRequest,
    ) -> impl Future<Output = Result<ReloadOutcome, AdapterError>> + Send;
    /// Hash of the config the middleware runs with.
    fn config_hash(&self) -> String;
    /// Stop the middleware (on pod termination); graceful lets replicas catch up first.
    fn stop(
        &self,
        graceful: bool,
        timeout: Duration,
    ) -> impl Future<Output = Result<(), AdapterError>> + Send;
    /// Restart the middleware and wait until it answers again.
    fn restart(
        &self,
        graceful: bool,
        timeout: Duration,
    ) -> impl Future<Output = Result<(), AdapterError>> + Send;
    /// Have the middleware write a consistent snapshot within `timeout` and
    /// keep it under the id (see the Redis adapter's `snapshot` module).
    fn snapshot(
        &self,
        id: &str,
        timeout: Duration,
    ) -> impl Future<Output = Result<SnapshotOutcome, AdapterError>> + Send;
}
