//! One container of a process pod: how its processes are started (the sandbox, environment
//! and program resolution shared by the main process, exec probes and preStop hooks), and
//! its state as the kubelet reports it in `containerStatuses`.

use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::io::AsyncReadExt as _;

use super::images::{ImageEntry, ImageMap};
use super::spawn::{Sandbox, Spawner, Spec};

/// What processes of one container run with.
pub struct ExecCtx {
    pub spawner: Arc<Spawner>,
    pub images: Arc<ImageMap>,
    pub entry: ImageEntry,
    pub env: Vec<(String, String)>,
    pub sandbox: Arc<Sandbox>,
    pub pod_ip: Ipv4Addr,
}

/// Output kept of an exec probe or hook.
const EXEC_OUTPUT: usize = 10 * 1024;

impl ExecCtx {
    /// The program for argv[0] as the image provides it.
    pub fn resolve(&self, program: &str) -> Result<PathBuf, String> {
        self.images.resolve(&self.entry, program).map_err(|dirs| {
            let dirs: Vec<String> = dirs.iter().map(|d| d.display().to_string()).collect();
            format!(
                "exec: \"{program}\": executable file not found (image {} in {}; looked in: {})",
                self.entry.image,
                self.images.source(),
                if dirs.is_empty() {
                    "nowhere".into()
                } else {
                    dirs.join(", ")
                }
            )
        })
    }

    /// Start a process in this container.
    pub async fn start(&self, argv: &[String]) -> Result<tokio::process::Child, String> {
        let Some(program) = argv.first() else {
            return Err("no command specified".into());
        };
        let path = self.resolve(program)?;
        self.spawner
            .spawn(Spec {
                program: path,
                args: argv[1..].to_vec(),
                env: self.env.clone(),
                sandbox: self.sandbox.clone(),
            })
            .await
            .map_err(|e| format!("failed to start {program:?}: {e}"))
    }

    /// Run a command to its end within `timeout` (exec probes, preStop hooks): whether it
    /// exited 0, and its output.
    pub async fn exec(&self, argv: &[String], timeout: Duration) -> Result<(bool, String), String> {
        let mut child = self.start(argv).await?;
        // Whatever ends this call (its end, the timeout, the probe task aborted), the
        // process group goes and is no longer tracked.
        let _group = Group {
            pgid: child.id().map_or(0, |p| p as i32),
            spawner: self.spawner.clone(),
        };
        let mut out = child.stdout.take();
        let mut err = child.stderr.take();
        let collect = async {
            let (a, b) = tokio::join!(keep(out.as_mut()), keep(err.as_mut()));
            let status = child.wait().await;
            let mut text = a;
            text.extend_from_slice(&b);
            (status, String::from_utf8_lossy(&text).into_owned())
        };
        match tokio::time::timeout(timeout, collect).await {
            Ok((Ok(status), output)) => Ok((status.success(), output)),
            Ok((Err(e), _)) => Err(format!("waiting for {:?}: {e}", argv[0])),
            Err(_) => Err(format!("command {argv:?} timed out")),
        }
    }
}

/// The first [`EXEC_OUTPUT`] bytes of a pipe, read to its end (so the writer never blocks).
async fn keep(pipe: Option<&mut (impl tokio::io::AsyncRead + Unpin)>) -> Vec<u8> {
    let mut buf = Vec::new();
    if let Some(p) = pipe {
        let _ = (&mut *p)
            .take(EXEC_OUTPUT as u64)
            .read_to_end(&mut buf)
            .await;
        let _ = tokio::io::copy(p, &mut tokio::io::sink()).await;
    }
    buf
}

/// A process group of an exec probe or hook: SIGKILLed and forgotten when dropped.
struct Group {
    pgid: i32,
    spawner: Arc<Spawner>,
}

impl Drop for Group {
    fn drop(&mut self) {
        // Children of the command must not outlive it; the leader was reaped or is killed.
        Spawner::signal(self.pgid, libc::SIGKILL);
        self.spawner.forget(self.pgid);
    }
}

/// How a container instance ended.
#[derive(Clone, Debug)]
pub struct Terminated {
    pub exit_code: i32,
    pub signal: Option<i32>,
    pub reason: String,
    pub message: Option<String>,
    pub started_at: String,
    pub finished_at: String,
    pub container_id: String,
}

impl Terminated {
    pub fn to_json(&self) -> Value {
        let mut t = json!({
            "exitCode": self.exit_code, "reason": self.reason,
            "startedAt": self.started_at, "finishedAt": self.finished_at,
            "containerID": self.container_id,
        });
        if let Some(s) = self.signal {
            t["signal"] = json!(s);
        }
        if let Some(m) = &self.message {
            t["message"] = json!(m);
        }
        t
    }
}

#[derive(Clone, Debug)]
pub enum State {
    Waiting {
        reason: String,
        message: Option<String>,
    },
    Running {
        pid: u32,
        started_at: String,
    },
    Terminated(Terminated),
}

/// The kubelet's view of one container.
pub struct Container {
    pub name: String,
    pub image: String,
    pub spec: Value,
    /// Restarts so far (the instance running now, or the last one, is number `restart_count`).
    pub restart_count: u32,
    /// Instances started, so stale reports of an ended one are ignored.
    pub instance: u32,
    pub state: State,
    pub last: Option<Terminated>,
    pub ready: bool,
    /// The startup probe passed (or there is none) for the running instance.
    pub started: bool,
    /// Process group of the running instance.
    pub pgid: Option<i32>,
    /// The kubelet's restart back-off: the current delay and when the last restart was.
    pub backoff: Option<Duration>,
    pub last_restart: Option<Instant>,
    /// When the container is due to start (first start, or restart after back-off).
    pub restart_at: Option<tokio::time::Instant>,
    /// The next start is a restart (counts, back-off, lastState).
    pub pending_restart: bool,
    pub probe_tasks: Vec<tokio::task::AbortHandle>,
    /// Consecutive results per probe kind: (successes, failures).
    pub counts: [(u32, u32); 3],
    pub exec: Option<Arc<ExecCtx>>,
    /// Set once the instance was killed on purpose (liveness, startup, deletion).
    pub killed_for: Option<String>,
    /// An init container: runs to completion, in order, before the app containers.
    pub init: bool,
}

impl Container {
    pub fn new(spec: &Value, init: bool) -> Self {
        Self {
            name: spec["name"].as_str().unwrap_or_default().to_string(),
            image: spec["image"].as_str().unwrap_or_default().to_string(),
            spec: spec.clone(),
            restart_count: 0,
            instance: 0,
            state: State::Waiting {
                reason: "ContainerCreating".into(),
                message: None,
            },
            last: None,
            ready: false,
            started: false,
            pgid: None,
            backoff: None,
            last_restart: None,
            restart_at: None,
            pending_restart: false,
            probe_tasks: Vec::new(),
            counts: [(0, 0); 3],
            exec: None,
            killed_for: None,
            init,
        }
    }

    /// An init container that exited 0 (it never runs again).
    pub fn completed(&self) -> bool {
        self.init && matches!(&self.state, State::Terminated(t) if t.exit_code == 0)
    }

    pub fn running(&self) -> bool {
        matches!(self.state, State::Running { .. })
    }

    pub fn stop_probes(&mut self) {
        for t in self.probe_tasks.drain(..) {
            t.abort();
        }
        self.counts = [(0, 0); 3];
    }

    /// Its entry in `status.containerStatuses`.
    pub fn status(&self) -> Value {
        let state = match &self.state {
            State::Waiting { reason, message } => {
                let mut w = json!({"reason": reason});
                if let Some(m) = message {
                    w["message"] = json!(m);
                }
                json!({"waiting": w})
            }
            State::Running { started_at, .. } => json!({"running": {"startedAt": started_at}}),
            State::Terminated(t) => json!({"terminated": t.to_json()}),
        };
        let mut s = json!({
            "name": self.name, "image": self.image,
            "imageID": format!("emulator://{}", self.image),
            "ready": self.ready, "started": self.running() && self.started,
            "restartCount": self.restart_count, "state": state,
            "lastState": self.last.as_ref().map_or(json!({}), |t| json!({"terminated": t.to_json()})),
        });
        if let State::Running { pid, .. } = &self.state {
            s["containerID"] = json!(format!("process://{pid}"));
        } else if let State::Terminated(t) = &self.state {
            s["containerID"] = json!(t.container_id);
        }
        s
    }
}

/// `startedAt`-style timestamps.
pub fn now() -> String {
    crate::ops::now()
}
