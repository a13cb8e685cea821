//! The Pod worker's container lifecycle: the Pod's own files (/etc/hosts, resolv.conf,
//! hostname), image and volume checks, starting and restarting containers with their
//! probes and hooks, and graceful termination.

use std::os::unix::process::ExitStatusExt as _;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::time::Instant;

use super::container::{ExecCtx, State, Terminated, now};
use super::pod::{Msg, Worker};
use super::pod_files::{creds, hostname};
use super::probes::{ProbeKind, ProbeSpec};
use super::spawn::{Sandbox, Spawner};
use super::{env, logs, volumes};

impl Worker {
    /// Every image must be in the image map; otherwise the Pod stays Pending (ErrImagePull).
    pub(super) fn check_images(&mut self) {
        let source = self.rt.images.source().to_string();
        for i in 0..self.containers.len() {
            let image = self.containers[i].image.clone();
            if self.rt.images.lookup(&image).is_some() {
                continue;
            }
            let msg = format!(
                "Failed to pull image \"{image}\": the emulator runs Pods as local processes and {source} maps no local command to image \"{image}\""
            );
            self.containers[i].state = State::Waiting {
                reason: "ErrImagePull".into(),
                message: Some(msg.clone()),
            };
            let name = self.containers[i].name.clone();
            self.event(Some(&name), "Warning", "Failed", &msg);
            self.event(Some(&name), "Warning", "Failed", "Error: ErrImagePull");
            self.unmapped = true;
        }
    }

    pub(super) fn volume_ctx(&self) -> volumes::Ctx<'_> {
        volumes::Ctx {
            store: &self.rt.store,
            pod: &self.pod,
            pod_volumes: self.dir.join("volumes"),
            pv_root: self.rt.state_dir.join("pv"),
            fs_group: self.pod["spec"]["securityContext"]["fsGroup"]
                .as_u64()
                .map(|g| g as u32),
        }
    }

    /// Set the volumes up; on success every container is due to start.
    pub(super) async fn try_create(&mut self) {
        let r = volumes::prepare(&self.volume_ctx());
        match r {
            Ok(v) => {
                self.volumes = Some(v);
                self.blocked = None;
                self.retry_at = None;
                self.next_sync = Instant::now() + self.rt.sync_interval();
                self.start_next();
            }
            Err(msg) => {
                if self.blocked.as_ref().is_none_or(|(_, m)| *m != msg) {
                    self.event(None, "Warning", "FailedMount", &msg);
                }
                self.blocked = Some(("ContainerCreating".into(), msg));
                self.retry_at = Some(Instant::now() + Duration::from_secs(2));
            }
        }
    }

    /// Start every container whose start (or restart after back-off) is due.
    pub(super) async fn start_due(&mut self) {
        if self.volumes.is_none() || self.terminating_now() {
            return;
        }
        let now = Instant::now();
        for c in 0..self.containers.len() {
            if self.containers[c].restart_at.is_none_or(|t| t > now) {
                continue;
            }
            self.containers[c].restart_at = None;
            if std::mem::take(&mut self.containers[c].pending_restart) {
                let (initial, max) = (self.rt.cfg.crash_backoff, self.rt.cfg.crash_backoff_max);
                let cont = &mut self.containers[c];
                let at = std::time::Instant::now();
                cont.backoff = Some(match (cont.backoff, cont.last_restart) {
                    (Some(b), Some(last)) if at.duration_since(last) <= 2 * max => (b * 2).min(max),
                    _ => initial,
                });
                cont.last_restart = Some(at);
                if let State::Terminated(t) = &cont.state {
                    cont.last = Some(t.clone());
                }
                cont.restart_count += 1;
            }
            self.start_container(c).await;
        }
    }

    /// Make the next step due: the first init container not completed, else every app
    /// container.
    pub(super) fn start_next(&mut self) {
        let now = Instant::now();
        match self
            .containers
            .iter_mut()
            .find(|c| c.init && !c.completed())
        {
            Some(c) => c.restart_at = Some(now),
            None => {
                for c in self.containers.iter_mut().filter(|c| !c.init) {
                    c.restart_at = Some(now);
                }
            }
        }
    }

    pub(super) fn terminating_now(&self) -> bool {
        self.kill_at.is_some()
    }

    fn sandbox(&self, c: usize, spec: &Value, workdir: &str) -> Result<Arc<Sandbox>, String> {
        let vols = self.volumes.as_ref().ok_or("volumes are not ready")?;
        let mut mounts: Vec<(PathBuf, PathBuf, bool)> = Vec::new();
        for m in spec["volumeMounts"].as_array().into_iter().flatten() {
            let name = m["name"].as_str().unwrap_or_default();
            let mut src = vols
                .get(name)
                .cloned()
                .ok_or_else(|| format!("volumeMount {name:?} names no volume of the Pod"))?;
            if let Some(sub) = m["subPath"].as_str().filter(|s| !s.is_empty()) {
                src = src.join(sub);
                if !src.exists() {
                    std::fs::create_dir_all(&src).map_err(|e| format!("subPath {sub}: {e}"))?;
                }
            }
            let target = PathBuf::from(m["mountPath"].as_str().unwrap_or_default());
            mounts.push((src, target, m["readOnly"] == json!(true)));
        }
        if let Some(src) = vols.get(volumes::SERVICE_ACCOUNT_VOLUME)
            && !mounts
                .iter()
                .any(|(_, t, _)| t.as_os_str() == volumes::SERVICE_ACCOUNT_DIR)
        {
            mounts.push((
                src.clone(),
                PathBuf::from(volumes::SERVICE_ACCOUNT_DIR),
                true,
            ));
        }
        let mut own = |file: &str, target: &str| {
            if !mounts.iter().any(|(_, t, _)| t.as_os_str() == target) {
                mounts.push((self.dir.join(file), PathBuf::from(target), false));
            }
        };
        own("etc-hosts", "/etc/hosts");
        if self.pod["spec"]["dnsPolicy"] != "Default" {
            own("resolv.conf", "/etc/resolv.conf");
        }
        own("hostname", "/etc/hostname");
        let (uid, gid, groups) = creds(&self.pod, spec)?;
        let covered = mounts
            .iter()
            .any(|(_, t, _)| std::path::Path::new(workdir).starts_with(t));
        if !covered && !std::path::Path::new(workdir).exists() {
            std::fs::create_dir_all(workdir).map_err(|e| format!("workingDir {workdir}: {e}"))?;
        }
        let _ = c;
        Sandbox::new(&mounts, &hostname(&self.pod), uid, gid, groups, workdir)
            .map(Arc::new)
            .map_err(|e| format!("preparing the container's mounts: {e}"))
    }

    /// Environment, sandbox and image of container `c` (CreateContainerConfigError if not).
    fn exec_ctx(&self, c: usize) -> Result<Arc<ExecCtx>, String> {
        let spec = &self.containers[c].spec;
        let entry = self
            .rt
            .images
            .lookup(&self.containers[c].image)
            .cloned()
            .ok_or_else(|| {
                format!(
                    "image {:?} is not in {}",
                    self.containers[c].image,
                    self.rt.images.source()
                )
            })?;
        let (uid, _, _) = creds(&self.pod, spec)?;
        let home = if uid.is_none_or(|u| u == 0) {
            "/root"
        } else {
            "/"
        };
        let e = env::build(
            &self.rt.store,
            &self.pod,
            spec,
            &entry,
            &hostname(&self.pod),
            home,
        )
        .map_err(|e| e.0)?;
        let workdir = spec["workingDir"]
            .as_str()
            .filter(|w| !w.is_empty())
            .map(String::from)
            .or_else(|| entry.working_dir.clone())
            .unwrap_or_else(|| "/".into());
        let sandbox = self.sandbox(c, spec, &workdir)?;
        Ok(Arc::new(ExecCtx {
            spawner: self.rt.spawner.clone(),
            images: self.rt.images.clone(),
            entry,
            env: e.0,
            sandbox,
            pod_ip: self.ip,
        }))
    }

    async fn start_container(&mut self, c: usize) {
        let name = self.containers[c].name.clone();
        let ctx = match self.exec_ctx(c) {
            Ok(x) => x,
            Err(e) => {
                self.containers[c].state = State::Waiting {
                    reason: "CreateContainerConfigError".into(),
                    message: Some(e.clone()),
                };
                self.event(Some(&name), "Warning", "Failed", &format!("Error: {e}"));
                self.containers[c].restart_at = Some(Instant::now() + Duration::from_secs(5));
                return;
            }
        };
        let argv = env::argv(
            &self.containers[c].spec,
            &ctx.entry,
            &env::Env(ctx.env.clone()),
        );
        let image = self.containers[c].image.clone();
        self.event(
            Some(&name),
            "Normal",
            "Pulled",
            &format!("Container image \"{image}\" already present on machine"),
        );
        self.containers[c].instance += 1;
        let instance = self.containers[c].instance;
        match ctx.start(&argv).await {
            Ok(mut child) => {
                let pid = child.id().unwrap_or(0);
                let log = logs::log_path(&self.dir, &name, self.containers[c].restart_count);
                tokio::spawn(logs::capture(log, child.stdout.take(), child.stderr.take()));
                let tx = self.tx.clone();
                tokio::spawn(async move {
                    let (code, signal) = match child.wait().await {
                        Ok(s) => (s.code(), s.signal()),
                        Err(_) => (None, Some(libc::SIGKILL)),
                    };
                    let _ = tx.send(Msg::Exited {
                        c,
                        instance,
                        code,
                        signal,
                    });
                });
                let cont = &mut self.containers[c];
                cont.pgid = Some(pid as i32);
                cont.state = State::Running {
                    pid,
                    started_at: now(),
                };
                cont.exec = Some(ctx.clone());
                cont.ready = false;
                cont.started = false;
                self.event(
                    Some(&name),
                    "Normal",
                    "Created",
                    &format!("Created container: {name}"),
                );
                self.event(
                    Some(&name),
                    "Normal",
                    "Started",
                    &format!("Started container {name}"),
                );
                let post = self.containers[c].spec["lifecycle"]["postStart"].clone();
                if post.is_object() {
                    self.run_hook(c, instance, post, false, self.pod_grace());
                }
                self.start_probes(c, false);
            }
            Err(msg) => {
                self.containers[c].state = State::Terminated(Terminated {
                    exit_code: 128,
                    signal: None,
                    reason: "StartError".into(),
                    message: Some(msg.clone()),
                    started_at: "1970-01-01T00:00:00Z".into(),
                    finished_at: now(),
                    container_id: String::new(),
                });
                self.event(Some(&name), "Warning", "Failed", &format!("Error: {msg}"));
                self.after_exit(c);
            }
        }
    }

    /// Start the probes of the running instance: the startup probe first; liveness and
    /// readiness once it passed (at once without one).
    pub(super) fn start_probes(&mut self, c: usize, after_startup: bool) {
        let Some(ctx) = self.containers[c].exec.clone() else {
            return;
        };
        if self.containers[c].init {
            // Init containers have no probes; they run to their end.
            self.containers[c].started = true;
            return;
        }
        let instance = self.containers[c].instance;
        let spec = self.containers[c].spec.clone();
        let first = self.rt.cfg.first_probe_delay;
        let spawn = |kind: ProbeKind, probe: Arc<ProbeSpec>, delay: Duration| {
            let tx = self.tx.clone();
            let h = tokio::spawn(super::probes::run(
                kind,
                probe,
                ctx.clone(),
                delay,
                move |kind, result| {
                    let _ = tx.send(Msg::Probe {
                        c,
                        instance,
                        kind,
                        result,
                    });
                },
            ));
            h.abort_handle()
        };
        let mut tasks = Vec::new();
        if !after_startup && let Some(p) = self.rt.probe(&spec, ProbeKind::Startup) {
            tasks.push(spawn(ProbeKind::Startup, p, first));
            self.containers[c].probe_tasks.extend(tasks);
            return;
        }
        let readiness = self.rt.probe(&spec, ProbeKind::Readiness);
        if let Some(p) = self.rt.probe(&spec, ProbeKind::Liveness) {
            tasks.push(spawn(ProbeKind::Liveness, p, first));
        }
        let has_readiness = readiness.is_some();
        if let Some(p) = readiness {
            // The kubelet probes readiness at once when the startup probe passes.
            tasks.push(spawn(
                ProbeKind::Readiness,
                p,
                if after_startup { Duration::ZERO } else { first },
            ));
        }
        let cont = &mut self.containers[c];
        cont.probe_tasks.extend(tasks);
        cont.started = true;
        if !has_readiness {
            cont.ready = true;
        }
    }

    /// Run a postStart or preStop handler in the background; its end is a [`Msg::Hook`].
    fn run_hook(&self, c: usize, instance: u32, handler: Value, pre_stop: bool, grace: i64) {
        let Some(ctx) = self.containers[c].exec.clone() else {
            return;
        };
        let ports = self.containers[c].spec["ports"].clone();
        let tx = self.tx.clone();
        let timeout = Duration::from_secs(grace.max(1) as u64);
        tokio::spawn(async move {
            let result = if let Some(s) = handler["sleep"]["seconds"].as_u64() {
                tokio::time::sleep(Duration::from_secs(s).min(timeout)).await;
                Ok(())
            } else {
                let mut probe = handler.clone();
                probe["timeoutSeconds"] = json!(timeout.as_secs());
                match ProbeSpec::of(
                    &json!({"readinessProbe": probe, "ports": ports}),
                    ProbeKind::Readiness,
                ) {
                    Some(Ok(p)) => p.check(&ctx).await,
                    Some(Err(e)) => Err(e),
                    None => Err("empty lifecycle handler".into()),
                }
            };
            let _ = tx.send(Msg::Hook {
                c,
                instance,
                pre_stop,
                result,
            });
        });
    }

    /// The grace period of this termination, in seconds.
    fn grace_now(&self) -> i64 {
        let g = self.pod["metadata"]["deletionGracePeriodSeconds"]
            .as_i64()
            .unwrap_or_else(|| self.pod_grace());
        if self.shutdown {
            g.min(self.rt.cfg.shutdown_grace.as_secs() as i64)
        } else if self.removed {
            // A force-deleted Pod: the kubelet's minimum grace period.
            g.clamp(0, 2)
        } else {
            g
        }
    }

    /// Stop every container: preStop hooks, SIGTERM, SIGKILL at the end of the grace period.
    pub(super) fn begin_termination(&mut self) {
        let grace = self.grace_now();
        self.kill_at = Some(Instant::now() + Duration::from_secs(grace.max(0) as u64));
        for c in 0..self.containers.len() {
            let cont = &mut self.containers[c];
            cont.restart_at = None;
            cont.pending_restart = false;
            if !cont.running() {
                continue;
            }
            cont.stop_probes();
            let (name, instance, pgid) = (cont.name.clone(), cont.instance, cont.pgid);
            let pre_stop = cont.spec["lifecycle"]["preStop"].clone();
            self.event(
                Some(&name),
                "Normal",
                "Killing",
                &format!("Stopping container {name}"),
            );
            if pre_stop.is_object() {
                self.run_hook(c, instance, pre_stop, true, grace);
            } else if let Some(g) = pgid {
                Spawner::signal(g, libc::SIGTERM);
            }
        }
    }

    /// A later deletion (or the emulator stopping) may only bring the kill deadline closer.
    pub(super) fn shorten_grace(&mut self) {
        let at = Instant::now() + Duration::from_secs(self.grace_now().max(0) as u64);
        if self.kill_at.is_none_or(|k| at < k) {
            self.kill_at = Some(at);
        }
    }
}
