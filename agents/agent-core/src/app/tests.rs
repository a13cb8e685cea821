use super::*;

#[test]
fn adapter_argument_is_checked() {
    let args = |v: &[&str]| {
        v.iter()
            .map(std::string::ToString::to_string)
            .collect::<Vec<_>>()
    };
    assert!(check_adapter_args(args(&[])).is_ok());
    assert!(check_adapter_args(args(&["--adapter", "redis"])).is_ok());
    assert!(check_adapter_args(args(&["--adapter=redis"])).is_ok());
    let err = check_adapter_args(args(&["--adapter", "mysql"])).expect_err("unknown");
    assert!(err.to_string().contains("mysql"), "{err}");
    assert!(check_adapter_args(args(&["--adapter"])).is_err());
    assert!(check_adapter_args(args(&["--verbose"])).is_err());
    assert_eq!(
        check_adapter_args(args(&["--adapter", "redis"])).expect("serve"),
        AdapterCommand::Serve
    );
    assert_eq!(
        check_adapter_args(args(&[
            "--adapter",
            "redis",
            "prepare-data",
            "--data",
            "/data",
            "--config=/etc/redis/redis.conf",
        ]))
        .expect("prepare-data"),
        AdapterCommand::PrepareData {
            data: PathBuf::from("/data"),
            config: PathBuf::from("/etc/redis/redis.conf"),
        }
    );
    let err =
        check_adapter_args(args(&["prepare-data", "--data", "/data"])).expect_err("no config");
    assert!(err.to_string().contains("--config"), "{err}");
    assert!(check_adapter_args(args(&["--data", "/data", "--config", "/c"])).is_err());
    assert!(check_adapter_args(args(&["prepare-data", "--data"])).is_err());
    assert!(check_lifecycle_args(args(&[])).is_ok());
    assert!(check_lifecycle_args(args(&["--version"])).is_err());
}

#[test]
fn preflight_names_a_missing_token_or_certificate() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut server = ServerConfig {
        auth_token_file: Some(dir.path().join("token")),
        ..ServerConfig::default()
    };
    let err = preflight(&server).expect_err("missing token");
    let text = err.to_string();
    assert!(
        text.contains("server.auth_token_file")
            && text.contains("token")
            && text.contains("keeps running"),
        "{text}"
    );
    std::fs::write(dir.path().join("token"), "  \n").expect("write");
    assert!(
        preflight(&server)
            .expect_err("empty")
            .to_string()
            .contains("is empty")
    );
    std::fs::write(dir.path().join("token"), "s3cret").expect("write");
    assert!(preflight(&server).is_ok());
    server.tls = Some(midplane_runtime::TlsConfig {
        cert_file: dir.path().join("tls.crt"),
        key_file: dir.path().join("tls.key"),
        client_ca_file: None,
        reload_interval_ms: 0,
    });
    let text = preflight(&server).expect_err("missing cert").to_string();
    assert!(
        text.contains("server.tls.cert_file") && text.contains("tls.crt"),
        "{text}"
    );
}

#[test]
fn pod_env_keys_fill_the_redis_settings() {
    let env = vec![
        ("MIDPLANE_INSTANCE".to_string(), "cache-0-1".to_string()),
        ("MIDPLANE_GROUP".to_string(), "shop-cache-0".to_string()),
        (
            "MIDPLANE_MIDDLEWARE_ADDR".to_string(),
            "127.0.0.1:6380".to_string(),
        ),
        (
            "MIDPLANE_CONFIG_PATH".to_string(),
            "/etc/redis/redis.conf".to_string(),
        ),
        ("MIDPLANE_DATA_DIR".to_string(), "/data".to_string()),
        (
            "MIDPLANE_EXPORTER_ADDR".to_string(),
            "0.0.0.0:9191".to_string(),
        ),
        (
            "MIDPLANE_SERVER__AUTH_TOKEN_FILE".to_string(),
            "/var/run/midplane/agent/token".to_string(),
        ),
        (
            "MIDPLANE_SERVER__TLS__CERT_FILE".to_string(),
            "/var/run/midplane/agent-tls/tls.crt".to_string(),
        ),
        (
            "MIDPLANE_SERVER__TLS__KEY_FILE".to_string(),
            "/var/run/midplane/agent-tls/tls.key".to_string(),
        ),
        (
            "MIDPLANE_SERVER__TLS__CLIENT_CA_FILE".to_string(),
            "/var/run/midplane/agent-tls/ca.crt".to_string(),
        ),
    ];
    let mut c: AdapterAgentConfig = midplane_runtime::config::load_from(None, env).expect("load");
    pod_env(&c.middleware_addr, &c.config_path, &c.data_dir).apply(&mut c.redis, Some("10.1.2.3"));
    assert_eq!(c.instance.as_deref(), Some("cache-0-1"));
    assert_eq!(c.exporter_addr, "0.0.0.0:9191");
    assert_eq!(c.redis.connect_address, "127.0.0.1:6380");
    assert_eq!(c.redis.announce_address.as_deref(), Some("10.1.2.3:6380"));
    assert_eq!(
        c.redis.state_path,
        PathBuf::from("/data/midplane-agent-state.json")
    );
    assert_eq!(
        c.server.auth_token_file,
        Some(PathBuf::from("/var/run/midplane/agent/token"))
    );
    let tls = c.server.tls.expect("server.tls from env");
    assert_eq!(
        tls.cert_file,
        PathBuf::from("/var/run/midplane/agent-tls/tls.crt")
    );
    assert_eq!(
        tls.key_file,
        PathBuf::from("/var/run/midplane/agent-tls/tls.key")
    );
    assert_eq!(
        tls.client_ca_file,
        Some(PathBuf::from("/var/run/midplane/agent-tls/ca.crt")),
        "client certificates required"
    );
}
