//! The `midplane events …` commands as library functions; the CLI only parses arguments and
//! passes stdout.

use std::future::Future;

use futures::StreamExt;
use lapin::options::{BasicConsumeOptions, QueueBindOptions, QueueDeclareOptions};
use lapin::types::FieldTable;
use lapin::{Connection, Consumer};
use tokio::io::{AsyncWrite, AsyncWriteExt};

use crate::config::BusConfig;
use crate::connection::{connect, declare_exchange};
use crate::dlq::{self, ReplayOptions, ReplayReport};
use crate::envelope::Envelope;
use crate::error::{BusError, Result};

/// Output format of the commands.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Format {
    /// One human-readable line per event.
    #[default]
    Text,
    /// One JSON document per line (the CloudEvent itself for `tail`).
    Json,
}

/// `midplane events tail [--type PATTERN] [--output json] [--count N]`
#[derive(Clone, Debug)]
pub struct TailOptions {
    /// AMQP topic pattern over event types: `midplane.plugin.*`, `midplane.group.#`, `#`.
    pub pattern: String,
    pub format: Format,
    /// Stop after this many events.
    pub count: Option<u64>,
}

impl Default for TailOptions {
    fn default() -> Self {
        Self {
            pattern: "#".to_owned(),
            format: Format::Text,
            count: None,
        }
    }
}

/// A live window onto the bus: a temporary exclusive queue bound with a pattern. It vanishes
/// when the tail ends, so tailing never affects real subscribers.
pub struct Tail {
    connection: Connection,
    consumer: Consumer,
}

impl std::fmt::Debug for Tail {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tail")
            .field("queue", &self.consumer.queue())
            .finish()
    }
}

/// Checks a topic pattern: dot-separated words, `*` and `#` only as whole words.
pub fn validate_pattern(pattern: &str) -> Result<()> {
    let bad = |why: &str| {
        Err(BusError::SubscriberConfig {
            name: "--type".to_owned(),
            reason: format!("pattern `{pattern}` {why}"),
        })
    };
    if pattern.is_empty() || pattern.len() > 255 {
        return bad("must be 1-255 characters");
    }
    for word in pattern.split('.') {
        if word.is_empty() {
            return bad("has an empty word (`..` or a leading/trailing dot)");
        }
        if word != "*" && word != "#" && word.contains(['*', '#']) {
            return bad("uses `*` or `#` inside a word; they must stand alone between dots");
        }
    }
    Ok(())
}

impl Tail {
    /// Binds the temporary queue; events published after this returns are seen.
    pub async fn open(bus: &BusConfig, pattern: &str) -> Result<Self> {
        validate_pattern(pattern)?;
        let connection = connect(bus, "midplane-events-tail").await?;
        let ch_err = |op| move |source| BusError::Channel { op, source };
        let channel = connection
            .create_channel()
            .await
            .map_err(ch_err("channel.open"))?;
        declare_exchange(&channel, &bus.exchange).await?;
        let queue = channel
            .queue_declare(
                "".into(),
                QueueDeclareOptions {
                    exclusive: true,
                    auto_delete: true,
                    ..Default::default()
                },
                FieldTable::default(),
            )
            .await
            .map_err(|source| BusError::Topology {
                what: "queue",
                name: "(temporary tail queue)".to_owned(),
                source,
            })?;
        channel
            .queue_bind(
                queue.name().clone(),
                bus.exchange.as_str().into(),
                pattern.into(),
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await
            .map_err(|source| BusError::Topology {
                what: "binding",
                name: format!("{} -> {} ({pattern})", bus.exchange, queue.name()),
                source,
            })?;
        let consumer = channel
            .basic_consume(
                queue.name().clone(),
                "midplane-events-tail".into(),
                BasicConsumeOptions {
                    no_ack: true,
                    exclusive: true,
                    ..Default::default()
                },
                FieldTable::default(),
            )
            .await
            .map_err(ch_err("basic.consume"))?;
        Ok(Self {
            connection,
            consumer,
        })
    }

    /// Prints events until `stop` resolves, `count` events were printed, or the connection ends.
    /// Returns the number printed.
    pub async fn run<W: AsyncWrite + Unpin>(
        mut self,
        opts: &TailOptions,
        out: &mut W,
        stop: impl Future<Output = ()>,
    ) -> Result<u64> {
        let mut printed = 0u64;
        tokio::pin!(stop);
        while opts.count.is_none_or(|c| printed < c) {
            let next = tokio::select! {
                _ = &mut stop => break,
                next = self.consumer.next() => next,
            };
            let delivery = match next {
                Some(Ok(d)) => d,
                Some(Err(source)) => {
                    return Err(BusError::Channel {
                        op: "basic.deliver",
                        source,
                    });
                }
                None => break,
            };
            let line = match (Envelope::from_bytes(&delivery.data), opts.format) {
                (Ok(ev), Format::Json) => {
                    serde_json::to_string(&ev).map_err(|source| BusError::Encode {
                        event_type: ev.event_type.clone(),
                        source,
                    })?
                }
                (Ok(ev), Format::Text) => format!(
                    "{}  {}  {}  id={}  {}",
                    ev.time.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
                    ev.event_type,
                    ev.subject.as_deref().unwrap_or("-"),
                    ev.id,
                    ev.data
                ),
                (Err(err), _) => format!(
                    "# not a CloudEvent on routing key {}: {err}",
                    delivery.routing_key
                ),
            };
            out.write_all(line.as_bytes()).await?;
            out.write_all(b"\n").await?;
            out.flush().await?;
            printed += 1;
        }
        let _ = self.connection.close(200, "tail done".into()).await;
        Ok(printed)
    }
}

/// `midplane events tail`: opens a temporary queue and prints live events until `stop`.
pub async fn events_tail<W: AsyncWrite + Unpin>(
    bus: &BusConfig,
    opts: &TailOptions,
    out: &mut W,
    stop: impl Future<Output = ()>,
) -> Result<u64> {
    Tail::open(bus, &opts.pattern)
        .await?
        .run(opts, out, stop)
        .await
}

/// `midplane events dlq list SUBSCRIBER [--limit N] [--output json]`; returns the number listed.
pub async fn events_dlq_list<W: AsyncWrite + Unpin>(
    bus: &BusConfig,
    subscriber: &str,
    limit: usize,
    format: Format,
    out: &mut W,
) -> Result<usize> {
    let letters = dlq::list(bus, subscriber, limit).await?;
    let mut text = String::new();
    match format {
        Format::Json => {
            for l in &letters {
                let line = serde_json::to_string(l).map_err(|source| BusError::Encode {
                    event_type: l.event_type.clone().unwrap_or_default(),
                    source,
                })?;
                text.push_str(&line);
                text.push('\n');
            }
        }
        Format::Text => {
            text.push_str(&format!(
                "{:<36}  {:<34}  {:>8}  {:<25}  ERROR\n",
                "ID", "TYPE", "ATTEMPTS", "FAILED AT"
            ));
            for l in &letters {
                text.push_str(&format!(
                    "{:<36}  {:<34}  {:>8}  {:<25}  {}\n",
                    l.id.as_deref().unwrap_or("-"),
                    l.event_type.as_deref().unwrap_or("-"),
                    l.attempts,
                    l.failed_at.as_deref().unwrap_or("-"),
                    l.error.as_deref().unwrap_or("-").replace('\n', " ")
                ));
            }
            text.push_str(&format!(
                "{} dead letter(s) shown for subscriber {subscriber}\n",
                letters.len()
            ));
        }
    }
    out.write_all(text.as_bytes()).await?;
    out.flush().await?;
    Ok(letters.len())
}

/// `midplane events dlq replay SUBSCRIBER [--id ID]... [--limit N]`
pub async fn events_dlq_replay<W: AsyncWrite + Unpin>(
    bus: &BusConfig,
    subscriber: &str,
    opts: &ReplayOptions,
    format: Format,
    out: &mut W,
) -> Result<ReplayReport> {
    let report = dlq::replay(bus, subscriber, opts).await?;
    let text = match format {
        Format::Json => {
            let mut s = serde_json::to_string(&report).map_err(|source| BusError::Encode {
                event_type: "replay-report".to_owned(),
                source,
            })?;
            s.push('\n');
            s
        }
        Format::Text => format!(
            "replayed {} event(s) into {}; {} left in the DLQ\n",
            report.replayed,
            crate::topology::queue_name(&bus.exchange, subscriber),
            report.kept
        ),
    };
    out.write_all(text.as_bytes()).await?;
    out.flush().await?;
    Ok(report)
}
