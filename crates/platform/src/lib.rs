//! The whole platform in one process, against a Kubernetes API: the CRDs and
//! plugin ConfigMaps installed, plugin-svc's watcher (the one validator of
//! plugins), app-svc's and group-svc's controllers sharing one plugin store,
//! and, when asked, the event bus. `midplane dev`, the scale benchmark and
//! every cross-service test start it this way, so what they exercise is one
//! wiring, the same the services' `main.rs` files do across processes.

use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use kube::api::{Api, Patch, PatchParams};
use kube::{Client, ResourceExt};
use midplane_kube_emulator::{Emulator, EmulatorConfig, EmulatorHandle};
use midplane_operator::EventRecorder;
use midplane_operator::plugins::PluginStore;
use midplane_plugin::Registry;
use midplane_runtime::Shutdown;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::task::JoinHandle;

mod gateway;
pub mod writes;
pub use writes::WriteCounter;

/// Where plugin ConfigMaps live unless told otherwise.
pub const PLUGIN_NAMESPACE: &str = "midplane-system";
/// The field manager the platform installs CRDs and plugins with.
pub const INSTALLER: &str = "midplane/installer";

/// Which Kubernetes API the platform runs against.
pub enum ApiServer {
    /// An emulator started in this process.
    Emulator(Box<EmulatorConfig>),
    /// An API server already running (a kube-emulator process, a cluster).
    Url(String),
}

pub struct PlatformConfig {
    pub api: ApiServer,
    pub plugin_namespace: String,
    /// The plugins the services ship with; their ConfigMaps are installed too.
    pub plugins: Registry,
    /// Publish events on this bus (plugin, app, component and group events).
    pub bus: Option<midplane_bus::BusConfig>,
    /// Run app-svc's and group-svc's controllers (off: only the API and plugins).
    pub controllers: bool,
    /// Planned switchovers go through this agent gateway (`http://host:port`).
    pub gateway: Option<String>,
    /// The bearer token the Pods' agents require, written as the Secret the
    /// Redis plugin mounts (`midplane-agent-token`, key `token`) into each
    /// namespace of `app_namespaces`. Needed when Pods run for real.
    pub agent_token: Option<String>,
    /// Where Apps will be created (for the agent token Secret).
    pub app_namespaces: Vec<String>,
    /// Run backup-svc's Backup controller too (`Backup` resources, docs/backups.md).
    pub backups: Option<BackupsConfig>,
}

/// backup-svc's Backup controller in the platform's process.
#[derive(Clone, Debug)]
pub struct BackupsConfig {
    /// Where Backups go unless they (or the component's backup policy) name a storage.
    pub storage_uri: String,
    /// The key written as the Secret [`BACKUP_KEY_SECRET`] (key `key`) into each App
    /// namespace: Backups that name no key use it.
    pub key: String,
}

/// The Secret holding the backup key `midplane dev` creates.
pub const BACKUP_KEY_SECRET: &str = "midplane-backup-key";

/// The Secret the Redis plugin's agents read their token from.
pub const AGENT_TOKEN_SECRET: &str = "midplane-agent-token";

impl PlatformConfig {
    /// An in-process emulator with the bundled plugins and the controllers.
    pub fn emulator(emulator: EmulatorConfig) -> Result<Self, PlatformError> {
        Ok(Self {
            api: ApiServer::Emulator(Box::new(emulator)),
            plugin_namespace: PLUGIN_NAMESPACE.into(),
            plugins: midplane_plugin::registry::bundled()?,
            bus: None,
            controllers: true,
            gateway: None,
            agent_token: None,
            app_namespaces: vec!["default".into()],
            backups: None,
        })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum PlatformError {
    #[error("starting the Kubernetes API emulator: {0}")]
    Emulator(#[from] midplane_kube_emulator::EmulatorError),
    #[error("API server URL {url:?}: {message}")]
    Url { url: String, message: String },
    #[error("installing {what}: {source}")]
    Install { what: String, source: kube::Error },
    #[error("the bundled plugins: {0}")]
    Plugins(#[from] midplane_plugin::PluginError),
    #[error("connecting to the event bus: {0}")]
    Bus(#[from] midplane_bus::BusError),
    #[error("agent gateway: {0}")]
    Gateway(#[from] midplane_group_svc::gateway::GatewayError),
    #[error("starting the agent gateway: {0}")]
    GatewayStart(String),
    #[error("{0}")]
    Json(#[from] serde_json::Error),
    #[error("timed out after {0:?} waiting for the controllers' caches")]
    NotReady(Duration),
}

/// A running platform; [`Platform::stop`] ends it (dropping it aborts its tasks).
pub struct Platform {
    emulator: Option<EmulatorHandle>,
    url: String,
    client: Client,
    shutdown: Shutdown,
    tasks: Tasks,
    publishers: Vec<JoinHandle<()>>,
    pub plugins: PluginStore,
    pub app: Arc<midplane_app_svc::Context>,
    pub group: Arc<midplane_group_svc::Context>,
    /// Every write the platform's own client sent.
    pub writes: WriteCounter,
}

impl Platform {
    pub async fn start(cfg: PlatformConfig) -> Result<Self, PlatformError> {
        let (emulator, url) = match cfg.api {
            ApiServer::Emulator(e) => {
                let mut e = *e;
                e.namespaces.push(cfg.plugin_namespace.clone());
                let emu = Emulator::start(e).await?;
                let url = emu.url();
                (Some(emu), url)
            }
            ApiServer::Url(url) => (None, url),
        };
        let writes = WriteCounter::default();
        let client = client_for(&url, &writes)?;
        install(
            &client,
            emulator.as_ref(),
            &cfg.plugin_namespace,
            &cfg.plugins,
        )
        .await?;
        if let Some(token) = &cfg.agent_token {
            install_agent_token(&client, &cfg.app_namespaces, token).await?;
        }
        let shutdown = Shutdown::new();
        let plugins = PluginStore::new(cfg.plugins.clone());
        let mut publishers = Vec::new();
        let sink = |source: &str, what: &str| {
            let bus = cfg.bus.clone().map(|b| b.with_source(source));
            let what = what.to_string();
            async move { midplane_bus::EventSink::connect(bus, &what).await }
        };
        let (plugin_sink, p) = sink("/midplane/plugin-svc", "plugin").await?;
        let (app_sink, a) = sink("/midplane/app-svc", "App and Component").await?;
        let (group_sink, g) = sink("/midplane/group-svc", "Group").await?;
        let (backup_sink, b) = sink("/midplane/backup-svc", "backup").await?;
        publishers.extend([p, a, g, b].into_iter().flatten());

        let app = Arc::new(
            midplane_app_svc::Context::new(client.clone(), plugins.clone()).with_bus(app_sink),
        );
        let mut group =
            midplane_group_svc::Context::new(client.clone(), plugins.clone()).with_bus(group_sink);
        let mut gateway_task = None;
        let gateway_addr = match (&cfg.gateway, &cfg.agent_token) {
            (Some(addr), _) => Some(addr.clone()),
            // Real Pods, the controllers here and no gateway named: run one
            // here, so group-svc hears the agents (roles, failover, reloads).
            (None, Some(token)) if cfg.controllers => {
                let (addr, task) = gateway::start(client.clone(), token).await?;
                gateway_task = Some(task);
                Some(addr)
            }
            (None, _) => None,
        };
        if let Some(addr) = &gateway_addr {
            group = group.with_gateway(midplane_group_svc::gateway::Gateway::new(addr, None)?);
        }
        let group = Arc::new(group);

        // plugin-svc's watcher is the one validator: it feeds the shared store
        // (which wakes the controllers) and reports refused plugins once.
        let events = EventRecorder::new(client.clone(), "midplane-plugin-svc");
        let mut tasks = Tasks(gateway_task.into_iter().collect());
        tasks.0.push(spawn_until(
            &shutdown,
            midplane_plugin_svc::watch::run(
                client.clone(),
                cfg.plugin_namespace.clone(),
                plugins.clone(),
                events,
                plugin_sink,
            ),
        ));
        if let (Some(b), true) = (&cfg.backups, cfg.controllers) {
            install_secret(
                &client,
                &cfg.app_namespaces,
                BACKUP_KEY_SECRET,
                "key",
                &b.key,
            )
            .await?;
            let ctx = backups_context(&client, b, gateway_addr.as_deref(), backup_sink)?;
            let stop = shutdown.clone();
            tasks
                .0
                .push(tokio::spawn(midplane_backup_svc::resources::run(
                    ctx,
                    None,
                    async move { stop.wait().await },
                )));
        }
        if cfg.controllers {
            tasks
                .0
                .push(tokio::spawn(midplane_app_svc::run::run_controllers(
                    app.clone(),
                    shutdown.clone(),
                )));
            tasks
                .0
                .push(tokio::spawn(midplane_group_svc::run::run_controller(
                    group.clone(),
                    shutdown.clone(),
                )));
        }
        Ok(Self {
            emulator,
            url,
            client,
            shutdown,
            tasks,
            publishers,
            plugins,
            app,
            group,
            writes,
        })
    }

    pub fn client(&self) -> Client {
        self.client.clone()
    }

    /// The API server's URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The in-process emulator, if the platform runs one.
    pub fn emulator(&self) -> Option<&EmulatorHandle> {
        self.emulator.as_ref()
    }

    pub fn shutdown_signal(&self) -> Shutdown {
        self.shutdown.clone()
    }

    /// Whether the controllers' watch caches have all listed once.
    pub fn caches_synced(&self) -> bool {
        self.app.caches_synced() && self.group.owned.ready()
    }

    /// Waits until the controllers' caches have listed once.
    pub async fn ready(&self, timeout: Duration) -> Result<(), PlatformError> {
        let start = Instant::now();
        while !self.caches_synced() {
            if start.elapsed() > timeout {
                return Err(PlatformError::NotReady(timeout));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Ok(())
    }

    /// Stops the controllers, sends what the bus sinks hold, stops the emulator.
    pub async fn stop(self) {
        let Self {
            emulator,
            shutdown,
            mut tasks,
            publishers,
            app,
            group,
            ..
        } = self;
        shutdown.trigger();
        let running = std::mem::take(&mut tasks.0);
        let _ = tokio::time::timeout(Duration::from_secs(5), async {
            for t in running {
                let _ = t.await;
            }
        })
        .await;
        // The sinks' tasks end once the last context holding a sink is gone.
        drop((app, group));
        let _ = tokio::time::timeout(Duration::from_secs(10), async {
            for p in publishers {
                let _ = p.await;
            }
        })
        .await;
        if let Some(emu) = emulator {
            emu.shutdown().await;
        }
    }
}

/// The platform's tasks, aborted if it is dropped without [`Platform::stop`].
struct Tasks(Vec<JoinHandle<()>>);

impl Drop for Tasks {
    fn drop(&mut self) {
        for t in &self.0 {
            t.abort();
        }
    }
}

fn spawn_until(
    shutdown: &Shutdown,
    work: impl std::future::Future<Output = ()> + Send + 'static,
) -> JoinHandle<()> {
    let stop = shutdown.clone();
    tokio::spawn(async move {
        tokio::select! {
            _ = work => {}
            _ = stop.wait() => {}
        }
    })
}

/// A client whose every write is counted by `writes`.
fn client_for(url: &str, writes: &WriteCounter) -> Result<Client, PlatformError> {
    let err = |message: String| PlatformError::Url {
        url: url.to_string(),
        message,
    };
    let uri: http::Uri = url
        .parse()
        .map_err(|e: http::uri::InvalidUri| err(e.to_string()))?;
    let counter = writes.clone();
    let count = tower::util::MapRequestLayer::new(move |req: http::Request<kube::client::Body>| {
        counter.observe(&req);
        req
    });
    let builder = kube::client::ClientBuilder::try_from(kube::Config::new(uri))
        .map_err(|e| err(e.to_string()))?;
    Ok(builder.with_layer(&count).build())
}

/// The CRDs (straight into an in-process emulator, else applied and waited
/// for), the plugin namespace and the plugin ConfigMaps.
async fn install(
    client: &Client,
    emulator: Option<&EmulatorHandle>,
    plugin_namespace: &str,
    plugins: &Registry,
) -> Result<(), PlatformError> {
    let pp = PatchParams::apply(INSTALLER).force();
    let failed = |what: String| move |source| PlatformError::Install { what, source };
    for (name, crd) in midplane_api::crd::all() {
        match emulator {
            Some(emu) => emu.install_crd(serde_json::to_value(&crd)?)?,
            None => {
                let api: Api<k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition> =
                    Api::all(client.clone());
                let mut body = serde_json::to_value(&crd)?;
                typed(
                    &mut body,
                    "apiextensions.k8s.io/v1",
                    "CustomResourceDefinition",
                );
                api.patch(&crd.name_any(), &pp, &Patch::Apply(&body))
                    .await
                    .map_err(failed(format!("CRD {name}")))?;
            }
        }
    }
    if emulator.is_none() {
        let ns = serde_json::json!({"apiVersion": "v1", "kind": "Namespace",
                                    "metadata": {"name": plugin_namespace}});
        Api::<Namespace>::all(client.clone())
            .patch(plugin_namespace, &pp, &Patch::Apply(&ns))
            .await
            .map_err(failed(format!("namespace {plugin_namespace}")))?;
    }
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), plugin_namespace);
    for plugin in plugins.iter() {
        let cm = plugin.to_config_map(plugin_namespace);
        let mut body = serde_json::to_value(&cm)?;
        typed(&mut body, "v1", "ConfigMap");
        cms.patch(&cm.name_any(), &pp, &Patch::Apply(&body))
            .await
            .map_err(failed(format!("plugin {}", plugin.id())))?;
    }
    Ok(())
}

/// The agents' token Secret in every namespace Apps will use.
async fn install_agent_token(
    client: &Client,
    namespaces: &[String],
    token: &str,
) -> Result<(), PlatformError> {
    install_secret(client, namespaces, AGENT_TOKEN_SECRET, "token", token).await
}

/// Writes Secret `name` holding `value` under `key` into each namespace.
async fn install_secret(
    client: &Client,
    namespaces: &[String],
    name: &str,
    key: &str,
    value: &str,
) -> Result<(), PlatformError> {
    use k8s_openapi::api::core::v1::Secret;
    let pp = PatchParams::apply(INSTALLER).force();
    for ns in namespaces {
        let body = serde_json::json!({
            "apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": name, "namespace": ns,
                         "labels": {midplane_api::labels::MANAGED_BY: midplane_api::labels::MANAGED_BY_VALUE}},
            "stringData": {key: value},
        });
        Api::<Secret>::namespaced(client.clone(), ns)
            .patch(name, &pp, &Patch::Apply(&body))
            .await
            .map_err(|source| PlatformError::Install {
                what: format!("the Secret {ns}/{name}"),
                source,
            })?;
    }
    Ok(())
}

/// backup-svc's Backup controller as the platform runs it: Jobs in the `midplane` CLI image
/// (the kube-emulator's image map runs this workspace's binary), snapshots through the
/// gateway when there is one.
fn backups_context(
    client: &Client,
    b: &BackupsConfig,
    gateway: Option<&str>,
    events: midplane_bus::EventSink,
) -> Result<Arc<midplane_backup_svc::resources::Context>, PlatformError> {
    use midplane_backup_svc::resources::snapshot::{LiveFiles, Snapshots};
    use midplane_backup_svc::resources::snapshot_gateway::GatewaySnapshots;
    let settings = midplane_backup_svc::BackupSettings {
        default_storage: Some(b.storage_uri.clone()),
        default_key_secret: Some(BACKUP_KEY_SECRET.into()),
        ..Default::default()
    };
    let job = midplane_backup_svc::config::JobSettings {
        image: "ghcr.io/midplane/midplane:0.1.0".into(),
        // One node: no affinity needed.
        colocate: false,
        ..Default::default()
    };
    let snapshots: Arc<dyn Snapshots> = match gateway {
        Some(addr) => {
            Arc::new(GatewaySnapshots::new(addr, None).map_err(PlatformError::GatewayStart)?)
        }
        None => Arc::new(LiveFiles::default()),
    };
    Ok(Arc::new(midplane_backup_svc::resources::Context::new(
        client.clone(),
        Arc::new(settings),
        job,
        snapshots,
        events,
    )))
}

/// A random token: 32 random bytes, hex.
pub fn random_token() -> String {
    let bytes: [u8; 32] = rand::random();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn typed(body: &mut serde_json::Value, api_version: &str, kind: &str) {
    if let Some(m) = body.as_object_mut() {
        m.insert("apiVersion".into(), api_version.into());
        m.insert("kind".into(), kind.into());
    }
}
