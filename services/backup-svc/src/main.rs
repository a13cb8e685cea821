use anyhow::Context;
use midplane_backup_svc::{BackupSvc, Config};
use midplane_proto::backup::backup_service_server::BackupServiceServer;
use midplane_runtime::Service;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let config: Config = midplane_runtime::load("backup-svc").context("loading configuration")?;
    let service = Service::init("backup-svc", config.server.clone())?;
    let svc = BackupSvc::new(config.backup);
    let routes = tonic::service::Routes::new(BackupServiceServer::new(svc));
    service.serve(routes).await?;
    Ok(())
}
