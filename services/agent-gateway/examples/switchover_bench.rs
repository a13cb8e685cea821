//! Planned switchover under steady write load, against real redis-server
//! processes (1 primary + 2 replicas), both agents per pod, and the gateway.
//!
//! Writers SET unique keys as fast as they can; each OK is an acknowledged
//! write. After each switchover the bench checks every acknowledged key on the
//! new primary (lost = acknowledged but missing) and reports the longest gap
//! between two acknowledged writes around the switchover (the client-visible
//! write-unavailability window), next to the longest gap in the steady second
//! before it (the baseline of the same run).
//!
//!   cargo run --release -p midplane-agent-gateway --example switchover_bench -- [rounds] [writers]
//!
//! Targets: 0 acknowledged writes lost, window under 1 s.

#[path = "../tests/support/mod.rs"]
mod support;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use midplane_agent_core::resp::{Connection, parse_info};
use midplane_proto::gateway as gw;
use support::{Cluster, group_ref};

type Acks = Arc<Mutex<Vec<(String, Instant)>>>;

async fn find_primary(addrs: &[String]) -> Connection {
    loop {
        for a in addrs {
            if let Ok(mut c) = Connection::connect(a, None, Duration::from_millis(200)).await
                && let Ok(text) = c.text(&["INFO", "replication"]).await
                && parse_info(&text).get("role").map(String::as_str) == Some("master")
            {
                return c;
            }
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

async fn writer(id: usize, addrs: Vec<String>, stop: Arc<AtomicBool>, acks: Acks) {
    let mut conn = find_primary(&addrs).await;
    let mut n = 0u64;
    let mut local = Vec::with_capacity(1024);
    while !stop.load(Ordering::Relaxed) {
        let key = format!("w{id}:{n}");
        match conn.cmd(&["SET", &key, "v"]).await {
            Ok(_) => {
                local.push((key, Instant::now()));
                n += 1;
                if local.len() >= 256 {
                    acks.lock().expect("acks").append(&mut local);
                }
            }
            // READONLY on a demoted primary, or a dropped connection: find the new one.
            Err(_) => conn = find_primary(&addrs).await,
        }
    }
    acks.lock().expect("acks").append(&mut local);
}

fn max_gap(acks: &[(String, Instant)], from: Instant, to: Instant) -> Duration {
    let mut times: Vec<Instant> = acks
        .iter()
        .map(|(_, t)| *t)
        .filter(|t| *t >= from && *t <= to)
        .collect();
    times.sort();
    let mut gap = Duration::ZERO;
    let mut prev = from;
    for t in times {
        gap = gap.max(t - prev);
        prev = t;
    }
    gap.max(to - prev)
}

async fn lost(primary: &str, keys: &[String]) -> anyhow::Result<usize> {
    let mut c = Connection::connect(primary, None, Duration::from_secs(5)).await?;
    let mut missing = 0;
    for chunk in keys.chunks(1000) {
        let mut args = vec!["EXISTS"];
        args.extend(chunk.iter().map(String::as_str));
        let n: usize = c
            .cmd(&args)
            .await?
            .as_text()
            .and_then(|t| t.parse().ok())
            .unwrap_or(0);
        missing += chunk.len() - n;
    }
    Ok(missing)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let rounds: usize = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(5);
    let writers: usize = args.get(2).and_then(|a| a.parse().ok()).unwrap_or(4);
    let cluster = Cluster::start(2).await;
    let mut client = cluster.client().await;
    let addrs: Vec<String> = cluster.pods.iter().map(|p| p.redis.address()).collect();

    let acks: Acks = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let tasks: Vec<_> = (0..writers)
        .map(|i| tokio::spawn(writer(i, addrs.clone(), stop.clone(), acks.clone())))
        .collect();

    println!("planned switchover under write load: {writers} writers, {rounds} rounds");
    println!(
        "{:>5} {:>18} {:>18} {:>14} {:>17} {:>10} {:>8}",
        "round",
        "from -> to",
        "steady max gap ms",
        "write_pause ms",
        "unavailable ms",
        "acked",
        "lost"
    );
    let mut worst = Duration::ZERO;
    let mut total_lost = 0;
    let mut total_acked = 0;
    for round in 1..=rounds {
        let steady_from = Instant::now();
        tokio::time::sleep(Duration::from_secs(1)).await;
        let t0 = Instant::now();
        let out = client
            .switchover(gw::SwitchoverRequest {
                group: group_ref(),
                candidate_instance: String::new(),
                timeout_ms: 5_000,
            })
            .await?
            .into_inner();
        let t1 = Instant::now();
        anyhow::ensure!(out.success, "switchover failed: {out:#?}");
        tokio::time::sleep(Duration::from_millis(500)).await;
        let end = Instant::now();
        let snapshot = acks.lock().expect("acks").clone();
        let steady = max_gap(&snapshot, steady_from, t0);
        let window = max_gap(&snapshot, t0, end);
        // Every write acknowledged so far must be on the new primary.
        let keys: Vec<String> = snapshot.iter().map(|(k, _)| k.clone()).collect();
        let new_primary = cluster.pod(&out.new_primary_instance).redis.address();
        let missing = lost(&new_primary, &keys).await?;
        total_lost += missing;
        total_acked = keys.len();
        worst = worst.max(window);
        println!(
            "{:>5} {:>18} {:>18.1} {:>14} {:>17.1} {:>10} {:>8}",
            round,
            format!(
                "{} -> {}",
                out.old_primary_instance.trim_start_matches("cache-0-"),
                out.new_primary_instance.trim_start_matches("cache-0-")
            ),
            steady.as_secs_f64() * 1e3,
            out.write_pause_ms,
            window.as_secs_f64() * 1e3,
            keys.len(),
            missing
        );
        let _ = t1;
    }
    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        t.await?;
    }
    let elapsed_writes = total_acked;
    println!();
    println!(
        "acknowledged writes: {elapsed_writes}; lost: {total_lost} (target 0) -> {}",
        if total_lost == 0 { "PASS" } else { "FAIL" }
    );
    println!(
        "worst write-unavailability window: {:.1} ms (target < 1000 ms) -> {}",
        worst.as_secs_f64() * 1e3,
        if worst < Duration::from_secs(1) {
            "PASS"
        } else {
            "FAIL"
        }
    );
    Ok(())
}
