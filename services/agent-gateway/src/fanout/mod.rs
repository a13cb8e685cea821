//! Calling the agents of many pods at once. Each agent call is a request
//! through one tower stack shared by the whole gateway:
//!
//! deadline (per call) → load shed → concurrency limit (gateway-wide) →
//! retry (idempotent calls only, on UNAVAILABLE) → the agent's tonic client
//!
//! so a hanging agent costs one deadline, an overloaded gateway answers at once
//! instead of queueing, and a failover step is never sent twice. With
//! `agents.tls` the channels are mTLS (see [`crate::agent_tls`]).

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, RwLock};
use std::task::{Context, Poll};
use std::time::Duration;

use midplane_proto::agent as pb;
use midplane_proto::agent::agent_client::AgentClient;
use midplane_proto::common::ErrorDetail;
use midplane_proto::gateway::PodTarget;
use midplane_runtime::auth::BearerToken;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Channel, Endpoint};
use tower::limit::ConcurrencyLimit;
use tower::load_shed::LoadShed;
use tower::retry::Retry;

use crate::agent_tls::{AgentTls, AgentTlsConfig, AgentTlsError};

mod layers;
pub use layers::{Deadline, DeadlineLayer, IdempotentRetry};

/// Set by an agent on UNAVAILABLE when its middleware, not the agent, is down.
pub const MIDDLEWARE_DOWN: &str = "x-midplane-middleware-down";
use tower::{BoxError, Service, ServiceBuilder, ServiceExt};

/// What to ask one agent.
#[derive(Debug, Clone)]
pub enum AgentOp {
    GetRole { fresh: bool },
    GetStatus,
    HealthCheck,
    Failover(pb::FailoverRequest),
    ReloadConfig(pb::ReloadConfigRequest),
    Restart(pb::RestartRequest),
    Snapshot(pb::SnapshotRequest),
}

impl AgentOp {
    /// Reads may be retried; a role change or reload is sent at most once.
    pub fn idempotent(&self) -> bool {
        matches!(
            self,
            AgentOp::GetRole { .. } | AgentOp::GetStatus | AgentOp::HealthCheck
        )
    }

    pub fn name(&self) -> &'static str {
        match self {
            AgentOp::GetRole { .. } => "GetRole",
            AgentOp::GetStatus => "GetStatus",
            AgentOp::HealthCheck => "HealthCheck",
            AgentOp::Failover(_) => "Failover",
            AgentOp::ReloadConfig(_) => "ReloadConfig",
            AgentOp::Restart(_) => "Restart",
            AgentOp::Snapshot(_) => "Snapshot",
        }
    }
}

#[derive(Debug, Clone)]
pub struct AgentCall {
    /// Agent "host:port" (shared: a retry clones the call).
    pub address: Arc<str>,
    pub op: AgentOp,
    pub deadline: Duration,
}

#[derive(Debug, Clone)]
pub enum AgentReply {
    Role(pb::RoleReport),
    Status(pb::Status),
    Health(pb::HealthCheckResponse),
    Failover(pb::FailoverResponse),
    Reload(pb::ReloadConfigResponse),
    Restart(pb::RestartResponse),
    Snapshot(pb::SnapshotResponse),
}

#[derive(Debug, thiserror::Error)]
pub enum FanOutError {
    #[error("agent address {address:?}: {message}")]
    BadAddress { address: String, message: String },
    #[error("agent token file {path}: {source}")]
    Token {
        path: String,
        source: std::io::Error,
    },
    #[error("agent token: {0}")]
    TokenValue(String),
    #[error(transparent)]
    Tls(#[from] AgentTlsError),
}

/// The per-call deadline ran out.
#[derive(Debug, thiserror::Error)]
#[error("no answer within {0:?}")]
pub struct DeadlineElapsed(pub Duration);

type Client = AgentClient<InterceptedService<Channel, TokenInterceptor>>;

#[derive(Clone)]
pub struct TokenInterceptor(Option<BearerToken>);

impl tonic::service::Interceptor for TokenInterceptor {
    fn call(&mut self, req: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
        match &mut self.0 {
            Some(t) => t.call(req),
            None => Ok(req),
        }
    }
}

/// Agent address → (TLS generation, client).
type ClientCache = HashMap<Arc<str>, (u64, Client)>;

/// The innermost service: one tonic call to one agent over a cached,
/// multiplexed HTTP/2 channel (TLS when configured).
#[derive(Clone)]
pub struct AgentCaller {
    /// Per agent address: the TLS generation its channel was built with, and
    /// a client over that channel (cloned per call).
    channels: Arc<RwLock<ClientCache>>,
    token: TokenInterceptor,
    connect_timeout: Duration,
    tls: Option<Arc<AgentTls>>,
}

impl AgentCaller {
    fn client(&self, address: &Arc<str>) -> Result<Client, tonic::Status> {
        let generation = self.tls.as_ref().map_or(0, |t| t.generation());
        if let Some((g, client)) = self
            .channels
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(&**address)
            && *g == generation
        {
            return Ok(client.clone());
        }
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        let mut endpoint = Endpoint::from_shared(format!("{scheme}://{address}"))
            .map_err(|e| {
                tonic::Status::invalid_argument(format!("agent address {address:?}: {e}"))
            })?
            .connect_timeout(self.connect_timeout)
            .tcp_nodelay(true)
            .http2_keep_alive_interval(Duration::from_secs(30))
            .keep_alive_while_idle(true);
        if let Some(tls) = &self.tls {
            endpoint = endpoint.tls_config(tls.client_config()).map_err(|e| {
                tonic::Status::failed_precondition(format!("agent TLS for {address}: {e}"))
            })?;
        }
        let client = AgentClient::with_interceptor(endpoint.connect_lazy(), self.token.clone());
        // A channel of an older TLS generation is replaced; of a newer one
        // (rotated meanwhile) kept.
        let mut channels = self
            .channels
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let entry = channels
            .entry(address.clone())
            .or_insert_with(|| (generation, client.clone()));
        if entry.0 < generation {
            *entry = (generation, client);
        }
        Ok(entry.1.clone())
    }
}

impl Service<AgentCall> for AgentCaller {
    type Response = AgentReply;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<AgentReply, BoxError>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, call: AgentCall) -> Self::Future {
        let client = self.client(&call.address);
        Box::pin(async move {
            let mut client = client?;
            // The agent sees the same deadline (grpc-timeout) and can give up too.
            fn req<T>(m: T, d: Duration) -> tonic::Request<T> {
                let mut r = tonic::Request::new(m);
                r.set_timeout(d);
                r
            }
            let d = call.deadline;
            let reply = match call.op {
                AgentOp::GetRole { fresh } => AgentReply::Role(
                    client
                        .get_role(req(pb::GetRoleRequest { fresh }, d))
                        .await?
                        .into_inner(),
                ),
                AgentOp::GetStatus => AgentReply::Status(
                    client
                        .get_status(req(pb::GetStatusRequest {}, d))
                        .await?
                        .into_inner(),
                ),
                AgentOp::HealthCheck => AgentReply::Health(
                    client
                        .health_check(req(pb::HealthCheckRequest {}, d))
                        .await?
                        .into_inner(),
                ),
                AgentOp::Failover(m) => {
                    AgentReply::Failover(client.failover(req(m, d)).await?.into_inner())
                }
                AgentOp::ReloadConfig(m) => {
                    AgentReply::Reload(client.reload_config(req(m, d)).await?.into_inner())
                }
                AgentOp::Restart(m) => {
                    AgentReply::Restart(client.restart(req(m, d)).await?.into_inner())
                }
                AgentOp::Snapshot(m) => {
                    AgentReply::Snapshot(client.snapshot(req(m, d)).await?.into_inner())
                }
            };
            Ok(reply)
        })
    }
}

#[derive(Debug, Clone)]
pub struct FanOutSettings {
    pub default_deadline: Duration,
    /// Agent calls in flight across the gateway; beyond it calls are shed.
    pub max_in_flight: usize,
    /// Extra attempts for idempotent calls.
    pub retries: usize,
    pub retry_backoff: Duration,
    pub connect_timeout: Duration,
    /// Bearer token presented to the agents.
    pub token: Option<String>,
    /// TLS / mTLS to the agents; plaintext when unset.
    pub tls: Option<AgentTlsConfig>,
}

impl Default for FanOutSettings {
    fn default() -> Self {
        Self {
            default_deadline: Duration::from_secs(2),
            max_in_flight: 2048,
            retries: 2,
            retry_backoff: Duration::from_millis(20),
            connect_timeout: Duration::from_millis(500),
            token: None,
            tls: None,
        }
    }
}

/// The whole per-call stack, named rather than boxed: cloning it per call
/// then costs no allocation.
type Stack = Deadline<LoadShed<ConcurrencyLimit<Retry<IdempotentRetry, AgentCaller>>>>;

/// The gateway's agent client: one stack, cloned per call.
#[derive(Clone)]
pub struct FanOut {
    svc: Stack,
    /// The stack's innermost service, for streaming calls (which the
    /// per-call stack does not carry).
    caller: AgentCaller,
    default_deadline: Duration,
}

/// One pod's answer.
pub type PodResult = Result<AgentReply, ErrorDetail>;

impl FanOut {
    pub fn new(settings: FanOutSettings) -> Result<Self, FanOutError> {
        let token = match &settings.token {
            Some(t) => {
                Some(BearerToken::new(t).map_err(|e| FanOutError::TokenValue(e.to_string()))?)
            }
            None => None,
        };
        let tls = match &settings.tls {
            Some(config) => {
                let tls = Arc::new(AgentTls::load(config)?);
                tls.spawn_reloader();
                Some(tls)
            }
            None => None,
        };
        let caller = AgentCaller {
            channels: Arc::default(),
            token: TokenInterceptor(token),
            connect_timeout: settings.connect_timeout,
            tls,
        };
        let svc = ServiceBuilder::new()
            .layer(DeadlineLayer)
            .load_shed()
            .concurrency_limit(settings.max_in_flight.max(1))
            .retry(IdempotentRetry {
                remaining: settings.retries,
                backoff: settings.retry_backoff,
            })
            .service(caller.clone());
        Ok(Self {
            svc,
            caller,
            default_deadline: settings.default_deadline,
        })
    }

    /// Opens agent 1's lifecycle stream at `address` (over the same cached
    /// channel, token and TLS as every other call). `connect` bounds the
    /// wait for the stream's first answer.
    pub async fn watch_lifecycle(
        &self,
        address: &str,
        connect: Duration,
    ) -> Result<tonic::Streaming<pb::LifecycleEvent>, ErrorDetail> {
        let mut client = self
            .caller
            .client(&Arc::from(address))
            .map_err(|s| error_detail(Box::new(s)))?;
        let call = client.watch_lifecycle(pb::WatchLifecycleRequest {});
        match tokio::time::timeout(connect, call).await {
            Ok(Ok(r)) => Ok(r.into_inner()),
            Ok(Err(s)) => Err(error_detail(Box::new(s))),
            Err(_) => Err(error_detail(Box::new(DeadlineElapsed(connect)))),
        }
    }

    pub fn deadline(&self, timeout_ms: u32) -> Duration {
        if timeout_ms == 0 {
            self.default_deadline
        } else {
            Duration::from_millis(timeout_ms.into())
        }
    }

    /// One agent call; its failure comes back as an `ErrorDetail`.
    pub async fn call(&self, address: &str, op: AgentOp, deadline: Duration) -> PodResult {
        self.call_shared(Arc::from(address), op, deadline).await
    }

    async fn call_shared(&self, address: Arc<str>, op: AgentOp, deadline: Duration) -> PodResult {
        self.call_raw(address, op, deadline)
            .await
            .map_err(error_detail)
    }

    /// One agent call whose failure is the caller's whole answer: the
    /// agent's status as it sent it; the gateway's own deadline as
    /// DEADLINE_EXCEEDED, load shedding as UNAVAILABLE.
    pub async fn call_status(
        &self,
        address: &str,
        op: AgentOp,
        deadline: Duration,
    ) -> Result<AgentReply, tonic::Status> {
        self.call_raw(Arc::from(address), op, deadline)
            .await
            .map_err(|e| match e.downcast::<tonic::Status>() {
                Ok(s)
                    if s.code() == tonic::Code::Cancelled
                        && s.message() == tonic::TimeoutExpired(()).to_string() =>
                {
                    tonic::Status::deadline_exceeded(format!(
                        "agent {address}: no answer within {deadline:?}"
                    ))
                }
                Ok(s) => *s,
                Err(e) if e.is::<DeadlineElapsed>() => tonic::Status::deadline_exceeded(format!(
                    "agent {address}: no answer within {deadline:?}"
                )),
                Err(e) if e.is::<tower::load_shed::error::Overloaded>() => {
                    tonic::Status::unavailable(format!("agent {address}: gateway overloaded"))
                }
                Err(e) => tonic::Status::internal(format!("agent {address}: {e}")),
            })
    }

    async fn call_raw(
        &self,
        address: Arc<str>,
        op: AgentOp,
        deadline: Duration,
    ) -> Result<AgentReply, BoxError> {
        if address.is_empty() {
            return Err(Box::new(tonic::Status::invalid_argument(format!(
                "no agent address for {}",
                op.name()
            ))));
        }
        let call = AgentCall {
            address,
            op,
            deadline,
        };
        self.svc.clone().oneshot(call).await
    }

    /// The same op to every pod's agent 2 (`lifecycle` false) or agent 1,
    /// concurrently; the pods come back with their results, in order.
    pub async fn all(
        &self,
        pods: Vec<PodTarget>,
        op: AgentOp,
        deadline: Duration,
        lifecycle: bool,
    ) -> Vec<(PodTarget, PodResult)> {
        let calls = pods.iter().map(|p| {
            let address = if lifecycle {
                &p.lifecycle_address
            } else {
                &p.address
            };
            self.call_shared(Arc::from(address.as_str()), op.clone(), deadline)
        });
        let results = futures::future::join_all(calls).await;
        pods.into_iter().zip(results).collect()
    }
}

/// Turns a stack error into a per-pod `ErrorDetail`.
pub fn error_detail(e: BoxError) -> ErrorDetail {
    let (reason, retryable) = if let Some(s) = e.downcast_ref::<tonic::Status>() {
        // tonic reports its own expiry of the grpc-timeout as CANCELLED.
        let client_timeout = s.code() == tonic::Code::Cancelled
            && s.message() == tonic::TimeoutExpired(()).to_string();
        let reason = match s.code() {
            _ if client_timeout => "Timeout",
            tonic::Code::Unavailable => "Unavailable",
            tonic::Code::DeadlineExceeded => "Timeout",
            tonic::Code::Unauthenticated => "Unauthenticated",
            tonic::Code::PermissionDenied => "Forbidden",
            tonic::Code::FailedPrecondition => "FailedPrecondition",
            tonic::Code::InvalidArgument => "Invalid",
            tonic::Code::Unimplemented => "Unimplemented",
            tonic::Code::ResourceExhausted => "Overloaded",
            _ => "AgentError",
        };
        let message = format!("{}: {}", reason, s.message());
        return ErrorDetail {
            reason: reason.into(),
            message,
            fields: Vec::new(),
            retryable: client_timeout
                || matches!(
                    s.code(),
                    tonic::Code::Unavailable
                        | tonic::Code::DeadlineExceeded
                        | tonic::Code::ResourceExhausted
                ),
        };
    } else if e.is::<DeadlineElapsed>() {
        ("Timeout", true)
    } else if e.is::<tower::load_shed::error::Overloaded>() {
        ("Overloaded", true)
    } else {
        ("AgentError", false)
    };
    ErrorDetail {
        reason: reason.into(),
        message: e.to_string(),
        fields: Vec::new(),
        retryable,
    }
}
