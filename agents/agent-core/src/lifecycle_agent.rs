//! Agent 1 (:50051): lifecycle, status and health of the pod's middleware.
//! A monitor loop probes the middleware, publishes started / ready /
//! not-ready transitions (and a new event whenever the role, term, primary
//! followed or link state changes, so a watcher learns of role changes from
//! the stream), and on shutdown (SIGTERM) publishes stopping, stops the
//! middleware gracefully when asked to, then stopped.

use std::path::PathBuf;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use midplane_proto::agent as pb;
use midplane_proto::agent::agent_server::{Agent, AgentServer};
use midplane_proto::agent::lifecycle_event::Phase;
use midplane_runtime::Health;
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;
use tonic::{Request, Response, Status};

use crate::adapter::{Adapter, Role};
use crate::convert;
use crate::rpc_stats::RpcStats;

#[derive(Debug, Clone, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LifecycleSettings {
    /// Data volume whose free space GetStatus reports.
    pub data_dir: PathBuf,
    /// Middleware pid file; without one "process up" means its port accepts connections.
    pub pid_file: Option<PathBuf>,
    pub probe_interval_ms: u64,
    /// On SIGTERM, stop the middleware gracefully before the pod goes.
    pub stop_middleware_on_shutdown: bool,
    pub stop_timeout_ms: u64,
}

impl Default for LifecycleSettings {
    fn default() -> Self {
        Self {
            data_dir: PathBuf::from("/data"),
            pid_file: None,
            probe_interval_ms: 1_000,
            stop_middleware_on_shutdown: true,
            stop_timeout_ms: 20_000,
        }
    }
}

struct Phases {
    current: pb::LifecycleEvent,
    tx: broadcast::Sender<pb::LifecycleEvent>,
}

pub struct LifecycleAgent<A: Adapter> {
    adapter: Arc<A>,
    instance: String,
    settings: LifecycleSettings,
    started: Instant,
    phases: Mutex<Phases>,
    rpc: Arc<RpcStats>,
}

fn event(
    instance: &str,
    phase: Phase,
    message: impl Into<String>,
    role: Option<pb::RoleReport>,
) -> pb::LifecycleEvent {
    pb::LifecycleEvent {
        instance: instance.to_string(),
        phase: phase as i32,
        message: message.into(),
        at: Some(prost_types::Timestamp::from(SystemTime::now())),
        role,
    }
}

/// What makes a role report news for watchers: not the offsets, which move
/// with every write.
fn role_shape(r: Option<&pb::RoleReport>) -> Option<(i32, i64, &str, bool)> {
    r.map(|r| {
        (
            r.role,
            r.term,
            r.primary_address.as_str(),
            r.primary_link_up,
        )
    })
}

impl<A: Adapter> LifecycleAgent<A> {
    pub fn new(adapter: Arc<A>, instance: impl Into<String>, settings: LifecycleSettings) -> Self {
        let instance = instance.into();
        let (tx, _) = broadcast::channel(64);
        Self {
            phases: Mutex::new(Phases {
                current: event(&instance, Phase::Started, "agent started", None),
                tx,
            }),
            adapter,
            instance,
            settings,
            started: Instant::now(),
            rpc: Arc::new(RpcStats::default()),
        }
    }

    pub fn into_server(self: Arc<Self>) -> AgentServer<Self> {
        AgentServer::from_arc(self)
    }

    pub fn rpc_stats(&self) -> Arc<RpcStats> {
        self.rpc.clone()
    }

    /// The phase the pod is in now.
    pub fn phase(&self) -> Phase {
        let p = self
            .phases
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        Phase::try_from(p.current.phase).unwrap_or(Phase::Unspecified)
    }

    /// Publishes `phase` when it, or the role's shape, changed.
    fn publish(&self, phase: Phase, message: impl Into<String>, role: Option<pb::RoleReport>) {
        let mut p = self
            .phases
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if p.current.phase == phase as i32
            && role_shape(p.current.role.as_ref()) == role_shape(role.as_ref())
        {
            return;
        }
        let ev = event(&self.instance, phase, message, role);
        tracing::info!(instance = %self.instance, phase = phase.as_str_name(), message = %ev.message, "lifecycle");
        p.current = ev.clone();
        let _ = p.tx.send(ev);
    }

    /// Ready: reachable, and either primary or a replica whose link is up;
    /// with the role report it was judged from.
    async fn probe(&self) -> (bool, String, Option<pb::RoleReport>) {
        match self.adapter.role().await {
            Ok(r) => {
                let (ready, why) = match r.role {
                    Role::Primary => (true, "primary"),
                    Role::Replica if r.primary_link_up => (true, "replica, link up"),
                    Role::Replica => (false, "replica, link to primary down"),
                    Role::Fenced => (true, "fenced old primary"),
                    Role::Unknown => (false, "role unknown"),
                };
                let report = convert::role_report(&self.instance, self.adapter.address(), &r);
                (ready, why.to_string(), Some(report))
            }
            Err(e) => (false, e.to_string(), None),
        }
    }

    /// Runs the monitor until `stop`, then the stop sequence. Await the handle
    /// before exiting so the middleware is stopped before the process ends.
    pub fn spawn_monitor(
        self: &Arc<Self>,
        health: Health,
        stop: CancellationToken,
    ) -> tokio::task::JoinHandle<()> {
        let agent = self.clone();
        tokio::spawn(async move {
            let interval = Duration::from_millis(agent.settings.probe_interval_ms.max(10));
            loop {
                let (ready, why, role) = agent.probe().await;
                health.set("middleware", ready, why.clone());
                let phase = if ready { Phase::Ready } else { Phase::NotReady };
                agent.publish(phase, why, role);
                tokio::select! {
                    _ = stop.cancelled() => break,
                    _ = tokio::time::sleep(interval) => {}
                }
            }
            agent.publish(Phase::Stopping, "pod terminating", None);
            health.set("middleware", false, "stopping");
            if agent.settings.stop_middleware_on_shutdown {
                let timeout = Duration::from_millis(agent.settings.stop_timeout_ms);
                if let Err(e) = agent.adapter.stop(true, timeout).await {
                    tracing::warn!(instance = %agent.instance, error = %e, "graceful middleware stop failed");
                }
            }
            agent.publish(Phase::Stopped, "stopped", None);
        })
    }

    fn process_up_by_pid(&self) -> Option<bool> {
        let path = self.settings.pid_file.as_ref()?;
        let pid = std::fs::read_to_string(path).ok()?;
        let pid: u32 = pid.trim().parse().ok()?;
        Some(std::path::Path::new(&format!("/proc/{pid}")).exists())
    }

    async fn status(&self) -> pb::Status {
        let reachable = self.adapter.ping().await.is_ok();
        let process_up = match self.process_up_by_pid() {
            Some(up) => up,
            None => {
                reachable
                    || tokio::time::timeout(
                        Duration::from_millis(500),
                        tokio::net::TcpStream::connect(self.adapter.address()),
                    )
                    .await
                    .is_ok_and(|r| r.is_ok())
            }
        };
        let ready = reachable && self.probe().await.0;
        let role = if reachable {
            self.adapter
                .role()
                .await
                .ok()
                .map(|r| convert::role_report(&self.instance, self.adapter.address(), &r))
        } else {
            None
        };
        let stats = if reachable {
            self.adapter.stats().await.ok()
        } else {
            None
        };
        let (total, free) = disk_space(&self.settings.data_dir).unwrap_or((0, 0));
        pb::Status {
            instance: self.instance.clone(),
            process_up,
            middleware_reachable: reachable,
            ready: ready && self.phase() != Phase::Stopping,
            disk_total_bytes: total,
            disk_free_bytes: free,
            uptime_seconds: stats
                .as_ref()
                .map(|s| s.uptime_seconds)
                .unwrap_or_else(|| self.started.elapsed().as_secs()),
            config_hash: self.adapter.config_hash(),
            middleware_version: stats.map(|s| s.version).unwrap_or_default(),
            role,
        }
    }
}

/// (total, available) bytes of the filesystem holding `dir`.
#[allow(unsafe_code)] // statvfs(3), see the SAFETY comment
pub fn disk_space(dir: &std::path::Path) -> Option<(u64, u64)> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(dir.as_os_str().as_bytes()).ok()?;
    // SAFETY: statvfs is plain old data; all-zero is a valid value.
    let mut s: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: `c` is a valid NUL-terminated path and `s` a writable statvfs.
    let rc = unsafe { libc::statvfs(c.as_ptr(), &mut s) };
    if rc != 0 {
        return None;
    }
    let frsize = s.f_frsize as u64;
    Some((s.f_blocks as u64 * frsize, s.f_bavail as u64 * frsize))
}

type EventStream =
    Pin<Box<dyn tokio_stream::Stream<Item = Result<pb::LifecycleEvent, Status>> + Send>>;

#[tonic::async_trait]
impl<A: Adapter> Agent for LifecycleAgent<A> {
    async fn get_role(
        &self,
        _: Request<pb::GetRoleRequest>,
    ) -> Result<Response<pb::RoleReport>, Status> {
        let r = Err(Status::unimplemented(
            "GetRole is served by agent 2 (adapter)",
        ));
        self.rpc.observe("GetRole", r)
    }

    async fn failover(
        &self,
        _: Request<pb::FailoverRequest>,
    ) -> Result<Response<pb::FailoverResponse>, Status> {
        let r = Err(Status::unimplemented(
            "Failover is served by agent 2 (adapter)",
        ));
        self.rpc.observe("Failover", r)
    }

    async fn reload_config(
        &self,
        _: Request<pb::ReloadConfigRequest>,
    ) -> Result<Response<pb::ReloadConfigResponse>, Status> {
        let r = Err(Status::unimplemented(
            "ReloadConfig is served by agent 2 (adapter)",
        ));
        self.rpc.observe("ReloadConfig", r)
    }

    async fn restart(
        &self,
        _: Request<pb::RestartRequest>,
    ) -> Result<Response<pb::RestartResponse>, Status> {
        let r = Err(Status::unimplemented(
            "Restart is served by agent 2 (adapter)",
        ));
        self.rpc.observe("Restart", r)
    }

    async fn snapshot(
        &self,
        _: Request<pb::SnapshotRequest>,
    ) -> Result<Response<pb::SnapshotResponse>, Status> {
        let r = Err(Status::unimplemented(
            "Snapshot is served by agent 2 (adapter)",
        ));
        self.rpc.observe("Snapshot", r)
    }

    async fn get_status(
        &self,
        _: Request<pb::GetStatusRequest>,
    ) -> Result<Response<pb::Status>, Status> {
        let s = self.status().await;
        self.rpc.observe("GetStatus", Ok(Response::new(s)))
    }

    async fn health_check(
        &self,
        _: Request<pb::HealthCheckRequest>,
    ) -> Result<Response<pb::HealthCheckResponse>, Status> {
        use pb::health_check_response::State;
        let (ready, message) = if self.phase() == Phase::Stopping || self.phase() == Phase::Stopped
        {
            (false, "stopping".to_string())
        } else {
            let (ready, why, _) = self.probe().await;
            (ready, why)
        };
        let state = if ready {
            State::Serving
        } else {
            State::NotServing
        };
        self.rpc.observe(
            "HealthCheck",
            Ok(Response::new(pb::HealthCheckResponse {
                state: state as i32,
                message,
            })),
        )
    }

    type WatchLifecycleStream = EventStream;

    async fn watch_lifecycle(
        &self,
        _: Request<pb::WatchLifecycleRequest>,
    ) -> Result<Response<Self::WatchLifecycleStream>, Status> {
        // Current phase first, then every change; taken under one lock so no
        // transition falls between the snapshot and the subscription.
        let (first, rx) = {
            let p = self
                .phases
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            (p.current.clone(), p.tx.subscribe())
        };
        let stream = lifecycle_stream(first, rx);
        self.rpc.observe(
            "WatchLifecycle",
            Ok(Response::new(Box::pin(stream) as EventStream)),
        )
    }
}

/// The current event, then each published one; ends after STOPPED.
fn lifecycle_stream(
    first: pb::LifecycleEvent,
    rx: broadcast::Receiver<pb::LifecycleEvent>,
) -> impl tokio_stream::Stream<Item = Result<pb::LifecycleEvent, Status>> + Send {
    let stopped = |ev: &pb::LifecycleEvent| ev.phase == Phase::Stopped as i32;
    futures::stream::unfold(
        (Some(first), rx, false),
        move |(pending, mut rx, done)| async move {
            if let Some(ev) = pending {
                let done = stopped(&ev);
                return Some((Ok(ev), (None, rx, done)));
            }
            if done {
                return None;
            }
            loop {
                match rx.recv().await {
                    Ok(ev) => {
                        let done = stopped(&ev);
                        return Some((Ok(ev), (None, rx, done)));
                    }
                    // A slow watcher skips to the newest events rather than failing.
                    Err(broadcast::error::RecvError::Lagged(_)) => continue,
                    Err(broadcast::error::RecvError::Closed) => return None,
                }
            }
        },
    )
}
