//! The gateway's side of mTLS with the agents (rustls on aws-lc-rs).
//!
//! Agents are dialled by pod IP, so the IP says nothing about who answers.
//! Identity is checked by name instead: every agent's server certificate
//! carries one fixed DNS SAN (`server_name`, default
//! `agent.midplane.internal`) and must chain to `ca_file`; the gateway sends
//! that name as SNI and rustls refuses a certificate without it. Only holders
//! of a key certified by the agents' CA for that name can serve agent calls;
//! an IP taken over by another pod cannot.
//!
//! The gateway presents `cert_file`/`key_file` as its client certificate; the
//! agents require it (their `server.tls.client_ca_file`). The bearer token is
//! still sent on top when `agents.token_file` is set.
//!
//! The files are re-read every `reload_interval_ms` and on SIGHUP; when they changed, calls
//! open new connections with the new certificates (existing channels are
//! replaced lazily, in-flight calls finish on the old ones).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock, Weak};
use std::time::Duration;

use serde::Deserialize;
use tonic::transport::{Certificate, ClientTlsConfig, Endpoint, Identity};

/// The DNS SAN agent certificates carry unless configured otherwise.
pub const DEFAULT_AGENT_SERVER_NAME: &str = "agent.midplane.internal";

/// The `agents.tls` section of the gateway's configuration.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct AgentTlsConfig {
    /// CA bundle the agents' server certificates must chain to.
    pub ca_file: PathBuf,
    /// Client certificate presented to the agents (mTLS); with `key_file`.
    #[serde(default)]
    pub cert_file: Option<PathBuf>,
    #[serde(default)]
    pub key_file: Option<PathBuf>,
    /// The DNS name every agent certificate must carry.
    #[serde(default = "default_server_name")]
    pub server_name: String,
    /// How often the files are re-read (0: only on SIGHUP).
    #[serde(default = "default_reload_interval_ms")]
    pub reload_interval_ms: u64,
}

fn default_server_name() -> String {
    DEFAULT_AGENT_SERVER_NAME.into()
}

fn default_reload_interval_ms() -> u64 {
    10_000
}

#[derive(Debug, thiserror::Error)]
pub enum AgentTlsError {
    #[error("agent TLS file {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("agent TLS: cert_file and key_file go together")]
    HalfIdentity,
    #[error("agent TLS: {0}")]
    Invalid(String),
}

#[derive(PartialEq, Eq)]
struct Material {
    ca: Vec<u8>,
    identity: Option<(Vec<u8>, Vec<u8>)>,
}

fn read(path: &Path) -> Result<Vec<u8>, AgentTlsError> {
    std::fs::read(path).map_err(|source| AgentTlsError::Read {
        path: path.display().to_string(),
        source,
    })
}

impl Material {
    fn read(config: &AgentTlsConfig) -> Result<Self, AgentTlsError> {
        let identity = match (&config.cert_file, &config.key_file) {
            (Some(c), Some(k)) => Some((read(c)?, read(k)?)),
            (None, None) => None,
            _ => return Err(AgentTlsError::HalfIdentity),
        };
        Ok(Self {
            ca: read(&config.ca_file)?,
            identity,
        })
    }

    /// The tonic config, checked by building a connector with it (PEM
    /// parsing, key/cert match and the server name are all checked there).
    fn client_config(&self, config: &AgentTlsConfig) -> Result<ClientTlsConfig, AgentTlsError> {
        let ca_path = config.ca_file.display().to_string();
        midplane_runtime::tls::parse_certificates(&config.ca_file, &self.ca)
            .map_err(|e| AgentTlsError::Invalid(e.to_string()))?;
        let mut tls = ClientTlsConfig::new()
            .ca_certificate(Certificate::from_pem(&self.ca))
            .domain_name(config.server_name.clone());
        if let Some((cert, key)) = &self.identity {
            if let Some(p) = &config.cert_file {
                midplane_runtime::tls::parse_certificates(p, cert)
                    .map_err(|e| AgentTlsError::Invalid(e.to_string()))?;
            }
            if let Some(p) = &config.key_file {
                midplane_runtime::tls::parse_private_key(p, key)
                    .map_err(|e| AgentTlsError::Invalid(e.to_string()))?;
            }
            tls = tls.identity(Identity::from_pem(cert, key));
        }
        Endpoint::from_static("https://127.0.0.1:1")
            .tls_config(tls.clone())
            .map_err(|e| {
                AgentTlsError::Invalid(format!(
                    "{e} (ca {ca_path}, server name {:?}): {}",
                    config.server_name,
                    std::error::Error::source(&e)
                        .map(std::string::ToString::to_string)
                        .unwrap_or_default()
                ))
            })?;
        Ok(tls)
    }
}

struct Loaded {
    client: ClientTlsConfig,
    material: Material,
}

/// The client TLS config in force, and a generation that moves on rotation.
pub struct AgentTls {
    config: AgentTlsConfig,
    loaded: RwLock<Loaded>,
    generation: AtomicU64,
}

impl AgentTls {
    pub fn load(config: &AgentTlsConfig) -> Result<Self, AgentTlsError> {
        let material = Material::read(config)?;
        let client = material.client_config(config)?;
        Ok(Self {
            config: config.clone(),
            loaded: RwLock::new(Loaded { client, material }),
            generation: AtomicU64::new(0),
        })
    }

    pub fn client_config(&self) -> ClientTlsConfig {
        self.loaded
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .client
            .clone()
    }

    /// Moves on every applied rotation; channels of an older one are replaced.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// Re-reads the files: `Ok(true)` when they changed and were applied.
    pub fn reload(&self) -> Result<bool, AgentTlsError> {
        let material = Material::read(&self.config)?;
        if self
            .loaded
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .material
            == material
        {
            return Ok(false);
        }
        let client = material.client_config(&self.config)?;
        *self
            .loaded
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Loaded { client, material };
        self.generation.fetch_add(1, Ordering::AcqRel);
        Ok(true)
    }

    /// Re-reads the files every `reload_interval_ms` (unless 0) and on SIGHUP,
    /// while anyone still holds this `AgentTls`.
    pub fn spawn_reloader(self: &Arc<Self>) {
        let interval = Duration::from_millis(self.config.reload_interval_ms);
        let Ok(handle) = tokio::runtime::Handle::try_current() else {
            tracing::warn!("no tokio runtime: agent TLS files will not be re-read");
            return;
        };
        let weak: Weak<Self> = Arc::downgrade(self);
        let _guard = handle.enter();
        let mut hangup = midplane_runtime::tls::hangup_signal();
        handle.spawn(async move {
            loop {
                hangup.next_reload(interval).await;
                let Some(tls) = weak.upgrade() else { break };
                match tls.reload() {
                    Ok(true) => {
                        metrics::counter!("midplane_gateway_agent_tls_reloads_total").increment(1);
                        tracing::info!("agent TLS certificates changed; new connections use them");
                    }
                    Ok(false) => {}
                    Err(e) => {
                        tracing::warn!(error = %e, "agent TLS certificates not reloaded; the current ones stay in use");
                    }
                }
            }
        });
    }
}
