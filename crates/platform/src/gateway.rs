//! An agent gateway in the platform's process, for real Pods (`midplane dev
//! --pods process`): it finds a Group's Pods through the platform's own API
//! client and reaches their agents with the agent token, on a loopback port
//! only group-svc uses.

use crate::PlatformError;
use midplane_agent_gateway::fanout::{FanOut, FanOutSettings};
use midplane_agent_gateway::kube_resolver::KubeResolver;
use midplane_runtime::{ServerConfig, Service};
use tokio::task::JoinHandle;

/// Starts the gateway; returns its `http://` address and its task.
pub async fn start(
    client: kube::Client,
    token: &str,
) -> Result<(String, JoinHandle<()>), PlatformError> {
    let err = |e: &dyn std::fmt::Display| PlatformError::GatewayStart(e.to_string());
    let fanout = FanOut::new(FanOutSettings {
        token: Some(token.to_string()),
        ..FanOutSettings::default()
    })
    .map_err(|e| err(&e))?;
    let routes = midplane_agent_gateway::routes_with(KubeResolver::new(client), fanout);
    let grpc = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| err(&e))?;
    let admin = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| err(&e))?;
    let addr = grpc.local_addr().map_err(|e| err(&e))?;
    let service = Service::for_test("agent-gateway", ServerConfig::default());
    let task = tokio::spawn(async move {
        if let Err(e) = service.serve_on(admin, grpc, routes).await {
            tracing::warn!(error = %e, "the in-process agent gateway stopped");
        }
    });
    Ok((format!("http://{addr}"), task))
}
