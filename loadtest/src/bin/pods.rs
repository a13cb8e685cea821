//! Apply to all Ready with real processes: the platform against a
//! `kube-emulator --pods process`, so every Pod runs redis-server and both
//! agents. For each App count (default 1 and 20), the time from applying the
//! Apps to every App Ready, and the memory of the emulator, the controllers
//! (this process) and the Pods' processes. Targets: one App Ready in under
//! 5 s; 20 Apps on a 2-core machine (reported).
//!
//!   cargo build --release -p midplane-kube-emulator -p midplane-lifecycle-agent -p midplane-adapter-agent
//!   cargo run --release -p midplane-loadtest --bin pods -- --apps 1,20
//!
//! Needs root (process pods) and redis-server.

use anyhow::Context as _;
use clap::Parser;
use kube::api::{Api, Patch, PatchParams};
use midplane_api::App;
use midplane_loadtest::{peak_rss_mib, rss_mib};
use midplane_platform::{ApiServer, Platform, PlatformConfig};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        // SIGTERM first: the emulator stops its Pods' processes gracefully.
        let _ = Command::new("kill")
            .args(["-TERM", &self.0.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.0.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[derive(Parser)]
struct Args {
    /// App counts to measure, one fresh emulator each.
    #[arg(long, value_delimiter = ',', default_value = "1,20")]
    apps: Vec<usize>,
    /// Replicas per App (one Group each).
    #[arg(long, default_value_t = 3)]
    replicas: usize,
    /// The kube-emulator binary (built beside this one by default).
    #[arg(long)]
    emulator: Option<String>,
    #[arg(long, default_value_t = 300)]
    timeout_secs: u64,
}

fn app(i: usize, replicas: usize) -> serde_json::Value {
    serde_json::json!({
        "apiVersion": "midplane.dev/v1alpha1", "kind": "App",
        "metadata": {"name": format!("app-{i:03}"), "namespace": "default"},
        "spec": {"components": [{"name": "cache", "plugin": "redis", "replicas": replicas,
                  "parameters": {"maxmemory": "32mb"}}]}
    })
}

fn ready(a: &App) -> bool {
    a.status.as_ref().is_some_and(|s| {
        s.observed_generation == a.metadata.generation
            && s.conditions
                .iter()
                .any(|c| c.type_ == "Ready" && c.status == "True")
    })
}

/// Every process below `root` (its children, theirs, …).
fn descendants(root: u32) -> Vec<u32> {
    let mut parents: std::collections::BTreeMap<u32, Vec<u32>> = Default::default();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        let ppid = stat
            .rsplit(')')
            .next()
            .and_then(|r| r.split_whitespace().nth(1))
            .and_then(|p| p.parse().ok());
        if let Some(ppid) = ppid {
            parents.entry(ppid).or_default().push(pid);
        }
    }
    let (mut out, mut todo) = (Vec::new(), vec![root]);
    while let Some(p) = todo.pop() {
        for c in parents.get(&p).into_iter().flatten() {
            out.push(*c);
            todo.push(*c);
        }
    }
    out
}

struct Run {
    apps: usize,
    ready: Duration,
    emulator_mib: f64,
    pods_mib: f64,
    processes: usize,
}

async fn measure(args: &Args, apps: usize) -> anyhow::Result<Run> {
    let emulator = args.emulator.clone().unwrap_or_else(|| {
        let me = std::env::current_exe().unwrap_or_default();
        me.with_file_name("kube-emulator").display().to_string()
    });
    let port = midplane_runtime::testing::free_port()?;
    let emu = Command::new(&emulator)
        .args(["--addr", &format!("127.0.0.1:{port}"), "--pods", "process"])
        .args(["--pod-sync-period-ms", "2000"])
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .with_context(|| {
            format!("starting {emulator} (cargo build --release -p midplane-kube-emulator)")
        })?;
    let emu = KillOnDrop(emu);
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        anyhow::ensure!(
            Instant::now() < deadline,
            "emulator did not start (root? redis-server?)"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut cfg = PlatformConfig::emulator(Default::default())?;
    cfg.api = ApiServer::Url(format!("http://127.0.0.1:{port}"));
    cfg.agent_token = Some(midplane_platform::random_token());
    let platform = Platform::start(cfg).await?;
    platform.ready(Duration::from_secs(30)).await?;
    let api: Api<App> = Api::namespaced(platform.client(), "default");
    let pp = PatchParams::apply("loadtest").force();
    let start = Instant::now();
    for i in 0..apps {
        api.patch(
            &format!("app-{i:03}"),
            &pp,
            &Patch::Apply(app(i, args.replicas)),
        )
        .await?;
    }
    loop {
        let all = api.list(&Default::default()).await?.items;
        if all.len() == apps && all.iter().all(ready) {
            break;
        }
        anyhow::ensure!(
            start.elapsed() < Duration::from_secs(args.timeout_secs),
            "{} of {apps} Apps Ready after {} s",
            all.iter().filter(|a| ready(a)).count(),
            args.timeout_secs
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let ready_after = start.elapsed();
    let pods = descendants(emu.0.id());
    let pods_mib = pods.iter().filter_map(|p| rss_mib(*p)).sum();
    let run = Run {
        apps,
        ready: ready_after,
        emulator_mib: rss_mib(emu.0.id()).unwrap_or_default(),
        pods_mib,
        processes: pods.len(),
    };
    platform.stop().await;
    drop(emu);
    Ok(run)
}

#[tokio::main(flavor = "multi_thread")]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let mut runs = Vec::new();
    for n in &args.apps {
        runs.push(measure(&args, *n).await?);
    }
    println!("apps  pods  all Ready   emulator  Pod processes (count)  controllers peak");
    for r in &runs {
        println!(
            "{:>4}  {:>4}  {:>7.2} s  {:>6.0} MiB  {:>8.0} MiB ({:>3})      {:>6.0} MiB",
            r.apps,
            r.apps * args.replicas,
            r.ready.as_secs_f64(),
            r.emulator_mib,
            r.pods_mib,
            r.processes,
            peak_rss_mib().unwrap_or_default()
        );
    }
    if let Some(one) = runs.iter().find(|r| r.apps == 1) {
        println!(
            "one App Ready:  {:.2} s   (target < 5 s): {}",
            one.ready.as_secs_f64(),
            if one.ready < Duration::from_secs(5) {
                "PASS"
            } else {
                "MISS"
            }
        );
    }
    Ok(())
}
