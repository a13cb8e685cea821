//! Process pods: the emulated kubelet runs each Pod's containers as local processes (see
//! README.md, "Process pods"). [`Runtime`] is the node: it gets Pod, Service and PVC changes
//! from the built-in controllers' loop, runs one worker per Pod, the Service proxy and the
//! cluster DNS, and stops every process when the emulator stops.

pub mod addresses;
mod container;
mod dns;
mod env;
mod events;
pub mod images;
pub(crate) mod logs;
mod pod;
mod pod_files;
mod pod_react;
mod pod_start;
mod pod_status;
mod probes;
mod proxy;
mod spawn;
mod volumes;

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use serde_json::Value;
use tokio::sync::mpsc;

use crate::error::EmulatorError;
use crate::store::{EventType, ObjKey, Store, WatchEvent, meta_str};
use pod::{Msg, Worker};

pub use images::{ImageEntry, ImageMap, ImageMapError, MissingProgram};

/// How process pods run (`EmulatorConfig::pods = PodMode::Process(..)`).
#[derive(Clone, Debug)]
pub struct ProcessPods {
    /// Where Pods' files (volumes, logs, /etc/hosts) and PVC directories live. `None`: a
    /// fresh directory under the system temp dir, removed when the emulator stops.
    pub state_dir: Option<PathBuf>,
    /// The image map file; `None`: the built-in one (`images.yaml`).
    pub image_map: Option<PathBuf>,
    /// The loopback block `127.<b>.0.0/16` for Pod IPs, ClusterIPs and the DNS responder;
    /// `None`: the first free one from a random start.
    pub address_block: Option<u8>,
    /// The kubelet's periodic pod sync (its `syncFrequency`): how often ConfigMap and Secret
    /// volumes take the current objects, plus up to half again of jitter. A change of the
    /// Pod itself (labels, annotations, spec) syncs it at once, as on a real node.
    pub pod_sync_period: Duration,
    /// The delay before a container's first probe when the probe has no
    /// initialDelaySeconds (the kubelet probes once its first status sync saw the container).
    pub first_probe_delay: Duration,
    /// The kubelet's crash back-off: the first delay and its cap (doubling in between).
    pub crash_backoff: Duration,
    pub crash_backoff_max: Duration,
    /// When the emulator stops, the longest any Pod is given to terminate before SIGKILL.
    pub shutdown_grace: Duration,
}

impl Default for ProcessPods {
    fn default() -> Self {
        Self {
            state_dir: None,
            image_map: None,
            address_block: None,
            pod_sync_period: Duration::from_secs(60),
            first_probe_delay: Duration::from_millis(500),
            crash_backoff: Duration::from_secs(10),
            crash_backoff_max: Duration::from_secs(300),
            shutdown_grace: Duration::from_secs(10),
        }
    }
}

impl ProcessPods {
    /// Whether process pods can run here, without starting anything: root (namespaces and
    /// port 53), the image map loads, and every program it lists is found. `Err` says what
    /// is missing (e.g. "lifecycle-agent (looked in …)"), for a caller such as `midplane
    /// dev` that falls back to simulated Pods and says why.
    pub fn preflight(&self) -> Result<(), String> {
        spawn::check_privileges()?;
        let images = match &self.image_map {
            Some(p) => ImageMap::load(p).map_err(|e| e.to_string())?,
            None => ImageMap::builtin(),
        };
        let missing: Vec<String> = images
            .missing_programs()
            .into_iter()
            .map(|m| format!("{} of image {}", m.program, m.image))
            .collect();
        if missing.is_empty() {
            Ok(())
        } else {
            Err(format!(
                "not found: {} (see {}; the agents are built by `cargo build -p midplane-lifecycle-agent -p midplane-adapter-agent`)",
                missing.join(", "),
                images.source()
            ))
        }
    }
}

/// What the controllers' loop hands the node.
pub(crate) enum Input {
    Pod(Arc<WatchEvent>),
    Service(ObjKey),
    PvcDeleted(Arc<Value>),
    Crash(String, String),
}

/// A running Pod worker: its inbox and its task.
type WorkerHandle = (mpsc::UnboundedSender<Msg>, tokio::task::JoinHandle<()>);
/// A container's probe of one kind, parsed (`None`: it has none, or it is unusable).
type ProbeCache = Option<Arc<probes::ProbeSpec>>;

pub struct Runtime {
    pub(crate) store: Arc<Store>,
    pub(crate) cfg: ProcessPods,
    pub(crate) images: Arc<ImageMap>,
    pub(crate) state_dir: PathBuf,
    temp_state: bool,
    pub(crate) block: u8,
    pub(crate) dns_addr: SocketAddr,
    /// The address pool and the address of each Pod uid.
    ips: std::sync::Mutex<(addresses::PodIps, HashMap<String, Ipv4Addr>)>,
    pub(crate) spawner: Arc<spawn::Spawner>,
    workers: std::sync::Mutex<HashMap<String, WorkerHandle>>,
    proxy: Arc<proxy::Proxy>,
    inbox: mpsc::UnboundedSender<Input>,
    tasks: std::sync::Mutex<Vec<tokio::task::JoinHandle<()>>>,
    stopping: AtomicBool,
    probes: std::sync::Mutex<HashMap<(String, probes::ProbeKind), ProbeCache>>,
}

fn process_error(message: impl Into<String>) -> EmulatorError {
    EmulatorError::ProcessPods(message.into())
}

impl Runtime {
    /// Check the privileges, claim a loopback block, load the image map, start the DNS
    /// responder and the spawner.
    pub(crate) fn start(store: Arc<Store>, cfg: ProcessPods) -> Result<Arc<Self>, EmulatorError> {
        spawn::check_privileges().map_err(process_error)?;
        let images = match &cfg.image_map {
            Some(p) => ImageMap::load(p).map_err(|e| process_error(e.to_string()))?,
            None => ImageMap::builtin(),
        };
        let block = addresses::claim(cfg.address_block).map_err(|e| {
            process_error(format!(
                "claiming a loopback block for Pod and Service addresses (binding the cluster DNS on 127.<block>.255.53:53): {e}"
            ))
        })?;
        let (state_dir, temp_state) = match &cfg.state_dir {
            Some(d) => (d.clone(), false),
            None => (
                std::env::temp_dir().join(format!(
                    "kube-emulator-{}-{}",
                    std::process::id(),
                    block.block
                )),
                true,
            ),
        };
        for sub in ["pods", "pv"] {
            std::fs::create_dir_all(state_dir.join(sub)).map_err(|e| {
                process_error(format!(
                    "creating the state dir {}: {e}",
                    state_dir.join(sub).display()
                ))
            })?;
        }
        let spawner = spawn::Spawner::start()
            .map_err(|e| process_error(format!("starting the spawner thread: {e}")))?;
        {
            let mut inner = store.lock();
            inner.loopback_block = Some(block.block);
            inner.graceful_pods = true;
        }
        let (tx, rx) = mpsc::unbounded_channel();
        let rt = Arc::new(Self {
            proxy: proxy::Proxy::new(store.clone()),
            store: store.clone(),
            images: Arc::new(images),
            state_dir,
            temp_state,
            block: block.block,
            dns_addr: addresses::dns_addr(block.block),
            ips: std::sync::Mutex::new((addresses::PodIps::new(block.block), HashMap::new())),
            spawner,
            workers: std::sync::Mutex::new(HashMap::new()),
            inbox: tx,
            tasks: std::sync::Mutex::new(Vec::new()),
            stopping: AtomicBool::new(false),
            probes: std::sync::Mutex::new(HashMap::new()),
            cfg,
        });
        let dns = tokio::spawn(dns::serve(block.dns_socket, store));
        let dispatch = tokio::spawn(rt.clone().dispatch(rx));
        rt.tasks
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .extend([dns, dispatch]);
        tracing::info!(block = rt.block, state = %rt.state_dir.display(), images = rt.images.source(), "process pods");
        Ok(rt)
    }

    /// Hand a change to the node (from the controllers' loop; never blocks).
    pub(crate) fn input(&self, i: Input) {
        let _ = self.inbox.send(i);
    }

    /// The Pod IP of a Pod being scheduled: the one it already has, else a free one.
    pub(crate) fn allocate_ip(&self, pod_uid: &str) -> Option<Ipv4Addr> {
        let mut ips = self
            .ips
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let (pool, by_uid) = &mut *ips;
        if let Some(ip) = by_uid.get(pod_uid) {
            return Some(*ip);
        }
        let ip = pool.allocate()?;
        by_uid.insert(pod_uid.to_string(), ip);
        Some(ip)
    }

    /// A Pod's address goes back (idempotent: the Pod's worker and its DELETED event may
    /// both say so).
    pub(crate) fn release_ip(&self, pod_uid: &str) {
        let mut ips = self
            .ips
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let (pool, by_uid) = &mut *ips;
        if let Some(ip) = by_uid.remove(pod_uid) {
            pool.release(ip);
        }
    }

    /// The periodic sync interval with the kubelet's jitter (up to half again).
    pub(crate) fn sync_interval(&self) -> Duration {
        let p = self.cfg.pod_sync_period;
        p + p.mul_f64(rand::random::<f64>() * 0.5)
    }

    /// A container's probe of `kind`, parsed once per container spec.
    pub(crate) fn probe(
        &self,
        container: &Value,
        kind: probes::ProbeKind,
    ) -> Option<Arc<probes::ProbeSpec>> {
        let key = (container.to_string(), kind);
        let mut cache = self
            .probes
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(p) = cache.get(&key) {
            return p.clone();
        }
        let parsed = match probes::ProbeSpec::of(container, kind) {
            Some(Ok(p)) => Some(Arc::new(p)),
            Some(Err(e)) => {
                tracing::warn!(container = %container["name"], error = %e, "probe ignored");
                None
            }
            None => None,
        };
        cache.insert(key, parsed.clone());
        parsed
    }

    async fn dispatch(self: Arc<Self>, mut rx: mpsc::UnboundedReceiver<Input>) {
        while let Some(i) = rx.recv().await {
            match i {
                Input::Pod(ev) => self.pod_event(&ev),
                Input::Service(key) => self.proxy.reconcile(&key),
                Input::PvcDeleted(pvc) => {
                    if let Some(v) = pvc["spec"]["volumeName"].as_str().filter(|v| !v.is_empty()) {
                        let dir = self.state_dir.join("pv").join(v);
                        if let Err(e) = std::fs::remove_dir_all(&dir)
                            && e.kind() != std::io::ErrorKind::NotFound
                        {
                            tracing::warn!(dir = %dir.display(), error = %e, "removing a deleted claim's volume");
                        }
                    }
                }
                Input::Crash(ns, name) => {
                    let uid = self
                        .store
                        .lock()
                        .get(&crate::kubelet::gr("", "pods"), &ns, &name)
                        .map(|p| meta_str(&p, "uid").to_string());
                    if let Some(uid) = uid {
                        self.send(&uid, Msg::Crash);
                    }
                }
            }
        }
    }

    fn send(&self, uid: &str, m: Msg) -> bool {
        self.workers
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(uid)
            .is_some_and(|(tx, _)| tx.send(m).is_ok())
    }

    fn pod_event(self: &Arc<Self>, ev: &WatchEvent) {
        let pod = &ev.object;
        let uid = meta_str(pod, "uid").to_string();
        if ev.etype == EventType::Deleted {
            if !self.send(&uid, Msg::Removed) {
                // Never ran here (or already stopped): only its address goes back.
                self.release_ip(&uid);
            }
            return;
        }
        if self.send(&uid, Msg::Pod(pod.clone())) {
            return;
        }
        let bound = pod["spec"]["nodeName"]
            .as_str()
            .is_some_and(|n| !n.is_empty());
        let Some(ip) = pod["status"]["podIP"]
            .as_str()
            .and_then(|i| i.parse::<Ipv4Addr>().ok())
        else {
            return;
        };
        if !bound
            || self.stopping.load(Ordering::SeqCst)
            || matches!(
                pod["status"]["phase"].as_str(),
                Some("Succeeded" | "Failed")
            )
        {
            return;
        }
        let (tx, rx) = mpsc::unbounded_channel();
        let worker = Worker::new(self.clone(), pod.clone(), ip, tx.clone());
        let handle = tokio::spawn(worker.run(rx));
        self.workers
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(uid, (tx, handle));
    }

    /// A worker ended: nothing of its Pod runs any more.
    pub(crate) fn worker_done(&self, uid: &str) {
        self.workers
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(uid);
        self.release_ip(uid);
    }

    /// The log file of a container instance (`/log`): the current one or the previous.
    pub(crate) fn log_file(&self, pod_uid: &str, container: &str, instance: u32) -> PathBuf {
        logs::log_path(
            &self.state_dir.join("pods").join(pod_uid),
            container,
            instance,
        )
    }

    /// Terminate every Pod (graceful, capped by `shutdown_grace`), then stop the proxy, the
    /// DNS responder and the spawner.
    pub(crate) async fn shutdown(&self) {
        self.stopping.store(true, Ordering::SeqCst);
        let workers: Vec<_> = self
            .workers
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .drain()
            .collect();
        let mut handles = Vec::new();
        for (_, (tx, h)) in workers {
            let _ = tx.send(Msg::Shutdown);
            handles.push(h);
        }
        let deadline = self.cfg.shutdown_grace + Duration::from_secs(5);
        for h in handles {
            let abort = h.abort_handle();
            if tokio::time::timeout(deadline, h).await.is_err() {
                abort.abort();
            }
        }
        self.proxy.stop();
        for t in self
            .tasks
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .drain(..)
        {
            t.abort();
        }
        // Anything still alive (a worker that did not finish in time) goes now.
        self.spawner.kill_all();
        if self.temp_state {
            let _ = std::fs::remove_dir_all(&self.state_dir);
        }
    }

    /// The emulator is dropped without a shutdown: SIGKILL every process at once.
    pub(crate) fn kill_now(&self) {
        self.stopping.store(true, Ordering::SeqCst);
        self.spawner.kill_all();
        self.proxy.stop();
        for t in self
            .tasks
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .drain(..)
        {
            t.abort();
        }
        for (_, (_, h)) in self
            .workers
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .drain()
        {
            h.abort();
        }
        if self.temp_state {
            let _ = std::fs::remove_dir_all(&self.state_dir);
        }
    }

    /// Where the Pods' files and PVC directories are.
    pub fn state_dir(&self) -> &std::path::Path {
        &self.state_dir
    }

    /// The cluster DNS responder's address.
    pub fn dns_addr(&self) -> SocketAddr {
        self.dns_addr
    }

    /// The loopback block (`127.<b>.0.0/16`).
    pub fn block(&self) -> u8 {
        self.block
    }

    /// The image map in use.
    pub fn images(&self) -> &ImageMap {
        &self.images
    }
}
