//! The one runtime every Midplane binary is built on: configuration (file, then
//! `MIDPLANE_*` environment), tracing, Prometheus metrics, liveness/readiness,
//! graceful shutdown on SIGTERM, and the tonic server wiring (deadlines,
//! concurrency limits, load shedding, bearer-token auth, per-caller authorization
//! through Kubernetes RBAC, TLS/mTLS with certificate rotation, health, reflection).
//!
//! A service's `main.rs` reads its config with [`config::load`], calls
//! [`Service::init`], builds its gRPC services and hands them to
//! [`Service::serve`]; background loops watch [`Service::shutdown`].

pub mod admin;
pub mod auth;
pub mod authz;
pub mod cert_expiry;
pub mod config;
pub mod deadline;
pub mod grpc;
pub mod grpc_metrics;
pub mod health;
pub mod shutdown;
pub mod status;
pub mod telemetry;
#[cfg(feature = "testing")]
pub mod testing;
pub mod tls;

pub use config::{AuthorizationConfig, AuthorizationMode, ServerConfig, TlsConfig, load};
pub use grpc::Routes;
pub use health::Health;
pub use shutdown::Shutdown;
pub use status::ApiError;

use metrics_exporter_prometheus::PrometheusHandle;
use std::net::SocketAddr;

/// Failures of the runtime itself (not of a service's logic).
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error("configuration: {0}")]
    Config(#[from] ::config::ConfigError),
    #[error("tracing: {0}")]
    Tracing(String),
    #[error("metrics recorder: {0}")]
    Metrics(String),
    #[error("{what} address {addr:?}: {source}")]
    Bind {
        what: &'static str,
        addr: String,
        source: std::io::Error,
    },
    #[error("gRPC server: {0}")]
    Grpc(#[from] tonic::transport::Error),
    #[error("gRPC reflection: {0}")]
    Reflection(#[from] tonic_reflection::server::Error),
    #[error(transparent)]
    Tls(#[from] tls::TlsError),
    #[error("authorization: {0}")]
    Authorization(String),
    #[error("auth token file {path}: {source}")]
    AuthToken {
        path: String,
        source: std::io::Error,
    },
}

/// A running service: its name, config, health, metrics and shutdown signal.
pub struct Service {
    name: &'static str,
    config: ServerConfig,
    health: Health,
    shutdown: Shutdown,
    metrics: PrometheusHandle,
}

impl Service {
    /// Sets up tracing, the metrics recorder and the signal handlers.
    /// Call once per process, inside the tokio runtime.
    pub fn init(name: &'static str, config: ServerConfig) -> Result<Self, RuntimeError> {
        telemetry::init_tracing(&config.log)?;
        let metrics = telemetry::install_metrics_recorder(name)?;
        let shutdown = Shutdown::new();
        shutdown.listen_for_signals();
        tracing::info!(
            service = name,
            version = env!("CARGO_PKG_VERSION"),
            "starting"
        );
        for warning in config::take_warnings() {
            tracing::warn!(service = name, "configuration: {warning}");
        }
        Ok(Self {
            name,
            config,
            health: Health::new(),
            shutdown,
            metrics,
        })
    }

    /// Like [`Service::init`] but without global tracing/metrics/signals, for tests
    /// that run several services in one process.
    pub fn for_test(name: &'static str, config: ServerConfig) -> Self {
        let recorder = metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder();
        Self {
            name,
            config,
            health: Health::new(),
            shutdown: Shutdown::new(),
            metrics: recorder.handle(),
        }
    }

    pub fn name(&self) -> &'static str {
        self.name
    }
    pub fn config(&self) -> &ServerConfig {
        &self.config
    }
    pub fn health(&self) -> Health {
        self.health.clone()
    }
    pub fn shutdown(&self) -> Shutdown {
        self.shutdown.clone()
    }
    pub fn metrics(&self) -> PrometheusHandle {
        self.metrics.clone()
    }

    /// Serves the admin HTTP endpoints and the given gRPC routes (plus health
    /// and reflection) until shutdown, then drains in-flight calls.
    pub async fn serve(self, routes: Routes) -> Result<(), RuntimeError> {
        let admin = admin::bind(&self.config.admin_addr).await?;
        let grpc = grpc::bind(&self.config.grpc_addr).await?;
        self.serve_on(admin, grpc, routes).await
    }

    /// [`Service::serve`] on listeners the caller bound (tests bind port 0).
    pub async fn serve_on(
        self,
        admin_listener: tokio::net::TcpListener,
        grpc_listener: tokio::net::TcpListener,
        routes: Routes,
    ) -> Result<(), RuntimeError> {
        let admin_addr = local(&admin_listener);
        let grpc_addr = local(&grpc_listener);
        tracing::info!(service = self.name, %admin_addr, %grpc_addr, "serving");
        let admin_task = tokio::spawn(admin::serve(
            admin_listener,
            self.health.clone(),
            self.metrics.clone(),
            self.shutdown.clone(),
        ));
        let result = grpc::serve(
            grpc_listener,
            &self.config,
            routes,
            self.health.clone(),
            self.shutdown.clone(),
        )
        .await;
        self.shutdown.trigger();
        let _ = admin_task.await;
        tracing::info!(service = self.name, "stopped");
        result
    }
}

fn local(listener: &tokio::net::TcpListener) -> SocketAddr {
    listener
        .local_addr()
        .unwrap_or_else(|_| SocketAddr::from(([0, 0, 0, 0], 0)))
}
