//! Shared helpers for tests against the real broker.
#![allow(dead_code)]

use std::future::Future;
use std::time::{Duration, Instant};

use midplane_bus::BusConfig;
use midplane_bus::config::{AMQP_URL_ENV, DEFAULT_AMQP_URL};

/// A bus on its own exchange, so tests run in parallel without seeing each other's events.
/// Fails (never skips) when the broker is down, naming the script that starts it.
pub async fn test_bus(tag: &str) -> BusConfig {
    let url = std::env::var(AMQP_URL_ENV).unwrap_or_else(|_| DEFAULT_AMQP_URL.to_owned());
    let suffix = uuid::Uuid::new_v4().simple().to_string();
    let bus = BusConfig {
        url,
        exchange: format!("midplane.test.{tag}.{}", &suffix[..10]),
        source: format!("/midplane/test/{tag}"),
        ..BusConfig::default()
    };
    if let Err(e) = midplane_bus::topology::queue_depth(&bus, "amq.nonexistent-probe").await {
        panic!(
            "RabbitMQ is not reachable at {} ({e}); start it with scripts/services/rabbitmq.sh \
             or point {AMQP_URL_ENV} at a broker",
            bus.redacted_url()
        );
    }
    bus
}

/// Polls `check` until it returns true or `timeout` passes; panics with `what` on timeout.
pub async fn eventually<F, Fut>(what: &str, timeout: Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let start = Instant::now();
    while !check().await {
        assert!(
            start.elapsed() < timeout,
            "timed out after {timeout:?} waiting for: {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

pub fn plugin_event(plugin: &str, n: usize) -> midplane_bus::catalogue::PluginUpdated {
    midplane_bus::catalogue::PluginUpdated {
        plugin: plugin.to_owned(),
        plugin_version: format!("0.1.{n}"),
        plugin_hash: format!("sha256:{n:064x}"),
        previous_plugin_hash: None,
        config_map: midplane_bus::catalogue::ObjectRef::new(
            "midplane-system",
            &format!("plugin-{plugin}"),
        ),
    }
}

/// Force-closes (broker side) every connection whose client-provided name contains `needle`,
/// as a network cut or an operator's `close_connection` would. Returns how many were closed.
pub fn kill_connections(needle: &str) -> usize {
    let out = std::process::Command::new("rabbitmqctl")
        .args(["-s", "list_connections", "pid", "client_properties"])
        .output()
        .expect("rabbitmqctl not found: run scripts/services/rabbitmq.sh");
    assert!(
        out.status.success(),
        "rabbitmqctl list_connections: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut closed = 0;
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        if !line.contains(needle) {
            continue;
        }
        let pid = line.split_whitespace().next().expect("pid column");
        let st = std::process::Command::new("rabbitmqctl")
            .args(["-q", "close_connection", pid, "killed by test"])
            .status()
            .expect("rabbitmqctl close_connection");
        assert!(st.success(), "close_connection {pid} failed");
        closed += 1;
    }
    closed
}
