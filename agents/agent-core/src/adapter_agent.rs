//! Agent 2 (:50052): the middleware adapter over gRPC — role, failover,
//! config reload, restart — plus the enforcer loop that keeps the middleware
//! on the last decision it was given.

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use midplane_proto::agent as pb;
use midplane_proto::agent::agent_server::{Agent, AgentServer};
use tokio_util::sync::CancellationToken;
use tonic::{Request, Response, Status};

use crate::adapter::{Adapter, ReloadRequest, valid_snapshot_id};
use crate::convert;
use crate::rpc_stats::RpcStats;

/// Longest a FAILOVER/RELOAD may wait when the caller gives no timeout.
const DEFAULT_WAIT: Duration = Duration::from_secs(10);
/// Longest a Snapshot's save may take when the caller gives no timeout.
const DEFAULT_SNAPSHOT_WAIT: Duration = Duration::from_secs(60);

pub struct AdapterAgent<A: Adapter> {
    adapter: Arc<A>,
    instance: String,
    /// GetRole answers from here while younger than `role_cache`; role
    /// changes clear it.
    cache: Mutex<Option<(Instant, pb::RoleReport)>>,
    role_cache: Duration,
    rpc: Arc<RpcStats>,
}

impl<A: Adapter> AdapterAgent<A> {
    pub fn new(adapter: Arc<A>, instance: impl Into<String>, role_cache: Duration) -> Self {
        Self {
            adapter,
            instance: instance.into(),
            cache: Mutex::new(None),
            role_cache,
            rpc: Arc::new(RpcStats::default()),
        }
    }

    pub fn adapter(&self) -> &Arc<A> {
        &self.adapter
    }

    pub fn instance(&self) -> &str {
        &self.instance
    }

    pub fn rpc_stats(&self) -> Arc<RpcStats> {
        self.rpc.clone()
    }

    pub fn into_server(self: Arc<Self>) -> AgentServer<Self> {
        AgentServer::from_arc(self)
    }

    fn invalidate(&self) {
        *self
            .cache
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = None;
    }

    async fn role_report(&self, fresh: bool) -> Result<pb::RoleReport, Status> {
        if !fresh && !self.role_cache.is_zero() {
            let cache = self
                .cache
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if let Some((at, report)) = cache.as_ref()
                && at.elapsed() < self.role_cache
            {
                return Ok(report.clone());
            }
        }
        let state = self.adapter.role().await.map_err(|e| convert::status(&e))?;
        let report = convert::role_report(&self.instance, self.adapter.address(), &state);
        *self
            .cache
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) =
            Some((Instant::now(), report.clone()));
        Ok(report)
    }

    async fn failover_inner(
        &self,
        req: pb::FailoverRequest,
    ) -> Result<pb::FailoverResponse, Status> {
        use pb::failover_request::Mode;
        let mode = Mode::try_from(req.mode)
            .map_err(|_| Status::invalid_argument(format!("mode: unknown value {}", req.mode)))?;
        let target = req.target_address.trim();
        let needs_target = matches!(mode, Mode::Switchover | Mode::Follow);
        if needs_target && target.is_empty() {
            return Err(Status::invalid_argument(format!(
                "target_address: required for {}",
                mode.as_str_name()
            )));
        }
        let wait = ms_or(req.timeout_ms, DEFAULT_WAIT);
        tracing::info!(instance = %self.instance, mode = mode.as_str_name(), target, term = req.term, "failover step");
        let result = match mode {
            Mode::Unspecified => {
                return Err(Status::invalid_argument("mode: must be set"));
            }
            Mode::Switchover => self
                .adapter
                .switchover(target, req.term, wait)
                .await
                .map(|o| (o.role, o.write_pause)),
            Mode::Forced => self
                .adapter
                .promote(req.term)
                .await
                .map(|r| (r, Duration::ZERO)),
            Mode::Follow => self
                .adapter
                .follow(target, req.term)
                .await
                .map(|r| (r, Duration::ZERO)),
            Mode::Fence => self
                .adapter
                .fence((!target.is_empty()).then_some(target), req.term)
                .await
                .map(|r| (r, Duration::ZERO)),
        };
        self.invalidate();
        Ok(match result {
            Ok((role, pause)) => pb::FailoverResponse {
                success: true,
                role: Some(convert::role_report(
                    &self.instance,
                    self.adapter.address(),
                    &role,
                )),
                error: None,
                write_pause_ms: pause.as_millis().min(u32::MAX as u128) as u32,
            },
            Err(e) => {
                tracing::warn!(instance = %self.instance, error = %e, "failover step failed");
                pb::FailoverResponse {
                    success: false,
                    role: self.role_report(true).await.ok(),
                    error: Some(convert::error_detail(&e)),
                    write_pause_ms: 0,
                }
            }
        })
    }

    /// Re-applies the persisted decision every `interval` until `stop`.
    pub fn spawn_enforcer(
        self: &Arc<Self>,
        interval: Duration,
        stop: CancellationToken,
    ) -> tokio::task::JoinHandle<()> {
        let agent = self.clone();
        tokio::spawn(async move {
            // The first look is at once: a middleware restarted from its pod
            // template may hold a role the recorded decision contradicts.
            let mut first = true;
            loop {
                if !first {
                    tokio::select! {
                        _ = stop.cancelled() => return,
                        _ = tokio::time::sleep(interval) => {}
                    }
                }
                first = false;
                match agent.adapter.enforce().await {
                    Ok(Some(action)) => {
                        agent.invalidate();
                        tracing::warn!(instance = %agent.instance, action, "enforced the recorded role");
                    }
                    Ok(None) => {}
                    Err(e) => tracing::debug!(instance = %agent.instance, error = %e, "enforce"),
                }
            }
        })
    }
}

pub(crate) fn ms_or(ms: u32, default: Duration) -> Duration {
    if ms == 0 {
        default
    } else {
        Duration::from_millis(ms.into())
    }
}

type EventStream =
    Pin<Box<dyn tokio_stream::Stream<Item = Result<pb::LifecycleEvent, Status>> + Send>>;

#[tonic::async_trait]
impl<A: Adapter> Agent for AdapterAgent<A> {
    async fn get_role(
        &self,
        request: Request<pb::GetRoleRequest>,
    ) -> Result<Response<pb::RoleReport>, Status> {
        let r = self.role_report(request.get_ref().fresh).await;
        self.rpc.observe("GetRole", r).map(Response::new)
    }

    async fn failover(
        &self,
        request: Request<pb::FailoverRequest>,
    ) -> Result<Response<pb::FailoverResponse>, Status> {
        let r = self.failover_inner(request.into_inner()).await;
        self.rpc.observe("Failover", r).map(Response::new)
    }

    async fn reload_config(
        &self,
        request: Request<pb::ReloadConfigRequest>,
    ) -> Result<Response<pb::ReloadConfigResponse>, Status> {
        let req = request.into_inner();
        let r = if req.config_path.trim().is_empty() {
            Err(Status::invalid_argument("config_path: required"))
        } else {
            let out = self
                .adapter
                .reload_config(ReloadRequest {
                    config_path: req.config_path.into(),
                    content_hash: req.content_hash,
                    wait_timeout: ms_or(req.wait_timeout_ms, DEFAULT_WAIT),
                    restart_required: req.restart_required_parameters,
                })
                .await;
            Ok(match out {
                Ok(o) => convert::reload_response(&o),
                Err(e) => pb::ReloadConfigResponse {
                    config_hash: self.adapter.config_hash(),
                    refused_parameters: e.refused_parameters().to_vec(),
                    error: Some(convert::error_detail(&e)),
                    ..Default::default()
                },
            })
        };
        self.rpc.observe("ReloadConfig", r).map(Response::new)
    }

    async fn restart(
        &self,
        request: Request<pb::RestartRequest>,
    ) -> Result<Response<pb::RestartResponse>, Status> {
        let req = request.into_inner();
        let out = self
            .adapter
            .restart(req.graceful, ms_or(req.timeout_ms, Duration::from_secs(60)))
            .await;
        self.invalidate();
        let r = Ok(match out {
            Ok(()) => pb::RestartResponse {
                success: true,
                error: None,
            },
            Err(e) => pb::RestartResponse {
                success: false,
                error: Some(convert::error_detail(&e)),
            },
        });
        self.rpc.observe("Restart", r).map(Response::new)
    }

    async fn snapshot(
        &self,
        request: Request<pb::SnapshotRequest>,
    ) -> Result<Response<pb::SnapshotResponse>, Status> {
        let req = request.into_inner();
        let r = if valid_snapshot_id(&req.snapshot_id) {
            self.adapter
                .snapshot(
                    &req.snapshot_id,
                    ms_or(req.timeout_ms, DEFAULT_SNAPSHOT_WAIT),
                )
                .await
                .map(|o| convert::snapshot_response(&self.instance, self.adapter.address(), &o))
                .map_err(|e| {
                    tracing::warn!(instance = %self.instance, id = %req.snapshot_id, error = %e, "snapshot failed");
                    convert::status(&e)
                })
        } else {
            Err(Status::invalid_argument(format!(
                "snapshot_id {:?}: must be 1..63 characters of [a-z0-9-]",
                req.snapshot_id
            )))
        };
        self.rpc.observe("Snapshot", r).map(Response::new)
    }

    async fn get_status(
        &self,
        _: Request<pb::GetStatusRequest>,
    ) -> Result<Response<pb::Status>, Status> {
        let r = Err(Status::unimplemented(
            "GetStatus is served by agent 1 (lifecycle)",
        ));
        self.rpc.observe("GetStatus", r)
    }

    async fn health_check(
        &self,
        _: Request<pb::HealthCheckRequest>,
    ) -> Result<Response<pb::HealthCheckResponse>, Status> {
        let r = Err(Status::unimplemented(
            "HealthCheck is served by agent 1 (lifecycle)",
        ));
        self.rpc.observe("HealthCheck", r)
    }

    type WatchLifecycleStream = EventStream;

    async fn watch_lifecycle(
        &self,
        _: Request<pb::WatchLifecycleRequest>,
    ) -> Result<Response<Self::WatchLifecycleStream>, Status> {
        let r = Err(Status::unimplemented(
            "WatchLifecycle is served by agent 1 (lifecycle)",
        ));
        self.rpc.observe("WatchLifecycle", r)
    }
}
