//! The broker is restarted (`rabbitmqctl stop_app` / `start_app`) in the middle of a stream of
//! 10,000 events: every event must be handled exactly once by each subscriber.
//!
//! Its own test binary because it takes the whole broker down: cargo runs test binaries one
//! after another, so the other bus tests never see the restart. Needs rabbitmqctl on the
//! broker's host (root, or the rabbitmq user).

mod common;

use std::collections::HashMap;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{eventually, plugin_event, test_bus};
use futures::StreamExt;
use midplane_bus::catalogue::PluginUpdated;
use midplane_bus::topology::{delete_exchange, delete_subscriber};
use midplane_bus::{HandlerError, Publisher, Received, Subscriber, SubscriberConfig};

const EVENTS: usize = 10_000;

fn rabbitmqctl(args: &[&str]) {
    let out = Command::new("rabbitmqctl")
        .args(args)
        .output()
        .unwrap_or_else(|e| {
            panic!("rabbitmqctl {args:?}: {e}; install with scripts/services/rabbitmq.sh")
        });
    assert!(
        out.status.success(),
        "rabbitmqctl {args:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_event_is_handled_exactly_once_across_a_broker_restart() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "midplane_bus=info".into()),
        )
        .with_test_writer()
        .try_init();
    let started = Instant::now();
    let bus = test_bus("restart").await;
    let names = ["restart-a", "restart-b"];
    let mut seen = Vec::new();
    let mut subs = Vec::new();
    for name in names {
        let counts: Arc<Mutex<HashMap<String, u32>>> = Arc::default();
        let c = counts.clone();
        let handler = move |r: Received| {
            let c = c.clone();
            async move {
                r.event.decode::<PluginUpdated>()?;
                *c.lock()
                    .map_err(|_| HandlerError::new("poisoned"))?
                    .entry(r.event.id)
                    .or_default() += 1;
                Ok::<(), HandlerError>(())
            }
        };
        let mut cfg = SubscriberConfig::new(name, &["midplane.plugin.updated"]);
        cfg.retry_delays = vec![Duration::from_millis(200)];
        subs.push(Subscriber::start(&bus, cfg, handler).await.unwrap());
        seen.push(counts);
    }

    let publisher = Publisher::connect(bus.clone()).await.unwrap();
    let confirmed = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let producer = {
        let (publisher, confirmed) = (publisher.clone(), confirmed.clone());
        tokio::spawn(async move {
            futures::stream::iter(0..EVENTS)
                .map(|n| {
                    let (publisher, confirmed) = (publisher.clone(), confirmed.clone());
                    async move {
                        // Paced so the restart lands mid-stream rather than after it.
                        let ev = publisher.publish(&plugin_event("redis", n)).await;
                        confirmed.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                        ev.map(|e| e.id)
                    }
                })
                .buffer_unordered(32)
                .collect::<Vec<_>>()
                .await
        })
    };

    eventually(
        "a third of the stream confirmed",
        Duration::from_secs(30),
        || {
            let n = confirmed.load(std::sync::atomic::Ordering::SeqCst);
            async move { n >= EVENTS / 3 }
        },
    )
    .await;
    let at_stop = confirmed.load(std::sync::atomic::Ordering::SeqCst);
    tokio::task::spawn_blocking(|| {
        rabbitmqctl(&["stop_app"]);
        std::thread::sleep(Duration::from_secs(1));
        rabbitmqctl(&["start_app"]);
        rabbitmqctl(&["-q", "await_startup", "--timeout", "60"]);
    })
    .await
    .unwrap();
    assert!(
        at_stop < EVENTS,
        "the whole stream was confirmed before the restart; nothing was tested"
    );

    let results = producer.await.unwrap();
    let mut ids = Vec::with_capacity(EVENTS);
    for r in results {
        ids.push(r.unwrap_or_else(|e| panic!("a publish failed across the restart: {e}")));
    }
    assert_eq!(ids.len(), EVENTS);

    for (i, counts) in seen.iter().enumerate() {
        let deadline = Instant::now() + Duration::from_secs(60);
        while counts.lock().unwrap().len() < EVENTS {
            assert!(
                Instant::now() < deadline,
                "{} handled {} of {EVENTS} events; stats {:?}",
                names[i],
                counts.lock().unwrap().len(),
                subs[i].stats()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    for (i, counts) in seen.iter().enumerate() {
        let counts = counts.lock().unwrap();
        assert_eq!(counts.len(), EVENTS, "{} handled unexpected ids", names[i]);
        let twice: Vec<_> = ids
            .iter()
            .filter(|id| counts.get(*id) != Some(&1))
            .take(5)
            .collect();
        assert!(
            twice.is_empty(),
            "{}: events not handled exactly once: {twice:?}",
            names[i]
        );
    }
    for s in subs {
        let st = s.stats();
        assert!(st.reconnects >= 1, "{} never reconnected: {st:?}", s.name());
        assert_eq!(st.handled, EVENTS as u64, "{}: {st:?}", s.name());
        eprintln!("{}: {st:?}", s.name());
        let queues = s.queues().clone();
        s.shutdown().await.unwrap();
        delete_subscriber(&bus, &queues).await.unwrap();
    }
    publisher.close().await.unwrap();
    delete_exchange(&bus).await.unwrap();
    eprintln!(
        "restart test: stop after {at_stop} confirmed, total {:?}",
        started.elapsed()
    );
    assert!(
        started.elapsed() < Duration::from_secs(120),
        "took {:?}",
        started.elapsed()
    );
}
