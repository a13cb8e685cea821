use anyhow::Context as _;
use midplane_group_svc::grpc::GroupApi;
use midplane_group_svc::{Config, Context, run::run_controller};
use midplane_operator::leader::run_as_leader;
use midplane_operator::plugins::{PluginStore, sources};
use midplane_operator::readiness::Readiness;
use midplane_proto::group::group_service_server::GroupServiceServer;
use midplane_runtime::Service;
use std::sync::Arc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let config: Config = midplane_runtime::load("group-svc").context("loading configuration")?;
    let service = Service::init("group-svc", config.server.clone())?;
    let client = midplane_operator::kube_client(config.kube.kubeconfig.as_deref()).await?;
    let plugins = PluginStore::new(midplane_plugin::registry::bundled()?);
    let mut ctx = Context::new(client.clone(), plugins.clone());
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
    let shutdown = service.shutdown();
    let subscriber = sources::route(
        bus.as_ref(),
        "group-svc",
        client.clone(),
        config.kube.plugin_namespace.clone(),
        plugins,
        shutdown.clone(),
    )
    .await?;
    let controller = {
        let (le, stop, ctx) = (
            config.leader_election.clone(),
            shutdown.clone(),
            ctx.clone(),
        );
        let readiness = Readiness::new(service.health());
        let owned = ctx.owned.clone();
        readiness.track(move || owned.ready());
        tokio::spawn(async move {
            let wait = {
                let s = stop.clone();
                async move { s.wait().await }
            };
            let work = run_controller(ctx, stop.clone());
            run_as_leader(client, &le, "group-svc", &readiness, wait, work, || {
                stop.trigger();
            })
            .await;
        })
    };
    let routes = midplane_runtime::Routes::new(GroupServiceServer::new(GroupApi::new(ctx)));
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
