//! The bus reports published, confirmed, returned, consumed, retried, dead-lettered and handler
//! latency through the `metrics` facade. Own test binary: it installs the global recorder.

mod common;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{eventually, plugin_event, test_bus};
use metrics::{Counter, Gauge, Histogram, Key, KeyName, Metadata, Recorder, SharedString, Unit};
use midplane_bus::catalogue::{AppApplied, Event, PluginUpdated};
use midplane_bus::metrics as m;
use midplane_bus::topology::{delete_exchange, delete_subscriber};
use midplane_bus::{HandlerError, Publisher, Received, Subscriber, SubscriberConfig};

/// Sums every counter and counts histogram samples by metric name and labels.
#[derive(Default)]
struct Capture {
    counters: Mutex<HashMap<String, Arc<Cell>>>,
    histograms: Mutex<HashMap<String, Arc<Cell>>>,
}

#[derive(Default)]
struct Cell(AtomicU64);

impl metrics::CounterFn for Cell {
    fn increment(&self, v: u64) {
        self.0.fetch_add(v, Ordering::Relaxed);
    }
    fn absolute(&self, v: u64) {
        self.0.fetch_max(v, Ordering::Relaxed);
    }
}

impl metrics::HistogramFn for Cell {
    fn record(&self, _v: f64) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }
}

impl metrics::GaugeFn for Cell {
    fn increment(&self, _: f64) {}
    fn decrement(&self, _: f64) {}
    fn set(&self, _: f64) {}
}

fn key_text(key: &Key) -> String {
    let mut labels: Vec<String> = key
        .labels()
        .map(|l| format!("{}={}", l.key(), l.value()))
        .collect();
    labels.sort();
    format!("{}{{{}}}", key.name(), labels.join(","))
}

impl Recorder for &'static Capture {
    fn describe_counter(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_gauge(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_histogram(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn register_counter(&self, key: &Key, _: &Metadata<'_>) -> Counter {
        let cell = self
            .counters
            .lock()
            .expect("metrics map")
            .entry(key_text(key))
            .or_default()
            .clone();
        Counter::from_arc(cell)
    }
    fn register_gauge(&self, _: &Key, _: &Metadata<'_>) -> Gauge {
        Gauge::from_arc(Arc::new(Cell::default()))
    }
    fn register_histogram(&self, key: &Key, _: &Metadata<'_>) -> Histogram {
        let cell = self
            .histograms
            .lock()
            .expect("metrics map")
            .entry(key_text(key))
            .or_default()
            .clone();
        Histogram::from_arc(cell)
    }
}

impl Capture {
    fn counter(&self, text: &str) -> u64 {
        self.counters
            .lock()
            .expect("metrics map")
            .get(text)
            .map_or(0, |c| c.0.load(Ordering::Relaxed))
    }
    fn samples(&self, text: &str) -> u64 {
        self.histograms
            .lock()
            .expect("metrics map")
            .get(text)
            .map_or(0, |c| c.0.load(Ordering::Relaxed))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bus_operations_are_counted() {
    let capture: &'static Capture = Box::leak(Box::default());
    metrics::set_global_recorder(capture).expect("no other recorder in this test binary");
    m::describe();

    let bus = test_bus("metrics").await;
    let mut cfg = SubscriberConfig::new("metered", &[PluginUpdated::TYPE]);
    cfg.max_attempts = 2;
    cfg.retry_delays = vec![Duration::from_millis(50)];
    let handler = |r: Received| async move {
        let p: PluginUpdated = r.event.decode()?;
        if p.plugin == "broken" {
            return Err(HandlerError::new("always fails"));
        }
        Ok(())
    };
    let sub = Subscriber::start(&bus, cfg, handler).await.unwrap();
    let publisher = Publisher::connect(bus.clone()).await.unwrap();
    publisher.publish(&plugin_event("redis", 1)).await.unwrap();
    publisher.publish(&plugin_event("broken", 2)).await.unwrap();
    assert!(publisher.publish(&AppApplied::example()).await.is_err());
    eventually(
        "the failing event dead-lettered",
        Duration::from_secs(10),
        || {
            let n = sub.stats().dead_lettered;
            async move { n == 1 }
        },
    )
    .await;

    let plugin = "type=midplane.plugin.updated";
    assert_eq!(capture.counter(&format!("{}{{{plugin}}}", m::PUBLISHED)), 2);
    assert_eq!(capture.counter(&format!("{}{{{plugin}}}", m::CONFIRMED)), 2);
    assert_eq!(
        capture.counter(&format!("{}{{type=midplane.app.applied}}", m::PUBLISHED)),
        1
    );
    assert_eq!(
        capture.counter(&format!("{}{{type=midplane.app.applied}}", m::RETURNED)),
        1
    );
    assert_eq!(
        capture.counter(&format!("{}{{type=midplane.app.applied}}", m::CONFIRMED)),
        0
    );
    let sub_label = "subscriber=metered";
    // good once, broken twice (first try + one retry)
    assert_eq!(
        capture.counter(&format!("{}{{{sub_label}}}", m::CONSUMED)),
        3
    );
    assert_eq!(
        capture.counter(&format!("{}{{{sub_label}}}", m::RETRIED)),
        1
    );
    assert_eq!(
        capture.counter(&format!("{}{{{sub_label}}}", m::DEAD_LETTERED)),
        1
    );
    assert_eq!(
        capture.samples(&format!("{}{{outcome=ok,{sub_label}}}", m::HANDLER_SECONDS)),
        1
    );
    assert_eq!(
        capture.samples(&format!(
            "{}{{outcome=error,{sub_label}}}",
            m::HANDLER_SECONDS
        )),
        2
    );

    let queues = sub.queues().clone();
    sub.shutdown().await.unwrap();
    delete_subscriber(&bus, &queues).await.unwrap();
    publisher.close().await.unwrap();
    delete_exchange(&bus).await.unwrap();
}
