//! agent-gateway: fans controller calls out to the agents of a Group's pods.

#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let config = midplane_agent_gateway::GatewayConfig::load()?;
    let service = midplane_runtime::Service::init("agent-gateway", config.server.clone())?;
    let routes = midplane_agent_gateway::routes(&config).await?;
    service.serve(routes).await?;
    Ok(())
}
