//! Delivery guarantees against the real broker: fan-out, unroutable, retries → DLQ → replay,
//! a consumer killed before ack.

mod common;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{eventually, plugin_event, test_bus};
use midplane_bus::catalogue::{AppApplied, Event, PluginUpdated};
use midplane_bus::cli::{Format, events_dlq_list, events_dlq_replay};
use midplane_bus::dlq::{self, ReplayOptions};
use midplane_bus::topology::{delete_exchange, delete_subscriber, queue_depth, queue_name};
use midplane_bus::{
    BusError, DedupWindow, HandlerError, Publisher, Received, Subscriber, SubscriberConfig,
};
use tokio::sync::Notify;

type Seen = Arc<Mutex<HashMap<String, usize>>>;

fn counting(
    seen: Seen,
) -> impl Fn(Received) -> std::future::Ready<Result<(), HandlerError>> + Send + Sync + 'static {
    move |r: Received| {
        let typed = r.event.decode::<PluginUpdated>();
        *seen
            .lock()
            .expect("lock")
            .entry(r.event.id.clone())
            .or_default() += 1;
        std::future::ready(typed.map(|_| ()).map_err(HandlerError::from))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_bound_subscriber_gets_each_event_exactly_once() {
    let bus = test_bus("fanout").await;
    let patterns = [
        ("exact", "midplane.plugin.updated"),
        ("star", "midplane.plugin.*"),
        ("hash", "midplane.#"),
        ("other", "midplane.app.*"),
    ];
    let mut subs = Vec::new();
    let mut seen = Vec::new();
    for (name, pattern) in patterns {
        let s: Seen = Arc::default();
        subs.push(
            Subscriber::start(
                &bus,
                SubscriberConfig::new(name, &[pattern]),
                counting(s.clone()),
            )
            .await
            .unwrap(),
        );
        seen.push(s);
    }
    let publisher = Publisher::connect(bus.clone()).await.unwrap();
    let mut ids = Vec::new();
    for n in 0..50 {
        let ev = publisher.publish(&plugin_event("redis", n)).await.unwrap();
        assert_eq!(ev.event_type, PluginUpdated::TYPE);
        assert_eq!(ev.subject.as_deref(), Some("plugins/redis"));
        ids.push(ev.id);
    }
    for (i, s) in seen.iter().take(3).enumerate() {
        eventually(
            &format!("subscriber {} to see 50 events", patterns[i].0),
            Duration::from_secs(20),
            || {
                let n = s.lock().unwrap().len();
                async move { n == 50 }
            },
        )
        .await;
    }
    // Give stray duplicates a moment to show up before counting.
    tokio::time::sleep(Duration::from_millis(300)).await;
    for (i, s) in seen.iter().take(3).enumerate() {
        let s = s.lock().unwrap();
        for id in &ids {
            assert_eq!(
                s.get(id),
                Some(&1),
                "subscriber {} saw {id} {:?} times",
                patterns[i].0,
                s.get(id)
            );
        }
    }
    assert!(
        seen[3].lock().unwrap().is_empty(),
        "app-only subscriber received plugin events"
    );

    for s in subs {
        let name = s.name().to_owned();
        let queues = s.queues().clone();
        s.shutdown().await.unwrap();
        assert_eq!(
            queue_depth(&bus, &queue_name(&bus.exchange, &name))
                .await
                .unwrap(),
            Some(0)
        );
        delete_subscriber(&bus, &queues).await.unwrap();
    }
    publisher.close().await.unwrap();
    delete_exchange(&bus).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unroutable_event_is_an_error_the_caller_sees() {
    let bus = test_bus("unroutable").await;
    let publisher = Publisher::connect(bus.clone()).await.unwrap();
    let err = publisher.publish(&AppApplied::example()).await.unwrap_err();
    match err {
        BusError::Unroutable {
            event_type,
            reply_code,
            ..
        } => {
            assert_eq!(event_type, "midplane.app.applied");
            assert_eq!(reply_code, 312, "NO_ROUTE expected");
        }
        other => panic!("expected Unroutable, got {other}"),
    }
    publisher.close().await.unwrap();
    delete_exchange(&bus).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_handler_failing_three_times_dead_letters_and_replay_redelivers() {
    let bus = test_bus("dlq").await;
    let attempts: Seen = Arc::default();
    let handled: Seen = Arc::default();
    let healthy = Arc::new(AtomicBool::new(false));
    let mut cfg = SubscriberConfig::new("group-svc", &["midplane.plugin.#"]);
    cfg.max_attempts = 3;
    cfg.retry_delays = vec![Duration::from_millis(50), Duration::from_millis(150)];
    let handler = {
        let (attempts, handled, healthy) = (attempts.clone(), handled.clone(), healthy.clone());
        move |r: Received| {
            let (attempts, handled, healthy) = (attempts.clone(), handled.clone(), healthy.clone());
            async move {
                let p: PluginUpdated = r.event.decode()?;
                *attempts
                    .lock()
                    .unwrap()
                    .entry(r.event.id.clone())
                    .or_default() += 1;
                if p.plugin == "broken" && !healthy.load(Ordering::SeqCst) {
                    return Err(HandlerError::new(format!(
                        "render failed on attempt {}",
                        r.attempt
                    )));
                }
                *handled
                    .lock()
                    .unwrap()
                    .entry(r.event.id.clone())
                    .or_default() += 1;
                Ok(())
            }
        }
    };
    let sub = Subscriber::start(&bus, cfg, handler).await.unwrap();
    let publisher = Publisher::connect(bus.clone()).await.unwrap();
    let bad = publisher.publish(&plugin_event("broken", 1)).await.unwrap();
    let good = publisher.publish(&plugin_event("redis", 2)).await.unwrap();

    eventually(
        "the failing event to reach the DLQ",
        Duration::from_secs(20),
        || {
            let bus = bus.clone();
            async move { dlq::depth(&bus, "group-svc").await.unwrap() == 1 }
        },
    )
    .await;
    assert_eq!(
        attempts.lock().unwrap().get(&bad.id),
        Some(&3),
        "handler should run exactly 3 times"
    );
    assert_eq!(handled.lock().unwrap().get(&good.id), Some(&1));
    assert_eq!(handled.lock().unwrap().get(&bad.id), None);

    let letters = dlq::list(&bus, "group-svc", 10).await.unwrap();
    assert_eq!(letters.len(), 1);
    let l = &letters[0];
    assert_eq!(l.id.as_deref(), Some(bad.id.as_str()));
    assert_eq!(l.event_type.as_deref(), Some("midplane.plugin.updated"));
    assert_eq!(l.attempts, 3);
    assert_eq!(l.error.as_deref(), Some("render failed on attempt 3"));
    assert_eq!(l.routing_key.as_deref(), Some("midplane.plugin.updated"));
    assert_eq!(
        l.event
            .as_ref()
            .map(|e| e.decode::<PluginUpdated>().unwrap().plugin),
        Some("broken".to_owned())
    );
    // Listing does not consume.
    assert_eq!(dlq::depth(&bus, "group-svc").await.unwrap(), 1);

    let mut out = Vec::new();
    let n = events_dlq_list(&bus, "group-svc", 10, Format::Text, &mut out)
        .await
        .unwrap();
    let text = String::from_utf8(out).unwrap();
    assert_eq!(n, 1);
    assert!(
        text.contains(&bad.id) && text.contains("render failed on attempt 3"),
        "{text}"
    );

    healthy.store(true, Ordering::SeqCst);
    let mut out = Vec::new();
    let report = events_dlq_replay(
        &bus,
        "group-svc",
        &ReplayOptions::default(),
        Format::Text,
        &mut out,
    )
    .await
    .unwrap();
    assert_eq!(report.replayed, 1);
    assert_eq!(report.replayed_ids, vec![bad.id.clone()]);
    assert!(
        String::from_utf8(out)
            .unwrap()
            .starts_with("replayed 1 event(s)")
    );
    eventually(
        "the replayed event to be handled",
        Duration::from_secs(10),
        || {
            let n = handled.lock().unwrap().get(&bad.id).copied();
            async move { n == Some(1) }
        },
    )
    .await;
    assert_eq!(attempts.lock().unwrap().get(&bad.id), Some(&4));
    assert_eq!(dlq::depth(&bus, "group-svc").await.unwrap(), 0);

    let err = dlq::list(&bus, "nobody", 10).await.unwrap_err();
    assert!(matches!(err, BusError::NoSuchDlq { .. }), "{err}");

    let queues = sub.queues().clone();
    sub.shutdown().await.unwrap();
    delete_subscriber(&bus, &queues).await.unwrap();
    publisher.close().await.unwrap();
    delete_exchange(&bus).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_consumer_killed_before_ack_gets_the_event_again_and_it_is_processed_once() {
    let bus = test_bus("kill").await;
    // One dedup window across both consumer lives, as one service process keeps it.
    let dedup = Arc::new(DedupWindow::default());
    let effects: Seen = Arc::default();
    let release = Arc::new(Notify::new());
    let first_life = Arc::new(AtomicBool::new(true));
    let redelivered_seen = Arc::new(AtomicUsize::new(0));

    let make_handler = || {
        let (effects, release, first_life, redelivered_seen) = (
            effects.clone(),
            release.clone(),
            first_life.clone(),
            redelivered_seen.clone(),
        );
        move |r: Received| {
            let (effects, release, first_life, redelivered_seen) = (
                effects.clone(),
                release.clone(),
                first_life.clone(),
                redelivered_seen.clone(),
            );
            async move {
                let p: PluginUpdated = r.event.decode()?;
                if r.redelivered {
                    redelivered_seen.fetch_add(1, Ordering::SeqCst);
                }
                if p.plugin == "crash-mid-handler" && first_life.load(Ordering::SeqCst) {
                    // The process dies inside the handler: no effect, no ack.
                    std::future::pending::<()>().await;
                }
                *effects
                    .lock()
                    .unwrap()
                    .entry(r.event.id.clone())
                    .or_default() += 1;
                if p.plugin == "cut-before-ack" && !r.redelivered {
                    // The effect is done; hold the ack back until the connection is cut.
                    release.notified().await;
                }
                Ok(())
            }
        }
    };
    let mut cfg = SubscriberConfig::new("backup-svc", &["midplane.plugin.updated"]);
    cfg.dedup = dedup.clone();
    let publisher = Publisher::connect(bus.clone()).await.unwrap();

    // 1. The consumer process dies while handling: the event comes back and is handled once.
    let first = Subscriber::start(&bus, cfg.clone(), make_handler())
        .await
        .unwrap();
    let mid = publisher
        .publish(&plugin_event("crash-mid-handler", 1))
        .await
        .unwrap();
    eventually(
        "the first consumer to take the event",
        Duration::from_secs(10),
        || {
            let n = first.stats().consumed;
            async move { n == 1 }
        },
    )
    .await;
    first.abort().await.unwrap();
    first_life.store(false, Ordering::SeqCst);
    let second = Subscriber::start(&bus, cfg, make_handler()).await.unwrap();
    eventually(
        "the restarted consumer to handle the event",
        Duration::from_secs(10),
        || {
            let n = effects.lock().unwrap().get(&mid.id).copied();
            async move { n == Some(1) }
        },
    )
    .await;
    assert!(
        redelivered_seen.load(Ordering::SeqCst) >= 1,
        "the broker did not flag the event as redelivered"
    );

    // 2. The connection is cut after the handler's effect but before its ack: the broker
    //    redelivers, the dedup window acks it without a second effect.
    let cut = publisher
        .publish(&plugin_event("cut-before-ack", 2))
        .await
        .unwrap();
    eventually(
        "the effect of the second event",
        Duration::from_secs(10),
        || {
            let n = effects.lock().unwrap().get(&cut.id).copied();
            async move { n == Some(1) }
        },
    )
    .await;
    let closed = common::kill_connections(&format!("midplane-subscriber {}", second.queues().main));
    assert_eq!(
        closed, 1,
        "expected to cut exactly the subscriber's connection"
    );
    release.notify_waiters();
    eventually(
        "the redelivered copy to be skipped as a duplicate",
        Duration::from_secs(20),
        || {
            let s = second.stats();
            async move { s.duplicates == 1 && s.reconnects >= 1 }
        },
    )
    .await;
    eventually("both events acked", Duration::from_secs(10), || {
        let bus = bus.clone();
        async move {
            queue_depth(&bus, &queue_name(&bus.exchange, "backup-svc"))
                .await
                .unwrap()
                == Some(0)
        }
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let effects = effects.lock().unwrap().clone();
    assert_eq!(
        effects.get(&mid.id),
        Some(&1),
        "event killed mid-handler processed {:?} times",
        effects.get(&mid.id)
    );
    assert_eq!(
        effects.get(&cut.id),
        Some(&1),
        "event cut before ack processed {:?} times",
        effects.get(&cut.id)
    );
    assert_eq!(second.stats().handled, 2);

    let queues = second.queues().clone();
    second.shutdown().await.unwrap();
    delete_subscriber(&bus, &queues).await.unwrap();
    publisher.close().await.unwrap();
    delete_exchange(&bus).await.unwrap();
}
