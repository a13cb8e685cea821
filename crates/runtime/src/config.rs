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
    /// Server-side deadline for one call, unless the client asks for less; past it
    /// the call ends with DEADLINE_EXCEEDED. 0: no server-side limit.
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
    /// Per-caller authorization through Kubernetes RBAC (see [`crate::authz`]).
    pub authorization: AuthorizationConfig,
}

/// The `server.authorization` section.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct AuthorizationConfig {
    /// `none` (default): only `auth_token_file`, if set, guards the port. `kubernetes`:
    /// every call carries the caller's own Kubernetes token, checked with a TokenReview,
    /// and each action with a SubjectAccessReview (docs/deploy.md).
    pub mode: AuthorizationMode,
    /// The kubeconfig for the reviews. Unset: the usual inference (in-cluster in a Pod).
    pub kubeconfig: Option<PathBuf>,
    /// How long a review's answer is reused (ms); 0 asks every time.
    pub cache_ttl_ms: u64,
}

impl Default for AuthorizationConfig {
    fn default() -> Self {
        Self {
            mode: AuthorizationMode::None,
            kubeconfig: None,
            cache_ttl_ms: 10_000,
        }
    }
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum AuthorizationMode {
    #[default]
    None,
    Kubernetes,
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
            authorization: AuthorizationConfig::default(),
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
/// type's `Default`. A key the file gets wrong (unknown, or of the wrong type)
/// is an error naming it. A `MIDPLANE_*` variable that names no setting of
/// this service (e.g. `MIDPLANE_KUBECONFIG`, which the CLI reads) is ignored
/// with a warning, logged once tracing is up ([`take_warnings`]).
///
/// Before anything else, `<binary> --version` (or `-V`) prints `<service> <version>` and
/// exits 0 ([`answer_version`]), so every binary built on the runtime answers it.
pub fn load<T: DeserializeOwned>(service: &str) -> Result<T, config::ConfigError> {
    answer_version(service);
    let file = std::env::var_os("MIDPLANE_CONFIG")
        .map(PathBuf::from)
        .or_else(|| {
            let p = PathBuf::from(format!("/etc/midplane/{service}.yaml"));
            p.exists().then_some(p)
        });
    let (config, warnings) = load_with_warnings(file.as_deref(), std::env::vars())?;
    if let Ok(mut pending) = PENDING_WARNINGS.lock() {
        pending.extend(warnings);
    }
    Ok(config)
}

/// When the only argument is `--version` or `-V`: prints `<service> <version>` (the
/// workspace version) and exits 0. Otherwise does nothing.
pub fn answer_version(service: &str) {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let [flag] = args.as_slice()
        && (flag == "--version" || flag == "-V")
    {
        println!("{service} {}", env!("CARGO_PKG_VERSION"));
        std::process::exit(0);
    }
}

static PENDING_WARNINGS: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());

/// Warnings [`load`] collected before tracing was set up; `Service::init` logs them.
pub fn take_warnings() -> Vec<String> {
    PENDING_WARNINGS
        .lock()
        .map(|mut w| std::mem::take(&mut *w))
        .unwrap_or_default()
}

/// [`load`] with an explicit file and environment, for tests and tools
/// (warnings are dropped; see [`load_with_warnings`]).
pub fn load_from<T: DeserializeOwned>(
    file: Option<&Path>,
    env: impl IntoIterator<Item = (String, String)>,
) -> Result<T, config::ConfigError> {
    load_with_warnings(file, env).map(|(config, _)| config)
}

/// [`load_from`], returning one warning per ignored environment variable.
pub fn load_with_warnings<T: DeserializeOwned>(
    file: Option<&Path>,
    env: impl IntoIterator<Item = (String, String)>,
) -> Result<(T, Vec<String>), config::ConfigError> {
    if let Some(path) = file
        && !path.exists()
    {
        return Err(config::ConfigError::Message(format!(
            "config file {} does not exist",
            path.display()
        )));
    }
    let mut env: Vec<(String, String)> = env
        .into_iter()
        .filter(|(k, _)| k.starts_with("MIDPLANE_") && k != "MIDPLANE_CONFIG")
        .collect();
    env.sort();
    if let Ok(config) = build(file, &env) {
        return Ok((config, Vec::new()));
    }
    // Something is wrong. The file alone must be right: its errors name the key.
    build::<T>(file, &[])?;
    // Then drop each variable that names no setting; a known setting with a
    // bad value stays an error below.
    let mut kept = Vec::new();
    let mut warnings = Vec::new();
    for var in env {
        match build::<T>(file, std::slice::from_ref(&var)) {
            Err(e) if is_unknown_key(&e) => warnings.push(format!(
                "ignoring environment variable {}: it names no setting of this service{}",
                var.0,
                hint(&var.0)
            )),
            _ => kept.push(var),
        }
    }
    build(file, &kept).map(|config| (config, warnings))
}

fn build<T: DeserializeOwned>(
    file: Option<&Path>,
    env: &[(String, String)],
) -> Result<T, config::ConfigError> {
    let mut builder = config::Config::builder();
    if let Some(path) = file {
        builder = builder.add_source(config::File::from(path).format(config::FileFormat::Yaml));
    }
    let env: config::Map<String, String> = env.iter().cloned().collect();
    builder = builder.add_source(
        config::Environment::with_prefix("MIDPLANE")
            .prefix_separator("_")
            .separator("__")
            .try_parsing(true)
            .source(Some(env)),
    );
    builder.build()?.try_deserialize()
}

fn is_unknown_key(e: &config::ConfigError) -> bool {
    e.to_string().contains("unknown field")
}

/// Where a commonly confused variable's setting really lives.
fn hint(var: &str) -> &'static str {
    match var {
        "MIDPLANE_AMQP_URL" => {
            " (the `midplane events` commands read it; services take the broker URL from bus.url, MIDPLANE_BUS__URL)"
        }
        "MIDPLANE_KUBECONFIG" => {
            " (the CLI reads it; services take a kubeconfig from their kube or scheduler section, e.g. MIDPLANE_KUBE__KUBECONFIG)"
        }
        _ => " (nested keys are separated by `__`, e.g. MIDPLANE_SERVER__GRPC_ADDR)",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Deserialize, Default)]
    #[serde(default, deny_unknown_fields)]
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
    fn stray_environment_variables_are_warned_about_not_fatal() {
        let env = vec![
            (
                "MIDPLANE_KUBECONFIG".to_string(),
                "/x/kubeconfig".to_string(),
            ),
            ("MIDPLANE_AMQP_URL".to_string(), "amqp://h".to_string()),
            (
                "MIDPLANE_SERVER__GRPC_ADDR".to_string(),
                "127.0.0.1:7300".to_string(),
            ),
            ("MIDPLANE_SERVER__NO_SUCH".to_string(), "1".to_string()),
        ];
        let (cfg, warnings) = load_with_warnings::<SvcConfig>(None, env).expect("load");
        assert_eq!(
            cfg.server.grpc_addr, "127.0.0.1:7300",
            "known keys still apply"
        );
        assert_eq!(warnings.len(), 3, "{warnings:?}");
        for var in [
            "MIDPLANE_KUBECONFIG",
            "MIDPLANE_AMQP_URL",
            "MIDPLANE_SERVER__NO_SUCH",
        ] {
            assert!(
                warnings.iter().any(|w| w.contains(var)),
                "{var}: {warnings:?}"
            );
        }
        assert!(
            warnings.iter().any(|w| w.contains("MIDPLANE_BUS__URL")),
            "the AMQP warning points at the service's setting: {warnings:?}"
        );
    }

    #[test]
    fn a_known_variable_with_a_bad_value_stays_an_error() {
        let env = vec![
            ("MIDPLANE_KUBECONFIG".to_string(), "/x".to_string()),
            (
                "MIDPLANE_SERVER__REQUEST_TIMEOUT_MS".to_string(),
                "soon".to_string(),
            ),
        ];
        let err = load_from::<SvcConfig>(None, env).expect_err("bad value");
        assert!(err.to_string().contains("request_timeout_ms"), "{err}");
    }

    #[test]
    fn unknown_top_level_file_key_is_an_error_even_with_stray_env() {
        #[derive(Debug, Deserialize, Default)]
        #[serde(default, deny_unknown_fields)]
        struct Strict {
            server: ServerConfig,
        }
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("svc.yaml");
        std::fs::write(&path, "servr:\n  grpc_addr: 1\n").expect("write");
        let env = vec![("MIDPLANE_KUBECONFIG".to_string(), "/x".to_string())];
        let err = load_from::<Strict>(Some(&path), env).expect_err("typo");
        assert!(err.to_string().contains("servr"), "{err}");
    }

    #[test]
    fn missing_file_is_an_error() {
        let err = load_from::<SvcConfig>(Some(Path::new("/nonexistent/x.yaml")), Vec::new())
            .expect_err("must fail");
        assert!(err.to_string().contains("/nonexistent/x.yaml"), "{err}");
    }
}
