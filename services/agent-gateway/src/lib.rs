//! The agent gateway: resolves a Group's pods, fans agent calls out to them
//! through one tower stack (deadline, load shedding, concurrency limit,
//! idempotent-only retries) and orchestrates switchover, failover and
//! config reload with per-pod results.

pub mod agent_tls;
pub mod config;
pub mod fanout;
pub mod kube_resolver;
pub mod orchestrate;
pub mod resolver;
pub mod service;

use std::sync::Arc;

pub use config::GatewayConfig;
pub use orchestrate::Gateway;

#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error(transparent)]
    FanOut(#[from] fanout::FanOutError),
    #[error("Kubernetes client (in-cluster or KUBECONFIG): {0}")]
    Kube(#[from] kube::Error),
}

/// Builds the gateway's gRPC routes with the resolver `config` names.
pub async fn routes(config: &GatewayConfig) -> Result<midplane_runtime::Routes, SetupError> {
    let fanout = fanout::FanOut::new(config.agents.fanout_settings()?)?;
    Ok(match config.resolver {
        config::ResolverKind::Static => {
            let resolver = resolver::StaticResolver::new(config.static_groups.clone());
            routes_with(resolver, fanout)
        }
        config::ResolverKind::Kube => {
            let client = kube::Client::try_default().await?;
            routes_with(kube_resolver::KubeResolver::new(client), fanout)
        }
    })
}

/// Routes over any resolver.
pub fn routes_with<R: resolver::PodResolver>(
    resolver: R,
    fanout: fanout::FanOut,
) -> midplane_runtime::Routes {
    let gateway = Arc::new(Gateway::new(resolver, fanout));
    midplane_runtime::Routes::new(service::GatewayService::server(gateway))
}
