//! Operator tools and lifecycle: `events tail`, graceful shutdown draining handlers.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use common::{eventually, plugin_event, test_bus};
use midplane_bus::catalogue::{Event, GroupFailover, GroupRolloutCompleted, PluginUpdated};
use midplane_bus::cli::{Format, Tail, TailOptions, events_tail, validate_pattern};
use midplane_bus::topology::{delete_exchange, delete_subscriber, queue_depth, queue_name};
use midplane_bus::{
    BusError, Envelope, HandlerError, Publisher, Received, Subscriber, SubscriberConfig,
};
use tokio::io::AsyncBufReadExt;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tail_prints_live_events_matching_the_pattern() {
    let bus = test_bus("tail").await;
    let tail = Tail::open(&bus, "midplane.group.#").await.unwrap();
    let opts = TailOptions {
        pattern: "midplane.group.#".into(),
        format: Format::Json,
        count: Some(2),
    };
    let printer = tokio::spawn(async move {
        let mut out = Vec::new();
        let n = tail
            .run(&opts, &mut out, std::future::pending())
            .await
            .unwrap();
        (n, String::from_utf8(out).unwrap())
    });
    let publisher = Publisher::connect(bus.clone()).await.unwrap();
    // Nobody but the tail binds group events; plugin events are not bound at all.
    let err = publisher
        .publish(&PluginUpdated::example())
        .await
        .unwrap_err();
    assert!(matches!(err, BusError::Unroutable { .. }), "{err}");
    let a = publisher
        .publish(&GroupRolloutCompleted::example())
        .await
        .unwrap();
    let b = publisher.publish(&GroupFailover::example()).await.unwrap();
    let (n, text) = tokio::time::timeout(Duration::from_secs(10), printer)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(n, 2);
    let lines: Vec<Envelope> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2, "{text}");
    assert_eq!(lines[0], a);
    assert_eq!(lines[1].id, b.id);
    assert_eq!(lines[1].event_type, GroupFailover::TYPE);

    // Text format through the CLI entry point, read live from a pipe, stopped by its stop future.
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let (mut writer, reader) = tokio::io::duplex(64 * 1024);
    let bus2 = bus.clone();
    let cli = tokio::spawn(async move {
        let opts = TailOptions {
            pattern: "midplane.*.failover".into(),
            ..Default::default()
        };
        events_tail(&bus2, &opts, &mut writer, async {
            let _ = stop_rx.await;
        })
        .await
        .unwrap()
    });
    let failover = eventually_publish(&publisher).await;
    let mut lines = tokio::io::BufReader::new(reader).lines();
    let line = tokio::time::timeout(Duration::from_secs(10), lines.next_line())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert!(
        line.contains("midplane.group.failover")
            && line.contains(&failover.id)
            && line.contains("groups/shop/cache-redis-0"),
        "{line}"
    );
    stop_tx.send(()).unwrap();
    let n = tokio::time::timeout(Duration::from_secs(10), cli)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(n, 1);
    publisher.close().await.unwrap();
    delete_exchange(&bus).await.unwrap();
}

/// Publishes a failover event once the CLI's tail queue is bound (the publish is unroutable
/// until then).
async fn eventually_publish(publisher: &Publisher) -> Envelope {
    for _ in 0..200 {
        match publisher.publish(&GroupFailover::example()).await {
            Ok(e) => return e,
            Err(BusError::Unroutable { .. }) => tokio::time::sleep(Duration::from_millis(25)).await,
            Err(e) => panic!("{e}"),
        }
    }
    panic!("the tail queue was never bound");
}

#[test]
fn tail_patterns_are_validated() {
    assert!(validate_pattern("midplane.group.#").is_ok());
    assert!(validate_pattern("#").is_ok());
    assert!(validate_pattern("midplane.*.failed").is_ok());
    assert!(validate_pattern("midplane..x").is_err());
    assert!(validate_pattern("midplane.gr*").is_err());
    assert!(validate_pattern("").is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_waits_for_running_handlers_and_acks_them() {
    let bus = test_bus("drain").await;
    let started = Arc::new(AtomicUsize::new(0));
    let finished = Arc::new(AtomicUsize::new(0));
    let handler = {
        let (started, finished) = (started.clone(), finished.clone());
        move |r: Received| {
            let (started, finished) = (started.clone(), finished.clone());
            async move {
                r.event.decode::<PluginUpdated>()?;
                started.fetch_add(1, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(400)).await;
                finished.fetch_add(1, Ordering::SeqCst);
                Ok::<(), HandlerError>(())
            }
        }
    };
    let mut cfg = SubscriberConfig::new("drain", &[PluginUpdated::TYPE]);
    cfg.concurrency = 4;
    let sub = Subscriber::start(&bus, cfg, handler).await.unwrap();
    let publisher = Publisher::connect(bus.clone()).await.unwrap();
    for n in 0..4 {
        publisher.publish(&plugin_event("redis", n)).await.unwrap();
    }
    eventually("four handlers running", Duration::from_secs(10), || {
        let n = started.load(Ordering::SeqCst);
        async move { n == 4 }
    })
    .await;
    assert_eq!(finished.load(Ordering::SeqCst), 0);
    let queues = sub.queues().clone();
    sub.shutdown().await.unwrap();
    assert_eq!(
        finished.load(Ordering::SeqCst),
        4,
        "shutdown returned before handlers finished"
    );
    // Every handled event was acked before the connection closed: nothing comes back.
    assert_eq!(
        queue_depth(&bus, &queue_name(&bus.exchange, "drain"))
            .await
            .unwrap(),
        Some(0)
    );
    delete_subscriber(&bus, &queues).await.unwrap();
    publisher.close().await.unwrap();
    delete_exchange(&bus).await.unwrap();
}
