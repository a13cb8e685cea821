//! The per-call layers of the fan-out stack: the idempotent-only retry policy
//! and the per-call deadline.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tower::{BoxError, Service};

use super::{AgentCall, AgentReply, DeadlineElapsed, MIDDLEWARE_DOWN};

/// Retries idempotent calls that failed as UNAVAILABLE, with a short back-off.
#[derive(Clone)]
pub struct IdempotentRetry {
    pub(super) remaining: usize,
    pub(super) backoff: Duration,
}

impl tower::retry::Policy<AgentCall, AgentReply, BoxError> for IdempotentRetry {
    type Future = Pin<Box<dyn Future<Output = ()> + Send>>;

    fn retry(
        &mut self,
        req: &mut AgentCall,
        result: &mut Result<AgentReply, BoxError>,
    ) -> Option<Self::Future> {
        let Err(e) = result else { return None };
        if self.remaining == 0 || !req.op.idempotent() {
            return None;
        }
        // Only the agent itself being unreachable is worth another attempt;
        // an agent reporting its middleware down answers the same again.
        let unavailable = e.downcast_ref::<tonic::Status>().is_some_and(|s| {
            s.code() == tonic::Code::Unavailable && s.metadata().get(MIDDLEWARE_DOWN).is_none()
        });
        if !unavailable {
            return None;
        }
        self.remaining -= 1;
        let backoff = self.backoff;
        self.backoff *= 2;
        Some(Box::pin(tokio::time::sleep(backoff)))
    }

    fn clone_request(&mut self, req: &AgentCall) -> Option<AgentCall> {
        req.op.idempotent().then(|| req.clone())
    }
}

/// Bounds each call by its own deadline (queueing for a permit included).
#[derive(Clone)]
pub struct Deadline<S>(S);

#[derive(Clone, Default)]
pub struct DeadlineLayer;

impl<S> tower::Layer<S> for DeadlineLayer {
    type Service = Deadline<S>;
    fn layer(&self, inner: S) -> Deadline<S> {
        Deadline(inner)
    }
}

impl<S> Service<AgentCall> for Deadline<S>
where
    S: Service<AgentCall, Response = AgentReply, Error = BoxError> + Clone + Send + 'static,
    S::Future: Send,
{
    type Response = AgentReply;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<AgentReply, BoxError>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.0.poll_ready(cx)
    }

    fn call(&mut self, call: AgentCall) -> Self::Future {
        let d = call.deadline;
        let fut = self.0.call(call);
        Box::pin(async move {
            match tokio::time::timeout(d, fut).await {
                Ok(r) => r,
                Err(_) => Err(Box::new(DeadlineElapsed(d)) as BoxError),
            }
        })
    }
}
