//! Call deadlines as the gRPC conventions want them: a call that runs past the
//! caller's deadline (`grpc-timeout`) or the server's own limit
//! (`server.request_timeout_ms`) ends with DEADLINE_EXCEEDED and an `ErrorInfo`
//! saying which limit it hit. (tonic's own timeout answers CANCELLED "Timeout
//! expired", which clients read as "the caller gave up".)

use crate::status::{ApiError, reason};
use futures::future::BoxFuture;
use std::task::{Context, Poll};
use std::time::Duration;
use tonic::Code;

/// The caller's deadline, from the `grpc-timeout` header (`<digits><H|M|S|m|u|n>`).
pub fn client_timeout(headers: &http::HeaderMap) -> Option<Duration> {
    parse(headers.get("grpc-timeout")?.to_str().ok()?)
}

/// [`client_timeout`] from a request's metadata, for handlers.
pub fn client_timeout_of(metadata: &tonic::metadata::MetadataMap) -> Option<Duration> {
    parse(metadata.get("grpc-timeout")?.to_str().ok()?)
}

fn parse(v: &str) -> Option<Duration> {
    let (digits, unit) = v.split_at(v.len().checked_sub(1)?);
    // The spec allows at most 8 digits.
    if digits.is_empty() || digits.len() > 8 {
        return None;
    }
    let n: u64 = digits.parse().ok()?;
    Some(match unit {
        "H" => Duration::from_secs(n.saturating_mul(3600)),
        "M" => Duration::from_secs(n.saturating_mul(60)),
        "S" => Duration::from_secs(n),
        "m" => Duration::from_millis(n),
        "u" => Duration::from_micros(n),
        "n" => Duration::from_nanos(n),
        _ => return None,
    })
}

/// Ends calls at the earlier of the caller's deadline and `server_timeout`.
#[derive(Clone, Debug)]
pub struct DeadlineLayer {
    server_timeout: Option<Duration>,
}

impl DeadlineLayer {
    pub fn new(server_timeout: Option<Duration>) -> Self {
        Self { server_timeout }
    }
}

impl<S> tower::Layer<S> for DeadlineLayer {
    type Service = Deadline<S>;
    fn layer(&self, inner: S) -> Self::Service {
        Deadline {
            inner,
            server_timeout: self.server_timeout,
        }
    }
}

#[derive(Clone, Debug)]
pub struct Deadline<S> {
    inner: S,
    server_timeout: Option<Duration>,
}

/// Which limit a call ran into.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Limit {
    Caller,
    Server,
}

impl<S, B> tower::Service<http::Request<B>> for Deadline<S>
where
    S: tower::Service<http::Request<B>, Response = http::Response<tonic::body::Body>>,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = BoxFuture<'static, Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        let limit = match (client_timeout(req.headers()), self.server_timeout) {
            (None, None) => None,
            (Some(c), None) => Some((c, Limit::Caller)),
            (None, Some(s)) => Some((s, Limit::Server)),
            (Some(c), Some(s)) if c <= s => Some((c, Limit::Caller)),
            (Some(_), Some(s)) => Some((s, Limit::Server)),
        };
        let method = req.uri().path().to_string();
        let Some((after, which)) = limit else {
            return Box::pin(self.inner.call(req));
        };
        // The timer is registered here, on this thread, before tonic's own
        // timer for the caller's deadline (which answers CANCELLED): same
        // timer shard, earlier or equal deadline, so this one never fires last.
        let timer = tokio::time::sleep(after);
        let call = self.inner.call(req);
        Box::pin(async move {
            let outcome = tokio::select! {
                biased;
                _ = timer => None,
                result = call => Some(result),
            };
            match outcome {
                Some(result) => result,
                None => {
                    let ms = after.as_millis().to_string();
                    let message = match which {
                        Limit::Caller => {
                            format!("{method}: the caller's deadline of {ms} ms passed")
                        }
                        Limit::Server => format!(
                            "{method}: the server's request limit of {ms} ms passed (server.request_timeout_ms)"
                        ),
                    };
                    tracing::debug!(%method, timeout_ms = %ms, limit = ?which, "deadline exceeded");
                    let status =
                        ApiError::new(Code::DeadlineExceeded, reason::DEADLINE_EXCEEDED, message)
                            .meta(
                                "limit",
                                match which {
                                    Limit::Caller => "caller",
                                    Limit::Server => "server",
                                },
                            )
                            .meta("timeoutMs", ms)
                            .into_status();
                    Ok(status.into_http())
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grpc_timeout_header_units() {
        let mut h = http::HeaderMap::new();
        assert_eq!(client_timeout(&h), None);
        for (v, d) in [
            ("5S", Duration::from_secs(5)),
            ("250m", Duration::from_millis(250)),
            ("2M", Duration::from_secs(120)),
            ("1H", Duration::from_secs(3600)),
            ("7u", Duration::from_micros(7)),
            ("9n", Duration::from_nanos(9)),
        ] {
            h.insert("grpc-timeout", v.parse().expect("ascii"));
            assert_eq!(client_timeout(&h), Some(d), "{v}");
        }
        for bad in ["5x", "m", "123456789m", ""] {
            h.insert("grpc-timeout", bad.parse().expect("ascii"));
            assert_eq!(client_timeout(&h), None, "{bad:?}");
        }
    }
}
