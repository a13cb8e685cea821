use anyhow::Context as _;
use midplane_operator::EventRecorder;
use midplane_operator::plugin_store::PluginStore;
use midplane_plugin::{Registry, registry};
use midplane_plugin_svc::{Config, PluginRegistryService, watch};
use midplane_proto::plugin::plugin_registry_server::PluginRegistryServer;
use midplane_runtime::Service;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let config: Config = midplane_runtime::load("plugin-svc").context("loading configuration")?;
    let service = Service::init("plugin-svc", config.server.clone())?;
    let plugins = match &config.plugins_dir {
        Some(dir) => Registry::load_dir(dir)?,
        None => registry::bundled()?,
    };
    tracing::info!(plugins = ?plugins.names(), "plugins loaded");
    let store = PluginStore::new(plugins);

    if config.kube.watch {
        let client = midplane_operator::kube_client(config.kube.kubeconfig.as_deref()).await?;
        let publisher = match &config.bus.url {
            Some(url) => {
                let bus = midplane_bus::BusConfig {
                    url: url.clone(),
                    ..midplane_bus::BusConfig::default()
                }
                .with_source("/midplane/plugin-svc");
                bus.validate()?;
                Some(midplane_bus::Publisher::connect(bus).await?)
            }
            None => None,
        };
        let events = EventRecorder::new(client.clone(), "midplane-plugin-svc");
        let (ns, store, shutdown) = (
            config.kube.plugin_namespace.clone(),
            store.clone(),
            service.shutdown(),
        );
        tokio::spawn(async move {
            tokio::select! {
                _ = watch::run(client, ns, store, events, publisher) => {}
                _ = shutdown.wait() => {}
            }
        });
    }
    let routes =
        midplane_runtime::Routes::new(PluginRegistryServer::new(PluginRegistryService::new(store)));
    service.serve(routes).await?;
    Ok(())
}
