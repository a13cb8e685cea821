use anyhow::Context as _;
use midplane_app_svc::{Config, Context, grpc::AppApi, run::run_controllers};
use midplane_operator::leader::run_as_leader;
use midplane_operator::plugins::{PluginStore, sources};
use midplane_operator::readiness::Readiness;
use midplane_proto::app::app_service_server::AppServiceServer;
use midplane_runtime::Service;
use std::sync::Arc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let config: Config = midplane_runtime::load("app-svc").context("loading configuration")?;
    let service = Service::init("app-svc", config.server.clone())?;
    let client = midplane_operator::kube_client(config.kube.kubeconfig.as_deref()).await?;
    let plugins = PluginStore::new(midplane_plugin::registry::bundled()?);
    let bus = config.bus.url.as_ref().map(|url| {
        midplane_bus::BusConfig {
            url: url.clone(),
            ..midplane_bus::BusConfig::default()
        }
        .with_source("/midplane/app-svc")
    });
    let (sink, publisher) = midplane_bus::EventSink::connect(bus.clone(), "App and Component")
        .await
        .context("connecting to the event bus")?;
    let ctx = Arc::new(Context::new(client.clone(), plugins.clone()).with_bus(sink));
    let shutdown = service.shutdown();
    let subscriber = sources::route(
        bus.as_ref(),
        "app-svc",
        client.clone(),
        config.kube.plugin_namespace.clone(),
        plugins,
        shutdown.clone(),
    )
    .await?;
    let controllers = {
        let (ctx, le, stop) = (
            ctx.clone(),
            config.leader_election.clone(),
            shutdown.clone(),
        );
        let readiness = Readiness::new(service.health());
        let synced = ctx.clone();
        readiness.track(move || synced.caches_synced());
        tokio::spawn(async move {
            let wait = {
                let s = stop.clone();
                async move { s.wait().await }
            };
            let work = run_controllers(ctx, stop.clone());
            // Never act without the Lease: stop so Kubernetes restarts us as a standby.
            run_as_leader(client, &le, "app-svc", &readiness, wait, work, || {
                stop.trigger();
            })
            .await;
        })
    };
    let routes = midplane_runtime::Routes::new(AppServiceServer::new(AppApi::new(ctx)));
    service.serve(routes).await?;
    if let Some(sub) = subscriber {
        sub.shutdown().await?;
    }
    // The sink's task sends what is queued once the last clone of the context is gone.
    let _ = controllers.await;
    if let Some(task) = publisher {
        let _ = tokio::time::timeout(std::time::Duration::from_secs(10), task).await;
    }
    Ok(())
}
