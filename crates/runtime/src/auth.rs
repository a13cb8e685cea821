//! Bearer-token authentication as a tower layer: a call without
//! `authorization: Bearer <token>` matching the configured token is refused
//! with UNAUTHENTICATED before it reaches a service. Health checks stay open
//! so kubelet probes and load balancers need no secret.

use std::sync::Arc;
use std::task::{Context, Poll};

#[derive(Clone)]
pub struct BearerAuthLayer {
    token: Option<Arc<str>>,
}

impl BearerAuthLayer {
    /// `None` disables authentication.
    pub fn new(token: Option<String>) -> Self {
        Self {
            token: token.map(|t| Arc::from(t.trim())),
        }
    }

    /// Reads the token from a file mounted from a Kubernetes Secret.
    pub fn from_file(path: &std::path::Path) -> Result<Self, crate::RuntimeError> {
        let token =
            std::fs::read_to_string(path).map_err(|source| crate::RuntimeError::AuthToken {
                path: path.display().to_string(),
                source,
            })?;
        Ok(Self::new(Some(token)))
    }
}

impl<S> tower::Layer<S> for BearerAuthLayer {
    type Service = BearerAuth<S>;
    fn layer(&self, inner: S) -> Self::Service {
        BearerAuth {
            inner,
            token: self.token.clone(),
        }
    }
}

#[derive(Clone)]
pub struct BearerAuth<S> {
    inner: S,
    token: Option<Arc<str>>,
}

const OPEN_PREFIXES: &[&str] = &["/grpc.health.v1.Health/"];

impl<S, B> tower::Service<http::Request<B>> for BearerAuth<S>
where
    S: tower::Service<http::Request<B>, Response = http::Response<tonic::body::Body>>,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = futures::future::Either<
        S::Future,
        futures::future::Ready<Result<Self::Response, Self::Error>>,
    >;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        let Some(expected) = &self.token else {
            return futures::future::Either::Left(self.inner.call(req));
        };
        let path = req.uri().path();
        if OPEN_PREFIXES.iter().any(|p| path.starts_with(p)) {
            return futures::future::Either::Left(self.inner.call(req));
        }
        let presented = req
            .headers()
            .get(http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "));
        if presented.is_some_and(|p| constant_time_eq(p.as_bytes(), expected.as_bytes())) {
            futures::future::Either::Left(self.inner.call(req))
        } else {
            let status = crate::status::ApiError::new(
                tonic::Code::Unauthenticated,
                crate::status::reason::TOKEN_INVALID,
                "missing or invalid bearer token (authorization: Bearer <token>)",
            )
            .into_status();
            futures::future::Either::Right(futures::future::ready(Ok(status.into_http())))
        }
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Client side: adds the bearer token to every outgoing call.
#[derive(Clone)]
pub struct BearerToken(tonic::metadata::MetadataValue<tonic::metadata::Ascii>);

impl BearerToken {
    pub fn new(token: &str) -> Result<Self, tonic::metadata::errors::InvalidMetadataValue> {
        Ok(Self(format!("Bearer {}", token.trim()).parse()?))
    }
}

impl tonic::service::Interceptor for BearerToken {
    fn call(&mut self, mut req: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
        req.metadata_mut().insert("authorization", self.0.clone());
        Ok(req)
    }
}

/// Client side: the bearer token when one is configured, else calls go out as they are.
#[derive(Clone, Default)]
pub struct MaybeBearerToken(pub Option<BearerToken>);

impl tonic::service::Interceptor for MaybeBearerToken {
    fn call(&mut self, req: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
        match &mut self.0 {
            Some(t) => t.call(req),
            None => Ok(req),
        }
    }
}
