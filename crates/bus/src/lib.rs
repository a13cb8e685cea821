//! Midplane event bus: CloudEvents 1.0 (structured JSON) over one durable RabbitMQ topic
//! exchange, routing key = event type.
//!
//! - [`Publisher`]: publisher confirms + `mandatory`; retried until confirmed, never dropped.
//! - [`EventSink`]: queue-and-forget publishing for controllers, in order, through one task.
//! - [`Subscriber`]: durable quorum queue per subscriber, manual ack after the handler succeeds,
//!   delay-queue retries, a dead-letter queue ([`dlq`]), event-id dedup, reconnect, drain.
//! - [`catalogue`]: every event type of the platform; [`docs`] renders the catalogue documents.
//! - [`cli`]: `midplane events tail` and `midplane events dlq list|replay`.
//!
//! ```no_run
//! use midplane_bus::catalogue::{ObjectRef, PluginUpdated};
//! use midplane_bus::{BusConfig, HandlerError, Publisher, Received, Subscriber, SubscriberConfig};
//!
//! # async fn demo() -> midplane_bus::Result<()> {
//! let bus = BusConfig::from_env()?.with_source("/midplane/group-svc");
//! // group-svc: re-render every Group that uses an updated plugin.
//! let sub = Subscriber::start(
//!     &bus,
//!     SubscriberConfig::new("group-svc", &["midplane.plugin.updated"]),
//!     |r: Received| async move {
//!         let updated: PluginUpdated = r.event.decode()?;
//!         println!("re-render groups using {} {}", updated.plugin, updated.plugin_hash);
//!         Ok::<(), HandlerError>(())
//!     },
//! )
//! .await?;
//! // plugin-svc: publish once the new version validated; returns after the broker confirmed.
//! let publisher = Publisher::connect(bus.clone().with_source("/midplane/plugin-svc")).await?;
//! publisher
//!     .publish(&PluginUpdated {
//!         plugin: "redis".into(),
//!         plugin_version: "0.1.1".into(),
//!         plugin_hash: "sha256:…".into(),
//!         previous_plugin_hash: None,
//!         config_map: ObjectRef::new("midplane-system", "plugin-redis"),
//!     })
//!     .await?;
//! sub.shutdown().await?; // drains running handlers
//! # Ok(())
//! # }
//! ```

mod acks;
pub mod catalogue;
pub mod cli;
pub mod config;
mod connection;
pub mod dedup;
mod delivery;
pub mod dlq;
pub mod docs;
pub mod envelope;
pub mod error;
mod handler;
pub mod metrics;
pub mod publisher;
pub mod sink;
pub mod subscriber;
pub mod topology;

pub use catalogue::{Event, EventSpec, catalogue};
pub use config::BusConfig;
pub use dedup::DedupWindow;
pub use envelope::Envelope;
pub use error::{BusError, Result};
pub use publisher::Publisher;
pub use sink::EventSink;
pub use subscriber::{
    Handler, HandlerError, Received, Subscriber, SubscriberConfig, SubscriberStats,
};
