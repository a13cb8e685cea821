//! The admin HTTP port: `/metrics` (Prometheus text), `/livez`, `/readyz`.

use crate::{Health, RuntimeError, Shutdown};
use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use metrics_exporter_prometheus::PrometheusHandle;
use tokio::net::TcpListener;

pub async fn bind(addr: &str) -> Result<TcpListener, RuntimeError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| RuntimeError::Bind {
            what: "admin",
            addr: addr.to_string(),
            source,
        })
}

#[derive(Clone)]
struct AdminState {
    health: Health,
    metrics: PrometheusHandle,
    shutdown: Shutdown,
}

pub fn router(health: Health, metrics: PrometheusHandle, shutdown: Shutdown) -> Router {
    Router::new()
        .route("/metrics", get(metrics_text))
        .route("/livez", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .with_state(AdminState {
            health,
            metrics,
            shutdown,
        })
}

pub async fn serve(
    listener: TcpListener,
    health: Health,
    metrics: PrometheusHandle,
    shutdown: Shutdown,
) -> std::io::Result<()> {
    let stop = shutdown.clone();
    axum::serve(listener, router(health, metrics, shutdown))
        .with_graceful_shutdown(async move { stop.wait().await })
        .await
}

async fn metrics_text(State(state): State<AdminState>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        state.metrics.render(),
    )
}

async fn readyz(State(state): State<AdminState>) -> impl IntoResponse {
    // A service that is shutting down stops taking new traffic first.
    let ready = state.health.is_ready() && !state.shutdown.is_triggered();
    let mut body = String::new();
    for (name, check) in state.health.checks() {
        let mark = if check.ready { "ok" } else { "not ready" };
        body.push_str(&format!("{name}: {mark} {}\n", check.message));
    }
    if state.shutdown.is_triggered() {
        body.push_str("shutting down\n");
    }
    let code = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (code, body)
}
