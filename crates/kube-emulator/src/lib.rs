//! An in-memory emulator of the Kubernetes REST API, faithful to the API conventions for what
//! the platform's controllers (kube-rs) and stock `kubectl get/apply/delete` use, plus a
//! kwok-like stand-in for the controller manager and kubelet. See README.md for what is
//! faithful and what is not.
//!
//! ```no_run
//! # async fn demo() -> Result<(), midplane_kube_emulator::EmulatorError> {
//! use midplane_kube_emulator::{Emulator, EmulatorConfig};
//! let emu = Emulator::start(EmulatorConfig::default()).await?;
//! emu.write_kubeconfig(std::path::Path::new("/tmp/kubeconfig"))?;
//! emu.shutdown().await;
//! # Ok(()) }
//! ```

pub mod access;
mod apply;
mod compare;
mod crd;
mod delete;
mod error;
mod events;
mod fields;
mod gc;
mod guaranteed;
mod http;
mod kinds;
mod kubelet;
mod list;
mod logged;
mod ops;
mod patch;
mod prepare;
pub mod process;
mod registry;
mod schema;
mod selector;
mod store;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;

pub use error::{ApiError, Cause, EmulatorError};
pub use kubelet::{DURATION_ANNOTATION, Fault, JobOutcome, OUTCOME_ANNOTATION};
pub use process::{ImageMap, ProcessPods};

use crate::ops::WriteOpts;
use crate::registry::{GroupResource, Registry};
use crate::store::Store;

/// How to start the emulator.
#[derive(Clone, Debug)]
pub struct EmulatorConfig {
    /// Listen address; port 0 picks a free one.
    pub addr: SocketAddr,
    /// A directory of CRD YAML files (multi-document allowed) to install at start.
    pub crd_dir: Option<PathBuf>,
    /// How long a Pod stays ContainerCreating before it is Running and Ready.
    pub pod_ready_delay: Duration,
    /// How many events per resource watches can resume from; older resourceVersions get 410.
    pub event_window: usize,
    /// kube-controller-manager's `--endpoint-updates-batch-period`: how long a Pod change
    /// waits before the endpoints controllers act on it, so changes arriving meanwhile land
    /// in one Endpoints/EndpointSlice write. Zero (the default, as upstream) acts at once.
    pub endpoint_updates_batch_period: Duration,
    /// How long a list `continue` token stays valid before 410 Expired.
    pub continue_ttl: Duration,
    /// Interval of BOOKMARK events on watches that allow them.
    pub bookmark_interval: Duration,
    /// Namespaces created at start (besides default, kube-system, kube-public, kube-node-lease).
    pub namespaces: Vec<String>,
    /// How the Pods of a batch/v1 Job end when neither the Job nor its pod template carries
    /// [`OUTCOME_ANNOTATION`]; [`EmulatorHandle::job_outcome`] changes it per Job.
    /// Simulated Pods only: process pods end as their processes do.
    pub job_outcome: JobOutcome,
    /// Simulated Pods (Ready after `pod_ready_delay`, nothing runs) or process pods (each
    /// container a local process; see README.md, "Process pods").
    pub pods: PodMode,
    /// Also serve HTTPS here (port 0 picks one), with a CA made at start: process pods then
    /// get their ServiceAccount's token, the CA and `KUBERNETES_SERVICE_HOST`/`PORT`, as
    /// in-cluster clients expect (README.md, "Authentication and RBAC").
    pub secure_addr: Option<SocketAddr>,
}

/// What the emulated kubelet does with a Pod.
#[derive(Clone, Debug, Default)]
pub enum PodMode {
    /// Running and Ready after `pod_ready_delay`; nothing runs (the scale benchmarks).
    #[default]
    Simulated,
    /// Every container runs as a local process.
    Process(ProcessPods),
}

impl Default for EmulatorConfig {
    fn default() -> Self {
        Self {
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            crd_dir: None,
            pod_ready_delay: Duration::from_millis(200),
            event_window: 10_000,
            endpoint_updates_batch_period: Duration::ZERO,
            continue_ttl: Duration::from_secs(300),
            bookmark_interval: Duration::from_secs(5),
            namespaces: Vec::new(),
            job_outcome: JobOutcome::Succeed,
            pods: PodMode::Simulated,
            secure_addr: None,
        }
    }
}

/// The entry point.
pub struct Emulator;

impl Emulator {
    /// Bind, install namespaces and CRDs, start the HTTP server and the built-in controllers.
    pub async fn start(config: EmulatorConfig) -> Result<EmulatorHandle, EmulatorError> {
        let store = Arc::new(Store::new(Registry::with_builtins(), config.event_window));
        store.lock().continue_ttl = config.continue_ttl;
        bootstrap(&store, &config)?;
        let listener = tokio::net::TcpListener::bind(config.addr)
            .await
            .map_err(|source| EmulatorError::Bind {
                addr: config.addr,
                source,
            })?;
        let addr = listener
            .local_addr()
            .map_err(|source| EmulatorError::Bind {
                addr: config.addr,
                source,
            })?;
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        let process = match &config.pods {
            PodMode::Simulated => None,
            PodMode::Process(p) => Some(process::Runtime::start(store.clone(), p.clone())?),
        };
        let kubelet = kubelet::Kubelet::new(
            store.clone(),
            kubelet::Timing {
                ready_delay: config.pod_ready_delay,
                endpoint_batch: config.endpoint_updates_batch_period,
            },
            config.job_outcome,
            process.clone(),
        );
        let shared = Arc::new(http::Shared {
            store: store.clone(),
            kubelet: kubelet.clone(),
            bookmark_interval: config.bookmark_interval,
            shutdown: stop_rx.clone(),
        });
        let mut tasks = Vec::new();
        // Subscribed before anything can be written, so no change escapes the controllers.
        let gc_events = store.subscribe_internal();
        tasks.push(tokio::spawn(gc::run(
            store.clone(),
            gc_events,
            stop_rx.clone(),
        )));
        tasks.push(tokio::spawn(kubelet.clone().run(stop_rx.clone())));
        let mut server_stop = stop_rx.clone();
        let app = http::router(shared);
        let https_app = app.clone();
        // Watch events are small writes; without TCP_NODELAY they wait for delayed ACKs (~40 ms).
        let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
            if let Err(e) = tcp.set_nodelay(true) {
                tracing::debug!(error = %e, "TCP_NODELAY");
            }
        });
        tasks.push(tokio::spawn(async move {
            let serve = axum::serve(listener, app).with_graceful_shutdown(async move {
                // Either a shutdown signal or the handle being dropped ends the server.
                let _ = server_stop.changed().await;
            });
            if let Err(e) = serve.await {
                tracing::error!(error = %e, "kube-emulator server");
            }
        }));
        if let Some(secure) = config.secure_addr {
            tasks.push(serve_https(&store, secure, https_app, stop_rx.clone()).await?);
        }
        tracing::info!(%addr, "kube-emulator listening");
        Ok(EmulatorHandle {
            addr,
            store,
            kubelet,
            process,
            stop: stop_tx,
            tasks,
        })
    }
}

/// The HTTPS listener: a CA and serving certificate made now, the same router behind TLS.
async fn serve_https(
    store: &Store,
    addr: SocketAddr,
    app: axum::Router,
    mut stop: tokio::sync::watch::Receiver<bool>,
) -> Result<tokio::task::JoinHandle<()>, EmulatorError> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| EmulatorError::Bind { addr, source })?;
    let local = listener
        .local_addr()
        .map_err(|source| EmulatorError::Bind { addr, source })?;
    let tls_error = |e: String| EmulatorError::Tls(e);
    let cert = access::tls::generate(local).map_err(|e| tls_error(e.to_string()))?;
    let config = access::tls::server_config(&cert).map_err(tls_error)?;
    let listener = access::tls::TlsListener::new(listener, config)
        .map_err(|source| EmulatorError::Bind { addr, source })?;
    store.access.set_secure(access::Secure {
        addr: local,
        ca_pem: cert.ca_pem,
    });
    tracing::info!(addr = %local, "kube-emulator listening (HTTPS)");
    Ok(tokio::spawn(async move {
        let serve = axum::serve(listener, app).with_graceful_shutdown(async move {
            let _ = stop.changed().await;
        });
        if let Err(e) = serve.await {
            tracing::error!(error = %e, "kube-emulator HTTPS server");
        }
    }))
}

fn bootstrap(store: &Store, config: &EmulatorConfig) -> Result<(), EmulatorError> {
    let mut inner = store.lock();
    let ns_rt = inner
        .registry
        .get(&GroupResource::new("", "namespaces"))
        .ok_or_else(|| ApiError::not_found("", "namespaces", ""))?;
    let o = WriteOpts {
        manager: "kube-apiserver".into(),
        version: "v1".into(),
        ..WriteOpts::default()
    };
    let mut names: Vec<String> = ["default", "kube-system", "kube-public", "kube-node-lease"]
        .iter()
        .map(std::string::ToString::to_string)
        .collect();
    names.extend(config.namespaces.iter().cloned());
    for n in names {
        if inner.get(&ns_rt.gr(), "", &n).is_none() {
            let obj = serde_json::json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": n}});
            inner.create(&ns_rt, "", obj, &o, true)?;
        }
    }
    drop(inner);
    if let Some(dir) = &config.crd_dir {
        for crd in load_crds(dir)? {
            install_crd(store, crd)?;
        }
    }
    Ok(())
}

fn install_crd(store: &Store, crd: Value) -> Result<(), EmulatorError> {
    let mut inner = store.lock();
    let rt = inner
        .registry
        .get(&GroupResource::new(
            "apiextensions.k8s.io",
            "customresourcedefinitions",
        ))
        .ok_or_else(|| {
            ApiError::not_found("apiextensions.k8s.io", "customresourcedefinitions", "")
        })?;
    let o = WriteOpts {
        manager: "kube-emulator".into(),
        version: "v1".into(),
        ..WriteOpts::default()
    };
    inner.create(&rt, "", crd, &o, true)?;
    Ok(())
}

/// Read every `*.yaml`/`*.yml`/`*.json` file of a directory (sorted), keeping the documents
/// whose kind is CustomResourceDefinition.
pub fn load_crds(dir: &Path) -> Result<Vec<Value>, EmulatorError> {
    let entries = std::fs::read_dir(dir).map_err(|source| EmulatorError::CrdDir {
        path: dir.into(),
        source,
    })?;
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.extension()
                .is_some_and(|x| x == "yaml" || x == "yml" || x == "json")
        })
        .collect();
    files.sort();
    let mut out = Vec::new();
    for f in files {
        let text = std::fs::read_to_string(&f).map_err(|source| EmulatorError::CrdDir {
            path: f.clone(),
            source,
        })?;
        for (i, doc) in serde_yaml::Deserializer::from_str(&text).enumerate() {
            let v: Value =
                serde::Deserialize::deserialize(doc).map_err(|e| EmulatorError::CrdFile {
                    path: f.clone(),
                    message: format!("document {}: {e}", i + 1),
                })?;
            if v["kind"] == "CustomResourceDefinition" {
                out.push(v);
            }
        }
    }
    Ok(out)
}

/// A running emulator.
pub struct EmulatorHandle {
    addr: SocketAddr,
    store: Arc<Store>,
    kubelet: Arc<kubelet::Kubelet>,
    process: Option<Arc<process::Runtime>>,
    stop: tokio::sync::watch::Sender<bool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Drop for EmulatorHandle {
    /// Dropped without [`EmulatorHandle::shutdown`] (a failing test): no Pod process may
    /// outlive the emulator, so every one gets SIGKILL now.
    fn drop(&mut self) {
        if let Some(p) = self.process.take() {
            p.kill_now();
        }
        let _ = self.stop.send(true);
    }
}

impl EmulatorHandle {
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// A kubeconfig pointing at the emulator over plain HTTP (kube-rs and kubectl accept it).
    pub fn kubeconfig_yaml(&self) -> String {
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: midplane-emulator\n  cluster:\n    server: {}\n\
             users:\n- name: midplane-emulator\n  user: {{}}\ncontexts:\n- name: midplane-emulator\n  context:\n    \
             cluster: midplane-emulator\n    user: midplane-emulator\n    namespace: default\n\
             current-context: midplane-emulator\n",
            self.url()
        )
    }

    /// The HTTPS endpoint and its CA (PEM), when started with `secure_addr`.
    pub fn secure(&self) -> Option<access::Secure> {
        self.store.access.secure().cloned()
    }

    /// A new bearer token for the ServiceAccount `namespace/name` (as `kubectl create
    /// token` gets one); 404 when it does not exist.
    pub fn service_account_token(&self, namespace: &str, name: &str) -> Result<String, ApiError> {
        let sa = self
            .store
            .lock()
            .get(&GroupResource::new("", "serviceaccounts"), namespace, name)
            .ok_or_else(|| ApiError::not_found("", "serviceaccounts", name))?;
        let uid = sa["metadata"]["uid"].as_str().unwrap_or_default();
        Ok(self.store.access.issue(namespace, name, uid))
    }

    /// A kubeconfig for `token` over HTTPS (with the CA), or over plain HTTP when the
    /// emulator serves no HTTPS: what a user or a ServiceAccount outside the cluster uses.
    pub fn kubeconfig_with_token(&self, token: &str) -> String {
        use base64::Engine as _;
        let cluster = match self.store.access.secure() {
            Some(s) => format!(
                "server: https://{}\n    certificate-authority-data: {}",
                s.addr,
                base64::engine::general_purpose::STANDARD.encode(&s.ca_pem)
            ),
            None => format!("server: {}", self.url()),
        };
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: midplane-emulator\n  cluster:\n    {cluster}\n\
             users:\n- name: token\n  user:\n    token: {token}\ncontexts:\n- name: midplane-emulator\n  context:\n    \
             cluster: midplane-emulator\n    user: token\n    namespace: default\n\
             current-context: midplane-emulator\n"
        )
    }

    /// Every authenticated request so far (who, verb, resource, namespace, name, code).
    pub fn audit(&self) -> Vec<access::AuditRecord> {
        self.store.access.audit()
    }

    pub fn write_kubeconfig(&self, path: &Path) -> Result<(), EmulatorError> {
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|source| EmulatorError::Kubeconfig {
                path: path.into(),
                source,
            })?;
        }
        std::fs::write(path, self.kubeconfig_yaml()).map_err(|source| EmulatorError::Kubeconfig {
            path: path.into(),
            source,
        })
    }

    /// Install one CRD object (as `kubectl apply` of a CRD would).
    pub fn install_crd(&self, crd: Value) -> Result<(), EmulatorError> {
        install_crd(&self.store, crd)
    }

    /// Make a pod fail, crash, turn (not) ready, or be deleted; returns the pod afterwards.
    pub fn pod_fault(&self, namespace: &str, name: &str, fault: Fault) -> Result<Value, ApiError> {
        self.kubelet.inject(namespace, name, fault)
    }

    /// Decide how a Job's Pods end from now on (running ones at once): annotates the Job with
    /// [`OUTCOME_ANNOTATION`] for the emulated job controller. Returns the Job afterwards.
    pub fn job_outcome(
        &self,
        namespace: &str,
        name: &str,
        outcome: JobOutcome,
    ) -> Result<Value, ApiError> {
        self.kubelet.set_job_outcome(namespace, name, outcome)
    }

    /// The current global resourceVersion.
    pub fn resource_version(&self) -> u64 {
        self.store.lock().rv
    }

    /// The node of process pods (`None` with simulated Pods): its state dir, DNS address,
    /// loopback block and image map.
    pub fn process_pods(&self) -> Option<&process::Runtime> {
        self.process.as_deref()
    }

    /// Stop every Pod process (gracefully, see [`ProcessPods::shutdown_grace`]), the server,
    /// every watch and the controllers, and wait for them.
    pub async fn shutdown(mut self) {
        if let Some(p) = self.process.take() {
            p.shutdown().await;
        }
        let _ = self.stop.send(true);
        for t in std::mem::take(&mut self.tasks) {
            if let Err(e) = t.await {
                tracing::warn!(error = %e, "kube-emulator task ended abnormally");
            }
        }
    }
}
