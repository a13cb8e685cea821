use anyhow::Context;
use midplane_backup_svc::{Config, startup};
use midplane_proto::backup::backup_service_server::BackupServiceServer;
use midplane_runtime::Service;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    // Inline backups run in this process: keep its memory flat whatever the data size.
    midplane_backup::memory::bound_allocator_growth();
    let config: Config = midplane_runtime::load("backup-svc").context("loading configuration")?;
    let service = Service::init("backup-svc", config.server.clone())?;
    midplane_backup_svc::announce::init_metrics();
    let (events, publisher) = startup::event_sink(&config.bus)
        .await
        .context("connecting to the event bus")?;
    let client = startup::kube_client(&config)
        .await
        .context("connecting to Kubernetes")?;
    let scheduler = match &client {
        Some(c) => Some(
            startup::start_with_client(
                &config,
                c.clone(),
                events.clone(),
                service.shutdown(),
                service.health(),
            )
            .await
            .context("starting the backup scheduler")?,
        ),
        None => None,
    };
    let svc = startup::backup_service(&config, events, client);
    let routes = midplane_runtime::Routes::new(BackupServiceServer::new(svc));
    service.serve(routes).await?;
    if let Some(s) = scheduler {
        let _ = s.await;
    }
    // The publisher drains what is queued once the last sink is gone.
    if let Some(p) = publisher {
        let _ = tokio::time::timeout(std::time::Duration::from_secs(10), p).await;
    }
    Ok(())
}
