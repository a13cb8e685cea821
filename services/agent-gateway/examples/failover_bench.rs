//! Forced failover after the primary's process dies (SIGKILL), against real
//! redis-server processes (1 primary + 2 replicas), both agents per pod and
//! the gateway. A detector polls the gateway's GetRoles (fresh) like a Group
//! controller would; when no primary answers it calls Failover.
//!
//! Prints, per round: detection (kill → no primary seen), failover call
//! (Failover request → promoted), detection-to-promotion (kill → promoted),
//! and how long the restarted old primary took to be fenced into a replica.
//! Baseline in the same run: one healthy GetRoles round trip.
//!
//!   cargo run --release -p midplane-agent-gateway --example failover_bench -- [rounds] [poll_ms]
//!
//! Target: detection to promotion under 3 s.

#[path = "../tests/support/mod.rs"]
mod support;

use std::time::{Duration, Instant};

use midplane_proto::agent::Role;
use midplane_proto::gateway as gw;
use support::{Cluster, GatewayClient, group_ref};

async fn roles(client: &mut GatewayClient) -> anyhow::Result<gw::GetRolesResponse> {
    Ok(client
        .get_roles(gw::GroupRequest {
            group: group_ref(),
            timeout_ms: 500,
            fresh: true,
        })
        .await?
        .into_inner())
}

fn pct(v: &mut [Duration], p: f64) -> f64 {
    v.sort();
    let i = ((v.len() as f64 - 1.0) * p).round() as usize;
    v[i].as_secs_f64() * 1e3
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let rounds: usize = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(5);
    let poll = Duration::from_millis(args.get(2).and_then(|a| a.parse().ok()).unwrap_or(100));
    let mut cluster = Cluster::start(2).await;
    let mut client = cluster.client().await;

    let mut base = Vec::new();
    for _ in 0..50 {
        let t = Instant::now();
        roles(&mut client).await?;
        base.push(t.elapsed());
    }
    println!(
        "baseline: healthy GetRoles (fresh, 3 pods) p50 {:.2} ms, p99 {:.2} ms; detector polls every {} ms",
        pct(&mut base, 0.5),
        pct(&mut base, 0.99),
        poll.as_millis()
    );
    println!(
        "{:>5} {:>10} {:>14} {:>16} {:>22} {:>20} {:>22}",
        "round",
        "killed",
        "detection ms",
        "failover ms",
        "detect->promote ms",
        "gateway-reported ms",
        "old primary fenced ms"
    );
    let mut worst = Duration::ZERO;
    for round in 1..=rounds {
        let before = roles(&mut client).await?;
        let victim = before.primary_instance.clone();
        anyhow::ensure!(
            !victim.is_empty(),
            "no primary before round {round}: {before:#?}"
        );
        // The detector polls on its own clock, as a controller would; the kill
        // lands at an arbitrary point of its cycle.
        let mut detector = client.clone();
        let (tx, rx) = tokio::sync::oneshot::channel();
        let task = tokio::spawn(async move {
            loop {
                let r = roles(&mut detector).await?;
                if r.primary_instance.is_empty() {
                    let detected = Instant::now();
                    let out = detector
                        .failover(gw::FailoverRequest {
                            group: group_ref(),
                            candidate_instance: String::new(),
                            timeout_ms: 1_000,
                            failed_primary_instance: String::new(),
                        })
                        .await?
                        .into_inner();
                    let _ = tx.send((detected, Instant::now(), out));
                    return anyhow::Ok(());
                }
                tokio::time::sleep(poll).await;
            }
        });
        let jitter = (round as u64 * 37) % poll.as_millis().max(1) as u64;
        tokio::time::sleep(Duration::from_millis(jitter)).await;
        let killed = Instant::now();
        cluster.pod_mut(&victim).redis.kill();
        let (detected, promoted, out) = rx.await?;
        task.await??;
        anyhow::ensure!(out.success, "failover failed: {out:#?}");
        let total = promoted - killed;
        worst = worst.max(total);

        // The old primary returns as a primary; its agent must demote it.
        let back = Instant::now();
        cluster.pod_mut(&victim).redis.restart().await?;
        let fenced = loop {
            let r = roles(&mut client).await?;
            let v = r
                .pods
                .iter()
                .find(|p| p.target.as_ref().is_some_and(|t| t.instance == victim))
                .and_then(|p| p.role.clone());
            if v.is_some_and(|v| v.role == Role::Replica as i32 && v.primary_link_up)
                && r.primary_instance == out.new_primary_instance
            {
                break back.elapsed();
            }
            anyhow::ensure!(
                back.elapsed() < Duration::from_secs(15),
                "old primary {victim} never rejoined"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        println!(
            "{:>5} {:>10} {:>14.1} {:>16.1} {:>22.1} {:>20} {:>22.1}",
            round,
            victim,
            (detected - killed).as_secs_f64() * 1e3,
            (promoted - detected).as_secs_f64() * 1e3,
            total.as_secs_f64() * 1e3,
            out.detection_to_promotion_ms,
            fenced.as_secs_f64() * 1e3
        );
    }
    println!();
    println!(
        "worst kill-to-promotion: {:.1} ms (target < 3000 ms) -> {}",
        worst.as_secs_f64() * 1e3,
        if worst < Duration::from_secs(3) {
            "PASS"
        } else {
            "FAIL"
        }
    );
    Ok(())
}
