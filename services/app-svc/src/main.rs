use anyhow::Context as _;
use midplane_app_svc::{Config, Context, grpc::AppApi, run::run_controllers};
use midplane_operator::leader::LeaderElector;
use midplane_operator::plugin_store::PluginStore;
use midplane_proto::app::app_service_server::AppServiceServer;
use midplane_runtime::Service;
use std::sync::Arc;
use std::time::Duration;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let config: Config = midplane_runtime::load("app-svc").context("loading configuration")?;
    let service = Service::init("app-svc", config.server.clone())?;
    let client = midplane_operator::kube_client(config.kube.kubeconfig.as_deref()).await?;
    let plugins = PluginStore::new(midplane_plugin::registry::bundled()?);
    let ctx = Arc::new(Context::new(client.clone(), plugins));
    let shutdown = service.shutdown();
    let health = service.health();

    let le = config.leader_election.clone();
    let plugin_ns = config.kube.plugin_namespace.clone();
    let controllers = {
        let ctx = ctx.clone();
        let shutdown = shutdown.clone();
        tokio::spawn(async move {
            if le.enabled {
                health.set("leader", true, "standby");
                let identity = std::env::var("POD_NAME")
                    .unwrap_or_else(|_| format!("app-svc-{}", std::process::id()));
                let elector = LeaderElector::new(
                    client,
                    &le.namespace,
                    &le.lease_name,
                    &identity,
                    Duration::from_secs(le.lease_seconds),
                );
                let leadership = tokio::select! {
                    l = elector.acquire() => l,
                    _ = shutdown.wait() => return,
                };
                tokio::select! {
                    _ = run_controllers(ctx, plugin_ns, shutdown.clone()) => {}
                    _ = leadership.lost() => {
                        // Never act without the lease: stop so Kubernetes restarts us as a standby.
                        tracing::error!("lost leadership; shutting down");
                        shutdown.trigger();
                    }
                }
            } else {
                run_controllers(ctx, plugin_ns, shutdown.clone()).await;
            }
        })
    };
    let routes = tonic::service::Routes::new(AppServiceServer::new(AppApi::new(ctx)));
    service.serve(routes).await?;
    let _ = controllers.await;
    Ok(())
}
