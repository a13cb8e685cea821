//! How a Pod worker reacts to its containers: probe results against their thresholds,
//! exits against the restart policy and the kubelet's back-off, hooks, and kills.

use std::time::Duration;

use tokio::time::Instant;

use super::container::State;
use super::pod::{Msg, Worker};
use super::probes::ProbeKind;

/// Seconds of a duration for messages (`back-off 10s …`).
fn secs(d: Duration) -> u64 {
    d.as_secs().max(1)
}

impl Worker {
    pub(super) fn on_probe(
        &mut self,
        c: usize,
        instance: u32,
        kind: ProbeKind,
        result: Result<(), String>,
    ) {
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
    pub(super) fn kill_container(&mut self, c: usize, why: &str, grace: i64) {
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

    pub(super) fn on_exit(
        &mut self,
        c: usize,
        instance: u32,
        code: Option<i32>,
        signal: Option<i32>,
    ) {
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
        if cont.init && exit_code == 0 {
            cont.ready = true;
            self.start_next();
            return;
        }
        let restart = match policy.as_str() {
            "Never" => false,
            // An init container is retried until it succeeds, also under Always.
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

    pub(super) fn on_hook(
        &mut self,
        c: usize,
        instance: u32,
        pre_stop: bool,
        result: Result<(), String>,
    ) {
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
}
