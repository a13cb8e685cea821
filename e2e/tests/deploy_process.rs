//! The suite installed from k8s/ as a user installs it, on the emulator with process pods
//! and RBAC enforced: the base's objects are applied, the Secrets made, and the emulator's
//! kubelet runs each service's Deployment as described (its image mapped to the binary
//! this workspace built, its ConfigMap and Secrets mounted, its ServiceAccount token and
//! the API server's CA at /var/run/secrets/kubernetes.io/serviceaccount, probes on
//! /livez and /readyz). The example App then goes to Ready through those Pods, its Redis
//! answers, and the API server refused none of the services' requests.
//!
//! Needs root (process pods), redis-server, RabbitMQ and the service binaries
//! (`cargo build --workspace`), as the other process-pod tests do.

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Pod;
use kube::Client;
use kube::api::{Api, ListParams};
use midplane_e2e::process::{ready, redis_cli};
use midplane_e2e::{NS, app_ready, apply_app, eventually, example_app, root};
use midplane_kube_emulator::{Emulator, EmulatorConfig, PodMode, ProcessPods};
use serde_json::{Value, json};
use std::path::PathBuf;
use std::time::Duration;

const SYSTEM: &str = "midplane-system";
const SERVICES: [&str; 5] = [
    "app-svc",
    "group-svc",
    "plugin-svc",
    "backup-svc",
    "agent-gateway",
];

/// The directory holding the workspace's binaries (target/<profile>), every service there.
fn bin_dir() -> PathBuf {
    for s in SERVICES {
        midplane_e2e::services::binary(s);
    }
    midplane_e2e::services::bin_dir()
}

/// The emulator's built-in image map plus the suite's images, as scripts/images.sh
/// names them, mapped to the binaries in `bins`.
fn image_map(bins: &std::path::Path, out: &std::path::Path) -> PathBuf {
    let mut text = std::fs::read_to_string(root().join("crates/kube-emulator/images.yaml"))
        .expect("built-in image map");
    for s in SERVICES {
        text.push_str(&format!(
            "  - image: ghcr.io/midplane/{s}\n    entrypoint: [{s}]\n    search: [{}]\n    programs: [{s}]\n",
            bins.display()
        ));
    }
    let path = out.join("images.yaml");
    std::fs::write(&path, text).expect("write image map");
    path
}

fn render_base() -> Vec<Value> {
    midplane_e2e::manifests::kustomize("base")
}

async fn create(admin: &Client, doc: &Value) {
    midplane_e2e::manifests::create(admin, doc).await;
}

/// The emulator's Pods share the machine's network (one loopback address each), so the
/// services listen on their Pod IP, as the plugin's agents do, instead of 0.0.0.0 (which
/// in a cluster is the Pod's own network namespace). Nothing else of the Deployment changes.
fn on_pod_ip(deployment: &mut Value) {
    let c = &mut deployment["spec"]["template"]["spec"]["containers"][0];
    let port = |name: &str| {
        c["ports"]
            .as_array()
            .and_then(|ps| ps.iter().find(|p| p["name"] == name))
            .and_then(|p| p["containerPort"].as_u64())
            .expect("named port")
    };
    let (grpc, admin) = (port("grpc"), port("admin"));
    let env = c["env"].as_array_mut().expect("env");
    env.push(json!({"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}}));
    env.push(json!({"name": "MIDPLANE_SERVER__GRPC_ADDR", "value": format!("$(POD_IP):{grpc}")}));
    env.push(json!({"name": "MIDPLANE_SERVER__ADMIN_ADDR", "value": format!("$(POD_IP):{admin}")}));
}

fn secret(namespace: &str, name: &str, data: &[(&str, &str)]) -> Value {
    let data: serde_json::Map<String, Value> = data
        .iter()
        .map(|(k, v)| ((*k).to_string(), Value::from(*v)))
        .collect();
    json!({"apiVersion": "v1", "kind": "Secret",
           "metadata": {"name": name, "namespace": namespace}, "stringData": data})
}

async fn deployment_available(admin: &Client, name: &str) -> Option<()> {
    let d = Api::<Deployment>::namespaced(admin.clone(), SYSTEM)
        .get(name)
        .await
        .ok()?;
    (d.status?.available_replicas? >= 1).then_some(())
}

/// Every Pod's container states and the last lines of its logs, for a failure message.
async fn diagnose(admin: &Client) -> String {
    let mut out = String::new();
    for ns in [SYSTEM, NS] {
        let api = Api::<Pod>::namespaced(admin.clone(), ns);
        for pod in api
            .list(&ListParams::default())
            .await
            .map(|l| l.items)
            .unwrap_or_default()
        {
            let name = kube::ResourceExt::name_any(&pod);
            let statuses = pod
                .status
                .as_ref()
                .and_then(|s| s.container_statuses.clone())
                .unwrap_or_default();
            for c in statuses {
                out.push_str(&format!(
                    "{ns}/{name} {}: ready={} restarts={} {:?} last {:?}\n",
                    c.name, c.ready, c.restart_count, c.state, c.last_state
                ));
                let lp = kube::api::LogParams {
                    container: Some(c.name.clone()),
                    tail_lines: Some(8),
                    previous: c.restart_count > 0,
                    ..kube::api::LogParams::default()
                };
                if let Ok(log) = api.logs(&name, &lp).await {
                    out.push_str(&log);
                }
            }
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_suite_installed_from_k8s_takes_an_app_to_ready_and_its_redis_answers() {
    let bins = bin_dir();
    let work = tempfile::tempdir().expect("temp dir");
    let node = tempfile::Builder::new()
        .prefix("midplane-deploy-")
        .tempdir_in("/var/tmp")
        .expect("node state dir");
    let pods = ProcessPods {
        pod_sync_period: Duration::from_secs(2),
        image_map: Some(image_map(&bins, work.path())),
        // Not under /tmp: each service mounts an emptyDir at /tmp, and the emulator binds a
        // container's volumes from the node's state directory after that mount (sources
        // under /tmp would then be hidden by it).
        state_dir: Some(node.path().join("node")),
        ..ProcessPods::default()
    };
    if let Err(why) = pods.preflight() {
        panic!("process Pods cannot run here: {why}");
    }
    let vhost = midplane_e2e::services::Vhost::create("midplane-deploy");
    let emu = Emulator::start(EmulatorConfig {
        pods: PodMode::Process(pods),
        namespaces: vec![NS.into(), SYSTEM.into()],
        secure_addr: Some("127.0.0.1:0".parse().expect("addr")),
        ..EmulatorConfig::default()
    })
    .await
    .expect("emulator");
    let admin = Client::try_from(
        kube::Config::from_custom_kubeconfig(
            kube::config::Kubeconfig::from_yaml(&emu.kubeconfig_yaml()).expect("kubeconfig"),
            &kube::config::KubeConfigOptions::default(),
        )
        .await
        .expect("config"),
    )
    .expect("admin client");

    // What a user creates: the Secrets the base names, then the base itself.
    let agent_token = midplane_platform::random_token();
    let gateway_token = midplane_platform::random_token();
    for doc in [
        secret(SYSTEM, "midplane-rabbitmq", &[("url", &vhost.url())]),
        secret(SYSTEM, "midplane-agent-token", &[("token", &agent_token)]),
        secret(
            SYSTEM,
            "midplane-gateway-token",
            &[("token", &gateway_token)],
        ),
        secret(NS, "midplane-agent-token", &[("token", &agent_token)]),
    ] {
        create(&admin, &doc).await;
    }
    for mut doc in render_base() {
        if doc["kind"] == "Deployment" {
            on_pod_ip(&mut doc);
        }
        create(&admin, &doc).await;
    }
    for s in SERVICES {
        let deadline = std::time::Instant::now() + Duration::from_secs(90);
        while deployment_available(&admin, s).await.is_none() {
            if std::time::Instant::now() > deadline {
                panic!("{s} not available:\n{}", diagnose(&admin).await);
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    let app = example_app();
    apply_app(&admin, &app).await;
    eventually("App Ready", 180, || app_ready(&admin, "shop")).await;
    let pods = Api::<Pod>::namespaced(admin.clone(), NS)
        .list(&ListParams::default().labels("midplane.dev/group=shop-cache-0"))
        .await
        .expect("pods")
        .items;
    assert_eq!(pods.len(), 3);
    assert!(pods.iter().all(ready));
    for pod in &pods {
        let ip = pod
            .status
            .as_ref()
            .and_then(|s| s.pod_ip.clone())
            .expect("pod IP");
        let (ok, out) = redis_cli(&["-h", &ip, "PING"]).await;
        assert!(ok && out == "PONG", "{ip}: {out}");
    }

    // The gateway, behind its token, reaches every Pod's agents with the agent token and
    // finds them with its own account.
    let gateway = Api::<Pod>::namespaced(admin.clone(), SYSTEM)
        .list(&ListParams::default().labels("app.kubernetes.io/name=agent-gateway"))
        .await
        .expect("gateway pod")
        .items;
    let ip = gateway
        .first()
        .and_then(|p| p.status.as_ref()?.pod_ip.clone())
        .expect("gateway pod IP");
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{ip}:50060"))
        .expect("endpoint")
        .connect()
        .await
        .expect("connect to the gateway");
    let mut request = tonic::Request::new(midplane_proto::gateway::GroupRequest {
        group: Some(midplane_proto::common::ObjectRef {
            namespace: NS.into(),
            name: "shop-cache-0".into(),
        }),
        ..Default::default()
    });
    request.metadata_mut().insert(
        "authorization",
        format!("Bearer {gateway_token}").parse().expect("header"),
    );
    let roles = midplane_proto::gateway::agent_gateway_client::AgentGatewayClient::new(channel)
        .get_roles(request)
        .await
        .expect("GetRoles through the gateway")
        .into_inner();
    assert_eq!(roles.pods.len(), 3, "{roles:?}");
    assert!(!roles.primary_instance.is_empty(), "{roles:?}");

    let prefix = format!("system:serviceaccount:{SYSTEM}:");
    let audit = emu.audit();
    let users: std::collections::BTreeSet<&str> = audit
        .iter()
        .filter_map(|r| r.user.strip_prefix(&prefix))
        .collect();
    assert_eq!(
        users.into_iter().collect::<Vec<_>>(),
        [
            "agent-gateway",
            "app-svc",
            "backup-svc",
            "group-svc",
            "plugin-svc"
        ],
        "every service talked to the API server with its own account"
    );
    let refused: Vec<String> = audit
        .iter()
        .filter(|r| r.user.starts_with(&prefix) && r.code == 403)
        .map(|r| format!("{}: {:?}", r.user, r.attributes))
        .collect();
    assert_eq!(refused, Vec::<String>::new(), "requests RBAC refused");
    emu.shutdown().await;
}
