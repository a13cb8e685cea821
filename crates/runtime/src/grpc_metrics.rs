//! Per-method gRPC server metrics, as a tower layer around every served
//! service: calls handled by status code and how long they took, named after
//! the gRPC ecosystem's conventions (`grpc_server_handled_total`,
//! `grpc_server_handling_seconds`) with the `midplane_` prefix. Dashboards and
//! alerts (`k8s/monitoring/`) read them.
//!
//! The status code of a normal response travels in the trailers, after the
//! body, so the response body is wrapped to read it there; an error answered
//! before any message carries it in the headers. A call whose body is dropped
//! before its trailers (the caller went away) counts as CANCELLED.

use futures::future::BoxFuture;
use http_body::{Body, Frame, SizeHint};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

pub const HANDLED_TOTAL: &str = "midplane_grpc_server_handled_total";
pub const HANDLING_SECONDS: &str = "midplane_grpc_server_handling_seconds";

pub fn describe() {
    metrics::describe_counter!(
        HANDLED_TOTAL,
        "gRPC calls completed by the server, by service, method and status code"
    );
    metrics::describe_histogram!(
        HANDLING_SECONDS,
        metrics::Unit::Seconds,
        "Time from a call's arrival until its status was sent, by service and method"
    );
}

/// Counts calls to the named services; any other path (a client's typo, a
/// scanner) is counted under `service="unknown"` so labels stay bounded.
#[derive(Clone, Debug)]
pub struct GrpcMetricsLayer {
    known: Arc<Vec<&'static str>>,
}

impl GrpcMetricsLayer {
    pub fn new(known: impl IntoIterator<Item = &'static str>) -> Self {
        Self {
            known: Arc::new(known.into_iter().collect()),
        }
    }
}

impl<S> tower::Layer<S> for GrpcMetricsLayer {
    type Service = GrpcMetrics<S>;
    fn layer(&self, inner: S) -> Self::Service {
        GrpcMetrics {
            inner,
            known: self.known.clone(),
        }
    }
}

#[derive(Clone, Debug)]
pub struct GrpcMetrics<S> {
    inner: S,
    known: Arc<Vec<&'static str>>,
}

/// `(service, method)` labels of a request path `/<service>/<method>`.
pub fn labels(path: &str, known: &[&'static str]) -> (&'static str, String) {
    let mut parts = path.trim_start_matches('/').splitn(2, '/');
    let service = parts.next().unwrap_or_default();
    let method = parts.next().unwrap_or_default();
    match known.iter().find(|k| **k == service) {
        Some(k) if !method.is_empty() && !method.contains('/') => (k, method.to_string()),
        _ => ("unknown", "unknown".to_string()),
    }
}

impl<S, B> tower::Service<http::Request<B>> for GrpcMetrics<S>
where
    S: tower::Service<http::Request<B>, Response = http::Response<tonic::body::Body>>,
    S::Future: Send + 'static,
{
    type Response = http::Response<tonic::body::Body>;
    type Error = S::Error;
    type Future = BoxFuture<'static, Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        let (service, method) = labels(req.uri().path(), &self.known);
        let call = Call {
            service,
            method,
            start: Instant::now(),
            recorded: false,
        };
        let fut = self.inner.call(req);
        Box::pin(async move {
            let response = fut.await?;
            let mut call = call;
            if let Some(code) = header_code(response.headers()) {
                // Trailers-only: the status is already here.
                call.record(code);
            }
            Ok(response.map(|body| {
                tonic::body::Body::new(Counted {
                    inner: body,
                    call: Some(call),
                })
            }))
        })
    }
}

fn header_code(headers: &http::HeaderMap) -> Option<tonic::Code> {
    let v = headers
        .get("grpc-status")?
        .to_str()
        .ok()?
        .parse::<i32>()
        .ok()?;
    Some(tonic::Code::from_i32(v))
}

/// One call being answered; records itself once.
struct Call {
    service: &'static str,
    method: String,
    start: Instant,
    recorded: bool,
}

impl Call {
    fn record(&mut self, code: tonic::Code) {
        if std::mem::replace(&mut self.recorded, true) {
            return;
        }
        if code == tonic::Code::Unimplemented {
            // The method name came from the caller and names nothing served.
            self.method = "unknown".to_string();
        }
        let code = code_name(code);
        metrics::counter!(HANDLED_TOTAL, "grpc_service" => self.service, "grpc_method" => self.method.clone(), "grpc_code" => code)
            .increment(1);
        metrics::histogram!(HANDLING_SECONDS, "grpc_service" => self.service, "grpc_method" => self.method.clone())
            .record(self.start.elapsed().as_secs_f64());
    }
}

impl Drop for Call {
    fn drop(&mut self) {
        // The body went away before its trailers: the caller cancelled.
        self.record(tonic::Code::Cancelled);
    }
}

/// The status code's name as the gRPC spec spells it (`OK`, `NOT_FOUND`…).
pub fn code_name(code: tonic::Code) -> &'static str {
    use tonic::Code as C;
    match code {
        C::Ok => "OK",
        C::Cancelled => "CANCELLED",
        C::Unknown => "UNKNOWN",
        C::InvalidArgument => "INVALID_ARGUMENT",
        C::DeadlineExceeded => "DEADLINE_EXCEEDED",
        C::NotFound => "NOT_FOUND",
        C::AlreadyExists => "ALREADY_EXISTS",
        C::PermissionDenied => "PERMISSION_DENIED",
        C::ResourceExhausted => "RESOURCE_EXHAUSTED",
        C::FailedPrecondition => "FAILED_PRECONDITION",
        C::Aborted => "ABORTED",
        C::OutOfRange => "OUT_OF_RANGE",
        C::Unimplemented => "UNIMPLEMENTED",
        C::Internal => "INTERNAL",
        C::Unavailable => "UNAVAILABLE",
        C::DataLoss => "DATA_LOSS",
        C::Unauthenticated => "UNAUTHENTICATED",
    }
}

/// A response body that records its call's status when the trailers pass.
struct Counted {
    inner: tonic::body::Body,
    call: Option<Call>,
}

impl Body for Counted {
    type Data = bytes::Bytes;
    type Error = tonic::Status;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(code) = frame.trailers_ref().and_then(header_code)
                    && let Some(call) = self.call.as_mut()
                {
                    call.record(code);
                }
            }
            Poll::Ready(Some(Err(status))) => {
                let code = status.code();
                if let Some(call) = self.call.as_mut() {
                    call.record(code);
                }
            }
            // The end without trailers: nothing said otherwise, so it is OK
            // only if a status was already recorded from the headers.
            Poll::Ready(None) | Poll::Pending => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_bounded_to_known_services() {
        let known = ["midplane.app.v1.AppService", "grpc.health.v1.Health"];
        assert_eq!(
            labels("/midplane.app.v1.AppService/ApplyApp", &known),
            ("midplane.app.v1.AppService", "ApplyApp".to_string())
        );
        for path in [
            "/evil.Service/X",
            "/midplane.app.v1.AppService",
            "/midplane.app.v1.AppService/a/b",
            "",
        ] {
            assert_eq!(
                labels(path, &known),
                ("unknown", "unknown".to_string()),
                "{path}"
            );
        }
    }
}
