//! Every metric a rule, a recording rule or a dashboard panel in
//! `k8s/monitoring/` reads is exported by a running process: the five service
//! binaries and the agent exporters of a real Redis Group (process Pods of the
//! emulator), after the traffic an installation sees (an App rolled out,
//! gateway calls, a config reload, backups that succeed and fail, restores),
//! scraped over HTTP as Prometheus would.
//!
//! Needs root (process Pods), redis-server, RabbitMQ, and the workspace's
//! binaries built (`cargo build --workspace`, which `cargo test --workspace`
//! does).

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ListParams};
use midplane_api::Group;
use midplane_e2e::monitoring::{all_queries, metric_names, recorded};
use midplane_e2e::services::{Vhost, binary};
use midplane_kube_emulator::{EmulatorConfig, PodMode, ProcessPods};
use midplane_platform::{Platform, PlatformConfig};
use midplane_proto::backup::backup_service_client::BackupServiceClient;
use midplane_proto::backup::{self as backup_pb};
use midplane_proto::common::ObjectRef;
use midplane_proto::gateway::agent_gateway_client::AgentGatewayClient;
use midplane_proto::gateway::{self as gateway_pb};
use midplane_runtime::testing::SpawnedService;
use midplane_runtime::testing::contract::plain_transport;
use midplane_runtime::testing::eventually as until;

/// Read by rules but exported by other software: where each comes from.
const EXTERNAL: &[(&str, &str)] = &[
    ("up", "Prometheus, per scrape target"),
    (
        "rabbitmq_detailed_queue_messages",
        "RabbitMQ's rabbitmq_prometheus plugin",
    ),
    (
        "midplane_group_condition",
        "kube-state-metrics with k8s/monitoring/kube-state-metrics/midplane-crs.yaml",
    ),
];

/// `GET /metrics` over HTTP/1.0; the body.
async fn scrape(addr: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream =
        tokio::time::timeout(Duration::from_secs(5), tokio::net::TcpStream::connect(addr))
            .await
            .unwrap_or_else(|_| panic!("connect {addr}: timed out"))
            .unwrap_or_else(|e| panic!("connect {addr}: {e}"));
    stream
        .write_all(b"GET /metrics HTTP/1.0\r\nHost: metrics\r\n\r\n")
        .await
        .expect("request");
    let mut body = String::new();
    tokio::time::timeout(Duration::from_secs(10), stream.read_to_string(&mut body))
        .await
        .expect("scrape timed out")
        .expect("read");
    assert!(
        body.starts_with("HTTP/1.") && body.contains(" 200 "),
        "{addr}: {body:.200}"
    );
    body.split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default()
}

/// The metric names of an exposition: sample names, and for histograms and
/// summaries also their family name.
fn exported_names(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for line in text.lines() {
        if line.starts_with('#') || line.trim().is_empty() {
            continue;
        }
        let name: String = line
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == ':')
            .collect();
        for suffix in ["_bucket", "_sum", "_count"] {
            if let Some(family) = name.strip_suffix(suffix) {
                out.insert(family.to_string());
            }
        }
        out.insert(name);
    }
    out
}

fn service_env(kubeconfig: &str, bus: &str) -> Vec<(String, String)> {
    [
        ("MIDPLANE_KUBE__KUBECONFIG", kubeconfig),
        ("MIDPLANE_LEADER_ELECTION__ENABLED", "false"),
        ("MIDPLANE_SERVER__LOG__LEVEL", "warn"),
        ("MIDPLANE_BUS__URL", bus),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

fn start(name: &str, env: &[(String, String)]) -> SpawnedService {
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    SpawnedService::start(&binary(name), &env).unwrap_or_else(|e| panic!("start {name}: {e}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_metric_a_rule_or_panel_reads_is_exported() {
    let pods = ProcessPods {
        pod_sync_period: Duration::from_secs(2),
        ..ProcessPods::default()
    };
    if let Err(why) = pods.preflight() {
        panic!("process Pods cannot run here: {why}");
    }
    let vhost = Vhost::create("midplane-monitoring");
    let work = tempfile::tempdir().expect("tempdir");
    let token = midplane_platform::random_token();
    let mut cfg = PlatformConfig::emulator(EmulatorConfig {
        pods: PodMode::Process(pods),
        ..EmulatorConfig::default()
    })
    .expect("plugins");
    cfg.controllers = false;
    cfg.agent_token = Some(token.clone());
    let platform = Platform::start(cfg).await.expect("platform");
    let kubeconfig = work.path().join("kubeconfig");
    platform
        .emulator()
        .expect("in-process emulator")
        .write_kubeconfig(&kubeconfig)
        .expect("kubeconfig");
    let kubeconfig = kubeconfig.display().to_string();
    let base = service_env(&kubeconfig, &vhost.url());

    // The gateway reaches the agents with their token; plugin-svc serves TLS
    // (so the certificate expiry gauge exists); backup-svc backs a directory
    // up to a file:// store.
    let token_file = work.path().join("agent-token");
    std::fs::write(&token_file, &token).expect("token");
    let mut gateway_env = base.clone();
    gateway_env.push(("KUBECONFIG".into(), kubeconfig.clone()));
    gateway_env.push((
        "MIDPLANE_AGENTS__TOKEN_FILE".into(),
        token_file.display().to_string(),
    ));
    let gateway = start("agent-gateway", &gateway_env);

    let mut group_env = base.clone();
    group_env.push((
        "MIDPLANE_AGENT_GATEWAY__ADDR".into(),
        format!("http://{}", gateway.grpc_addr),
    ));
    let group_svc = start("group-svc", &group_env);
    let app_svc = start("app-svc", &base);

    let ca = midplane_runtime::testing::pki::TestCa::new(work.path(), "monitoring").expect("ca");
    let leaf = ca.issue("plugin-svc", &["localhost"]).expect("leaf");
    let mut plugin_env = base.clone();
    plugin_env.push((
        "MIDPLANE_SERVER__TLS__CERT_FILE".into(),
        leaf.cert.display().to_string(),
    ));
    plugin_env.push((
        "MIDPLANE_SERVER__TLS__KEY_FILE".into(),
        leaf.key.display().to_string(),
    ));
    let plugin_svc = start("plugin-svc", &plugin_env);

    let store = work.path().join("store");
    let data = work.path().join("data");
    let source = data.join("default/shop-cache-0/shop-cache-0-0");
    std::fs::create_dir_all(&source).expect("source dir");
    std::fs::write(source.join("dump.rdb"), b"REDIS0011 monitoring").expect("data");
    let key_file = work.path().join("key");
    std::fs::write(&key_file, hex_key()).expect("key");
    let mut backup_env: Vec<(String, String)> = base
        .iter()
        .filter(|(k, _)| !k.starts_with("MIDPLANE_KUBE__") && !k.starts_with("MIDPLANE_LEADER"))
        .cloned()
        .collect();
    backup_env.extend([
        (
            "MIDPLANE_BACKUP__DEFAULT_STORAGE".to_string(),
            format!("file://{}", store.display()),
        ),
        (
            "MIDPLANE_BACKUP__DEFAULT_KEY_REF".to_string(),
            format!("file:{}", key_file.display()),
        ),
        (
            "MIDPLANE_BACKUP__DATA_ROOT".to_string(),
            data.display().to_string(),
        ),
        ("MINIO_ACCESS_KEY".to_string(), "monitoring".to_string()),
        (
            "MINIO_SECRET_KEY".to_string(),
            "monitoring-secret".to_string(),
        ),
    ]);
    let backup_svc = start("backup-svc", &backup_env);

    // An App rolled out by the real controllers onto real Redis processes.
    let client = platform.client();
    let app = midplane_e2e::example_app();
    midplane_e2e::apply_app(&client, &app).await;
    until("the App is Ready", 120, || {
        let client = client.clone();
        async move { midplane_e2e::app_ready(&client, "shop").await }
    })
    .await;
    let groups: Api<Group> = Api::namespaced(client.clone(), "default");
    let group = groups
        .list(&ListParams::default())
        .await
        .expect("groups")
        .items
        .into_iter()
        .next()
        .expect("a Group");
    let group_ref = Some(ObjectRef {
        namespace: "default".into(),
        name: kube::ResourceExt::name_any(&group),
    });

    // Gateway calls, a config reload through every agent.
    let (transport, origin) = plain_transport(gateway.grpc_addr);
    let mut gw = AgentGatewayClient::with_origin(transport, origin);
    let roles = gw
        .get_roles(gateway_pb::GroupRequest {
            group: group_ref.clone(),
            ..Default::default()
        })
        .await
        .expect("GetRoles")
        .into_inner();
    assert!(!roles.pods.is_empty(), "{roles:?}");
    gw.reload_config(gateway_pb::ReloadConfigRequest {
        group: group_ref.clone(),
        ..Default::default()
    })
    .await
    .expect("ReloadConfig");

    // Backups: one that succeeds, one whose storage is down; a restore that
    // succeeds and one of a backup that does not exist.
    let (transport, origin) = plain_transport(backup_svc.grpc_addr);
    let mut backups = BackupServiceClient::with_origin(transport, origin);
    let labels: std::collections::HashMap<String, String> = [
        ("midplane.dev/app", "shop"),
        ("midplane.dev/component", "cache"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    let source_ref = Some(ObjectRef {
        namespace: "default".into(),
        name: "shop-cache-0".into(),
    });
    let made = backups
        .create_backup(backup_pb::CreateBackupRequest {
            source: source_ref.clone(),
            instance: "shop-cache-0-0".into(),
            labels: labels.clone(),
            ..Default::default()
        })
        .await
        .expect("CreateBackup")
        .into_inner();
    let closed = format!(
        "http://127.0.0.1:{}",
        midplane_runtime::testing::free_port().expect("port")
    );
    let failed = backups
        .create_backup(backup_pb::CreateBackupRequest {
            source: source_ref.clone(),
            instance: "shop-cache-0-0".into(),
            storage: format!("minio://backups/midplane?endpoint={closed}"),
            labels,
            ..Default::default()
        })
        .await;
    assert!(failed.is_err(), "a backup to a closed endpoint: {failed:?}");
    let restored = backups
        .restore(backup_pb::RestoreRequest {
            id: made.id.clone(),
            target_path: work.path().join("restored").display().to_string(),
            ..Default::default()
        })
        .await
        .expect("Restore")
        .into_inner();
    assert!(restored.success, "{restored:?}");
    let _ = backups
        .restore(backup_pb::RestoreRequest {
            id: "no-such-backup".into(),
            target_path: work.path().join("nothing").display().to_string(),
            ..Default::default()
        })
        .await;

    // Data in Redis, so the keyspace figures exist (replicas refuse writes).
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    let pod_list = pods.list(&ListParams::default()).await.expect("pods").items;
    assert_eq!(pod_list.len(), 3, "the example App runs three Pods");
    let ips: Vec<String> = pod_list
        .iter()
        .map(|p| {
            p.status
                .as_ref()
                .and_then(|s| s.pod_ip.clone())
                .expect("pod IP")
        })
        .collect();
    for ip in &ips {
        let _ = midplane_e2e::process::redis_cli(&["-h", ip, "SET", "monitoring", "1"]).await;
    }

    // Scrape everything, as Prometheus would: the agents' exporters first.
    let mut exported: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (pod, ip) in pod_list.iter().zip(&ips) {
        let text = scrape(&format!("{ip}:9090")).await;
        exported.insert(kube::ResourceExt::name_any(pod), exported_names(&text));
    }

    // A plugin update travels the bus: plugin-svc publishes it, group-svc's
    // subscriber handles it (and re-renders the Group).
    let cms: Api<k8s_openapi::api::core::v1::ConfigMap> =
        Api::namespaced(client.clone(), "midplane-system");
    let cm = midplane_e2e::redis_plugin_config_map(|files| {
        midplane_e2e::replace_in(
            files,
            "values.yaml",
            "terminationGracePeriodSeconds: 30",
            "terminationGracePeriodSeconds: 31",
        );
    });
    midplane_e2e::apply_cm(&cms, &cm).await;
    let group_admin = group_svc.admin_addr.to_string();
    until("group-svc handled the plugin event", 30, || {
        let addr = group_admin.clone();
        async move {
            scrape(&addr)
                .await
                .contains("midplane_bus_handler_duration_seconds_bucket")
                .then_some(())
        }
    })
    .await;

    for (name, svc) in [
        ("app-svc", &app_svc),
        ("group-svc", &group_svc),
        ("plugin-svc", &plugin_svc),
        ("backup-svc", &backup_svc),
        ("agent-gateway", &gateway),
    ] {
        let text = scrape(&svc.admin_addr.to_string()).await;
        exported.insert(name.to_string(), exported_names(&text));
    }
    let everything: BTreeSet<String> = exported.values().flatten().cloned().collect();

    let recorded = recorded();
    let external: BTreeSet<&str> = EXTERNAL.iter().map(|(n, _)| *n).collect();
    let mut missing: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (place, expr) in all_queries() {
        for name in metric_names(&expr) {
            if recorded.contains(&name)
                || external.contains(name.as_str())
                || everything.contains(&name)
            {
                continue;
            }
            missing.entry(name).or_default().push(place.clone());
        }
    }
    assert!(
        missing.is_empty(),
        "read by rules or panels but exported by nothing that ran:\n{missing:#?}\nexported: {everything:?}"
    );
    drop((app_svc, group_svc, plugin_svc, backup_svc, gateway));
    platform.stop().await;
    drop(vhost);
}

fn hex_key() -> String {
    "07".repeat(32)
}
