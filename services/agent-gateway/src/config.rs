//! The gateway's configuration (`/etc/midplane/agent-gateway.yaml`, then `MIDPLANE_*`).

use std::path::PathBuf;
use std::time::Duration;

use midplane_runtime::ServerConfig;
use serde::Deserialize;

use crate::agent_tls::AgentTlsConfig;
use crate::fanout::{FanOutError, FanOutSettings};
use crate::resolver::StaticGroup;

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GatewayConfig {
    pub server: ServerConfig,
    pub agents: AgentsConfig,
    /// Where a Group's pods come from.
    pub resolver: ResolverKind,
    /// Groups and their pods for the static resolver (local runs and tests).
    pub static_groups: Vec<StaticGroup>,
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum ResolverKind {
    /// Pods labelled `midplane.dev/group` read from the Kubernetes API.
    #[default]
    Kube,
    /// `static_groups` from this file.
    Static,
}

impl Default for GatewayConfig {
    fn default() -> Self {
        Self {
            server: ServerConfig {
                grpc_addr: "0.0.0.0:50060".into(),
                admin_addr: "0.0.0.0:9060".into(),
                ..ServerConfig::default()
            },
            agents: AgentsConfig::default(),
            resolver: ResolverKind::default(),
            static_groups: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AgentsConfig {
    /// Bearer token the agents expect (mounted from the same Secret).
    pub token_file: Option<PathBuf>,
    /// Per-call deadline when the request gives none.
    pub timeout_ms: u64,
    /// Agent calls in flight across the gateway before new ones are shed.
    pub max_in_flight: usize,
    /// Extra attempts for idempotent calls (GetRole, GetStatus, HealthCheck).
    pub retries: usize,
    pub retry_backoff_ms: u64,
    pub connect_timeout_ms: u64,
    /// TLS / mTLS to the agents (see [`crate::agent_tls`]); plaintext when unset.
    pub tls: Option<AgentTlsConfig>,
}

impl Default for AgentsConfig {
    fn default() -> Self {
        let d = FanOutSettings::default();
        Self {
            token_file: None,
            timeout_ms: d.default_deadline.as_millis() as u64,
            max_in_flight: d.max_in_flight,
            retries: d.retries,
            retry_backoff_ms: d.retry_backoff.as_millis() as u64,
            connect_timeout_ms: d.connect_timeout.as_millis() as u64,
            tls: None,
        }
    }
}

impl AgentsConfig {
    pub fn fanout_settings(&self) -> Result<FanOutSettings, FanOutError> {
        let token = match &self.token_file {
            Some(path) => Some(
                std::fs::read_to_string(path)
                    .map_err(|source| FanOutError::Token {
                        path: path.display().to_string(),
                        source,
                    })?
                    .trim()
                    .to_string(),
            ),
            None => None,
        };
        Ok(FanOutSettings {
            default_deadline: Duration::from_millis(self.timeout_ms.max(1)),
            max_in_flight: self.max_in_flight,
            retries: self.retries,
            retry_backoff: Duration::from_millis(self.retry_backoff_ms),
            connect_timeout: Duration::from_millis(self.connect_timeout_ms.max(1)),
            token,
            tls: self.tls.clone(),
        })
    }
}

impl GatewayConfig {
    pub fn load() -> Result<Self, midplane_runtime::RuntimeError> {
        let mut c: Self = midplane_runtime::load("agent-gateway")?;
        let generic = ServerConfig::default();
        if c.server.grpc_addr == generic.grpc_addr {
            c.server.grpc_addr = "0.0.0.0:50060".into();
        }
        if c.server.admin_addr == generic.admin_addr {
            c.server.admin_addr = "0.0.0.0:9060".into();
        }
        Ok(c)
    }
}
