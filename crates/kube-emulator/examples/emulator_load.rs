//! Load benchmark of the emulator (not a test): N Deployments (+ a Service and a PVC each)
//! applied with server-side apply through kube-rs, until every Deployment reports its Pod
//! Ready. Baseline in the same run: N plain ConfigMap applies (store path only, no built-in
//! controllers). Then single-change latency (patch → observed on a watch) at p50/p99.
//!
//! `cargo run --release -p midplane-kube-emulator --example emulator_load -- 9000 [event_window]`

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::{StreamExt, TryStreamExt, stream};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, PersistentVolumeClaim, Service};
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::{WatchStreamExt, watcher};
use midplane_kube_emulator::{Emulator, EmulatorConfig};
use serde_json::json;

const CONCURRENCY: usize = 64;

fn rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .map(String::from)
        })
        .and_then(|l| {
            l.split_whitespace()
                .nth(1)
                .and_then(|kb| kb.parse::<f64>().ok())
        })
        .map(|kb| kb / 1024.0)
        .unwrap_or(0.0)
}

async fn apply_all<F>(n: usize, f: F) -> Duration
where
    F: Fn(usize) -> futures::future::BoxFuture<'static, ()> + Send + Sync,
{
    let start = Instant::now();
    stream::iter(0..n)
        .map(&f)
        .buffer_unordered(CONCURRENCY)
        .collect::<Vec<()>>()
        .await;
    start.elapsed()
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(3000);
    let emu = Emulator::start(EmulatorConfig {
        pod_ready_delay: Duration::from_millis(200),
        ..Default::default()
    })
    .await?;
    let client = kube::Client::try_from(kube::Config::new(emu.url().parse()?))?;
    let pp = PatchParams::apply("loadtest").force();
    println!(
        "emulator load: N={n}, concurrency {CONCURRENCY}, rss at start {:.0} MiB",
        rss_mib()
    );

    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    let (c, p) = (cms.clone(), pp.clone());
    let baseline = apply_all(n, move |i| {
        let (c, p) = (c.clone(), p.clone());
        Box::pin(async move {
            let cm = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": format!("cm-{i}")}, "data": {"i": i.to_string()}});
            c.patch(&format!("cm-{i}"), &p, &Patch::Apply(cm)).await.expect("configmap apply");
        })
    })
    .await;
    println!(
        "baseline: {n} ConfigMap applies in {:.2}s ({:.0}/s)",
        baseline.as_secs_f64(),
        n as f64 / baseline.as_secs_f64()
    );

    let deps: Api<Deployment> = Api::namespaced(client.clone(), "default");
    let ready = Arc::new(std::sync::Mutex::new(
        std::collections::HashSet::<String>::new(),
    ));
    let r2 = ready.clone();
    let watch_deps = deps.clone();
    tokio::spawn(async move {
        let s = watcher(watch_deps, watcher::Config::default()).applied_objects();
        let mut s = std::pin::pin!(s);
        while let Ok(Some(d)) = s.try_next().await {
            let ok = d
                .status
                .as_ref()
                .and_then(|s| s.ready_replicas)
                .unwrap_or(0)
                == 1;
            let name = d.metadata.name.clone().unwrap_or_default();
            let mut set = r2.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            if ok {
                set.insert(name);
            } else {
                set.remove(&name);
            }
        }
    });
    let start = Instant::now();
    let (cl, p) = (client.clone(), pp.clone());
    let applied = apply_all(n, move |i| {
        let (cl, p) = (cl.clone(), p.clone());
        Box::pin(async move {
            let name = format!("inst-{i}");
            let d = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name, "labels": {"midplane.dev/instance": name}},
                "spec": {"replicas": 1, "selector": {"matchLabels": {"midplane.dev/instance": name}},
                    "template": {"metadata": {"labels": {"midplane.dev/instance": name}},
                        "spec": {"containers": [{"name": "redis", "image": "redis:7", "ports": [{"containerPort": 6379, "name": "redis"}]}]}}}});
            let s = json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": name},
                "spec": {"selector": {"midplane.dev/instance": name}, "ports": [{"port": 6379, "targetPort": "redis"}]}});
            let v = json!({"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": name},
                "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}});
            Api::<Deployment>::namespaced(cl.clone(), "default").patch(&name, &p, &Patch::Apply(d)).await.expect("deployment apply");
            Api::<Service>::namespaced(cl.clone(), "default").patch(&name, &p, &Patch::Apply(s)).await.expect("service apply");
            Api::<PersistentVolumeClaim>::namespaced(cl, "default").patch(&name, &p, &Patch::Apply(v)).await.expect("pvc apply");
        })
    })
    .await;
    println!(
        "applied {n} Deployments + Services + PVCs in {:.2}s ({:.0} objects/s)",
        applied.as_secs_f64(),
        3.0 * n as f64 / applied.as_secs_f64()
    );
    loop {
        let count = ready
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .len();
        if count >= n {
            break;
        }
        if start.elapsed() > Duration::from_secs(600) {
            anyhow::bail!("only {count}/{n} Deployments ready after 600 s");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let all_ready = start.elapsed();
    println!(
        "all {n} Deployments Ready {:.2}s after the first apply; rss {:.0} MiB; resourceVersion {}",
        all_ready.as_secs_f64(),
        rss_mib(),
        emu.resource_version()
    );

    // Single-change latency: patch a label, wait until a watch delivers it.
    let mut lat = Vec::new();
    for i in 0..200 {
        let name = format!("inst-{}", (i * 7919) % n);
        let wp = kube::api::WatchParams::default()
            .fields(&format!("metadata.name={name}"))
            .timeout(10);
        let rv = emu.resource_version().to_string();
        let mut w = deps.watch(&wp, &rv).await?.boxed();
        let t = Instant::now();
        deps.patch(
            &name,
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"labels": {"touch": i.to_string()}}})),
        )
        .await?;
        while let Some(ev) = w.try_next().await? {
            if let kube::api::WatchEvent::Modified(d) = ev
                && d.metadata.labels.as_ref().and_then(|l| l.get("touch")) == Some(&i.to_string())
            {
                break;
            }
        }
        lat.push(t.elapsed());
    }
    lat.sort();
    println!(
        "patch→watch latency over {} changes: p50 {:.1} ms, p99 {:.1} ms",
        lat.len(),
        lat[lat.len() / 2].as_secs_f64() * 1e3,
        lat[lat.len() * 99 / 100].as_secs_f64() * 1e3
    );
    println!(
        "deployment path vs baseline: {:.1}x the ConfigMap apply time per object",
        (applied.as_secs_f64() / (3.0 * n as f64)) / (baseline.as_secs_f64() / n as f64)
    );
    emu.shutdown().await;
    Ok(())
}
