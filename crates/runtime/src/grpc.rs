//! The tonic server every service runs: deadlines, per-connection concurrency
//! limits, load shedding and bearer auth as layers; the standard gRPC health
//! service and reflection always on; TLS / mTLS when `server.tls` is set
//! (see [`crate::tls`]); a graceful drain on shutdown.

use crate::auth::BearerAuthLayer;
use crate::tls::ServerTls;
use crate::{Health, RuntimeError, ServerConfig, Shutdown};
use futures::future::Either;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tonic::transport::Server;
use tonic::transport::server::TcpIncoming;
use tonic_health::ServingStatus;

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
    routes: tonic::service::Routes,
    health: Health,
    shutdown: Shutdown,
) -> Result<(), RuntimeError> {
    let auth = match &config.auth_token_file {
        Some(path) => BearerAuthLayer::from_file(path)?,
        None => BearerAuthLayer::new(None),
    };
    let tls = match &config.tls {
        Some(t) => Some(Arc::new(ServerTls::load(t)?)),
        None => None,
    };
    let (reporter, health_service) = tonic_health::server::health_reporter();
    let reflection = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(midplane_proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1()?;

    // The overall health ("" service) follows the runtime's readiness checks.
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
                    reporter.set_service_status("", status).await;
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

    let routes = routes.add_service(health_service).add_service(reflection);
    let grace = Duration::from_millis(config.shutdown_grace_ms);
    let stop = shutdown.clone();
    let router = Server::builder()
        .timeout(Duration::from_millis(config.request_timeout_ms))
        .concurrency_limit_per_connection(config.concurrency_limit_per_connection)
        .load_shed(config.load_shed)
        .layer(auth)
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
