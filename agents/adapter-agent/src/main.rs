//! Agent 2: the middleware adapter (Redis) with its Prometheus exporter.

use midplane_agent_core::app::{
    AdapterAgentConfig, AdapterCommand, Listeners, check_adapter_args, prepare_data,
    run_adapter_agent,
};

#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    midplane_runtime::config::answer_version("adapter-agent");
    if let AdapterCommand::PrepareData { data, config } =
        check_adapter_args(std::env::args().skip(1))?
    {
        println!("{}", prepare_data(&data, &config)?);
        return Ok(());
    }
    let config = AdapterAgentConfig::load()?;
    let service = midplane_runtime::Service::init("adapter-agent", config.server.clone())?;
    let listeners = Listeners::bind(&config.server, Some(&config.exporter_addr)).await?;
    run_adapter_agent(service, config, listeners).await?;
    Ok(())
}
