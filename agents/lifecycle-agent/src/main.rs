//! Agent 1: lifecycle, status and health of the pod's middleware.

use midplane_agent_core::app::{
    LifecycleAgentConfig, Listeners, check_lifecycle_args, run_lifecycle_agent,
};

#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    check_lifecycle_args(std::env::args().skip(1))?;
    let config = LifecycleAgentConfig::load()?;
    let service = midplane_runtime::Service::init("lifecycle-agent", config.server.clone())?;
    let listeners = Listeners::bind(&config.server, None).await?;
    run_lifecycle_agent(service, config, listeners).await?;
    Ok(())
}
