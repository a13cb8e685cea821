//! The agent gateway as group-svc uses it: planned switchovers during
//! rollouts and on request. Optional: without one, a changed primary rolls in
//! place after its replicas.

use midplane_proto::common::ObjectRef;
use midplane_proto::gateway::agent_gateway_client::AgentGatewayClient;
use midplane_proto::gateway::{OrchestrationResponse, SwitchoverRequest};
use midplane_runtime::auth::BearerToken;
use std::time::Duration;
use tonic::service::Interceptor;
use tonic::transport::Channel;

#[derive(Clone)]
pub struct Gateway {
    channel: Channel,
    auth: Auth,
}

/// Adds the bearer token when one is configured.
#[derive(Clone)]
pub struct Auth(Option<BearerToken>);

impl Interceptor for Auth {
    fn call(&mut self, req: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
        match &mut self.0 {
            Some(t) => t.call(req),
            None => Ok(req),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    #[error("agent gateway address {addr:?}: {message}")]
    Address { addr: String, message: String },
    #[error("agent gateway token: {0}")]
    Token(String),
    #[error("agent gateway: {0}")]
    Call(#[from] tonic::Status),
    #[error("switchover of {group} failed: {message}")]
    Failed { group: String, message: String },
}

impl Gateway {
    /// A lazily connected client: the gateway may start after us.
    pub fn new(addr: &str, token: Option<&str>) -> Result<Self, GatewayError> {
        let channel = tonic::transport::Endpoint::from_shared(addr.to_string())
            .map_err(|e| GatewayError::Address {
                addr: addr.into(),
                message: e.to_string(),
            })?
            .connect_timeout(Duration::from_secs(3))
            .connect_lazy();
        let auth = match token {
            Some(t) => Some(BearerToken::new(t).map_err(|e| GatewayError::Token(e.to_string()))?),
            None => None,
        };
        Ok(Self {
            channel,
            auth: Auth(auth),
        })
    }

    /// Planned switchover of a Group's primary to `candidate` (empty: best replica).
    pub async fn switchover(
        &self,
        namespace: &str,
        group: &str,
        candidate: &str,
        timeout: Duration,
    ) -> Result<OrchestrationResponse, GatewayError> {
        let mut client =
            AgentGatewayClient::with_interceptor(self.channel.clone(), self.auth.clone());
        let mut req = tonic::Request::new(SwitchoverRequest {
            group: Some(ObjectRef {
                namespace: namespace.into(),
                name: group.into(),
            }),
            candidate_instance: candidate.into(),
            timeout_ms: u32::try_from(timeout.as_millis()).unwrap_or(u32::MAX),
        });
        req.set_timeout(timeout + Duration::from_secs(2));
        let resp = client.switchover(req).await?.into_inner();
        if !resp.success {
            let message = resp
                .steps
                .iter()
                .filter_map(|s| {
                    s.error.as_ref().map(|e| {
                        format!(
                            "{} {}: {}",
                            s.action,
                            s.target
                                .as_ref()
                                .map(|t| t.instance.as_str())
                                .unwrap_or("?"),
                            e.message
                        )
                    })
                })
                .collect::<Vec<_>>()
                .join("; ");
            return Err(GatewayError::Failed {
                group: format!("{namespace}/{group}"),
                message,
            });
        }
        Ok(resp)
    }
}
