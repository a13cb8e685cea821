//! `midplane dev`: the whole platform on one machine with no cluster. The
//! Kubernetes API emulator on 127.0.0.1, the CRDs and bundled plugins
//! installed, plugin-svc's watcher and app-svc's and group-svc's controllers
//! running against it (the same wiring as the test platform), optionally
//! publishing events on a RabbitMQ bus.

use anyhow::Context;
use midplane_kube_emulator::EmulatorConfig;
use midplane_platform::{Platform, PlatformConfig};
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

pub struct DevOptions<'a> {
    pub state: &'a Path,
    pub port: u16,
    pub pod_ready_delay_ms: u64,
    /// AMQP URL: publish the platform's events there.
    pub bus: Option<String>,
}

pub async fn run(opts: DevOptions<'_>) -> anyhow::Result<()> {
    let mut cfg = PlatformConfig::emulator(EmulatorConfig {
        addr: SocketAddr::from(([127, 0, 0, 1], opts.port)),
        pod_ready_delay: Duration::from_millis(opts.pod_ready_delay_ms),
        ..EmulatorConfig::default()
    })?;
    cfg.bus = opts.bus.as_ref().map(|url| midplane_bus::BusConfig {
        url: url.clone(),
        ..midplane_bus::BusConfig::default()
    });
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
        Some(_) => "events: published on the bus (midplane events tail)\n",
        None => "events: not published (no --bus)\n",
    };
    let banner = format!(
        "Kubernetes API emulator: {}\nkubeconfig: {}\n{bus}Next: midplane apply -f examples/redis-app.yaml && midplane get groups\n      kubectl --kubeconfig {} get deployments\nCtrl-C stops.\n",
        platform.url(),
        kubeconfig.display(),
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
