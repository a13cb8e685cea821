//! Connecting with jittered exponential back-off, and the exchange every event goes through.

use std::time::Duration;

use lapin::options::ExchangeDeclareOptions;
use lapin::types::FieldTable;
use lapin::{Channel, Connection, ConnectionProperties, ExchangeKind};
use tokio_util::sync::CancellationToken;

use crate::config::BusConfig;
use crate::error::{BusError, Result};

/// One connection attempt.
pub(crate) async fn connect(cfg: &BusConfig, name: &str) -> Result<Connection> {
    let props = ConnectionProperties::default().with_connection_name(name.to_owned().into());
    Connection::connect(&cfg.url, props)
        .await
        .map_err(|source| BusError::Connect {
            url: cfg.redacted_url(),
            source,
        })
}

/// Full-jitter exponential back-off: uniform in [initial/2, min(max, initial * 2^attempt)].
/// Jitter keeps many clients from hammering a restarted broker in lockstep.
pub(crate) fn backoff(attempt: u32, initial: Duration, max: Duration) -> Duration {
    let exp = initial.saturating_mul(1u32 << attempt.min(16));
    let ceiling = exp.min(max).max(initial);
    let floor = initial / 2;
    let span = ceiling.saturating_sub(floor).as_millis() as u64;
    floor + Duration::from_millis(rand::random_range(0..=span))
}

/// Keeps trying until connected or cancelled (then `None`).
pub(crate) async fn connect_until(
    cfg: &BusConfig,
    name: &str,
    cancel: &CancellationToken,
) -> Option<Connection> {
    let mut attempt = 0;
    loop {
        match connect(cfg, name).await {
            Ok(conn) => return Some(conn),
            Err(err) => {
                let delay = backoff(attempt, cfg.reconnect_initial, cfg.reconnect_max);
                tracing::warn!(connection = name, error = %err, ?delay, "broker unreachable, retrying");
                attempt += 1;
                tokio::select! {
                    _ = cancel.cancelled() => return None,
                    _ = tokio::time::sleep(delay) => {}
                }
            }
        }
    }
}

/// Declares the durable topic exchange (idempotent).
pub(crate) async fn declare_exchange(channel: &Channel, exchange: &str) -> Result<()> {
    channel
        .exchange_declare(
            exchange.into(),
            ExchangeKind::Topic,
            ExchangeDeclareOptions {
                durable: true,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await
        .map_err(|source| BusError::Topology {
            what: "exchange",
            name: exchange.to_owned(),
            source,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_stays_within_bounds_and_grows() {
        let init = Duration::from_millis(100);
        let max = Duration::from_secs(5);
        for attempt in 0..30 {
            let d = backoff(attempt, init, max);
            assert!(d >= init / 2, "attempt {attempt}: {d:?} below floor");
            assert!(d <= max, "attempt {attempt}: {d:?} above cap");
        }
        // Late attempts can reach far beyond the first delay's ceiling.
        let late_max = (0..200)
            .map(|_| backoff(10, init, max))
            .max()
            .unwrap_or_default();
        assert!(late_max > Duration::from_secs(1), "no growth: {late_max:?}");
    }
}
