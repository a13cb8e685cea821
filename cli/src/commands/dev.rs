//! `midplane dev`: the whole platform on one machine with no cluster. The
//! Kubernetes API emulator on 127.0.0.1, the CRDs and bundled plugins
//! installed, plugin-svc's watcher and app-svc's and group-svc's controllers
//! running against it (the same wiring as the test platform), optionally
//! publishing events on a RabbitMQ bus. Pods run as real local processes
//! when this machine can (root, redis-server and the agent binaries), else
//! they are simulated; the first lines say which.

use anyhow::Context;
use clap::ValueEnum;
use midplane_kube_emulator::{EmulatorConfig, PodMode, ProcessPods};
use midplane_platform::{Platform, PlatformConfig};
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Pods {
    /// Real processes when this machine can run them, else simulated.
    Auto,
    /// Every container a local process: Redis answers on the Service's ClusterIP.
    Process,
    /// Pods turn Ready after a delay and nothing runs (for scale tests).
    Simulated,
}

pub struct DevOptions<'a> {
    pub state: &'a Path,
    pub port: u16,
    pub pod_ready_delay_ms: u64,
    pub pods: Pods,
    /// AMQP URL: publish the platform's events there.
    pub bus: Option<String>,
    /// Process Pods' image map (None: the built-in one).
    pub image_map: Option<std::path::PathBuf>,
}

/// The Pod mode to run, and the line that says so.
fn pod_mode(opts: &DevOptions<'_>) -> anyhow::Result<(PodMode, String)> {
    let process = ProcessPods {
        state_dir: Some(opts.state.join("cluster")),
        // Config changes reach the Pods' files within seconds, as hot reload expects.
        pod_sync_period: Duration::from_secs(2),
        image_map: opts.image_map.clone(),
        ..ProcessPods::default()
    };
    match (opts.pods, process.preflight()) {
        (Pods::Simulated, _) => Ok((
            PodMode::Simulated,
            "pods: simulated (--pods simulated)".into(),
        )),
        (Pods::Process | Pods::Auto, Ok(())) => Ok((
            PodMode::Process(process),
            "pods: real processes (--pods process)".into(),
        )),
        (Pods::Process, Err(why)) => anyhow::bail!("--pods process cannot run here: {why}"),
        (Pods::Auto, Err(why)) => Ok((
            PodMode::Simulated,
            format!("pods: simulated, because real processes cannot run here: {why}"),
        )),
    }
}

pub async fn run(opts: DevOptions<'_>) -> anyhow::Result<()> {
    let (pods, mode_line) = pod_mode(&opts)?;
    let process = matches!(pods, PodMode::Process(_));
    let mut cfg = PlatformConfig::emulator(EmulatorConfig {
        addr: SocketAddr::from(([127, 0, 0, 1], opts.port)),
        pod_ready_delay: Duration::from_millis(opts.pod_ready_delay_ms),
        pods,
        ..EmulatorConfig::default()
    })?;
    cfg.bus = opts.bus.as_ref().map(|url| midplane_bus::BusConfig {
        url: url.clone(),
        ..midplane_bus::BusConfig::default()
    });
    if process {
        cfg.agent_token = Some(midplane_platform::random_token());
        // Backup resources run for real too: Jobs of this workspace's `midplane`, backups
        // under the state directory, encrypted with a key made for this run.
        let dir = std::path::absolute(opts.state.join("backups"))?;
        std::fs::create_dir_all(&dir)?;
        cfg.backups = Some(midplane_platform::BackupsConfig {
            storage_uri: format!("file://{}", dir.display()),
            key: midplane_platform::random_token(),
        });
    }
    let platform = Platform::start(cfg)
        .await
        .context("starting the platform")?;
    let kubeconfig = opts.state.join("kubeconfig");
    if let Some(emu) = platform.emulator() {
        emu.write_kubeconfig(&kubeconfig)?;
    }
    let shutdown = platform.shutdown_signal();
    shutdown.listen_for_signals();

    // Written at once and never fatal: whoever started us may have stopped
    // reading once it had the kubeconfig path (a closed pipe must not kill the
    // running controllers, as println! would).
    let bus = match &opts.bus {
        Some(_) => "events: published on the bus (midplane events tail)",
        None => "events: not published (no --bus)",
    };
    let next = if process {
        "Next: midplane apply -f examples/redis-app.yaml && midplane get apps\n      redis-cli -h $(kubectl --kubeconfig KUBECONFIG get svc shop-cache-0 -o jsonpath='{.spec.clusterIP}') ping"
    } else {
        "Next: midplane apply -f examples/redis-app.yaml && midplane get groups"
    };
    let banner = format!(
        "{mode_line}\nKubernetes API emulator: {}\nkubeconfig: {}\n{bus}\n{}\n      kubectl --kubeconfig {} get pods,svc\nCtrl-C stops (and every Pod process).\n",
        platform.url(),
        kubeconfig.display(),
        next.replace("KUBECONFIG", &kubeconfig.display().to_string()),
        kubeconfig.display()
    );
    {
        use std::io::Write as _;
        let mut out = std::io::stdout().lock();
        let _ = out.write_all(banner.as_bytes());
        let _ = out.flush();
    }
    shutdown.wait().await;
    platform.stop().await;
    Ok(())
}
