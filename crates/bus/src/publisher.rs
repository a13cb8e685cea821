//! Publishing with publisher confirms and `mandatory`: a publish returns only once the broker has
//! stored the event in every bound queue, or with an error the caller sees. Unconfirmed publishes
//! (nack, timeout, lost connection) are retried with the same event id until `publish_timeout`;
//! subscribers drop the resulting duplicates by id.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Instant;

use lapin::options::{BasicPublishOptions, ConfirmSelectOptions};
use lapin::{BasicProperties, Channel, Confirmation, Connection};

use crate::catalogue::Event;
use crate::config::BusConfig;
use crate::connection::{backoff, connect, declare_exchange};
use crate::envelope::Envelope;
use crate::error::{BusError, Result};
use crate::metrics as m;

/// Publishes events to the bus. Cheap to clone; concurrent publishes share one confirm channel
/// and are pipelined.
#[derive(Clone)]
pub struct Publisher {
    inner: Arc<Inner>,
}

struct Inner {
    cfg: BusConfig,
    name: String,
    live: RwLock<Option<Live>>,
    reconnect: tokio::sync::Mutex<()>,
    epoch: AtomicU64,
}

#[derive(Clone)]
struct Live {
    connection: Arc<Connection>,
    channel: Channel,
    epoch: u64,
}

enum AttemptError {
    Returned {
        code: u16,
        text: String,
    },
    Retry {
        error: String,
        stale_epoch: Option<u64>,
    },
}

impl std::fmt::Debug for Publisher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Publisher")
            .field("exchange", &self.inner.cfg.exchange)
            .field("source", &self.inner.cfg.source)
            .finish()
    }
}

impl Publisher {
    /// Connects and declares the exchange, so configuration errors surface here.
    pub async fn connect(cfg: BusConfig) -> Result<Self> {
        cfg.validate()?;
        let name = format!("midplane-publisher {}", cfg.source);
        let publisher = Self {
            inner: Arc::new(Inner {
                cfg,
                name,
                live: RwLock::new(None),
                reconnect: tokio::sync::Mutex::new(()),
                epoch: AtomicU64::new(0),
            }),
        };
        publisher.live().await?;
        Ok(publisher)
    }

    /// The settings this publisher uses.
    pub fn config(&self) -> &BusConfig {
        &self.inner.cfg
    }

    /// Publishes a typed event and returns its envelope (with the id subscribers will see).
    pub async fn publish<E: Event>(&self, payload: &E) -> Result<Envelope> {
        let envelope = Envelope::new(&self.inner.cfg.source, payload)?;
        self.publish_envelope(&envelope).await?;
        Ok(envelope)
    }

    /// Publishes a prepared envelope; routing key = its type. Retries until confirmed or the
    /// publish timeout passes; an unroutable event fails at once with [`BusError::Unroutable`].
    pub async fn publish_envelope(&self, envelope: &Envelope) -> Result<()> {
        let body = envelope.to_bytes()?;
        let props = envelope.amqp_properties();
        let event_type = envelope.event_type.clone();
        let started = Instant::now();
        let mut attempt = 0u32;
        metrics::counter!(m::PUBLISHED, "type" => event_type.clone()).increment(1);
        m::init_event_type(&event_type);
        loop {
            attempt += 1;
            match self.try_publish(&event_type, &body, props.clone()).await {
                Ok(()) => {
                    metrics::counter!(m::CONFIRMED, "type" => event_type).increment(1);
                    return Ok(());
                }
                Err(AttemptError::Returned { code, text }) => {
                    metrics::counter!(m::RETURNED, "type" => event_type.clone()).increment(1);
                    return Err(BusError::Unroutable {
                        exchange: self.inner.cfg.exchange.clone(),
                        event_type,
                        id: envelope.id.clone(),
                        reply_code: code,
                        reply_text: text,
                    });
                }
                Err(AttemptError::Retry { error, stale_epoch }) => {
                    if let Some(epoch) = stale_epoch {
                        self.invalidate(epoch);
                    }
                    let elapsed = started.elapsed();
                    if elapsed >= self.inner.cfg.publish_timeout {
                        metrics::counter!(m::PUBLISH_FAILED, "type" => event_type.clone())
                            .increment(1);
                        return Err(BusError::PublishFailed {
                            event_type,
                            id: envelope.id.clone(),
                            attempts: attempt,
                            elapsed,
                            last_error: error,
                        });
                    }
                    metrics::counter!(m::PUBLISH_RETRIED, "type" => event_type.clone())
                        .increment(1);
                    tracing::debug!(id = %envelope.id, %error, attempt, "publish not confirmed, retrying");
                    let cfg = &self.inner.cfg;
                    tokio::time::sleep(backoff(
                        attempt - 1,
                        cfg.reconnect_initial,
                        cfg.reconnect_max,
                    ))
                    .await;
                }
            }
        }
    }

    async fn try_publish(
        &self,
        routing_key: &str,
        body: &[u8],
        props: BasicProperties,
    ) -> std::result::Result<(), AttemptError> {
        let live = self.live().await.map_err(|e| AttemptError::Retry {
            error: e.to_string(),
            stale_epoch: None,
        })?;
        let stale = |error: String| AttemptError::Retry {
            error,
            stale_epoch: Some(live.epoch),
        };
        let confirm = live
            .channel
            .basic_publish(
                self.inner.cfg.exchange.as_str().into(),
                routing_key.into(),
                BasicPublishOptions {
                    mandatory: true,
                    ..Default::default()
                },
                body,
                props,
            )
            .await
            .map_err(|e| stale(format!("basic.publish: {e}")))?;
        let confirmation = tokio::time::timeout(self.inner.cfg.confirm_timeout, confirm)
            .await
            .map_err(|_| {
                stale(format!(
                    "no confirm within {:?}",
                    self.inner.cfg.confirm_timeout
                ))
            })?
            .map_err(|e| stale(format!("confirm: {e}")))?;
        match confirmation {
            Confirmation::Ack(None) => Ok(()),
            Confirmation::Ack(Some(ret)) | Confirmation::Nack(Some(ret)) => {
                Err(AttemptError::Returned {
                    code: ret.reply_code,
                    text: ret.reply_text.to_string(),
                })
            }
            // A nack means the broker could not store it (e.g. a queue leader moved): retry.
            Confirmation::Nack(None) => Err(AttemptError::Retry {
                error: "broker nacked the publish".to_owned(),
                stale_epoch: None,
            }),
            Confirmation::NotRequested => Err(stale("channel lost confirm mode".to_owned())),
        }
    }

    /// The current channel, connecting (once, for all waiting callers) if there is none.
    async fn live(&self) -> Result<Live> {
        if let Some(live) = self.current() {
            return Ok(live);
        }
        let _guard = self.inner.reconnect.lock().await;
        if let Some(live) = self.current() {
            return Ok(live);
        }
        let connection = connect(&self.inner.cfg, &self.inner.name).await?;
        let channel = connection
            .create_channel()
            .await
            .map_err(|source| BusError::Channel {
                op: "channel.open",
                source,
            })?;
        channel
            .confirm_select(ConfirmSelectOptions::default())
            .await
            .map_err(|source| BusError::Channel {
                op: "confirm.select",
                source,
            })?;
        declare_exchange(&channel, &self.inner.cfg.exchange).await?;
        let epoch = self.inner.epoch.fetch_add(1, Ordering::SeqCst) + 1;
        metrics::counter!(m::RECONNECTS, "role" => "publisher").increment(0);
        if epoch > 1 {
            metrics::counter!(m::RECONNECTS, "role" => "publisher").increment(1);
            tracing::info!(exchange = %self.inner.cfg.exchange, "publisher reconnected");
        }
        let live = Live {
            connection: Arc::new(connection),
            channel,
            epoch,
        };
        *self
            .inner
            .live
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(live.clone());
        Ok(live)
    }

    fn current(&self) -> Option<Live> {
        let live = self
            .inner
            .live
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        live.as_ref()
            .filter(|l| l.channel.status().connected())
            .cloned()
    }

    /// Drops the channel of `epoch` (if still current) so the next publish reconnects.
    fn invalidate(&self, epoch: u64) {
        let stale = {
            let mut live = self
                .inner
                .live
                .write()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if live.as_ref().is_some_and(|l| l.epoch == epoch) {
                live.take()
            } else {
                None
            }
        };
        if let Some(stale) = stale {
            tokio::spawn(async move {
                let _ = stale.connection.close(320, "reconnecting".into()).await;
            });
        }
    }

    /// Closes the connection after outstanding confirms; later publishes reconnect.
    pub async fn close(&self) -> Result<()> {
        let live = self
            .inner
            .live
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take();
        if let Some(live) = live {
            let _ = live.channel.wait_for_confirms().await;
            live.connection
                .close(200, "publisher closed".into())
                .await
                .map_err(|source| BusError::Channel {
                    op: "connection.close",
                    source,
                })?;
        }
        Ok(())
    }
}
