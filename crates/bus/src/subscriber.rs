//! Subscribers: one durable quorum queue each, manual acks after the handler succeeds, retries
//! through delay queues, a dead-letter queue, id dedup, reconnect and graceful drain.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use futures::StreamExt;
use futures::stream::FuturesUnordered;
use lapin::options::{
    BasicCancelOptions, BasicConsumeOptions, BasicQosOptions, ConfirmSelectOptions,
};
use lapin::types::FieldTable;
use lapin::{Channel, Connection};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::acks::Settler;
use crate::config::BusConfig;
use crate::connection::{connect_until, declare_exchange};
use crate::dedup::DedupWindow;
use crate::delivery::{Delivered, process};
use crate::error::{BusError, Result};
pub use crate::handler::{Handler, HandlerError, Received};
use crate::metrics as m;
use crate::topology::{SubscriberQueues, declare_subscriber, validate_subscriber_name};

/// What a subscriber listens to and how it retries.
#[derive(Clone, Debug)]
pub struct SubscriberConfig {
    /// Names the queues (`<exchange>.<name>`); one per consuming service, shared by its replicas.
    pub name: String,
    /// Topic patterns over event types, e.g. `midplane.plugin.updated`, `midplane.group.#`.
    pub bindings: Vec<String>,
    /// Unacked deliveries the broker may push ahead.
    pub prefetch: u16,
    /// Handlers running at once.
    pub concurrency: usize,
    /// Handler runs per event before it is dead-lettered (3 → fail, retry, retry, DLQ).
    pub max_attempts: u32,
    /// Delay before retry n (the last one repeats).
    pub retry_delays: Vec<Duration>,
    /// Handled ids; pass a shared one to keep it across subscriber restarts in one process.
    pub dedup: Arc<DedupWindow>,
    /// A handler running longer counts as failed (and is retried), so a hung handler cannot
    /// hold its event, or a reconnect waiting to drain, forever.
    pub handler_timeout: Duration,
}

impl SubscriberConfig {
    pub fn new(name: impl Into<String>, bindings: &[&str]) -> Self {
        Self {
            name: name.into(),
            bindings: bindings.iter().map(|s| (*s).to_owned()).collect(),
            prefetch: 256,
            concurrency: 64,
            max_attempts: 5,
            retry_delays: vec![
                Duration::from_secs(1),
                Duration::from_secs(10),
                Duration::from_secs(60),
            ],
            dedup: Arc::new(DedupWindow::default()),
            handler_timeout: Duration::from_secs(60),
        }
    }

    fn validate(&self) -> Result<()> {
        validate_subscriber_name(&self.name)?;
        let bad = |reason: &str| {
            Err(BusError::SubscriberConfig {
                name: self.name.clone(),
                reason: reason.to_owned(),
            })
        };
        if self.bindings.is_empty() {
            return bad("field `bindings` is empty: the queue would receive nothing");
        }
        if self.max_attempts == 0 {
            return bad("field `max_attempts` must be at least 1");
        }
        if self.max_attempts > 1 && self.retry_delays.is_empty() {
            return bad("field `retry_delays` is empty but `max_attempts` > 1");
        }
        if self.handler_timeout.is_zero() {
            return bad("field `handler_timeout` must be positive");
        }
        if self.concurrency == 0 || self.prefetch == 0 {
            return bad("fields `concurrency` and `prefetch` must be at least 1");
        }
        Ok(())
    }
}

/// Counters of one subscriber since it started (the same figures go to `metrics`).
#[derive(Debug, Default)]
pub(crate) struct Stats {
    pub(crate) consumed: AtomicU64,
    pub(crate) handled: AtomicU64,
    pub(crate) failed: AtomicU64,
    pub(crate) duplicates: AtomicU64,
    pub(crate) retried: AtomicU64,
    pub(crate) dead_lettered: AtomicU64,
    pub(crate) reconnects: AtomicU64,
}

/// A snapshot of [`Subscriber::stats`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SubscriberStats {
    /// Deliveries received (duplicates and retries included).
    pub consumed: u64,
    /// Handler successes.
    pub handled: u64,
    /// Handler failures (each retry or dead letter follows one).
    pub failed: u64,
    /// Deliveries acked unhandled because their id was already handled.
    pub duplicates: u64,
    pub retried: u64,
    pub dead_lettered: u64,
    pub reconnects: u64,
}

impl Stats {
    pub(crate) fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    fn snapshot(&self) -> SubscriberStats {
        let g = |c: &AtomicU64| c.load(Ordering::Relaxed);
        SubscriberStats {
            consumed: g(&self.consumed),
            handled: g(&self.handled),
            failed: g(&self.failed),
            duplicates: g(&self.duplicates),
            retried: g(&self.retried),
            dead_lettered: g(&self.dead_lettered),
            reconnects: g(&self.reconnects),
        }
    }
}

/// A running subscriber. Stop it with [`Subscriber::shutdown`] (drains) or
/// [`Subscriber::abort`] (drops the connection with deliveries unacked, as a crash would).
#[derive(Debug)]
pub struct Subscriber {
    name: String,
    queues: SubscriberQueues,
    shutdown: CancellationToken,
    kill: CancellationToken,
    task: JoinHandle<()>,
    stats: Arc<Stats>,
}

struct Session {
    connection: Connection,
    consume: Channel,
    publish: Channel,
    settler: Settler,
    settle_task: JoinHandle<()>,
}

impl Session {
    /// Waits (bounded) for every settlement handed over so far to reach the broker.
    async fn flush_settlements(self) -> Connection {
        drop(self.settler);
        let _ = tokio::time::timeout(Duration::from_secs(5), self.settle_task).await;
        self.connection
    }
}

pub(crate) struct Shared<H> {
    pub(crate) bus: BusConfig,
    pub(crate) cfg: SubscriberConfig,
    pub(crate) queues: SubscriberQueues,
    pub(crate) handler: H,
    pub(crate) stats: Arc<Stats>,
}

impl Subscriber {
    /// Declares the subscriber's queues and bindings, then consumes in the background. When this
    /// returns, events published to the bound types are queued for it.
    pub async fn start<H: Handler>(
        bus: &BusConfig,
        cfg: SubscriberConfig,
        handler: H,
    ) -> Result<Self> {
        bus.validate()?;
        cfg.validate()?;
        let queues = SubscriberQueues::new(&bus.exchange, &cfg.name, &cfg.retry_delays);
        let shared = Arc::new(Shared {
            bus: bus.clone(),
            cfg,
            queues: queues.clone(),
            handler,
            stats: Arc::default(),
        });
        let conn_name = format!("midplane-subscriber {}", shared.queues.main);
        let connection = crate::connection::connect(bus, &conn_name).await?;
        let session = open_session(&shared, connection).await?;
        // Killing implies shutting down (so reconnect loops stop); the consume loop checks kill first.
        let kill = CancellationToken::new();
        let shutdown = kill.child_token();
        let task = tokio::spawn(run(shared.clone(), session, shutdown.clone(), kill.clone()));
        Ok(Self {
            name: shared.cfg.name.clone(),
            queues,
            shutdown,
            kill,
            task,
            stats: shared.stats.clone(),
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn queues(&self) -> &SubscriberQueues {
        &self.queues
    }

    /// Counters since start.
    pub fn stats(&self) -> SubscriberStats {
        self.stats.snapshot()
    }

    /// Stops taking deliveries, waits for running handlers to finish and ack, then closes.
    /// Prefetched but unstarted deliveries go back to the queue.
    pub async fn shutdown(self) -> Result<()> {
        self.shutdown.cancel();
        self.task.await.map_err(|e| BusError::SubscriberTask {
            subscriber: self.name.clone(),
            reason: e.to_string(),
        })
    }

    /// Simulates a crash: running handlers are dropped and the connection closes at once, so
    /// unacked deliveries return to the queue exactly as if the process had died.
    pub async fn abort(self) -> Result<()> {
        self.kill.cancel();
        self.task.await.map_err(|e| BusError::SubscriberTask {
            subscriber: self.name.clone(),
            reason: e.to_string(),
        })
    }
}

/// Opens the consume and publish channels and re-declares the topology; on failure the
/// connection is closed rather than leaked.
async fn open_session<H: Handler>(shared: &Shared<H>, connection: Connection) -> Result<Session> {
    match open_channels(shared, &connection).await {
        Ok((consume, publish)) => {
            let (settler, settle_task) =
                crate::acks::spawn(consume.clone(), shared.cfg.name.clone());
            Ok(Session {
                connection,
                consume,
                publish,
                settler,
                settle_task,
            })
        }
        Err(err) => {
            close_quietly(&connection, 320, "session setup failed").await;
            Err(err)
        }
    }
}

async fn open_channels<H: Handler>(
    shared: &Shared<H>,
    connection: &Connection,
) -> Result<(Channel, Channel)> {
    let channel_err = |op| move |source| BusError::Channel { op, source };
    let consume = connection
        .create_channel()
        .await
        .map_err(channel_err("channel.open"))?;
    declare_exchange(&consume, &shared.bus.exchange).await?;
    declare_subscriber(
        &consume,
        &shared.bus.exchange,
        &shared.queues,
        &shared.cfg.bindings,
    )
    .await?;
    consume
        .basic_qos(shared.cfg.prefetch, BasicQosOptions::default())
        .await
        .map_err(channel_err("basic.qos"))?;
    // Retries and dead letters are republished with confirms before the original is acked.
    let publish = connection
        .create_channel()
        .await
        .map_err(channel_err("channel.open"))?;
    publish
        .confirm_select(ConfirmSelectOptions::default())
        .await
        .map_err(channel_err("confirm.select"))?;
    Ok((consume, publish))
}

enum Exit {
    Shutdown,
    Killed,
    Lost(String),
}

async fn run<H: Handler>(
    shared: Arc<Shared<H>>,
    first: Session,
    shutdown: CancellationToken,
    kill: CancellationToken,
) {
    let name = shared.cfg.name.clone();
    let conn_name = format!("midplane-subscriber {}", shared.queues.main);
    let mut session = Some(first);
    let mut quick_losses = 0u32;
    loop {
        let current = match session.take() {
            Some(s) => s,
            None => {
                let Some(conn) = connect_until(&shared.bus, &conn_name, &shutdown).await else {
                    return;
                };
                match open_session(&shared, conn).await {
                    Ok(s) => {
                        metrics::counter!(m::RECONNECTS, "role" => "subscriber").increment(1);
                        Stats::bump(&shared.stats.reconnects);
                        tracing::info!(subscriber = %name, "subscriber reconnected, topology re-declared");
                        s
                    }
                    Err(err) => {
                        tracing::warn!(subscriber = %name, error = %err, "re-opening subscriber session failed");
                        tokio::time::sleep(crate::connection::backoff(
                            2,
                            shared.bus.reconnect_initial,
                            shared.bus.reconnect_max,
                        ))
                        .await;
                        continue;
                    }
                }
            }
        };
        let opened = std::time::Instant::now();
        let exit = consume(&shared, &current, &shutdown, &kill).await;
        match exit {
            Exit::Killed => {
                close_quietly(&current.connection, 320, "subscriber aborted").await;
                return;
            }
            Exit::Shutdown => {
                let connection = current.flush_settlements().await;
                close_quietly(&connection, 200, "subscriber shut down").await;
                return;
            }
            Exit::Lost(reason) => {
                tracing::warn!(subscriber = %name, %reason, "connection lost; handlers drained, reconnecting");
                let connection = current.flush_settlements().await;
                close_quietly(&connection, 320, "reconnecting").await;
                // A session that dies right after opening (e.g. a channel error on every
                // consume) must not turn into a hot reconnect loop.
                if opened.elapsed() < Duration::from_secs(5) {
                    let delay = crate::connection::backoff(
                        quick_losses,
                        shared.bus.reconnect_initial,
                        shared.bus.reconnect_max,
                    );
                    quick_losses += 1;
                    tokio::select! {
                        _ = shutdown.cancelled() => return,
                        _ = tokio::time::sleep(delay) => {}
                    }
                } else {
                    quick_losses = 0;
                }
            }
        }
    }
}

/// Closes a connection that may already be dead without hanging on it.
async fn close_quietly(connection: &Connection, code: u16, reason: &str) {
    if connection.status().connected() {
        let _ = tokio::time::timeout(
            Duration::from_secs(2),
            connection.close(code, reason.into()),
        )
        .await;
    }
}

async fn consume<H: Handler>(
    shared: &Arc<Shared<H>>,
    session: &Session,
    shutdown: &CancellationToken,
    kill: &CancellationToken,
) -> Exit {
    let tag = format!("{}-{}", shared.cfg.name, uuid::Uuid::new_v4().simple());
    let mut consumer = match session
        .consume
        .basic_consume(
            shared.queues.main.as_str().into(),
            tag.as_str().into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await
    {
        Ok(c) => c,
        Err(e) => return Exit::Lost(format!("basic.consume: {e}")),
    };
    m::init_subscriber(&shared.cfg.name);
    // Handlers run as futures of this task rather than spawned tasks: one scheduling hop less
    // per event (it shows in the latency tail on a busy node), and dropping the set on kill is
    // exactly a crash. CPU-heavy handlers should use spawn_blocking.
    let mut in_flight = FuturesUnordered::new();
    let lost = loop {
        tokio::select! {
            biased;
            _ = kill.cancelled() => return Exit::Killed,
            _ = shutdown.cancelled() => break None,
            Some(()) = in_flight.next(), if !in_flight.is_empty() => {}
            next = consumer.next(), if in_flight.len() < shared.cfg.concurrency => {
                let delivery = match next {
                    Some(Ok(d)) => d,
                    Some(Err(e)) => break Some(e.to_string()),
                    None => break Some("consumer cancelled by the broker".to_owned()),
                };
                metrics::counter!(m::CONSUMED, "subscriber" => shared.cfg.name.clone()).increment(1);
                Stats::bump(&shared.stats.consumed);
                let delivered = Delivered::new(delivery, session.settler.clone());
                let (shared, publish) = (shared.clone(), session.publish.clone());
                in_flight.push(async move { process(&shared, &publish, delivered).await });
            }
        }
    };
    if lost.is_none() {
        // Graceful: stop the broker pushing more; unstarted prefetched deliveries return on close.
        let _ = session
            .consume
            .basic_cancel(tag.as_str().into(), BasicCancelOptions::default())
            .await;
    }
    // Drain: on shutdown so running handlers finish and ack; on connection loss so their ids
    // are in the dedup window before the broker redelivers their unacked events.
    loop {
        tokio::select! {
            biased;
            _ = kill.cancelled() => return Exit::Killed,
            done = in_flight.next() => if done.is_none() { break },
        }
    }
    match lost {
        None => Exit::Shutdown,
        Some(reason) => Exit::Lost(reason),
    }
}
