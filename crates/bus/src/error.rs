//! Errors of the bus, one enum for every step (connect, topology, publish, consume, DLQ, docs).

use std::time::Duration;

/// Everything that can go wrong on the bus. Messages name the queue, exchange or event involved.
#[derive(Debug, thiserror::Error)]
pub enum BusError {
    #[error("invalid AMQP URL in {source_name}: {reason}")]
    InvalidUrl { source_name: String, reason: String },

    #[error("cannot connect to RabbitMQ at {url}: {source}")]
    Connect {
        url: String,
        #[source]
        source: lapin::Error,
    },

    #[error("declaring {what} `{name}` failed: {source}")]
    Topology {
        what: &'static str,
        name: String,
        #[source]
        source: lapin::Error,
    },

    #[error("AMQP channel operation `{op}` failed: {source}")]
    Channel {
        op: &'static str,
        #[source]
        source: lapin::Error,
    },

    #[error(
        "event {event_type} (id {id}) is unroutable: the broker returned it ({reply_code} {reply_text}); no queue is bound for routing key `{event_type}` on exchange `{exchange}`"
    )]
    Unroutable {
        exchange: String,
        event_type: String,
        id: String,
        reply_code: u16,
        reply_text: String,
    },

    #[error(
        "event {event_type} (id {id}) was not confirmed by the broker after {attempts} attempts in {elapsed:?}: {last_error}"
    )]
    PublishFailed {
        event_type: String,
        id: String,
        attempts: u32,
        elapsed: Duration,
        last_error: String,
    },

    #[error("serializing event {event_type}: {source}")]
    Encode {
        event_type: String,
        #[source]
        source: serde_json::Error,
    },

    #[error("message is not a CloudEvents 1.0 structured JSON event: {reason}")]
    MalformedEvent { reason: String },

    #[error("event {id} has type `{actual}`, expected `{expected}`")]
    WrongEventType {
        id: String,
        expected: String,
        actual: String,
    },

    #[error(
        "event {id} of type {event_type}: field `data` does not match the payload type: {source}"
    )]
    DecodeData {
        id: String,
        event_type: String,
        #[source]
        source: serde_json::Error,
    },

    #[error("invalid subscriber configuration `{name}`: {reason}")]
    SubscriberConfig { name: String, reason: String },

    #[error(
        "subscriber `{subscriber}` has no dead-letter queue `{queue}` on the broker (never started?)"
    )]
    NoSuchDlq { subscriber: String, queue: String },

    #[error("subscriber `{subscriber}` task failed: {reason}")]
    SubscriberTask { subscriber: String, reason: String },

    #[error("writing output: {0}")]
    Output(#[from] std::io::Error),

    #[error("generating the event catalogue: {0}")]
    Catalogue(String),
}

pub type Result<T, E = BusError> = std::result::Result<T, E>;
