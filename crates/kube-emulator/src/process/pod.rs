//! The Pod worker: one task per process pod, like the kubelet's pod workers. It owns the
//! Pod's containers and reacts to messages — the Pod changed or was removed, a process
//! exited, a probe reported, a hook finished — and to timers (restart back-off, the periodic
//! sync that refreshes ConfigMap and Secret volumes, the kill deadline of a termination).
//! After each message it writes the Pod's status if it changed.

use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::Runtime;
use super::container::Container;
use super::events::Recorder;
use super::probes::ProbeKind;
use crate::kubelet::{gr, rt_of};
use crate::ops::DeleteOpts;
use crate::store::meta_str;

/// What a Pod worker is told.
pub enum Msg {
    /// The Pod object changed.
    Pod(Arc<Value>),
    /// The Pod object is gone from the API (force deletion).
    Removed,
    Exited {
        c: usize,
        instance: u32,
        code: Option<i32>,
        signal: Option<i32>,
    },
    Probe {
        c: usize,
        instance: u32,
        kind: ProbeKind,
        result: Result<(), String>,
    },
    /// A lifecycle hook ended: postStart (`pre_stop: false`) or preStop.
    Hook {
        c: usize,
        instance: u32,
        pre_stop: bool,
        result: Result<(), String>,
    },
    /// The grace period of a single container's kill ran out.
    Kill { c: usize, instance: u32 },
    /// Test hook: every container crashes (SIGKILL).
    Crash,
    /// The emulator stops: terminate without API writes.
    Shutdown,
}

pub struct Worker {
    pub(super) rt: Arc<Runtime>,
    pub(super) ns: String,
    pub(super) name: String,
    pub(super) uid: String,
    pub(super) pod: Arc<Value>,
    pub(super) dir: PathBuf,
    pub(super) ip: Ipv4Addr,
    pub(super) tx: mpsc::UnboundedSender<Msg>,
    pub(super) containers: Vec<Container>,
    pub(super) volumes: Option<HashMap<String, PathBuf>>,
    /// Why containers cannot be created yet (FailedMount, ErrImagePull …): (reason, message).
    pub(super) blocked: Option<(String, String)>,
    pub(super) events: Recorder,
    pub(super) retry_at: Option<Instant>,
    pub(super) next_sync: Instant,
    /// Set while terminating: when to SIGKILL what still runs.
    pub(super) kill_at: Option<Instant>,
    pub(super) shutdown: bool,
    pub(super) removed: bool,
    /// An image is not in the image map: nothing starts.
    pub(super) unmapped: bool,
    pub(super) written: Value,
}

impl Worker {
    pub(super) fn new(
        rt: Arc<Runtime>,
        pod: Arc<Value>,
        ip: Ipv4Addr,
        tx: mpsc::UnboundedSender<Msg>,
    ) -> Self {
        let uid = meta_str(&pod, "uid").to_string();
        // Init containers first, in order; `c` indexes this one list everywhere.
        let spec = |k: &str| pod["spec"][k].as_array().cloned().unwrap_or_default();
        let containers = spec("initContainers")
            .iter()
            .map(|c| Container::new(c, true))
            .chain(spec("containers").iter().map(|c| Container::new(c, false)))
            .collect();
        let dir = rt.state_dir.join("pods").join(&uid);
        Self {
            ns: meta_str(&pod, "namespace").to_string(),
            name: meta_str(&pod, "name").to_string(),
            uid,
            dir,
            ip,
            tx,
            containers,
            volumes: None,
            blocked: None,
            events: Recorder::default(),
            retry_at: None,
            next_sync: Instant::now() + rt.sync_interval(),
            kill_at: None,
            shutdown: false,
            removed: false,
            unmapped: false,
            written: Value::Null,
            pod,
            rt,
        }
    }

    pub(super) fn event(
        &mut self,
        container: Option<&str>,
        kind: &str,
        reason: &str,
        message: &str,
    ) {
        if self.shutdown || self.removed {
            return;
        }
        self.events
            .record(&self.rt.store, &self.pod, container, kind, reason, message);
    }

    pub(super) fn terminating(&self) -> bool {
        self.terminating_now()
    }

    /// Run until the Pod is gone and nothing of it runs.
    pub async fn run(mut self, mut rx: mpsc::UnboundedReceiver<Msg>) {
        self.event(
            None,
            "Normal",
            "Scheduled",
            &format!(
                "Successfully assigned {}/{} to {}",
                self.ns,
                self.name,
                crate::kubelet::NODE
            ),
        );
        if let Err(e) = self.write_pod_files() {
            self.blocked = Some((
                "ContainerCreating".into(),
                format!("writing the Pod's files: {e}"),
            ));
        }
        self.check_images();
        if !self.pod["metadata"]["deletionTimestamp"].is_null() {
            self.begin_termination();
        }
        loop {
            if !self.terminating() && self.blocked_retry_due() {
                self.try_create().await;
            }
            self.start_due().await;
            if self.terminating() && !self.containers.iter().any(Container::running) {
                self.finish().await;
                return;
            }
            self.write_status();
            let wake = self.next_wake();
            tokio::select! {
                msg = rx.recv() => match msg {
                    Some(m) => self.handle(m).await,
                    None => self.handle(Msg::Shutdown).await,
                },
                _ = sleep_until(wake) => self.on_timer(),
            }
            while let Ok(m) = rx.try_recv() {
                self.handle(m).await;
            }
        }
    }

    fn blocked_retry_due(&self) -> bool {
        self.volumes.is_none()
            && !self.unmapped
            && self.retry_at.is_none_or(|t| t <= Instant::now())
    }

    fn next_wake(&self) -> Option<Instant> {
        let mut times: Vec<Instant> = self
            .containers
            .iter()
            .filter_map(|c| c.restart_at)
            .collect();
        times.extend(self.retry_at);
        times.extend(self.kill_at);
        if self.volumes.is_some() && !self.terminating() {
            times.push(self.next_sync);
        }
        times.into_iter().min()
    }

    fn on_timer(&mut self) {
        let now = Instant::now();
        if let Some(k) = self.kill_at
            && k <= now
        {
            for c in &self.containers {
                if let Some(g) = c.pgid.filter(|_| c.running()) {
                    super::spawn::Spawner::signal(g, libc::SIGKILL);
                }
            }
            // Nothing more to wait for than the exits now on their way.
            self.kill_at = Some(now + Duration::from_secs(3600));
        }
        if self.volumes.is_some() && !self.terminating() && self.next_sync <= now {
            self.sync_volumes();
        }
    }

    /// The kubelet's pod sync refreshes ConfigMap/Secret/downwardAPI volumes.
    pub(super) fn sync_volumes(&mut self) {
        self.next_sync = Instant::now() + self.rt.sync_interval();
        let ctx = self.volume_ctx();
        let changed = super::volumes::resync(&ctx);
        if !changed.is_empty() {
            tracing::debug!(pod = %self.name, volumes = ?changed, "volumes synced");
        }
    }

    async fn handle(&mut self, msg: Msg) {
        match msg {
            Msg::Pod(p) => {
                let old = std::mem::replace(&mut self.pod, p);
                let deleting = !self.pod["metadata"]["deletionTimestamp"].is_null();
                if deleting && !self.terminating() {
                    self.begin_termination();
                } else if deleting {
                    self.shorten_grace();
                } else if old["metadata"] != self.pod["metadata"] || old["spec"] != self.pod["spec"]
                {
                    // A real update (not our own status write) makes the kubelet sync the Pod.
                    if self.volumes.is_some() {
                        self.sync_volumes();
                    }
                }
            }
            Msg::Removed => {
                self.removed = true;
                if !self.terminating() {
                    self.begin_termination();
                }
            }
            Msg::Exited {
                c,
                instance,
                code,
                signal,
            } => self.on_exit(c, instance, code, signal),
            Msg::Probe {
                c,
                instance,
                kind,
                result,
            } => self.on_probe(c, instance, kind, result),
            Msg::Hook {
                c,
                instance,
                pre_stop,
                result,
            } => self.on_hook(c, instance, pre_stop, result),
            Msg::Kill { c, instance } => {
                if let Some(cont) = self.containers.get(c)
                    && cont.instance == instance
                    && cont.running()
                    && let Some(g) = cont.pgid
                {
                    super::spawn::Spawner::signal(g, libc::SIGKILL);
                }
            }
            Msg::Crash => {
                for c in &self.containers {
                    if let Some(g) = c.pgid.filter(|_| c.running()) {
                        super::spawn::Spawner::signal(g, libc::SIGKILL);
                    }
                }
            }
            Msg::Shutdown => {
                self.shutdown = true;
                if !self.terminating() {
                    self.begin_termination();
                } else {
                    self.shorten_grace();
                }
            }
        }
    }

    /// Every process is gone: final status, removal from the API, cleanup.
    async fn finish(&mut self) {
        if !self.shutdown && !self.removed {
            self.write_status();
            let store = self.rt.store.clone();
            let (ns, name, uid) = (self.ns.clone(), self.name.clone(), self.uid.clone());
            let deleted = tokio::task::spawn_blocking(move || {
                let mut inner = store.lock();
                let rt = rt_of(&inner, &gr("", "pods"))?;
                let d = DeleteOpts {
                    grace_period: Some(0),
                    uid: Some(uid),
                    ..DeleteOpts::default()
                };
                inner.delete(&rt, &ns, &name, &d).map(|_| ())
            })
            .await;
            if let Ok(Err(e)) = deleted
                && e.code != 404
                && e.code != 409
            {
                tracing::warn!(pod = %self.name, error = %e, "removing a terminated Pod");
            }
        }
        if let Err(e) = std::fs::remove_dir_all(&self.dir)
            && e.kind() != std::io::ErrorKind::NotFound
        {
            tracing::warn!(dir = %self.dir.display(), error = %e, "removing a Pod's directory");
        }
        self.rt.worker_done(&self.uid);
    }
}

async fn sleep_until(t: Option<Instant>) {
    match t {
        Some(t) => tokio::time::sleep_until(t).await,
        None => std::future::pending().await,
    }
}
