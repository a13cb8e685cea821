//! Queue names and declarations of a subscriber:
//!
//! ```text
//! exchange ──(binding patterns)──► <exchange>.<subscriber>            quorum, durable
//!                                     │ handler fails, attempt n
//!                                     ▼
//!                                  <exchange>.<subscriber>.retry.<ms>ms   quorum, TTL <ms>, dead-letters
//!                                     │                                  back (at-least-once)
//!                                     ▼ after max attempts
//!                                  <exchange>.<subscriber>.dlq         quorum, durable
//! ```
//! Delay queues carry the TTL in their name because RabbitMQ refuses to redeclare a queue with
//! other arguments; a changed back-off gets new queues instead of a PRECONDITION_FAILED.

use std::time::Duration;

use lapin::Channel;
use lapin::options::{QueueBindOptions, QueueDeclareOptions};
use lapin::types::{AMQPValue, FieldTable};

use crate::error::{BusError, Result};

/// Header carrying how many times the event was handled and failed before this delivery.
pub const ATTEMPT_HEADER: &str = "x-midplane-attempt";
/// Header with the last handler error (on retries and dead letters).
pub const ERROR_HEADER: &str = "x-midplane-error";
/// Header with the event's original routing key (retries arrive by queue name).
pub const ROUTING_KEY_HEADER: &str = "x-midplane-routing-key";
/// Header with the RFC 3339 time the event was dead-lettered.
pub const FAILED_AT_HEADER: &str = "x-midplane-failed-at";

/// Broker-side safety net: a message redelivered this often without ack or reject (a handler
/// crash-looping the process) is dead-lettered by RabbitMQ itself.
pub const DELIVERY_LIMIT: i64 = 50;

/// Durable main queue of a subscriber.
pub fn queue_name(exchange: &str, subscriber: &str) -> String {
    format!("{exchange}.{subscriber}")
}

/// Dead-letter queue of a subscriber.
pub fn dlq_name(exchange: &str, subscriber: &str) -> String {
    format!("{exchange}.{subscriber}.dlq")
}

/// Delay queue for one back-off step.
pub fn retry_queue_name(exchange: &str, subscriber: &str, delay: Duration) -> String {
    format!("{exchange}.{subscriber}.retry.{}ms", delay.as_millis())
}

/// Subscriber names become queue names: keep them short and plain.
pub fn validate_subscriber_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 120
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if ok {
        Ok(())
    } else {
        Err(BusError::SubscriberConfig {
            name: name.to_owned(),
            reason: "subscriber name must be 1-120 characters of [A-Za-z0-9._-]".to_owned(),
        })
    }
}

/// The queues of one subscriber.
#[derive(Clone, Debug)]
pub struct SubscriberQueues {
    pub main: String,
    pub dlq: String,
    /// (delay, queue) per back-off step, in order.
    pub retries: Vec<(Duration, String)>,
}

impl SubscriberQueues {
    pub fn new(exchange: &str, subscriber: &str, delays: &[Duration]) -> Self {
        Self {
            main: queue_name(exchange, subscriber),
            dlq: dlq_name(exchange, subscriber),
            retries: delays
                .iter()
                .map(|d| (*d, retry_queue_name(exchange, subscriber, *d)))
                .collect(),
        }
    }

    /// Delay queue for the retry after failed attempt number `failed` (1-based).
    pub fn retry_for(&self, failed: u32) -> Option<&str> {
        let idx = (failed.saturating_sub(1) as usize).min(self.retries.len().checked_sub(1)?);
        self.retries.get(idx).map(|(_, q)| q.as_str())
    }
}

fn quorum_args() -> FieldTable {
    let mut args = FieldTable::default();
    args.insert(
        "x-queue-type".into(),
        AMQPValue::LongString("quorum".into()),
    );
    args
}

/// Quorum queue arguments that dead-letter to `target` (by name, through the default exchange)
/// with the at-least-once strategy (RabbitMQ 3.10+, needs `reject-publish` overflow).
fn at_least_once_dead_letter(target: &str) -> FieldTable {
    let mut args = quorum_args();
    args.insert(
        "x-dead-letter-exchange".into(),
        AMQPValue::LongString("".into()),
    );
    args.insert(
        "x-dead-letter-routing-key".into(),
        AMQPValue::LongString(target.into()),
    );
    args.insert(
        "x-dead-letter-strategy".into(),
        AMQPValue::LongString("at-least-once".into()),
    );
    args.insert(
        "x-overflow".into(),
        AMQPValue::LongString("reject-publish".into()),
    );
    args
}

async fn declare(channel: &Channel, name: &str, args: FieldTable) -> Result<()> {
    channel
        .queue_declare(
            name.into(),
            QueueDeclareOptions {
                durable: true,
                ..Default::default()
            },
            args,
        )
        .await
        .map(|_| ())
        .map_err(|source| BusError::Topology {
            what: "queue",
            name: name.to_owned(),
            source,
        })
}

/// Declares (idempotently) every queue of a subscriber and binds the main queue.
pub(crate) async fn declare_subscriber(
    channel: &Channel,
    exchange: &str,
    queues: &SubscriberQueues,
    bindings: &[String],
) -> Result<()> {
    declare(channel, &queues.dlq, quorum_args()).await?;

    // Dead-lettering inside the broker (delivery limit, retry TTL expiry) is at-least-once:
    // RabbitMQ keeps the message in the source queue until the target queue confirmed it.
    let mut main_args = at_least_once_dead_letter(&queues.dlq);
    main_args.insert(
        "x-delivery-limit".into(),
        AMQPValue::LongLongInt(DELIVERY_LIMIT),
    );
    declare(channel, &queues.main, main_args).await?;

    for (delay, name) in &queues.retries {
        // Expiry at the head of a queue whose every message has the same TTL makes it a delay line.
        let mut args = at_least_once_dead_letter(&queues.main);
        args.insert(
            "x-message-ttl".into(),
            AMQPValue::LongLongInt(i64::try_from(delay.as_millis()).unwrap_or(i64::MAX)),
        );
        declare(channel, name, args).await?;
    }

    for pattern in bindings {
        channel
            .queue_bind(
                queues.main.as_str().into(),
                exchange.into(),
                pattern.as_str().into(),
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await
            .map_err(|source| BusError::Topology {
                what: "binding",
                name: format!("{} -> {} ({pattern})", exchange, queues.main),
                source,
            })?;
    }
    Ok(())
}

/// Deletes a subscriber's queues (main, delay, DLQ), e.g. when a consumer is retired. Events
/// still queued there are lost, so this is an explicit operator action.
pub async fn delete_subscriber(
    bus: &crate::config::BusConfig,
    queues: &SubscriberQueues,
) -> Result<()> {
    let connection = crate::connection::connect(bus, "midplane-admin").await?;
    let channel = connection
        .create_channel()
        .await
        .map_err(|source| BusError::Channel {
            op: "channel.open",
            source,
        })?;
    let names = std::iter::once(&queues.main)
        .chain(std::iter::once(&queues.dlq))
        .chain(queues.retries.iter().map(|(_, q)| q));
    for name in names {
        channel
            .queue_delete(
                name.as_str().into(),
                lapin::options::QueueDeleteOptions::default(),
            )
            .await
            .map_err(|source| BusError::Topology {
                what: "queue deletion",
                name: name.clone(),
                source,
            })?;
    }
    let _ = connection.close(200, "done".into()).await;
    Ok(())
}

/// Ready (not in-flight) messages in a queue; `None` if it does not exist.
pub async fn queue_depth(bus: &crate::config::BusConfig, queue: &str) -> Result<Option<u32>> {
    let connection = crate::connection::connect(bus, "midplane-admin").await?;
    let channel = connection
        .create_channel()
        .await
        .map_err(|source| BusError::Channel {
            op: "channel.open",
            source,
        })?;
    let depth = channel
        .queue_declare(
            queue.into(),
            QueueDeclareOptions::default().passive(),
            FieldTable::default(),
        )
        .await
        .ok()
        .map(|q| q.message_count());
    let _ = connection.close(200, "done".into()).await;
    Ok(depth)
}

/// Deletes an exchange (test and operator clean-up).
pub async fn delete_exchange(bus: &crate::config::BusConfig) -> Result<()> {
    let connection = crate::connection::connect(bus, "midplane-admin").await?;
    let channel = connection
        .create_channel()
        .await
        .map_err(|source| BusError::Channel {
            op: "channel.open",
            source,
        })?;
    channel
        .exchange_delete(
            bus.exchange.as_str().into(),
            lapin::options::ExchangeDeleteOptions::default(),
        )
        .await
        .map_err(|source| BusError::Topology {
            what: "exchange deletion",
            name: bus.exchange.clone(),
            source,
        })?;
    let _ = connection.close(200, "done".into()).await;
    Ok(())
}

/// Reads an integer header whatever integer width the sender used.
pub(crate) fn header_u32(headers: Option<&FieldTable>, key: &str) -> Option<u32> {
    let value = headers?.inner().get(key)?;
    let n: i64 = match value {
        AMQPValue::ShortShortInt(v) => (*v).into(),
        AMQPValue::ShortShortUInt(v) => (*v).into(),
        AMQPValue::ShortInt(v) => (*v).into(),
        AMQPValue::ShortUInt(v) => (*v).into(),
        AMQPValue::LongInt(v) => (*v).into(),
        AMQPValue::LongUInt(v) => (*v).into(),
        AMQPValue::LongLongInt(v) => *v,
        _ => return None,
    };
    u32::try_from(n).ok()
}

/// Reads a string header (long or short string).
pub(crate) fn header_str(headers: Option<&FieldTable>, key: &str) -> Option<String> {
    match headers?.inner().get(key)? {
        AMQPValue::LongString(s) => Some(String::from_utf8_lossy(s.as_bytes()).into_owned()),
        AMQPValue::ShortString(s) => Some(s.as_str().to_owned()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_queue_choice_clamps_to_last_step() {
        let q = SubscriberQueues::new(
            "ex",
            "s",
            &[Duration::from_millis(100), Duration::from_secs(1)],
        );
        assert_eq!(q.retry_for(1), Some("ex.s.retry.100ms"));
        assert_eq!(q.retry_for(2), Some("ex.s.retry.1000ms"));
        assert_eq!(q.retry_for(7), Some("ex.s.retry.1000ms"));
        let none = SubscriberQueues::new("ex", "s", &[]);
        assert_eq!(none.retry_for(1), None);
    }

    #[test]
    fn subscriber_names_are_checked() {
        assert!(validate_subscriber_name("group-svc").is_ok());
        assert!(validate_subscriber_name("").is_err());
        assert!(validate_subscriber_name("a b").is_err());
        assert!(validate_subscriber_name("x#").is_err());
    }
}
