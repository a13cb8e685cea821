//! Configuration: built-in defaults, then a YAML file, then `MIDPLANE_*`
//! environment variables (`__` separates nesting levels), so
//! `MIDPLANE_SERVER__GRPC_ADDR=0.0.0.0:7000` overrides `server.grpc_addr`.

use serde::Deserialize;
use serde::de::DeserializeOwned;
use std::path::{Path, PathBuf};

/// The part of every service's configuration the runtime reads
/// (the `server:` section of the config file).
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct ServerConfig {
    /// gRPC listen address.
    pub grpc_addr: String,
    /// Admin HTTP listen address: /metrics, /livez, /readyz.
    pub admin_addr: String,
    pub log: LogConfig,
    /// Server-side deadline for one call, unless the client asks for less.
    pub request_timeout_ms: u64,
    /// Calls served at once per connection; more wait, or are shed when `load_shed` is on.
    pub concurrency_limit_per_connection: usize,
    /// Refuse calls with RESOURCE_EXHAUSTED instead of queueing when at the limit.
    pub load_shed: bool,
    /// Time allowed for in-flight calls to finish after SIGTERM.
    pub shutdown_grace_ms: u64,
    /// File holding the bearer token callers must present (mounted from a Secret).
    /// Unset: no authentication (local runs only).
    pub auth_token_file: Option<PathBuf>,
    /// Serve gRPC over TLS (mTLS when `client_ca_file` is set). Unset: plaintext.
    /// The admin HTTP port stays plaintext (kubelet probes cannot present certificates).
    pub tls: Option<TlsConfig>,
}

/// The `server.tls` section: PEM files mounted from a Kubernetes Secret
/// (e.g. a cert-manager `Certificate`: `tls.crt`, `tls.key`, `ca.crt`).
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// The server's certificate chain (leaf first).
    pub cert_file: PathBuf,
    /// Its private key (PKCS#8, PKCS#1 or SEC1).
    pub key_file: PathBuf,
    /// CA bundle client certificates must chain to. Set: every connection must
    /// present a valid client certificate (mTLS). Unset: server-only TLS.
    #[serde(default)]
    pub client_ca_file: Option<PathBuf>,
    /// How often the three files are re-read; a change is applied to new
    /// connections (cert-manager rotation). 0 turns polling off; SIGHUP always
    /// re-reads them at once.
    #[serde(default = "default_tls_reload_interval_ms")]
    pub reload_interval_ms: u64,
}

fn default_tls_reload_interval_ms() -> u64 {
    10_000
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            grpc_addr: "0.0.0.0:7000".into(),
            admin_addr: "0.0.0.0:9000".into(),
            log: LogConfig::default(),
            request_timeout_ms: 30_000,
            concurrency_limit_per_connection: 256,
            load_shed: true,
            shutdown_grace_ms: 10_000,
            auth_token_file: None,
            tls: None,
        }
    }
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct LogConfig {
    /// A tracing `EnvFilter` directive; `RUST_LOG` wins when set.
    pub level: String,
    pub format: LogFormat,
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            level: "info".into(),
            format: LogFormat::Text,
        }
    }
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

/// Loads a service's configuration. The file is `MIDPLANE_CONFIG` when set,
/// else `/etc/midplane/<service>.yaml` when it exists; missing keys take the
/// type's `Default`.
pub fn load<T: DeserializeOwned>(service: &str) -> Result<T, config::ConfigError> {
    let file = std::env::var_os("MIDPLANE_CONFIG")
        .map(PathBuf::from)
        .or_else(|| {
            let p = PathBuf::from(format!("/etc/midplane/{service}.yaml"));
            p.exists().then_some(p)
        });
    load_from(file.as_deref(), std::env::vars())
}

/// [`load`] with an explicit file and environment, for tests and tools.
pub fn load_from<T: DeserializeOwned>(
    file: Option<&Path>,
    env: impl IntoIterator<Item = (String, String)>,
) -> Result<T, config::ConfigError> {
    let mut builder = config::Config::builder();
    if let Some(path) = file {
        if !path.exists() {
            return Err(config::ConfigError::Message(format!(
                "config file {} does not exist",
                path.display()
            )));
        }
        builder = builder.add_source(config::File::from(path).format(config::FileFormat::Yaml));
    }
    let env: config::Map<String, String> = env
        .into_iter()
        .filter(|(k, _)| k.starts_with("MIDPLANE_") && k != "MIDPLANE_CONFIG")
        .collect();
    builder = builder.add_source(
        config::Environment::with_prefix("MIDPLANE")
            .prefix_separator("_")
            .separator("__")
            .try_parsing(true)
            .source(Some(env)),
    );
    builder.build()?.try_deserialize()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Deserialize, Default)]
    #[serde(default)]
    struct SvcConfig {
        server: ServerConfig,
        plugin_namespace: String,
    }

    #[test]
    fn env_overrides_file_overrides_defaults() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("svc.yaml");
        std::fs::write(
            &path,
            "server:\n  grpc_addr: 127.0.0.1:7100\n  request_timeout_ms: 5000\nplugin_namespace: from-file\n",
        )
        .expect("write");
        let env = vec![
            (
                "MIDPLANE_SERVER__GRPC_ADDR".to_string(),
                "127.0.0.1:7200".to_string(),
            ),
            ("UNRELATED".to_string(), "x".to_string()),
        ];
        let cfg: SvcConfig = load_from(Some(&path), env).expect("load");
        assert_eq!(cfg.server.grpc_addr, "127.0.0.1:7200");
        assert_eq!(cfg.server.request_timeout_ms, 5000);
        assert_eq!(cfg.server.admin_addr, ServerConfig::default().admin_addr);
        assert_eq!(cfg.plugin_namespace, "from-file");
    }

    #[test]
    fn unknown_server_key_is_an_error_naming_it() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("svc.yaml");
        std::fs::write(&path, "server:\n  grpc_adr: 1\n").expect("write");
        let err = load_from::<SvcConfig>(Some(&path), Vec::new()).expect_err("must fail");
        assert!(err.to_string().contains("grpc_adr"), "{err}");
    }

    #[test]
    fn tls_section_from_file_and_env() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("svc.yaml");
        std::fs::write(
            &path,
            "server:\n  tls:\n    cert_file: /tls/tls.crt\n    key_file: /tls/tls.key\n",
        )
        .expect("write");
        let env = vec![(
            "MIDPLANE_SERVER__TLS__CLIENT_CA_FILE".to_string(),
            "/tls/ca.crt".to_string(),
        )];
        let cfg: SvcConfig = load_from(Some(&path), env).expect("load");
        let tls = cfg.server.tls.expect("tls section");
        assert_eq!(tls.cert_file, Path::new("/tls/tls.crt"));
        assert_eq!(tls.key_file, Path::new("/tls/tls.key"));
        assert_eq!(
            tls.client_ca_file.as_deref(),
            Some(Path::new("/tls/ca.crt"))
        );
        assert_eq!(tls.reload_interval_ms, 10_000);

        let none: SvcConfig = load_from(None, Vec::new()).expect("load");
        assert_eq!(none.server.tls, None, "TLS stays off unless configured");

        std::fs::write(&path, "server:\n  tls:\n    cert_file: /tls/tls.crt\n").expect("write");
        let err = load_from::<SvcConfig>(Some(&path), Vec::new()).expect_err("key_file missing");
        assert!(err.to_string().contains("key_file"), "{err}");
    }

    #[test]
    fn missing_file_is_an_error() {
        let err = load_from::<SvcConfig>(Some(Path::new("/nonexistent/x.yaml")), Vec::new())
            .expect_err("must fail");
        assert!(err.to_string().contains("/nonexistent/x.yaml"), "{err}");
    }
}
