//! Ack coalescing. On a quorum queue every ack is a Raft command, so acking each delivery alone
//! costs the broker more than the delivery itself. Settlements go to one task per channel, which
//! acks the contiguous run of settled delivery tags with a single `multiple` ack and acks
//! out-of-order completions one by one (so a slow handler never holds back the others' acks).

use std::collections::BTreeMap;

use lapin::Channel;
use lapin::options::{BasicAckOptions, BasicNackOptions};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

#[derive(Debug)]
enum Settle {
    Ack(u64),
    Requeue(u64),
}

/// Hands a delivery's outcome to the channel's settle task.
#[derive(Clone, Debug)]
pub(crate) struct Settler {
    tx: mpsc::UnboundedSender<Settle>,
}

impl Settler {
    pub(crate) fn ack(&self, tag: u64) {
        // A closed task means the channel is gone; the broker redelivers and dedup skips.
        let _ = self.tx.send(Settle::Ack(tag));
    }

    pub(crate) fn requeue(&self, tag: u64) {
        let _ = self.tx.send(Settle::Requeue(tag));
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// Handled, ack not yet sent.
    Pending,
    /// Acked or requeued individually already.
    Settled,
}

/// Starts the settle task of a fresh channel (its delivery tags start at 1). The task ends when
/// every `Settler` is dropped and the queue is drained, or the channel fails.
pub(crate) fn spawn(channel: Channel, subscriber: String) -> (Settler, JoinHandle<()>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let task = tokio::spawn(run(channel, rx, subscriber));
    (Settler { tx }, task)
}

async fn run(channel: Channel, mut rx: mpsc::UnboundedReceiver<Settle>, subscriber: String) {
    let mut next = 1u64;
    let mut done: BTreeMap<u64, State> = BTreeMap::new();
    let mut batch = Vec::with_capacity(1024);
    while rx.recv_many(&mut batch, 1024).await > 0 {
        for s in batch.drain(..) {
            match s {
                Settle::Ack(tag) => {
                    done.insert(tag, State::Pending);
                }
                Settle::Requeue(tag) => {
                    let opts = BasicNackOptions {
                        multiple: false,
                        requeue: true,
                    };
                    if channel.basic_nack(tag, opts).await.is_err() {
                        return lost(&subscriber);
                    }
                    done.insert(tag, State::Settled);
                }
            }
        }
        let mut last_pending = None;
        while let Some(state) = done.remove(&next) {
            if state == State::Pending {
                last_pending = Some(next);
            }
            next += 1;
        }
        if let Some(tag) = last_pending {
            // Covers every unsettled tag up to `tag`; all of them are handled.
            if channel
                .basic_ack(tag, BasicAckOptions { multiple: true })
                .await
                .is_err()
            {
                return lost(&subscriber);
            }
        }
        for (tag, state) in &mut done {
            if *state == State::Pending {
                if channel
                    .basic_ack(*tag, BasicAckOptions { multiple: false })
                    .await
                    .is_err()
                {
                    return lost(&subscriber);
                }
                *state = State::Settled;
            }
        }
    }
}

fn lost(subscriber: &str) {
    tracing::debug!(
        subscriber,
        "settling failed (connection lost?); the broker will redeliver"
    );
}
