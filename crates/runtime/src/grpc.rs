//! The tonic server every service runs: deadlines, per-connection concurrency
//! limits, load shedding, bearer auth and per-caller authorization as layers; the standard gRPC health
//! service (one status per served service, plus the overall `""`) and
//! reflection (`grpc.reflection.v1` and `v1alpha`, listing only what the port
//! serves) always on; TLS / mTLS when `server.tls` is set (see
//! [`crate::tls`]); a graceful drain on shutdown.

use crate::auth::BearerAuthLayer;
use crate::authz::AuthorizeLayer;
use crate::deadline::DeadlineLayer;
use crate::tls::ServerTls;
use crate::{Health, RuntimeError, ServerConfig, Shutdown};
use futures::future::Either;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tonic::body::Body;
use tonic::server::NamedService;
use tonic::transport::Server;
use tonic::transport::server::TcpIncoming;
use tonic_health::ServingStatus;

/// Service names of the standard services every port serves besides its own.
pub const HEALTH_SERVICE: &str = "grpc.health.v1.Health";
pub const REFLECTION_V1: &str = "grpc.reflection.v1.ServerReflection";
pub const REFLECTION_V1ALPHA: &str = "grpc.reflection.v1alpha.ServerReflection";

/// The gRPC services a port serves, with their names, so health and
/// reflection can speak for exactly these (a drop-in for tonic's `Routes`).
#[derive(Clone, Debug, Default)]
pub struct Routes {
    routes: tonic::service::Routes,
    names: Vec<&'static str>,
}

impl Routes {
    pub fn new<S>(svc: S) -> Self
    where
        S: tower::Service<http::Request<Body>, Error = Infallible>
            + NamedService
            + Clone
            + Send
            + Sync
            + 'static,
        S::Response: axum::response::IntoResponse,
        S::Future: Send + 'static,
    {
        Self::default().add_service(svc)
    }

    pub fn add_service<S>(mut self, svc: S) -> Self
    where
        S: tower::Service<http::Request<Body>, Error = Infallible>
            + NamedService
            + Clone
            + Send
            + Sync
            + 'static,
        S::Response: axum::response::IntoResponse,
        S::Future: Send + 'static,
    {
        self.names.push(S::NAME);
        self.routes = self.routes.add_service(svc);
        self
    }

    /// Fully-qualified names of the services added, e.g. `midplane.app.v1.AppService`.
    pub fn names(&self) -> &[&'static str] {
        &self.names
    }
}

pub async fn bind(addr: &str) -> Result<TcpListener, RuntimeError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| RuntimeError::Bind {
            what: "gRPC",
            addr: addr.to_string(),
            source,
        })
}

pub async fn serve(
    listener: TcpListener,
    config: &ServerConfig,
    routes: Routes,
    health: Health,
    shutdown: Shutdown,
) -> Result<(), RuntimeError> {
    let auth = match &config.auth_token_file {
        Some(path) => BearerAuthLayer::from_file(path)?,
        None => BearerAuthLayer::new(None),
    };
    if config.auth_token_file.is_some()
        && config.authorization.mode != crate::config::AuthorizationMode::None
    {
        return Err(RuntimeError::Authorization(
            "server.auth_token_file and server.authorization.mode: kubernetes exclude each other (callers send their own Kubernetes token)".into(),
        ));
    }
    let authorize = AuthorizeLayer::from_config(&config.authorization, routes.names()).await?;
    let tls = match &config.tls {
        Some(t) => Some(Arc::new(ServerTls::load(t)?)),
        None => None,
    };
    let (reporter, health_service) = tonic_health::server::health_reporter();
    let served: Vec<&'static str> = routes.names().to_vec();
    // Metrics inside auth: only authenticated calls reach the labels.
    let metrics_layer = crate::grpc_metrics::GrpcMetricsLayer::new(served.iter().copied().chain([
        "grpc.health.v1.Health",
        "grpc.reflection.v1.ServerReflection",
        "grpc.reflection.v1alpha.ServerReflection",
    ]));
    let reflection_v1 = reflection(&served).build_v1()?;
    let reflection_v1alpha = reflection(&served).build_v1alpha()?;

    // The overall health ("") and each served service follow the runtime's
    // readiness checks; any other name is NOT_FOUND, as the protocol says.
    let watcher = {
        let reporter = reporter.clone();
        let health = health.clone();
        let shutdown = shutdown.clone();
        tokio::spawn(async move {
            let mut last = None;
            loop {
                let ready = health.is_ready() && !shutdown.is_triggered();
                if last != Some(ready) {
                    let status = if ready {
                        ServingStatus::Serving
                    } else {
                        ServingStatus::NotServing
                    };
                    for name in std::iter::once("").chain(served.iter().copied()) {
                        reporter.set_service_status(name, status).await;
                    }
                    last = Some(ready);
                }
                if shutdown.is_triggered() {
                    break;
                }
                tokio::select! {
                    _ = shutdown.wait() => {}
                    _ = tokio::time::sleep(Duration::from_millis(500)) => {}
                }
            }
        })
    };

    let routes = routes
        .routes
        .add_service(health_service)
        .add_service(reflection_v1)
        .add_service(reflection_v1alpha);
    let grace = Duration::from_millis(config.shutdown_grace_ms);
    let stop = shutdown.clone();
    // No tonic `timeout`: the deadline layer answers DEADLINE_EXCEEDED instead
    // of CANCELLED (see crate::deadline for why it always fires first).
    let server_timeout =
        (config.request_timeout_ms > 0).then(|| Duration::from_millis(config.request_timeout_ms));
    let router = Server::builder()
        .concurrency_limit_per_connection(config.concurrency_limit_per_connection)
        .load_shed(config.load_shed)
        .layer(auth)
        .layer(metrics_layer)
        .layer(DeadlineLayer::new(server_timeout))
        .layer(authorize)
        .add_routes(routes);
    let mut reloader = None;
    let server = match tls {
        None => Either::Left(router.serve_with_incoming_shutdown(
            TcpIncoming::from(listener).with_nodelay(Some(true)),
            async move { stop.wait().await },
        )),
        Some(tls) => {
            tracing::info!(mutual = tls.mutual(), "gRPC over TLS");
            reloader = Some(tls.spawn_reloader(shutdown.clone()));
            let incoming = crate::tls::incoming(listener, tls, shutdown.clone());
            Either::Right(
                router.serve_with_incoming_shutdown(incoming, async move { stop.wait().await }),
            )
        }
    };
    tokio::pin!(server);
    let result = tokio::select! {
        r = &mut server => r,
        _ = async { shutdown.wait().await; tokio::time::sleep(grace).await } => {
            tracing::warn!(grace_ms = config.shutdown_grace_ms, "connections still open after the grace period; closing them");
            Ok(())
        }
    };
    watcher.abort();
    if let Some(r) = reloader {
        r.abort();
    }
    Ok(result?)
}

/// Reflection over Midplane's, health's and google.rpc's descriptors that
/// advertises only the services this port answers.
fn reflection(served: &[&'static str]) -> tonic_reflection::server::Builder<'static> {
    let mut builder = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(midplane_proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_types::pb::FILE_DESCRIPTOR_SET);
    for name in served
        .iter()
        .chain(&[HEALTH_SERVICE, REFLECTION_V1, REFLECTION_V1ALPHA])
    {
        builder = builder.with_service_name(*name);
    }
    builder
}
