//! Controller scale on the Kubernetes API emulator: N Apps (each 3 shards ×
//! 3 replicas: 3 Groups, 9 Deployments) applied at once must all reach Ready,
//! then single changes must land fast. Targets for 1,000 Apps on 2 cores:
//! all Ready in < 60 s, p99 single change < 500 ms, controller memory < 300 MiB.
//!
//!   cargo run --release -p midplane-loadtest --bin scale -- --apps 1000
//!
//! The emulator runs as its own process (`kube-emulator`), so the memory
//! figure is the controllers' alone.

use anyhow::Context as _;
use clap::Parser;
use futures::StreamExt;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, Patch, PatchParams};
use midplane_api::App;
use midplane_loadtest::{peak_rss_mib, percentile, rss_mib};
use midplane_platform::{ApiServer, Platform, PlatformConfig};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[derive(Parser)]
struct Args {
    #[arg(long, default_value_t = 1000)]
    apps: usize,
    #[arg(long, default_value_t = 50)]
    changes: usize,
    /// The kube-emulator binary (built beside this one by default).
    #[arg(long)]
    emulator: Option<String>,
    #[arg(long, default_value_t = 120)]
    timeout_secs: u64,
}

fn app(i: usize) -> App {
    serde_json::from_value(serde_json::json!({
        "apiVersion": "midplane.dev/v1alpha1", "kind": "App",
        "metadata": {"name": format!("app-{i:04}"), "namespace": "default"},
        "spec": {"components": [{"name": "cache", "plugin": "redis", "replicas": 3, "shards": 3,
                  "parameters": {"maxmemory": "100mb"}}]}
    }))
    .expect("valid App")
}

fn is_ready(a: &App) -> bool {
    a.status.as_ref().is_some_and(|s| {
        s.observed_generation == a.metadata.generation
            && s.conditions
                .iter()
                .any(|c| c.type_ == "Ready" && c.status == "True")
    })
}

/// Watches Apps and reports the moment `want` of them are Ready at once: exact
/// to the event, and lighter on the machine under test than LISTing every App
/// twice a second (decoded without managedFields, like the controllers' own
/// watches).
fn all_ready_at(client: kube::Client, want: usize) -> tokio::sync::oneshot::Receiver<Instant> {
    use kube::runtime::watcher;
    use std::collections::HashSet;
    let (tx, rx) = tokio::sync::oneshot::channel();
    let events = midplane_operator::cache::slim_watch::<App, midplane_operator::slim::ManagedFields>(
        client,
        watcher::Config::default(),
    );
    tokio::spawn(async move {
        let mut ready = HashSet::new();
        let mut events = std::pin::pin!(events);
        while let Some(ev) = events.next().await {
            match ev {
                Ok(watcher::Event::Apply(a) | watcher::Event::InitApply(a)) => {
                    let name = a.metadata.name.clone().unwrap_or_default();
                    if is_ready(&a) {
                        ready.insert(name);
                    } else {
                        ready.remove(&name);
                    }
                }
                Ok(watcher::Event::Delete(a)) => {
                    ready.remove(&a.metadata.name.clone().unwrap_or_default());
                }
                // A relist starts over.
                Ok(watcher::Event::Init) => ready.clear(),
                Ok(watcher::Event::InitDone) | Err(_) => {}
            }
            if ready.len() >= want {
                let _ = tx.send(Instant::now());
                return;
            }
        }
    });
    rx
}

#[tokio::main(flavor = "multi_thread")]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let emulator = args.emulator.clone().unwrap_or_else(|| {
        let me = std::env::current_exe().unwrap_or_default();
        me.with_file_name("kube-emulator").display().to_string()
    });
    let port = midplane_runtime::testing::free_port()?;
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let emu = Command::new(&emulator)
        .args(["--addr", &format!("127.0.0.1:{port}"), "--crd-dir"])
        .arg(root.join("k8s/crds"))
        .args(["--pod-ready-delay-ms", "50"])
        // As large clusters run kube-controller-manager: Pod changes within half a second
        // land in one Endpoints/EndpointSlice write. Nothing here reads endpoints; this only
        // keeps the emulator's own controllers from outweighing ours.
        .args(["--endpoint-updates-batch-period-ms", "500"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .with_context(|| {
            format!("starting {emulator} (cargo build --release -p midplane-kube-emulator)")
        })?;
    // A failed run must not leave a many-GiB emulator behind.
    let emu = KillOnDrop(emu);
    let url = format!("http://127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        anyhow::ensure!(Instant::now() < deadline, "emulator did not start");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // The platform as `midplane dev` runs it, against the emulator process.
    let mut cfg = PlatformConfig::emulator(Default::default())?;
    cfg.api = ApiServer::Url(url);
    let platform = Platform::start(cfg).await?;
    platform.ready(Duration::from_secs(30)).await?;
    let client = platform.client();

    // Phase 1: every App at once.
    let apps: Api<App> = Api::namespaced(client.clone(), "default");
    let ready_at = all_ready_at(client.clone(), args.apps);
    let start = Instant::now();
    let pp = PatchParams::apply("loadtest").force();
    futures::stream::iter(0..args.apps)
        .map(|i| {
            let apps = apps.clone();
            let pp = pp.clone();
            async move {
                let a = app(i);
                let body = serde_json::to_value(&a)?;
                apps.patch(&format!("app-{i:04}"), &pp, &Patch::Apply(&body))
                    .await?;
                anyhow::Ok(())
            }
        })
        .buffer_unordered(32)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect::<anyhow::Result<Vec<_>>>()?;
    let applied = start.elapsed();
    let ready_at = tokio::time::timeout(Duration::from_secs(args.timeout_secs), ready_at)
        .await
        .map_err(|_| anyhow::anyhow!("not every App Ready after {} s", args.timeout_secs))?
        .context("the readiness watch ended")?;
    let all_ready = ready_at.duration_since(start);
    let rss_after_ready = peak_rss_mib().unwrap_or_default();
    let ours = platform.writes.snapshot();
    // Writes the emulator committed to get there, per resource: the load the
    // controllers and the emulated kubelet put on the API.
    let stats: serde_json::Value = client
        .request(http::Request::get("/_emulator/stats").body(Vec::new())?)
        .await?;

    // Phase 2: single changes, one at a time; latency until the rendered
    // ConfigMap of the App's first Group carries the new value.
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    let mut latencies = Vec::new();
    for n in 0..args.changes {
        let i = (n * 7919) % args.apps;
        let mut a = app(i);
        let value = format!("{}mb", 200 + n);
        a.spec.components[0]
            .spec
            .parameters
            .insert("maxmemory".into(), value.clone());
        let body = serde_json::to_value(&a)?;
        let t = Instant::now();
        apps.patch(&format!("app-{i:04}"), &pp, &Patch::Apply(&body))
            .await?;
        let cm = format!("app-{i:04}-cache-0-config");
        loop {
            let got = cms.get(&cm).await?;
            let conf = got
                .data
                .unwrap_or_default()
                .remove("redis.conf")
                .unwrap_or_default();
            if conf.contains(&format!("maxmemory {value}")) {
                break;
            }
            anyhow::ensure!(
                t.elapsed() < Duration::from_secs(30),
                "change {n} never landed"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let took = t.elapsed();
        if std::env::var_os("SCALE_VERBOSE").is_some() {
            eprintln!("change {n} app-{i:04}: {} ms", took.as_millis());
        }
        latencies.push(took);
    }
    let p50 = percentile(&mut latencies, 50.0);
    let p99 = percentile(&mut latencies, 99.0);
    let peak = peak_rss_mib().unwrap_or_default();
    let emu_rss = rss_mib(emu.0.id()).unwrap_or_default();
    drop(platform);
    drop(emu);

    println!("apps:                     {}", args.apps);
    println!(
        "groups / deployments:     {} / {}",
        args.apps * 3,
        args.apps * 9
    );
    println!("apply all (client side):  {:.2} s", applied.as_secs_f64());
    println!(
        "all Ready:                {:.2} s   (target < 60 s)",
        all_ready.as_secs_f64()
    );
    println!(
        "single change p50 / p99:  {:.0} ms / {:.0} ms   (target p99 < 500 ms, {} changes)",
        p50.as_secs_f64() * 1e3,
        p99.as_secs_f64() * 1e3,
        latencies.len()
    );
    println!(
        "controller peak RSS:      {:.0} MiB (after Ready {:.0} MiB; target < 300 MiB)",
        peak, rss_after_ready
    );
    println!("emulator RSS:             {:.0} MiB", emu_rss);
    let mut total = 0;
    for w in stats["writes"].as_array().into_iter().flatten() {
        let n: u64 = ["added", "modified", "deleted"]
            .iter()
            .filter_map(|k| w[*k].as_u64())
            .sum();
        total += n;
        println!(
            "  writes {:<28} {:>7} ({} added, {} modified, {} deleted; {} changed nothing)",
            format!(
                "{}/{}",
                w["group"].as_str().unwrap_or(""),
                w["resource"].as_str().unwrap_or("")
            ),
            n,
            w["added"],
            w["modified"],
            w["deleted"],
            w["unchanged"]
        );
    }
    println!(
        "writes until Ready:       {total} ({:.1} per Group)",
        total as f64 / (args.apps * 3) as f64
    );
    // Our own writes: what the controllers sent (counted client side, by
    // field manager), setting-up writes excluded.
    // The benchmark's own App applies and the set-up are not the controllers'.
    let (mut own_total, mut own_crs) = (0, 0);
    for ((manager, resource, verb), n) in &ours {
        if manager == "loadtest" || manager == midplane_platform::INSTALLER {
            continue;
        }
        own_total += n;
        // Writes to Midplane's own objects: finalizers, children, statuses.
        if ["apps", "components", "groups"]
            .iter()
            .any(|r| resource.split('/').next() == Some(r))
        {
            own_crs += n;
        }
        println!("  ours   {manager:<22} {verb:<6} {resource:<24} {n:>7}");
    }
    println!(
        "our writes until Ready:   {own_total} ({:.1} per App, {:.1} per Group)",
        own_total as f64 / args.apps as f64,
        own_total as f64 / (args.apps * 3) as f64
    );
    println!(
        "  to App/Component/Group: {own_crs} ({:.1} per App; target <= 15)",
        own_crs as f64 / args.apps as f64
    );
    // A watch that fell behind is closed and resumes; one whose version left the
    // window (410) makes the controller list everything again.
    println!(
        "watches until Ready:      {} closed for lagging, {} expired (410)",
        stats["watches"]["closedLagging"], stats["watches"]["expired"]
    );
    let pass =
        all_ready < Duration::from_secs(60) && p99 < Duration::from_millis(500) && peak < 300.0;
    println!(
        "verdict:                  {}",
        if pass { "PASS" } else { "MISS" }
    );
    // Exit without unwinding the controllers' tasks mid-flight.
    std::process::exit(0);
}
