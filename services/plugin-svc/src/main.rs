use anyhow::Context as _;
use midplane_operator::EventRecorder;
use midplane_operator::plugins::PluginStore;
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

    let mut publisher = None;
    if config.kube.watch {
        let client = midplane_operator::kube_client(config.kube.kubeconfig.as_deref()).await?;
        let bus = config.bus.url.as_ref().map(|url| {
            midplane_bus::BusConfig {
                url: url.clone(),
                ..midplane_bus::BusConfig::default()
            }
            .with_source("/midplane/plugin-svc")
        });
        let (sink, task) = midplane_bus::EventSink::connect(bus, "plugin")
            .await
            .context("connecting to the event bus")?;
        publisher = task;
        let events = EventRecorder::new(client.clone(), "midplane-plugin-svc");
        let (ns, store, shutdown) = (
            config.kube.plugin_namespace.clone(),
            store.clone(),
            service.shutdown(),
        );
        tokio::spawn(async move {
            tokio::select! {
                _ = watch::run(client, ns, store, events, sink) => {}
                _ = shutdown.wait() => {}
            }
        });
    }
    let routes =
        midplane_runtime::Routes::new(PluginRegistryServer::new(PluginRegistryService::new(store)));
    service.serve(routes).await?;
    // The sink's task sends what is queued once the watch (its last user) is gone.
    if let Some(task) = publisher {
        let _ = tokio::time::timeout(std::time::Duration::from_secs(10), task).await;
    }
    Ok(())
}
