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

use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::Runtime;
use super::container::{Container, State};
use super::events::Recorder;
use super::probes::ProbeKind;
use crate::kubelet::{condition, gr, opts, rt_of};
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

/// Seconds of a duration for messages (`back-off 10s …`).
fn secs(d: Duration) -> u64 {
    d.as_secs().max(1)
}

impl Worker {
    pub(super) fn new(
        rt: Arc<Runtime>,
        pod: Arc<Value>,
        ip: Ipv4Addr,
        tx: mpsc::UnboundedSender<Msg>,
    ) -> Self {
        let uid = meta_str(&pod, "uid").to_string();
        let containers = pod["spec"]["containers"]
            .as_array()
            .into_iter()
            .flatten()
            .map(Container::new)
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

    fn terminating(&self) -> bool {
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

    fn on_probe(&mut self, c: usize, instance: u32, kind: ProbeKind, result: Result<(), String>) {
        let Some(cont) = self.containers.get_mut(c) else {
            return;
        };
        if cont.instance != instance || !cont.running() {
            return;
        }
        let i = kind as usize;
        let (successes, failures) = &mut cont.counts[i];
        match &result {
            Ok(()) => {
                *successes += 1;
                *failures = 0;
            }
            Err(_) => {
                *successes = 0;
                *failures += 1;
            }
        }
        let (successes, failures) = cont.counts[i];
        let name = cont.name.clone();
        if let Err(msg) = &result {
            let text = format!("{} probe failed: {}", kind.label(), msg.trim_end());
            self.event(Some(&name), "Warning", "Unhealthy", &text);
        }
        let Some(spec) = self.rt.probe(&self.containers[c].spec, kind) else {
            return;
        };
        let cont = &mut self.containers[c];
        match kind {
            ProbeKind::Startup if result.is_ok() => {
                cont.started = true;
                cont.stop_probes();
                self.start_probes(c, true);
            }
            ProbeKind::Startup | ProbeKind::Liveness if failures >= spec.failure_threshold => {
                let why = format!(
                    "Container {name} failed {} probe, will be restarted",
                    if kind == ProbeKind::Startup {
                        "startup"
                    } else {
                        "liveness"
                    }
                );
                cont.counts[i] = (0, 0);
                let grace = spec.grace.unwrap_or_else(|| self.pod_grace());
                self.kill_container(c, &why, grace);
            }
            ProbeKind::Readiness if successes >= spec.success_threshold => cont.ready = true,
            ProbeKind::Readiness if failures >= spec.failure_threshold => cont.ready = false,
            _ => {}
        }
    }

    /// The Pod's terminationGracePeriodSeconds.
    pub(super) fn pod_grace(&self) -> i64 {
        self.pod["spec"]["terminationGracePeriodSeconds"]
            .as_i64()
            .unwrap_or(30)
            .max(0)
    }

    /// Stop one container (liveness, startup, postStart failure): SIGTERM, then SIGKILL
    /// after `grace` seconds; its exit then restarts it as the restart policy says.
    fn kill_container(&mut self, c: usize, why: &str, grace: i64) {
        let cont = &mut self.containers[c];
        let (Some(g), true) = (cont.pgid, cont.running()) else {
            return;
        };
        cont.killed_for = Some(why.to_string());
        cont.stop_probes();
        let name = cont.name.clone();
        self.event(Some(&name), "Normal", "Killing", why);
        super::spawn::Spawner::signal(g, libc::SIGTERM);
        let instance = self.containers[c].instance;
        let tx = self.tx.clone();
        let grace = Duration::from_secs(grace.max(0) as u64);
        tokio::spawn(async move {
            tokio::time::sleep(grace).await;
            let _ = tx.send(Msg::Kill { c, instance });
        });
    }

    fn on_exit(&mut self, c: usize, instance: u32, code: Option<i32>, signal: Option<i32>) {
        let Some(cont) = self.containers.get_mut(c) else {
            return;
        };
        if cont.instance != instance || !cont.running() {
            return;
        }
        let (pid, started_at) = match &cont.state {
            State::Running { pid, started_at } => (*pid, started_at.clone()),
            _ => return,
        };
        if let Some(g) = cont.pgid.take() {
            // Whatever the main process left in its group goes with it.
            super::spawn::Spawner::signal(g, libc::SIGKILL);
            self.rt.spawner.forget(g);
        }
        cont.stop_probes();
        cont.ready = false;
        cont.started = false;
        let exit_code = code.unwrap_or_else(|| 128 + signal.unwrap_or(0));
        cont.state = State::Terminated(super::container::Terminated {
            exit_code,
            signal,
            reason: if exit_code == 0 { "Completed" } else { "Error" }.into(),
            message: None,
            started_at,
            finished_at: super::container::now(),
            container_id: format!("process://{pid}"),
        });
        cont.killed_for = None;
        if !self.terminating() {
            self.after_exit(c);
        }
    }

    /// Restart policy and back-off after an instance ended (or failed to start).
    pub(super) fn after_exit(&mut self, c: usize) {
        let policy = self.pod["spec"]["restartPolicy"]
            .as_str()
            .unwrap_or("Always")
            .to_string();
        let cont = &mut self.containers[c];
        let exit_code = match &cont.state {
            State::Terminated(t) => t.exit_code,
            _ => return,
        };
        let restart = match policy.as_str() {
            "Never" => false,
            "OnFailure" => exit_code != 0,
            _ => true,
        };
        if !restart {
            return;
        }
        cont.pending_restart = true;
        let now = std::time::Instant::now();
        let due = match (cont.backoff, cont.last_restart) {
            (Some(b), Some(at)) if now < at + b => Some(at + b),
            _ => None,
        };
        match due {
            Some(due) => {
                let wait = due - now;
                let b = cont.backoff.unwrap_or_default();
                let last = match std::mem::replace(
                    &mut cont.state,
                    State::Waiting {
                        reason: "CrashLoopBackOff".into(),
                        message: Some(format!(
                            "back-off {}s restarting failed container={} pod={}_{}({})",
                            secs(b),
                            cont.name,
                            self.name,
                            self.ns,
                            self.uid
                        )),
                    },
                ) {
                    State::Terminated(t) => Some(t),
                    _ => None,
                };
                cont.last = last;
                cont.restart_at = Some(Instant::now() + wait);
                let name = cont.name.clone();
                let msg = format!(
                    "Back-off restarting failed container {name} in pod {}_{}({})",
                    self.name, self.ns, self.uid
                );
                self.event(Some(&name), "Warning", "BackOff", &msg);
            }
            None => cont.restart_at = Some(Instant::now()),
        }
    }

    fn on_hook(&mut self, c: usize, instance: u32, pre_stop: bool, result: Result<(), String>) {
        let Some(cont) = self.containers.get(c) else {
            return;
        };
        if cont.instance != instance || !cont.running() {
            return;
        }
        let (name, pgid) = (cont.name.clone(), cont.pgid);
        if pre_stop {
            if let Err(e) = &result {
                self.event(
                    Some(&name),
                    "Warning",
                    "FailedPreStopHook",
                    &format!("PreStopHook failed: {e}"),
                );
            }
            if let Some(g) = pgid {
                super::spawn::Spawner::signal(g, libc::SIGTERM);
            }
            // A hook that used the whole grace period gets the kubelet's 2 s extension.
            let floor = Instant::now() + Duration::from_secs(2);
            if let Some(k) = self.kill_at
                && k < floor
            {
                self.kill_at = Some(floor);
            }
        } else if let Err(e) = result {
            self.event(
                Some(&name),
                "Warning",
                "FailedPostStartHook",
                &format!("PostStartHook failed: {e}"),
            );
            let grace = self.pod_grace();
            self.kill_container(c, &format!("FailedPostStartHook: {e}"), grace);
        }
    }

    /// The Pod's status as this kubelet sees it, merged into what the API holds.
    fn status(&self, current: &Value) -> Value {
        let now = crate::ops::now();
        let mut st = if current["status"].is_object() {
            current["status"].clone()
        } else {
            json!({})
        };
        let never_started = self.containers.iter().all(|c| c.instance == 0);
        let policy = self.pod["spec"]["restartPolicy"]
            .as_str()
            .unwrap_or("Always");
        let all_done = self
            .containers
            .iter()
            .all(|c| matches!(&c.state, State::Terminated(_)) && c.restart_at.is_none());
        let failed = self
            .containers
            .iter()
            .any(|c| matches!(&c.state, State::Terminated(t) if t.exit_code != 0));
        let phase = if never_started && !all_done {
            "Pending"
        } else if all_done && (policy != "Always" || self.terminating()) {
            if failed { "Failed" } else { "Succeeded" }
        } else {
            "Running"
        };
        let ready = !self.containers.is_empty() && self.containers.iter().all(|c| c.ready);
        let unready: Vec<&str> = self
            .containers
            .iter()
            .filter(|c| !c.ready)
            .map(|c| c.name.as_str())
            .collect();
        let prev = &current["status"]["conditions"];
        let cond = |ty: &str, ok: bool| {
            let mut c = condition(ty, ok, "", "", prev, &now);
            if let Some(m) = c.as_object_mut() {
                m.remove("lastUpdateTime");
                m.remove("message");
                m.remove("reason");
                if !ok && (ty == "Ready" || ty == "ContainersReady") {
                    let done = phase == "Succeeded" || phase == "Failed";
                    m.insert(
                        "reason".into(),
                        json!(if done {
                            "PodCompleted"
                        } else {
                            "ContainersNotReady"
                        }),
                    );
                    if !done {
                        m.insert(
                            "message".into(),
                            json!(format!(
                                "containers with unready status: [{}]",
                                unready.join(" ")
                            )),
                        );
                    }
                }
            }
            c
        };
        st["phase"] = json!(phase);
        st["conditions"] = json!([
            cond(
                "PodReadyToStartContainers",
                !self.terminating() || !all_done
            ),
            cond("Initialized", true),
            cond("Ready", ready),
            cond("ContainersReady", ready),
            cond("PodScheduled", true),
        ]);
        st["containerStatuses"] =
            Value::Array(self.containers.iter().map(Container::status).collect());
        st
    }

    pub(super) fn write_status(&mut self) {
        if self.shutdown || self.removed {
            return;
        }
        let Ok(rt) = rt_of(&self.rt.store.lock(), &gr("", "pods")) else {
            return;
        };
        let uid = self.uid.clone();
        let mut wrote = Value::Null;
        let r = self.rt.store.guaranteed_update(
            &rt,
            &self.ns,
            &self.name,
            crate::fields::Scope::Status,
            &opts("kubelet"),
            true,
            |cur| {
                if meta_str(cur, "uid") != uid {
                    return Ok(None);
                }
                let st = self.status(cur);
                if st == cur["status"] {
                    return Ok(None);
                }
                wrote = st.clone();
                Ok(Some(json!({"status": st})))
            },
        );
        match r {
            Ok(_) => {
                if !wrote.is_null() {
                    self.written = wrote;
                }
            }
            Err(e) => tracing::debug!(pod = %self.name, error = %e, "kubelet status"),
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
        self.rt.worker_done(&self.uid, self.ip);
    }
}

async fn sleep_until(t: Option<Instant>) {
    match t {
        Some(t) => tokio::time::sleep_until(t).await,
        None => std::future::pending().await,
    }
}
