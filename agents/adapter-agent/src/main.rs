//! Agent 2: the middleware adapter (Redis) with its Prometheus exporter.

use midplane_agent_core::app::{
    AdapterAgentConfig, Listeners, check_adapter_args, run_adapter_agent,
};

#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    midplane_runtime::config::answer_version("adapter-agent");
    check_adapter_args(std::env::args().skip(1))?;
    let config = AdapterAgentConfig::load()?;
    let service = midplane_runtime::Service::init("adapter-agent", config.server.clone())?;
    let listeners = Listeners::bind(&config.server, Some(&config.exporter_addr)).await?;
    run_adapter_agent(service, config, listeners).await?;
    Ok(())
}
