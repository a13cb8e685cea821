use anyhow::Context as _;
use midplane_group_svc::grpc::GroupApi;
use midplane_group_svc::{Config, Context, run::run_controller};
use midplane_operator::leader::run_as_leader;
use midplane_operator::plugin_store::PluginStore;
use midplane_proto::group::group_service_server::GroupServiceServer;
use midplane_runtime::Service;
use std::sync::Arc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let config: Config = midplane_runtime::load("group-svc").context("loading configuration")?;
    let service = Service::init("group-svc", config.server.clone())?;
    let client = midplane_operator::kube_client(config.kube.kubeconfig.as_deref()).await?;
    let plugins = PluginStore::new(midplane_plugin::registry::bundled()?);
    let mut ctx = Context::new(client.clone(), plugins);
    if let Some(addr) = &config.agent_gateway.addr {
        let token = match &config.agent_gateway.token_file {
            Some(path) => Some(
                std::fs::read_to_string(path)
                    .with_context(|| format!("agent gateway token {}", path.display()))?,
            ),
            None => None,
        };
        ctx = ctx.with_gateway(midplane_group_svc::gateway::Gateway::new(
            addr,
            token.as_deref(),
        )?);
    }
    ctx.watch_plugin_configmaps = config.kube.watch_plugin_configmaps || config.bus.url.is_none();
    let bus = config.bus.url.as_ref().map(|url| {
        midplane_bus::BusConfig {
            url: url.clone(),
            ..midplane_bus::BusConfig::default()
        }
        .with_source("/midplane/group-svc")
    });
    let (sink, publisher) = midplane_bus::EventSink::connect(bus.clone(), "Group")
        .await
        .context("connecting to the event bus")?;
    ctx = ctx.with_bus(sink);
    let ctx = Arc::new(ctx);
    let api_ctx = ctx.clone();
    let subscriber = match &bus {
        Some(bus) => {
            Some(midplane_group_svc::plugin_events::subscribe(bus, "group-svc", ctx.clone()).await?)
        }
        None => None,
    };
    let shutdown = service.shutdown();
    let plugin_ns = config.kube.plugin_namespace.clone();
    let controller = {
        let (le, stop) = (config.leader_election.clone(), shutdown.clone());
        tokio::spawn(async move {
            let wait = {
                let s = stop.clone();
                async move { s.wait().await }
            };
            let work = run_controller(ctx, plugin_ns, stop.clone());
            run_as_leader(client, &le, "group-svc", wait, work, || stop.trigger()).await;
        })
    };
    let routes = midplane_runtime::Routes::new(GroupServiceServer::new(GroupApi::new(api_ctx)));
    service.serve(routes).await?;
    if let Some(sub) = subscriber {
        sub.shutdown().await?;
    }
    let _ = controller.await;
    // The sink's task sends what is queued once the last clone is gone.
    if let Some(task) = publisher {
        let _ = tokio::time::timeout(std::time::Duration::from_secs(10), task).await;
    }
    Ok(())
}
