use anyhow::Context;
use midplane_plugin::{Registry, registry};
use midplane_plugin_svc::{Config, PluginRegistryService};
use midplane_proto::plugin::plugin_registry_server::PluginRegistryServer;
use midplane_runtime::Service;
use std::sync::{Arc, RwLock};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let config: Config = midplane_runtime::load("plugin-svc").context("loading configuration")?;
    let service = Service::init("plugin-svc", config.server.clone())?;
    let plugins = match &config.plugins_dir {
        Some(dir) => Registry::load_dir(dir)?,
        None => registry::bundled()?,
    };
    tracing::info!(plugins = ?plugins.names(), "plugins loaded");
    let registry = PluginRegistryService::new(Arc::new(RwLock::new(plugins)));
    let routes = tonic::service::Routes::new(PluginRegistryServer::new(registry));
    service.serve(routes).await?;
    Ok(())
}
