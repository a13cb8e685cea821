//! `kube-emulator`: run the Kubernetes API emulator on its own.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;
use clap::Parser;
use midplane_kube_emulator::{Emulator, EmulatorConfig, PodMode, ProcessPods};

/// Every write copies object trees of many small maps. Under glibc's malloc the
/// per-thread heaps were trimmed and regrown so often that zeroing fresh pages
/// was a fifth of the emulator's CPU at 9,000 Pods; mimalloc reuses its pages.
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser, Debug)]
#[command(about = "An in-memory Kubernetes API emulator for tests and local development")]
struct Args {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:6443", env = "MIDPLANE_EMULATOR_ADDR")]
    addr: SocketAddr,
    /// Directory of CRD YAML files to install at start (e.g. k8s/crds).
    #[arg(long)]
    crd_dir: Option<PathBuf>,
    /// Where to write a kubeconfig pointing at the emulator.
    #[arg(long)]
    kubeconfig: Option<PathBuf>,
    /// Milliseconds before a Pod turns Running and Ready.
    #[arg(long, default_value_t = 500)]
    pod_ready_delay_ms: u64,
    /// How many events a watch can resume from before 410 Gone.
    #[arg(long, default_value_t = 10_000)]
    event_window: usize,
    /// Like kube-controller-manager's --endpoint-updates-batch-period: milliseconds a Pod
    /// change waits so that later ones join the same Endpoints/EndpointSlice write.
    #[arg(long, default_value_t = 0)]
    endpoint_updates_batch_period_ms: u64,
    /// `simulated`: Pods turn Ready after the delay and nothing runs (the scale benchmarks);
    /// `process`: every container runs as a local process (needs root; see README.md).
    #[arg(long, value_enum, default_value_t = Pods::Simulated)]
    pods: Pods,
    /// Process pods: where Pod files and PVC directories live (default: a temporary
    /// directory removed at exit).
    #[arg(long)]
    state_dir: Option<PathBuf>,
    /// Process pods: the image map (default: the built-in images.yaml).
    #[arg(long)]
    image_map: Option<PathBuf>,
    /// Process pods: the loopback block 127.<N>.0.0/16 (default: the first free one).
    #[arg(long)]
    address_block: Option<u8>,
    /// Process pods: the kubelet's periodic pod sync (ConfigMap/Secret volumes refresh).
    #[arg(long, default_value_t = 60_000)]
    pod_sync_period_ms: u64,
    /// Also serve HTTPS here (a CA made at start): ServiceAccount tokens, RBAC, and
    /// process pods reach the API in-cluster style.
    #[arg(long)]
    secure_addr: Option<std::net::SocketAddr>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum Pods {
    Simulated,
    Process,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let args = Args::parse();
    let handle = Emulator::start(EmulatorConfig {
        addr: args.addr,
        crd_dir: args.crd_dir,
        pod_ready_delay: Duration::from_millis(args.pod_ready_delay_ms),
        event_window: args.event_window,
        endpoint_updates_batch_period: Duration::from_millis(args.endpoint_updates_batch_period_ms),
        pods: match args.pods {
            Pods::Simulated => PodMode::Simulated,
            Pods::Process => PodMode::Process(ProcessPods {
                state_dir: args.state_dir,
                image_map: args.image_map,
                address_block: args.address_block,
                pod_sync_period: Duration::from_millis(args.pod_sync_period_ms),
                ..ProcessPods::default()
            }),
        },
        secure_addr: args.secure_addr,
        ..EmulatorConfig::default()
    })
    .await
    .context("starting the emulator")?;
    if let Some(path) = &args.kubeconfig {
        handle
            .write_kubeconfig(path)
            .context("writing the kubeconfig")?;
        println!("kubeconfig: {}", path.display());
    }
    println!("kube-emulator listening on {}", handle.url());
    if let Some(s) = handle.secure() {
        println!(
            "kube-emulator listening on https://{} (CA below)\n{}",
            s.addr, s.ca_pem
        );
    }
    if let Some(p) = handle.process_pods() {
        println!(
            "pods: process (addresses 127.{}.0.0/16, DNS {}, state {}, {})",
            p.block(),
            p.dns_addr(),
            p.state_dir().display(),
            p.images().source()
        );
    } else {
        println!("pods: simulated");
    }
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .context("installing the SIGTERM handler")?;
    tokio::select! {
        r = tokio::signal::ctrl_c() => r.context("waiting for Ctrl-C")?,
        _ = term.recv() => {}
    }
    // Every Pod process stops before the emulator exits.
    handle.shutdown().await;
    Ok(())
}
