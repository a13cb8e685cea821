//! The platform's three loops on real processes, one measurement each, with
//! the baseline each is compared against taken in the same run:
//!
//! - hot reload: a dynamic parameter (maxmemory) changed on the App, until
//!   `CONFIG GET` on every instance shows it; against one `CONFIG SET`
//!   round-trip on the same redis-server;
//! - rolling restart: a restart-required parameter (databases) changed while a
//!   writer writes through the client Service; the longest time without an
//!   acknowledged write, and every acknowledged key read back afterwards;
//! - failover: the primary's processes killed twice (the second time the
//!   kubelet's crash back-off keeps them down, as in cli/tests/dev_loops.rs),
//!   until a write through the client Service succeeds again.
//!
//! (b) and (c) are compared with a bare redis-server's spawn-to-PING time:
//! the floor of any restart on this machine.

use crate::dev::{
    GROUP, kill_all, pid, ready_pod, ready_pods, redis_addr, set_parameter, settled, wait_for,
};
use crate::resp::{self, Reply, config_get, longest_outage, lost_acked, write_load};
use anyhow::Context as _;
use k8s_openapi::api::core::v1::{Event, Pod, Service};
use kube::api::{Api, ListParams};
use midplane_api::{App, Group};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// The new maxmemory, and how Redis reports it.
const MAXMEMORY: (&str, &str) = ("300mb", "314572800");

/// The objects of one `midplane dev`'s example App.
pub struct Ctx {
    pub pods: Api<Pod>,
    pub groups: Api<Group>,
    pub apps: Api<App>,
    pub services: Api<Service>,
    pub events: Api<Event>,
}

impl Ctx {
    pub fn new(client: kube::Client) -> Self {
        Self {
            pods: Api::namespaced(client.clone(), "default"),
            groups: Api::namespaced(client.clone(), "default"),
            apps: Api::namespaced(client.clone(), "default"),
            services: Api::namespaced(client.clone(), "default"),
            events: Api::namespaced(client, "default"),
        }
    }

    /// `<ClusterIP>:6379` of the client Service, once a write through it succeeds.
    async fn service_addr(&self) -> anyhow::Result<String> {
        let svc = self.services.get(GROUP).await?;
        let ip = svc
            .spec
            .and_then(|s| s.cluster_ip)
            .context("the client Service has a ClusterIP")?;
        let addr = format!("{ip}:6379");
        wait_for(
            "a SET through the client Service",
            30,
            Duration::from_millis(50),
            || async { set_ok(&addr, "probe").await.then_some(()) },
        )
        .await?;
        Ok(addr)
    }
}

async fn set_ok(addr: &str, key: &str) -> bool {
    let reply = resp::command(addr, &["SET", key, "v"], Duration::from_secs(1)).await;
    matches!(reply, Ok(Reply::Simple(ref s)) if s == "OK")
}

pub fn median(v: &[Duration]) -> Duration {
    let mut v = v.to_vec();
    crate::percentile(&mut v, 50.0)
}

/// A bare redis-server's spawn-to-PING, median of three.
pub async fn restart_floor() -> anyhow::Result<Duration> {
    let mut v = Vec::new();
    for _ in 0..3 {
        v.push(resp::spawn_to_ping().await?);
    }
    Ok(median(&v))
}

pub struct Reload {
    /// App change → the new value on every instance.
    pub live: Duration,
    /// One `CONFIG SET` round-trip on the primary's redis-server (median of 5).
    pub config_set: Duration,
    /// Instances whose redis-server pid changed.
    pub restarted: Vec<String>,
}

pub async fn reload(ctx: &Ctx) -> anyhow::Result<Reload> {
    let st = settled(&ctx.groups, 60).await?;
    let pods = ready_pods(&ctx.pods, 30).await?;
    let addrs: Vec<String> = pods.iter().filter_map(redis_addr).collect();
    anyhow::ensure!(addrs.len() == 3, "every Pod has an IP");
    let primary = st.primary.context("a primary")?;
    let primary_addr = ready_pod(&ctx.pods, &primary)
        .await
        .and_then(|p| redis_addr(&p))
        .context("the primary's Pod")?;
    let current = config_get(&primary_addr, "maxmemory")
        .await
        .context("CONFIG GET maxmemory on the primary")?;
    // The baseline sets the value it already has: the same work, no change.
    let mut rtts = Vec::new();
    for _ in 0..5 {
        let t = Instant::now();
        let reply = resp::command(
            &primary_addr,
            &["CONFIG", "SET", "maxmemory", &current],
            Duration::from_secs(2),
        )
        .await?;
        rtts.push(t.elapsed());
        anyhow::ensure!(reply == Reply::Simple("OK".into()), "CONFIG SET: {reply:?}");
    }

    let changed_at = Instant::now();
    set_parameter(&ctx.apps, "maxmemory", MAXMEMORY.0).await?;
    let live = wait_for(
        "maxmemory live on every instance",
        20,
        Duration::from_millis(5),
        || async {
            for a in &addrs {
                if config_get(a, "maxmemory").await.as_deref() != Some(MAXMEMORY.1) {
                    return None;
                }
            }
            Some(changed_at.elapsed())
        },
    )
    .await?;
    // Settled again: the reload verified, and no rollout started meanwhile.
    settled(&ctx.groups, 30).await?;
    let mut restarted = Vec::new();
    for p in &pods {
        let name = p.metadata.name.as_deref().unwrap_or_default();
        let now = ctx.pods.get(name).await.ok();
        if now.as_ref().and_then(|n| pid(n, "redis")) != pid(p, "redis") {
            restarted.push(name.to_string());
        }
    }
    Ok(Reload {
        live,
        config_set: median(&rtts),
        restarted,
    })
}

pub struct Rolling {
    /// App change → the rollout Complete.
    pub took: Duration,
    pub outage: Duration,
    pub attempts: usize,
    pub acked: usize,
    pub lost: usize,
    /// Switchover Events (a repeated reason folds into one Event's count).
    pub switchovers: i32,
}

pub async fn rolling(ctx: &Ctx) -> anyhow::Result<Rolling> {
    let before = settled(&ctx.groups, 60).await?;
    let before_hash = before.rollout.map(|r| r.target_hash);
    let addr = ctx.service_addr().await?;
    let stop = Arc::new(AtomicBool::new(false));
    let load = write_load(addr.clone(), "r", stop.clone());
    tokio::time::sleep(Duration::from_millis(500)).await;
    let changed_at = Instant::now();
    set_parameter(&ctx.apps, "databases", "32").await?;
    let done = wait_for(
        "the rollout Complete",
        180,
        Duration::from_millis(50),
        || async {
            let r = ctx.groups.get(GROUP).await.ok()?.status?.rollout?;
            (r.state == "Complete" && Some(&r.target_hash) != before_hash.as_ref()).then_some(())
        },
    )
    .await;
    let took = changed_at.elapsed();
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.store(true, Ordering::Relaxed);
    let seen = load.await?;
    done?;
    let switchovers = ctx
        .events
        .list(&ListParams::default())
        .await?
        .items
        .iter()
        .filter(|e| e.reason.as_deref() == Some("Switchover"))
        .map(|e| e.count.unwrap_or(1))
        .sum();
    // Read back through the Service: it routes to the primary.
    let lost = lost_acked(&addr, &seen).await?;
    Ok(Rolling {
        took,
        outage: longest_outage(&seen),
        attempts: seen.len(),
        acked: seen.iter().filter(|a| a.acked).count(),
        lost,
        switchovers,
    })
}

pub struct Failover {
    /// Second kill → the first write through the Service acknowledged.
    pub writes_again: Duration,
    pub outage: Duration,
    pub acked: usize,
    /// Acknowledged writes missing afterwards (replication is asynchronous:
    /// reported, not a failure).
    pub lost: usize,
    pub from: String,
    pub to: String,
}

pub async fn failover(ctx: &Ctx) -> anyhow::Result<Failover> {
    let st = settled(&ctx.groups, 60).await?;
    let from = st.primary.context("a primary")?;
    let addr = ctx.service_addr().await?;
    let first = ready_pod(&ctx.pods, &from)
        .await
        .context("the primary's Pod")?;
    // The kubelet restarts killed containers at once the first time (back
    // within the failover threshold: no failover); killed again once
    // restarted, its crash back-off (10 s) keeps them down.
    kill_all(&first);
    let restarted = wait_for(
        "the primary's processes restarted",
        30,
        Duration::from_millis(50),
        || async {
            let p = ready_pod(&ctx.pods, &from).await?;
            (pid(&p, "redis") != pid(&first, "redis")).then_some(p)
        },
    )
    .await?;
    settled(&ctx.groups, 30).await?;
    let stop = Arc::new(AtomicBool::new(false));
    let load = write_load(addr.clone(), "f", stop.clone());
    tokio::time::sleep(Duration::from_millis(500)).await;
    let killed_at = Instant::now();
    kill_all(&restarted);
    let probed = wait_for(
        "a write through the Service",
        30,
        Duration::from_millis(5),
        || async {
            // Only once another instance is primary: a write in flight at the
            // kill may still be acknowledged.
            let p = ctx.groups.get(GROUP).await.ok()?.status?.primary?;
            if p == from {
                return None;
            }
            set_ok(&addr, "after").await.then(|| killed_at.elapsed())
        },
    )
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.store(true, Ordering::Relaxed);
    let seen = load.await?;
    let probed = probed?;
    // From the writer (its cadence is finer than the probe's status read):
    // the first acknowledged write after the first refused one since the kill.
    let first_refused = seen.iter().find(|a| a.start >= killed_at && !a.acked);
    let writes_again = first_refused
        .and_then(|f| seen.iter().find(|a| a.acked && a.start > f.start))
        .map_or(probed, |a| a.end.duration_since(killed_at));
    let to = ctx
        .groups
        .get(GROUP)
        .await?
        .status
        .and_then(|s| s.primary)
        .unwrap_or_default();
    Ok(Failover {
        writes_again,
        outage: longest_outage(&seen),
        acked: seen.iter().filter(|a| a.acked).count(),
        lost: lost_acked(&addr, &seen).await?,
        from,
        to,
    })
}
