//! Measuring helpers: CPU per event, latency percentiles, pacing, load average.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

pub(crate) struct Figures {
    pub(crate) events_per_s: f64,
    /// CPU time per event: this process (client) and the broker.
    pub(crate) client_us: f64,
    pub(crate) broker_us: f64,
}

/// utime + stime of a process in seconds, from /proc (Linux).
pub(crate) fn cpu_seconds(pid: &str) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (which may contain spaces) start past the last ')'.
    let rest = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
    Some(ticks / 100.0)
}

/// The broker's Erlang VM, if it runs on this machine: the busiest `beam.smp` (rabbitmqctl
/// runs short-lived ones too).
pub(crate) fn broker_pid() -> Option<String> {
    std::fs::read_dir("/proc")
        .ok()?
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            name.chars().all(|c| c.is_ascii_digit()).then_some(())?;
            let comm = std::fs::read_to_string(e.path().join("comm")).ok()?;
            (comm.trim() == "beam.smp").then_some(())?;
            Some((cpu_seconds(&name)?, name))
        })
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, pid)| pid)
}

/// Measures CPU of this process and the broker across a phase.
pub(crate) struct CpuMeter {
    broker: Option<String>,
    client0: f64,
    broker0: f64,
}

impl CpuMeter {
    pub(crate) fn start() -> Self {
        let broker = broker_pid();
        Self {
            client0: cpu_seconds("self").unwrap_or_default(),
            broker0: broker.as_deref().and_then(cpu_seconds).unwrap_or_default(),
            broker,
        }
    }

    pub(crate) fn finish(self, events: u64, elapsed: Duration) -> Figures {
        let client = cpu_seconds("self").unwrap_or_default() - self.client0;
        let broker = self
            .broker
            .as_deref()
            .and_then(cpu_seconds)
            .unwrap_or_default()
            - self.broker0;
        Figures {
            events_per_s: events as f64 / elapsed.as_secs_f64(),
            client_us: client * 1e6 / events as f64,
            broker_us: broker * 1e6 / events as f64,
        }
    }
}

pub(crate) struct Latency {
    pub(crate) p50: Duration,
    pub(crate) p99: Duration,
    pub(crate) max: Duration,
    pub(crate) achieved_rate: f64,
}

pub(crate) fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let idx = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[idx]
}

pub(crate) async fn wait_for(counter: &AtomicU64, n: u64, what: &str) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(300);
    while counter.load(Ordering::Relaxed) < n {
        if Instant::now() > deadline {
            bail!(
                "{what}: only {} of {n} after 300 s",
                counter.load(Ordering::Relaxed)
            );
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    Ok(())
}

/// Publishes at `rate`/s for `secs` (ticks of 1 ms), each publish on its own task so a slow
/// confirm never delays the schedule; returns publish→handled latencies.
pub(crate) async fn paced<F, Fut>(rate: u64, secs: u64, publish_one: F) -> Result<f64>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Result<()>> + Send + 'static,
{
    let total = rate * secs;
    let per_tick = rate as f64 / 1000.0;
    let mut interval = tokio::time::interval(Duration::from_millis(1));
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let start = Instant::now();
    let mut sent = 0u64;
    let mut tasks = Vec::with_capacity(total as usize);
    let mut tick = 0u64;
    while sent < total {
        interval.tick().await;
        tick += 1;
        let due = ((tick as f64 * per_tick) as u64).min(total);
        while sent < due {
            tasks.push(tokio::spawn(publish_one()));
            sent += 1;
        }
    }
    let achieved = total as f64 / start.elapsed().as_secs_f64();
    for t in tasks {
        t.await.context("publish task")??;
    }
    Ok(achieved)
}

pub(crate) fn latency_of(samples: Vec<Duration>, achieved_rate: f64) -> Latency {
    let mut s = samples;
    s.sort();
    Latency {
        p50: percentile(&s, 0.50),
        p99: percentile(&s, 0.99),
        max: s.last().copied().unwrap_or_default(),
        achieved_rate,
    }
}

/// The round with the median throughput.
pub(crate) fn median(mut v: Vec<Figures>) -> Figures {
    v.sort_by(|a, b| a.events_per_s.total_cmp(&b.events_per_s));
    let mid = v.len() / 2;
    v.swap_remove(mid)
}

/// 1-minute load average: other work on a 2-core machine skews every figure.
pub(crate) fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next().map(str::to_owned))
        .unwrap_or_else(|| "?".to_owned())
}
