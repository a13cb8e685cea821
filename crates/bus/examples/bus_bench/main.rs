//! Bus benchmark against the real broker, with a raw lapin publish/consume loop measured in the
//! same run as the baseline.
//!
//!   cargo run --release -p midplane-bus --example bus_bench [-- EVENTS [RATE] [SECONDS]]
//!
//! 1. throughput: EVENTS (default 50,000) events published with confirms and consumed with
//!    manual acks through a quorum queue — raw lapin loop, then the bus (Publisher + Subscriber).
//! 2. latency: RATE events/s (default 5,000) for SECONDS (default 5), publish → handled, both.
//!
//! Targets (issue 5): bus ≥ 20,000 events/s, ≥ 80 % of raw, p99 publish→handled < 20 ms.

mod measure;
mod raw;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use futures::StreamExt;
use midplane_bus::catalogue::{Event, PluginUpdated};
use midplane_bus::topology::{delete_exchange, delete_subscriber};
use midplane_bus::{
    BusConfig, Envelope, HandlerError, Publisher, Received, Subscriber, SubscriberConfig,
};

use measure::{CpuMeter, Figures, Latency, latency_of, loadavg, median, paced, wait_for};
use raw::{raw_latency, raw_throughput};

const WINDOW: usize = 512;
const PREFETCH: u16 = 512;

fn bus_config(tag: &str) -> Result<BusConfig> {
    let mut cfg = BusConfig::from_env()?.with_source("/midplane/bench");
    cfg.exchange = format!(
        "midplane.bench.{tag}.{}",
        &uuid::Uuid::new_v4().simple().to_string()[..8]
    );
    Ok(cfg)
}

fn sample_event() -> Result<Envelope> {
    Ok(Envelope::new("/midplane/bench", &PluginUpdated::example())?)
}

/// A fresh envelope per event: new id and time, as the bus would do.
fn fresh(template: &Envelope) -> Envelope {
    let mut e = template.clone();
    e.id = uuid::Uuid::now_v7().to_string();
    e.time = chrono::Utc::now();
    e
}

async fn bus_subscriber(
    cfg: &BusConfig,
    on_event: impl Fn(&Received) + Send + Sync + 'static,
) -> Result<Subscriber> {
    let mut sub = SubscriberConfig::new("bench", &[PluginUpdated::TYPE]);
    sub.prefetch = PREFETCH;
    sub.concurrency = 256;
    let on_event = Arc::new(on_event);
    let handler = move |r: Received| {
        on_event(&r);
        std::future::ready(Ok::<(), HandlerError>(()))
    };
    Ok(Subscriber::start(cfg, sub, handler).await?)
}

async fn bus_throughput(events: u64, template: &Envelope) -> Result<Figures> {
    let cfg = bus_config("bus")?;
    let handled = Arc::new(AtomicU64::new(0));
    let h = handled.clone();
    let sub = bus_subscriber(&cfg, move |_| {
        h.fetch_add(1, Ordering::Relaxed);
    })
    .await?;
    let publisher = Publisher::connect(cfg.clone()).await?;
    let cpu = CpuMeter::start();
    let start = Instant::now();
    let results: Vec<_> = futures::stream::iter(0..events)
        .map(|_| {
            let env = fresh(template);
            let p = publisher.clone();
            async move { p.publish_envelope(&env).await }
        })
        .buffer_unordered(WINDOW)
        .collect()
        .await;
    if let Some(Err(e)) = results.into_iter().find(std::result::Result::is_err) {
        bail!("bus publish failed: {e}");
    }
    wait_for(&handled, events, "bus consume").await?;
    let figures = cpu.finish(events, start.elapsed());
    let stats = sub.stats();
    let queues = sub.queues().clone();
    sub.shutdown().await?;
    delete_subscriber(&cfg, &queues).await?;
    publisher.close().await?;
    delete_exchange(&cfg).await?;
    if stats.handled != events || stats.duplicates != 0 {
        bail!(
            "bus handled {} events ({} duplicates), expected {events}",
            stats.handled,
            stats.duplicates
        );
    }
    Ok(figures)
}

async fn bus_latency(rate: u64, secs: u64, template: &Envelope) -> Result<Latency> {
    let cfg = bus_config("buslat")?;
    let samples = Arc::new(std::sync::Mutex::new(Vec::with_capacity(
        (rate * secs) as usize,
    )));
    let count = Arc::new(AtomicU64::new(0));
    let (s, c) = (samples.clone(), count.clone());
    let sub = bus_subscriber(&cfg, move |r| {
        let lat = (chrono::Utc::now() - r.event.time)
            .to_std()
            .unwrap_or_default();
        if let Ok(mut v) = s.lock() {
            v.push(lat);
        }
        c.fetch_add(1, Ordering::Relaxed);
    })
    .await?;
    let publisher = Publisher::connect(cfg.clone()).await?;
    let template = template.clone();
    let p = publisher.clone();
    let achieved = paced(rate, secs, move || {
        let (p, env) = (p.clone(), fresh(&template));
        async move { Ok(p.publish_envelope(&env).await?) }
    })
    .await?;
    wait_for(&count, rate * secs, "bus latency consume").await?;
    let queues = sub.queues().clone();
    sub.shutdown().await?;
    delete_subscriber(&cfg, &queues).await?;
    publisher.close().await?;
    delete_exchange(&cfg).await?;
    let samples = std::mem::take(&mut *samples.lock().map_err(|_| anyhow::anyhow!("poisoned"))?);
    Ok(latency_of(samples, achieved))
}

const ROUNDS: usize = 3;

/// The round with the median p99.
fn median_latency(mut v: Vec<Latency>) -> Latency {
    v.sort_by_key(|l| l.p99);
    let mid = v.len() / 2;
    v.swap_remove(mid)
}

fn verdict(ok: bool) -> &'static str {
    if ok { "PASS" } else { "FAIL" }
}

#[tokio::main(flavor = "multi_thread")]
async fn main() -> Result<()> {
    let mut args = std::env::args().skip(1);
    let events: u64 = args
        .next()
        .map(|a| a.parse())
        .transpose()
        .context("EVENTS")?
        .unwrap_or(50_000);
    let rate: u64 = args
        .next()
        .map(|a| a.parse())
        .transpose()
        .context("RATE")?
        .unwrap_or(5_000);
    let secs: u64 = args
        .next()
        .map(|a| a.parse())
        .transpose()
        .context("SECONDS")?
        .unwrap_or(5);
    let template = sample_event()?;
    let size = template.to_bytes()?.len();
    println!("load average (1 min) at start: {}", loadavg());
    println!(
        "bus_bench: {events} events of {size} bytes, quorum queue, confirms + manual acks, window {WINDOW}, prefetch {PREFETCH}"
    );

    // Warm-up so neither side pays for the broker's first queue creation.
    raw_throughput(events / 10, &template).await?;

    // Alternate raw and bus rounds so background load on the shared machine hits both alike;
    // report the median round of each.
    let mut raws = Vec::new();
    let mut buses = Vec::new();
    for round in 1..=ROUNDS {
        let r = raw_throughput(events, &template).await?;
        let b = bus_throughput(events, &template).await?;
        println!(
            "round {round}: raw {:>7.0}/s (cpu/event: client {:>5.1} µs, broker {:>5.1} µs)  bus {:>7.0}/s (client {:>5.1} µs, broker {:>5.1} µs)  load {}",
            r.events_per_s,
            r.client_us,
            r.broker_us,
            b.events_per_s,
            b.client_us,
            b.broker_us,
            loadavg()
        );
        raws.push(r);
        buses.push(b);
    }
    let raw = median(raws);
    let bus = median(buses);
    let ratio = bus.events_per_s / raw.events_per_s;
    println!(
        "throughput  raw lapin : {:>9.0} events/s (median of {ROUNDS})",
        raw.events_per_s
    );
    println!(
        "throughput  bus       : {:>9.0} events/s   [{}: target >= 20000]",
        bus.events_per_s,
        verdict(bus.events_per_s >= 20_000.0)
    );
    println!(
        "ratio bus/raw         : {:>9.1} %          [{}: target >= 80 %]",
        ratio * 100.0,
        verdict(ratio >= 0.8)
    );

    // Latency rounds alternate too; the round with the median p99 is reported for each.
    let mut raw_lats = Vec::new();
    let mut bus_lats = Vec::new();
    for round in 1..=ROUNDS {
        let r = raw_latency(rate, secs, &template).await?;
        let b = bus_latency(rate, secs, &template).await?;
        println!(
            "latency round {round}: raw p99 {:.2} ms  bus p99 {:.2} ms  load {}",
            r.p99.as_secs_f64() * 1e3,
            b.p99.as_secs_f64() * 1e3,
            loadavg()
        );
        raw_lats.push(r);
        bus_lats.push(b);
    }
    let raw_lat = median_latency(raw_lats);
    let bus_lat = median_latency(bus_lats);
    for (name, l) in [("raw lapin", &raw_lat), ("bus      ", &bus_lat)] {
        println!(
            "latency {name} @ {rate}/s (achieved {:.0}/s, {} events): p50 {:.2} ms  p99 {:.2} ms  max {:.2} ms",
            l.achieved_rate,
            rate * secs,
            l.p50.as_secs_f64() * 1e3,
            l.p99.as_secs_f64() * 1e3,
            l.max.as_secs_f64() * 1e3
        );
    }
    println!(
        "bus p99 publish→handled: {:.2} ms [{}: target < 20 ms]",
        bus_lat.p99.as_secs_f64() * 1e3,
        verdict(bus_lat.p99 < Duration::from_millis(20))
    );
    Ok(())
}
