//! Helpers the backup-svc tests share: the real broker, a recording subscriber, data fixtures,
//! the emulator, the gRPC server and callers with their own RBAC.
#![allow(dead_code)]

use std::path::Path;
use std::sync::{Arc, Mutex};

use midplane_bus::config::{AMQP_URL_ENV, DEFAULT_AMQP_URL};
use midplane_bus::{BusConfig, Envelope, HandlerError, Received, Subscriber, SubscriberConfig};
use midplane_runtime::testing::eventually;

/// A bus on its own exchange, so tests run in parallel without seeing each other's events.
/// Fails (never skips) when the broker is down.
pub async fn test_bus(tag: &str) -> BusConfig {
    let url = std::env::var(AMQP_URL_ENV).unwrap_or_else(|_| DEFAULT_AMQP_URL.to_owned());
    let suffix = uuid::Uuid::new_v4().simple().to_string();
    let bus = BusConfig {
        url,
        exchange: format!("midplane.test.backup.{tag}.{}", &suffix[..10]),
        source: "/midplane/backup-svc".into(),
        ..BusConfig::default()
    };
    if let Err(e) = midplane_bus::topology::queue_depth(&bus, "amq.nonexistent-probe").await {
        panic!(
            "RabbitMQ is not reachable at {} ({e}); start it with scripts/services/rabbitmq.sh",
            bus.redacted_url()
        );
    }
    bus
}

/// An outside subscriber bound to backup and restore events, recording them in order.
pub struct Tail {
    pub sub: Option<Subscriber>,
    pub seen: Arc<Mutex<Vec<Envelope>>>,
    bus: BusConfig,
}

impl Tail {
    pub async fn start(bus: &BusConfig) -> Self {
        let seen: Arc<Mutex<Vec<Envelope>>> = Arc::default();
        let rec = seen.clone();
        let mut cfg = SubscriberConfig::new("tail", &["midplane.backup.#", "midplane.restore.#"]);
        // One handler at a time, so the recorded order is the delivery order.
        cfg.concurrency = 1;
        let sub = Subscriber::start(bus, cfg, move |r: Received| {
            let rec = rec.clone();
            async move {
                rec.lock().map_err(HandlerError::new)?.push(r.event);
                Ok::<(), HandlerError>(())
            }
        })
        .await
        .expect("tail subscriber");
        Self {
            sub: Some(sub),
            seen,
            bus: bus.clone(),
        }
    }

    /// Waits until `n` events arrived and returns them.
    pub async fn wait_for(&self, n: usize) -> Vec<Envelope> {
        let seen = self.seen.clone();
        eventually(&format!("{n} backup events"), 30, || {
            let seen = seen.clone();
            async move {
                let v = seen.lock().expect("lock").clone();
                (v.len() >= n).then_some(v)
            }
        })
        .await
    }

    pub fn types(events: &[Envelope]) -> Vec<&str> {
        events.iter().map(|e| e.event_type.as_str()).collect()
    }

    pub async fn stop(mut self) {
        if let Some(sub) = self.sub.take() {
            sub.shutdown().await.expect("drain tail");
        }
        let delays = SubscriberConfig::new("tail", &[]).retry_delays;
        let queues =
            midplane_bus::topology::SubscriberQueues::new(&self.bus.exchange, "tail", &delays);
        let _ = midplane_bus::topology::delete_subscriber(&self.bus, &queues).await;
        let _ = midplane_bus::topology::delete_exchange(&self.bus).await;
    }
}

/// A small instance data directory.
pub fn instance_data(dir: &Path) {
    std::fs::create_dir_all(dir.join("appendonlydir")).expect("mkdir");
    std::fs::write(dir.join("dump.rdb"), vec![7u8; 200_000]).expect("write");
    std::fs::write(dir.join("appendonlydir/a.aof"), b"SET a 1\n".repeat(500)).expect("write");
}

/// A 32-byte key mounted the way the service expects Secrets: `<secrets>/<ns>/<name>/key`.
pub fn secret(secrets: &Path, ns: &str, name: &str, byte: u8) {
    std::fs::create_dir_all(secrets.join(ns).join(name)).expect("mkdir");
    std::fs::write(secrets.join(ns).join(name).join("key"), [byte; 32]).expect("write");
}

/// What the Backup Pod would do: the pipeline, driven only by what the Job says.
pub async fn run_pod(
    job: &k8s_openapi::api::batch::v1::Job,
    pvc_dir: &std::path::Path,
    key: &midplane_backup::BackupKey,
) -> String {
    let c = &job
        .spec
        .as_ref()
        .expect("spec")
        .template
        .spec
        .as_ref()
        .expect("pod")
        .containers[0];
    let env: std::collections::HashMap<String, String> = c
        .env
        .iter()
        .flatten()
        .map(|e| (e.name.clone(), e.value.clone().unwrap_or_default()))
        .collect();
    let o = midplane_backup::cli::EnvOverrides::read(|k| env.get(k).cloned()).expect("env");
    let cmd = c.command.as_ref().expect("command");
    let arg = |flag: &str| {
        let i = cmd.iter().position(|a| a == flag).expect(flag);
        cmd[i + 1].clone()
    };
    let store = midplane_backup::Store::from_uri(&arg("--to")).expect("store");
    let opts = midplane_backup::cli::create_options(
        arg("--encryption")
            .parse::<midplane_backup::Algorithm>()
            .expect("algorithm"),
        o,
    );
    midplane_backup::create_backup(&store, pvc_dir, key, &opts)
        .await
        .expect("pod pipeline")
        .id
}

/// App `shop/cache` with one Redis instance whose backup policy runs daily at 03:00 into the
/// storage `nightly` with the key Secret `cache-key`, keeping at most `keep` backups.
pub fn backup_app(schedule: &str, encryption: &str, keep: Option<i32>) -> midplane_api::App {
    use midplane_api::{App, AppSpec, BackupPolicy, ComponentTemplate, MiddlewareSpec, Retention};
    let mut app = App::new(
        "cache",
        AppSpec {
            components: vec![ComponentTemplate {
                name: "redis".into(),
                spec: MiddlewareSpec {
                    plugin: "redis".into(),
                    replicas: 1,
                    shards: 1,
                    backup: Some(BackupPolicy {
                        enabled: true,
                        schedule: schedule.into(),
                        retention: keep.map(|count| Retention {
                            count: Some(count),
                            max_age: None,
                        }),
                        encryption: Some(encryption.into()),
                        storage: "nightly".into(),
                        key_secret: Some("cache-key".into()),
                    }),
                    ..Default::default()
                },
            }],
        },
    );
    app.metadata.namespace = Some("shop".into());
    app
}

/// The Kubernetes API emulator with the CRDs and namespace `shop`, whose Job Pods are held
/// (`JobOutcome::Hold`) while a test runs each Pod's command itself (`run_pod`), then says how
/// it ended; and a client for it.
pub async fn job_emulator() -> (midplane_kube_emulator::EmulatorHandle, kube::Client) {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let emu = midplane_kube_emulator::Emulator::start(midplane_kube_emulator::EmulatorConfig {
        crd_dir: Some(root.join("k8s/crds")),
        namespaces: vec!["shop".into()],
        pod_ready_delay: std::time::Duration::from_millis(50),
        job_outcome: midplane_kube_emulator::JobOutcome::Hold,
        ..Default::default()
    })
    .await
    .expect("emulator");
    let client =
        kube::Client::try_from(kube::Config::new(emu.url().parse().expect("url"))).expect("client");
    (emu, client)
}

/// backup-svc's BackupService on loopback, served as the binary serves it.
pub async fn serve(
    svc: midplane_backup_svc::BackupSvc,
    config: midplane_runtime::ServerConfig,
) -> (tonic::transport::Channel, midplane_runtime::Shutdown) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let shutdown = midplane_runtime::Shutdown::new();
    let stop = shutdown.clone();
    let routes = midplane_runtime::Routes::new(
        midplane_proto::backup::backup_service_server::BackupServiceServer::new(svc),
    );
    tokio::spawn(async move {
        midplane_runtime::grpc::serve(
            listener,
            &config,
            routes,
            midplane_runtime::Health::new(),
            stop,
        )
        .await
    });
    let channel = eventually("the gRPC server", 10, || async {
        tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
            .expect("endpoint")
            .connect()
            .await
            .ok()
    })
    .await;
    (channel, shutdown)
}

/// A ServiceAccount `callers/<name>` allowed `verbs` on Backups in namespace `shop`; its token.
pub async fn caller(
    emu: &midplane_kube_emulator::EmulatorHandle,
    admin: &kube::Client,
    name: &str,
    verbs: &[&str],
) -> String {
    use k8s_openapi::api::core::v1::ServiceAccount;
    use k8s_openapi::api::rbac::v1::{Role, RoleBinding};
    kube::Api::<ServiceAccount>::namespaced(admin.clone(), "callers")
        .create(
            &kube::api::PostParams::default(),
            &serde_json::from_value(serde_json::json!({"metadata": {"name": name}})).expect("sa"),
        )
        .await
        .expect("service account");
    let role: Role = serde_json::from_value(serde_json::json!({
        "metadata": {"name": name, "namespace": "shop"},
        "rules": [{"apiGroups": ["midplane.dev"], "resources": ["backups"], "verbs": verbs}]
    }))
    .expect("role");
    kube::Api::<Role>::namespaced(admin.clone(), "shop")
        .create(&kube::api::PostParams::default(), &role)
        .await
        .expect("role");
    let binding: RoleBinding = serde_json::from_value(serde_json::json!({
        "metadata": {"name": name, "namespace": "shop"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name},
        "subjects": [{"kind": "ServiceAccount", "name": name, "namespace": "callers"}]
    }))
    .expect("binding");
    kube::Api::<RoleBinding>::namespaced(admin.clone(), "shop")
        .create(&kube::api::PostParams::default(), &binding)
        .await
        .expect("role binding");
    emu.service_account_token("callers", name).expect("token")
}

/// `msg` with the caller's bearer token.
pub fn as_caller<T>(token: &str, msg: T) -> tonic::Request<T> {
    let mut r = tonic::Request::new(msg);
    r.metadata_mut().insert(
        "authorization",
        format!("Bearer {token}").parse().expect("header"),
    );
    r
}

/// A RequestAppBackup for component `redis` of App `shop/cache` ([`backup_app`]), named `name`.
pub fn app_backup_request(name: &str) -> midplane_proto::backup::RequestAppBackupRequest {
    midplane_proto::backup::RequestAppBackupRequest {
        namespace: "shop".into(),
        app: "cache".into(),
        component: "redis".into(),
        name: name.into(),
        ..Default::default()
    }
}
