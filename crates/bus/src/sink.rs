//! [`EventSink`]: how a controller or request handler announces what happened
//! without waiting on the broker. Events are queued (bounded) and published in
//! order by one background task through a [`Publisher`], which retries until
//! the broker confirms. A full queue drops the event with a metric and a log:
//! a reconcile must never stall because the bus is down.

use tokio::sync::mpsc;

use crate::catalogue::Event;
use crate::envelope::Envelope;
use crate::error::BusError;
use crate::metrics::SINK_DROPPED;
use crate::publisher::Publisher;

/// Events a sink holds while the broker is slow or away.
pub const QUEUE: usize = 10_000;

/// Where a service's events go: nowhere (no bus configured) or a publishing task.
#[derive(Clone, Default)]
pub struct EventSink {
    inner: Option<(String, mpsc::Sender<Envelope>)>,
}

impl EventSink {
    /// No bus: events are dropped (the caller logs that once).
    pub fn disabled() -> Self {
        Self { inner: None }
    }

    /// Publishes through `publisher` in order; the task ends once every sink
    /// clone is dropped and what was queued is sent, then closes the publisher.
    pub fn start(publisher: Publisher) -> (Self, tokio::task::JoinHandle<()>) {
        let (tx, mut rx) = mpsc::channel::<Envelope>(QUEUE);
        let source = publisher.config().source.clone();
        let task = tokio::spawn(async move {
            while let Some(env) = rx.recv().await {
                match publisher.publish_envelope(&env).await {
                    Ok(()) => {}
                    // Nobody subscribes to this type: not an error of ours.
                    Err(e @ BusError::Unroutable { .. }) => {
                        tracing::debug!(error = %e, "event has no subscriber");
                    }
                    Err(e) => {
                        tracing::error!(event = %env.event_type, id = %env.id, error = %e, "could not publish an event");
                    }
                }
            }
            let _ = publisher.close().await;
        });
        (
            Self {
                inner: Some((source, tx)),
            },
            task,
        )
    }

    /// The sink a service runs with: publishing to `cfg` (its url, exchange
    /// and source), or disabled — logged once — when there is no bus.
    pub async fn connect(
        cfg: Option<crate::BusConfig>,
        what: &str,
    ) -> crate::Result<(Self, Option<tokio::task::JoinHandle<()>>)> {
        let Some(cfg) = cfg else {
            tracing::info!("bus.url is not set: {what} events are not published");
            return Ok((Self::disabled(), None));
        };
        let publisher = Publisher::connect(cfg).await?;
        tracing::info!(
            url = %publisher.config().redacted_url(),
            exchange = %publisher.config().exchange,
            "publishing {what} events"
        );
        let (sink, task) = Self::start(publisher);
        Ok((sink, Some(task)))
    }

    pub fn enabled(&self) -> bool {
        self.inner.is_some()
    }

    /// Queues one event; never waits.
    pub fn publish<E: Event>(&self, payload: &E) {
        let Some((source, tx)) = &self.inner else {
            return;
        };
        match Envelope::new(source, payload) {
            Ok(env) => {
                if let Err(e) = tx.try_send(env) {
                    metrics::counter!(SINK_DROPPED, "type" => E::TYPE).increment(1);
                    let why = match e {
                        mpsc::error::TrySendError::Full(_) => "queue full (broker slow or down)",
                        mpsc::error::TrySendError::Closed(_) => "publisher stopped",
                    };
                    tracing::warn!(event = E::TYPE, why, "event dropped");
                }
            }
            Err(e) => tracing::error!(event = E::TYPE, error = %e, "could not encode event"),
        }
    }
}
