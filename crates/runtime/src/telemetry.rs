//! Tracing and the Prometheus metrics recorder.

use crate::RuntimeError;
use crate::config::{LogConfig, LogFormat};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use tracing_subscriber::EnvFilter;

/// lapin logs every message the broker returns at WARN with the whole body as
/// a byte array; the bus reports an unroutable event itself (type, id,
/// exchange), so only lapin's errors pass from that module.
pub const QUIET_RETURNS: &str = "lapin::returned_messages=error";

pub fn init_tracing(log: &LogConfig) -> Result<(), RuntimeError> {
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(&log.level))
        .map_err(|e| RuntimeError::Tracing(format!("log level {:?}: {e}", log.level)))?
        .add_directive(
            QUIET_RETURNS
                .parse()
                .map_err(|e| RuntimeError::Tracing(format!("directive {QUIET_RETURNS}: {e}")))?,
        );
    use std::io::IsTerminal;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    let result = match log.format {
        LogFormat::Json => builder.json().try_init(),
        LogFormat::Text => builder.try_init(),
    };
    result.map_err(|e| RuntimeError::Tracing(e.to_string()))
}

/// Installs the global recorder; `/metrics` renders from the returned handle.
/// Histogram buckets, in seconds, from 1 ms to 10 s.
pub const SECONDS_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

pub fn install_metrics_recorder(service: &'static str) -> Result<PrometheusHandle, RuntimeError> {
    let handle = PrometheusBuilder::new()
        .add_global_label("service", service)
        // Every histogram here measures seconds; buckets (not the default
        // summaries) let dashboards aggregate latency across replicas.
        .set_buckets(SECONDS_BUCKETS)
        .map_err(|e| RuntimeError::Metrics(e.to_string()))?
        .install_recorder()
        .map_err(|e| RuntimeError::Metrics(e.to_string()))?;
    metrics::describe_gauge!(
        "midplane_build_info",
        "Always 1; labels carry the build's version"
    );
    metrics::gauge!("midplane_build_info", "version" => env!("CARGO_PKG_VERSION")).set(1.0);
    crate::grpc_metrics::describe();
    Ok(handle)
}
