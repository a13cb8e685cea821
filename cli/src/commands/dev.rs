//! `midplane dev`: the whole platform on one machine with no cluster. The
//! Kubernetes API emulator on 127.0.0.1, the CRDs and bundled plugins
//! installed, app-svc's and group-svc's controllers running against it.

use anyhow::Context;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::ResourceExt;
use kube::api::{Api, Patch, PatchParams};
use midplane_kube_emulator::{Emulator, EmulatorConfig};
use midplane_operator::plugin_store::PluginStore;
use midplane_runtime::Shutdown;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

pub const PLUGIN_NAMESPACE: &str = "midplane-system";

pub async fn run(state: &Path, port: u16, pod_ready_delay_ms: u64) -> anyhow::Result<()> {
    let emu = Emulator::start(EmulatorConfig {
        addr: SocketAddr::from(([127, 0, 0, 1], port)),
        pod_ready_delay: Duration::from_millis(pod_ready_delay_ms),
        namespaces: vec![PLUGIN_NAMESPACE.into()],
        ..EmulatorConfig::default()
    })
    .await
    .context("starting the Kubernetes API emulator")?;
    for (_, crd) in midplane_api::crd::all() {
        emu.install_crd(serde_json::to_value(&crd)?)
            .context("installing the Midplane CRDs")?;
    }
    let kubeconfig = state.join("kubeconfig");
    emu.write_kubeconfig(&kubeconfig)?;

    let url: http::Uri = emu.url().parse()?;
    let client = kube::Client::try_from(kube::Config::new(url))?;
    let bundled = midplane_plugin::registry::bundled()?;
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), PLUGIN_NAMESPACE);
    for plugin in bundled.iter() {
        let mut cm = serde_json::to_value(plugin.to_config_map(PLUGIN_NAMESPACE))?;
        if let Some(m) = cm.as_object_mut() {
            m.insert("apiVersion".into(), "v1".into());
            m.insert("kind".into(), "ConfigMap".into());
        }
        let name = plugin.to_config_map(PLUGIN_NAMESPACE).name_any();
        cms.patch(
            &name,
            &PatchParams::apply("midplane-dev").force(),
            &Patch::Apply(&cm),
        )
        .await
        .with_context(|| format!("installing plugin {}", plugin.id()))?;
    }

    let shutdown = Shutdown::new();
    shutdown.listen_for_signals();
    let app_ctx = Arc::new(midplane_app_svc::Context::new(
        client.clone(),
        PluginStore::new(bundled.clone()),
    ));
    let group_ctx = Arc::new(midplane_group_svc::Context::new(
        client.clone(),
        PluginStore::new(bundled),
    ));
    let apps = tokio::spawn(midplane_app_svc::run::run_controllers(
        app_ctx,
        PLUGIN_NAMESPACE.into(),
        shutdown.clone(),
    ));
    let groups = tokio::spawn(midplane_group_svc::run::run_controller(
        group_ctx,
        PLUGIN_NAMESPACE.into(),
        shutdown.clone(),
    ));

    // Written at once and never fatal: whoever started us may have stopped
    // reading once it had the kubeconfig path (a closed pipe must not kill the
    // running controllers, as println! would).
    let banner = format!(
        "Kubernetes API emulator: {}\nkubeconfig: {}\nNext: midplane apply -f examples/redis-app.yaml && midplane get groups\n      kubectl --kubeconfig {} get deployments\nCtrl-C stops.\n",
        emu.url(),
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
    let _ = tokio::time::timeout(Duration::from_secs(5), async {
        let _ = apps.await;
        let _ = groups.await;
    })
    .await;
    emu.shutdown().await;
    Ok(())
}
