//! What happens to one delivery: dedup, handler, then ack — or retry via a delay queue, or
//! dead-letter. Nothing is acked before its retry copy or dead letter is confirmed, so an event
//! is never lost between queues.

use std::time::{Duration, Instant};

use futures::FutureExt;
use lapin::options::BasicPublishOptions;
use lapin::types::AMQPValue;
use lapin::{BasicProperties, Channel, Confirmation};

use crate::acks::Settler;
use crate::dedup::Claim;
use crate::dedup::DedupWindow;
use crate::envelope::Envelope;
use crate::metrics as m;
use crate::subscriber::{Handler, Received, Shared, Stats};
use crate::topology::{
    ATTEMPT_HEADER, ERROR_HEADER, FAILED_AT_HEADER, ROUTING_KEY_HEADER, header_u32,
};

/// A delivery detached from lapin's type; settled through the channel's settle task.
pub(crate) struct Delivered {
    pub(crate) tag: u64,
    pub(crate) routing_key: String,
    pub(crate) redelivered: bool,
    pub(crate) properties: BasicProperties,
    pub(crate) data: Vec<u8>,
    pub(crate) settler: Settler,
}

impl Delivered {
    pub(crate) fn new(d: lapin::message::Delivery, settler: Settler) -> Self {
        Self {
            tag: d.delivery_tag,
            routing_key: d.routing_key.to_string(),
            redelivered: d.redelivered,
            properties: d.properties,
            data: d.data,
            settler,
        }
    }
}

/// Holds a dedup claim; releases it unless completed, also when the handling future is dropped.
struct ClaimGuard<'a> {
    dedup: &'a DedupWindow,
    id: &'a str,
    settled: bool,
}

impl ClaimGuard<'_> {
    fn complete(&mut self) {
        self.dedup.complete(self.id);
        self.settled = true;
    }
}

impl Drop for ClaimGuard<'_> {
    fn drop(&mut self) {
        if !self.settled {
            self.dedup.release(self.id);
        }
    }
}

enum Outcome {
    Handled,
    Failed(String),
}

pub(crate) async fn process<H: Handler>(shared: &Shared<H>, publish: &Channel, d: Delivered) {
    let sub = shared.cfg.name.as_str();
    let headers = d.properties.headers().as_ref();
    let failed_before = header_u32(headers, ATTEMPT_HEADER).unwrap_or(0);

    let event = match Envelope::from_bytes(&d.data) {
        Ok(e) => e,
        Err(err) => {
            // A body we cannot parse will never succeed: straight to the DLQ, kept for inspection.
            tracing::warn!(subscriber = sub, error = %err, "malformed event, dead-lettering");
            dead_letter(shared, publish, &d, failed_before, &err.to_string()).await;
            return;
        }
    };

    // Wait out a concurrent delivery of the same id (a publisher retry racing its original).
    loop {
        match shared.cfg.dedup.claim(&event.id) {
            Claim::New => break,
            Claim::Done => {
                metrics::counter!(m::DUPLICATES, "subscriber" => sub.to_owned()).increment(1);
                Stats::bump(&shared.stats.duplicates);
                ack(&d, sub).await;
                return;
            }
            Claim::Busy => tokio::time::sleep(Duration::from_millis(5)).await,
        }
    }

    let id = event.id.clone();
    let mut claim = ClaimGuard {
        dedup: &shared.cfg.dedup,
        id: &id,
        settled: false,
    };
    let received = Received {
        event,
        attempt: failed_before + 1,
        redelivered: d.redelivered,
    };
    let started = Instant::now();
    let run = std::panic::AssertUnwindSafe(shared.handler.handle(received)).catch_unwind();
    let outcome = match tokio::time::timeout(shared.cfg.handler_timeout, run).await {
        Ok(Ok(Ok(()))) => Outcome::Handled,
        Ok(Ok(Err(e))) => Outcome::Failed(e.0),
        Ok(Err(_)) => Outcome::Failed("handler panicked".to_owned()),
        Err(_) => Outcome::Failed(format!(
            "handler timed out after {:?}",
            shared.cfg.handler_timeout
        )),
    };
    let label = if matches!(outcome, Outcome::Handled) {
        "ok"
    } else {
        "error"
    };
    metrics::histogram!(m::HANDLER_SECONDS, "subscriber" => sub.to_owned(), "outcome" => label)
        .record(started.elapsed().as_secs_f64());

    match outcome {
        Outcome::Handled => {
            claim.complete();
            Stats::bump(&shared.stats.handled);
            ack(&d, sub).await;
        }
        Outcome::Failed(error) => {
            drop(claim);
            Stats::bump(&shared.stats.failed);
            let failed = failed_before + 1;
            let retry_queue = shared.queues.retry_for(failed);
            match retry_queue {
                Some(queue) if failed < shared.cfg.max_attempts => {
                    tracing::info!(subscriber = sub, %id, attempt = failed, %error, queue, "handler failed, scheduling retry");
                    let props = with_headers(&d, failed, &error, false);
                    if republish(publish, queue, &d.data, props).await {
                        metrics::counter!(m::RETRIED, "subscriber" => sub.to_owned()).increment(1);
                        Stats::bump(&shared.stats.retried);
                        ack(&d, sub).await;
                    } else {
                        requeue(&d, sub).await;
                    }
                }
                _ => {
                    tracing::warn!(subscriber = sub, %id, attempts = failed, %error, "handler failed for the last time, dead-lettering");
                    dead_letter(shared, publish, &d, failed, &error).await;
                }
            }
        }
    }
}

async fn dead_letter<H: Handler>(
    shared: &Shared<H>,
    publish: &Channel,
    d: &Delivered,
    attempts: u32,
    error: &str,
) {
    let sub = shared.cfg.name.as_str();
    let props = with_headers(d, attempts, error, true);
    if republish(publish, &shared.queues.dlq, &d.data, props).await {
        metrics::counter!(m::DEAD_LETTERED, "subscriber" => sub.to_owned()).increment(1);
        Stats::bump(&shared.stats.dead_lettered);
        ack(d, sub).await;
    } else {
        requeue(d, sub).await;
    }
}

fn with_headers(d: &Delivered, attempts: u32, error: &str, dead: bool) -> BasicProperties {
    let mut headers = d.properties.headers().clone().unwrap_or_default();
    headers.insert(
        ATTEMPT_HEADER.into(),
        AMQPValue::LongLongInt(attempts.into()),
    );
    headers.insert(ERROR_HEADER.into(), AMQPValue::LongString(error.into()));
    if !headers.inner().contains_key(ROUTING_KEY_HEADER) {
        headers.insert(
            ROUTING_KEY_HEADER.into(),
            AMQPValue::LongString(d.routing_key.as_str().into()),
        );
    }
    if dead {
        headers.insert(
            FAILED_AT_HEADER.into(),
            AMQPValue::LongString(chrono::Utc::now().to_rfc3339().into()),
        );
    }
    d.properties.clone().with_headers(headers)
}

/// Publishes to a queue by name through the default exchange and waits for the confirm.
pub(crate) async fn republish(
    channel: &Channel,
    queue: &str,
    body: &[u8],
    props: BasicProperties,
) -> bool {
    let confirm = channel
        .basic_publish(
            "".into(),
            queue.into(),
            BasicPublishOptions {
                mandatory: true,
                ..Default::default()
            },
            body,
            props,
        )
        .await;
    let confirmation = match confirm {
        Ok(c) => tokio::time::timeout(Duration::from_secs(15), c).await,
        Err(e) => {
            tracing::warn!(queue, error = %e, "republish failed");
            return false;
        }
    };
    match confirmation {
        Ok(Ok(Confirmation::Ack(None))) => true,
        other => {
            tracing::warn!(queue, outcome = ?other.map(|r| r.map(|c| c.is_ack())), "republish not confirmed");
            false
        }
    }
}

async fn ack(d: &Delivered, _sub: &str) {
    // If the connection is gone the broker redelivers it; the dedup window makes that a no-op.
    d.settler.ack(d.tag);
}

async fn requeue(d: &Delivered, _sub: &str) {
    // Brief pause so a broker-side problem does not turn into a hot redelivery loop.
    tokio::time::sleep(Duration::from_millis(200)).await;
    d.settler.requeue(d.tag);
}
