//! Operator access to a subscriber's dead-letter queue: inspect without consuming, and replay
//! back into the subscriber's own queue (only that subscriber sees the event again).

use lapin::options::{BasicAckOptions, BasicGetOptions, QueueDeclareOptions};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{Channel, Connection};
use serde::Serialize;

use crate::config::BusConfig;
use crate::connection::connect;
use crate::delivery::republish;
use crate::envelope::Envelope;
use crate::error::{BusError, Result};
use crate::metrics as m;
use crate::topology::{
    ATTEMPT_HEADER, ERROR_HEADER, FAILED_AT_HEADER, ROUTING_KEY_HEADER, dlq_name, header_str,
    header_u32, queue_name, validate_subscriber_name,
};

/// One dead-lettered event as an operator sees it.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DeadLetter {
    /// Event id (from the body, else the AMQP message id).
    pub id: Option<String>,
    pub event_type: Option<String>,
    /// Handler runs that failed.
    pub attempts: u32,
    /// Last handler error, or why the broker dead-lettered it.
    pub error: Option<String>,
    pub failed_at: Option<String>,
    pub routing_key: Option<String>,
    /// The parsed event; `None` when the body is not a valid CloudEvent.
    pub event: Option<Envelope>,
    /// The raw body when it could not be parsed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub raw: Option<String>,
}

/// Which dead letters to replay.
#[derive(Clone, Debug, Default)]
pub struct ReplayOptions {
    /// Only these event ids; empty means all.
    pub ids: Vec<String>,
    /// At most this many.
    pub limit: Option<usize>,
}

/// What a replay did.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ReplayReport {
    pub replayed: usize,
    /// Dead letters left in the DLQ (not selected).
    pub kept: usize,
    pub replayed_ids: Vec<String>,
}

struct DlqSession {
    connection: Connection,
    channel: Channel,
    dlq: String,
    main: String,
    depth: u32,
}

async fn open(bus: &BusConfig, subscriber: &str, confirms: bool) -> Result<DlqSession> {
    validate_subscriber_name(subscriber)?;
    let dlq = dlq_name(&bus.exchange, subscriber);
    let main = queue_name(&bus.exchange, subscriber);
    let connection = connect(bus, "midplane-dlq").await?;
    let channel = connection
        .create_channel()
        .await
        .map_err(|source| BusError::Channel {
            op: "channel.open",
            source,
        })?;
    let queue = channel
        .queue_declare(
            dlq.as_str().into(),
            QueueDeclareOptions::default().passive(),
            FieldTable::default(),
        )
        .await
        .map_err(|_| BusError::NoSuchDlq {
            subscriber: subscriber.to_owned(),
            queue: dlq.clone(),
        })?;
    if confirms {
        channel
            .confirm_select(Default::default())
            .await
            .map_err(|source| BusError::Channel {
                op: "confirm.select",
                source,
            })?;
    }
    Ok(DlqSession {
        connection,
        channel,
        dlq,
        main,
        depth: queue.message_count(),
    })
}

/// Number of events in a subscriber's DLQ.
pub async fn depth(bus: &BusConfig, subscriber: &str) -> Result<u32> {
    let s = open(bus, subscriber, false).await?;
    let _ = s.connection.close(200, "done".into()).await;
    Ok(s.depth)
}

/// Reads up to `limit` dead letters without removing them: messages are fetched unacked and
/// go back to the queue when the channel closes.
pub async fn list(bus: &BusConfig, subscriber: &str, limit: usize) -> Result<Vec<DeadLetter>> {
    let s = open(bus, subscriber, false).await?;
    let mut out = Vec::new();
    while out.len() < limit {
        let got = s
            .channel
            .basic_get(s.dlq.as_str().into(), BasicGetOptions::default())
            .await
            .map_err(|source| BusError::Channel {
                op: "basic.get",
                source,
            })?;
        let Some(msg) = got else { break };
        out.push(describe(&msg.delivery));
    }
    let _ = s.connection.close(200, "inspected".into()).await;
    Ok(out)
}

/// Moves dead letters back into the subscriber's queue with a fresh attempt count. Each is
/// acked from the DLQ only after the broker confirmed the copy.
pub async fn replay(
    bus: &BusConfig,
    subscriber: &str,
    opts: &ReplayOptions,
) -> Result<ReplayReport> {
    let s = open(bus, subscriber, true).await?;
    let mut report = ReplayReport::default();
    let limit = opts.limit.unwrap_or(usize::MAX);
    // Not-selected messages stay unacked while we walk the queue, then return on close.
    for _ in 0..s.depth {
        if report.replayed >= limit {
            break;
        }
        let got = s
            .channel
            .basic_get(s.dlq.as_str().into(), BasicGetOptions::default())
            .await
            .map_err(|source| BusError::Channel {
                op: "basic.get",
                source,
            })?;
        let Some(msg) = got else { break };
        let d = msg.delivery;
        let letter = describe(&d);
        let id = letter.id.clone().unwrap_or_default();
        if !opts.ids.is_empty() && !opts.ids.contains(&id) {
            continue;
        }
        let mut headers = d.properties.headers().clone().unwrap_or_default();
        let kept: FieldTable = headers
            .inner()
            .iter()
            .filter(|(k, _)| {
                ![
                    ATTEMPT_HEADER,
                    ERROR_HEADER,
                    FAILED_AT_HEADER,
                    "x-death",
                    "x-delivery-count",
                ]
                .contains(&k.as_str())
            })
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect::<std::collections::BTreeMap<_, _>>()
            .into();
        headers = kept;
        let props = d.properties.clone().with_headers(headers);
        if !republish(&s.channel, &s.main, &d.data, props).await {
            let _ = s.connection.close(200, "replay aborted".into()).await;
            return Err(BusError::PublishFailed {
                event_type: letter.event_type.unwrap_or_default(),
                id,
                attempts: 1,
                elapsed: std::time::Duration::ZERO,
                last_error: format!("replay into queue `{}` was not confirmed", s.main),
            });
        }
        d.acker
            .ack(BasicAckOptions::default())
            .await
            .map_err(|source| BusError::Channel {
                op: "basic.ack",
                source,
            })?;
        metrics::counter!(m::REPLAYED, "subscriber" => subscriber.to_owned()).increment(1);
        report.replayed += 1;
        report.replayed_ids.push(id);
    }
    report.kept = (s.depth as usize).saturating_sub(report.replayed);
    let _ = s.connection.close(200, "replayed".into()).await;
    Ok(report)
}

fn describe(d: &lapin::message::Delivery) -> DeadLetter {
    let headers = d.properties.headers().as_ref();
    let parsed = Envelope::from_bytes(&d.data);
    let error = header_str(headers, ERROR_HEADER).or_else(|| broker_reason(headers));
    let (event, raw) = match parsed {
        Ok(e) => (Some(e), None),
        Err(_) => (None, Some(String::from_utf8_lossy(&d.data).into_owned())),
    };
    DeadLetter {
        id: event.as_ref().map(|e| e.id.clone()).or_else(|| {
            d.properties
                .message_id()
                .as_ref()
                .map(std::string::ToString::to_string)
        }),
        event_type: event.as_ref().map(|e| e.event_type.clone()).or_else(|| {
            d.properties
                .kind()
                .as_ref()
                .map(std::string::ToString::to_string)
        }),
        attempts: header_u32(headers, ATTEMPT_HEADER).unwrap_or(0),
        error,
        failed_at: header_str(headers, FAILED_AT_HEADER),
        routing_key: header_str(headers, ROUTING_KEY_HEADER),
        event,
        raw,
    }
}

/// `x-death[0].reason` of a message the broker dead-lettered (e.g. `delivery_limit`).
fn broker_reason(headers: Option<&FieldTable>) -> Option<String> {
    let AMQPValue::FieldArray(deaths) = headers?.inner().get("x-death")? else {
        return None;
    };
    let AMQPValue::FieldTable(first) = deaths.as_slice().first()? else {
        return None;
    };
    let reason = header_str(Some(first), "reason")?;
    Some(format!("dead-lettered by the broker: {reason}"))
}
