//! The agent gateway as group-svc uses it: planned switchovers during
//! rollouts and on request, the agents' lifecycle and role reports, forced
//! failover and rejoin (see `observe`). Optional: without one, a changed
//! primary rolls in place after its replicas and roles stay as planned.

use midplane_proto::common::ObjectRef;
use midplane_proto::gateway::agent_gateway_client::AgentGatewayClient;
use midplane_proto::gateway::{
    FailoverRequest, GetRolesResponse, GroupLifecycleEvent, GroupRequest, OrchestrationResponse,
    RejoinRequest, ReloadConfigRequest, ReloadConfigResponse, SwitchoverRequest,
};
use midplane_runtime::auth::BearerToken;
use std::time::Duration;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;

#[derive(Clone)]
pub struct Gateway {
    channel: Channel,
    auth: Auth,
}

/// Adds the bearer token when one is configured.
pub use midplane_runtime::auth::MaybeBearerToken as Auth;

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
        let mut client = self.client();
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

/// The Group as the gateway names it.
fn group_ref(namespace: &str, group: &str) -> Option<ObjectRef> {
    Some(ObjectRef {
        namespace: namespace.into(),
        name: group.into(),
    })
}

fn millis(d: Duration) -> u32 {
    u32::try_from(d.as_millis()).unwrap_or(u32::MAX)
}

impl Gateway {
    fn client(&self) -> AgentGatewayClient<InterceptedService<Channel, Auth>> {
        AgentGatewayClient::with_interceptor(self.channel.clone(), self.auth.clone())
    }

    /// Agent 1's lifecycle stream of every pod of the Group, merged.
    pub async fn watch_lifecycle(
        &self,
        namespace: &str,
        group: &str,
    ) -> Result<tonic::Streaming<GroupLifecycleEvent>, GatewayError> {
        let req = GroupRequest {
            group: group_ref(namespace, group),
            ..GroupRequest::default()
        };
        Ok(self.client().watch_lifecycle(req).await?.into_inner())
    }

    /// Every pod's role, asked now (not the agents' cache).
    pub async fn roles(
        &self,
        namespace: &str,
        group: &str,
        timeout: Duration,
    ) -> Result<GetRolesResponse, GatewayError> {
        let mut req = tonic::Request::new(GroupRequest {
            group: group_ref(namespace, group),
            timeout_ms: millis(timeout),
            fresh: true,
        });
        req.set_timeout(timeout + Duration::from_secs(1));
        Ok(self.client().get_roles(req).await?.into_inner())
    }

    /// Forced failover away from `failed_primary`. The gateway refuses
    /// (success = false) while any primary of the top term still answers.
    pub async fn failover(
        &self,
        namespace: &str,
        group: &str,
        failed_primary: &str,
        timeout: Duration,
    ) -> Result<OrchestrationResponse, GatewayError> {
        let mut req = tonic::Request::new(FailoverRequest {
            group: group_ref(namespace, group),
            candidate_instance: String::new(),
            timeout_ms: millis(timeout),
            failed_primary_instance: failed_primary.into(),
        });
        req.set_timeout(timeout + Duration::from_secs(2));
        Ok(self.client().failover(req).await?.into_inner())
    }

    /// Tells `instances` (empty: every astray one) to follow the current primary.
    pub async fn rejoin(
        &self,
        namespace: &str,
        group: &str,
        instances: Vec<String>,
        timeout: Duration,
    ) -> Result<OrchestrationResponse, GatewayError> {
        let mut req = tonic::Request::new(RejoinRequest {
            group: group_ref(namespace, group),
            instances,
            timeout_ms: millis(timeout),
        });
        req.set_timeout(timeout + Duration::from_secs(2));
        Ok(self.client().rejoin(req).await?.into_inner())
    }
}

impl Gateway {
    /// Every pod reloads its config file once it has `content_hash` (waiting
    /// up to `wait` for the kubelet to sync it): dynamic parameters live, all
    /// or nothing per pod; the restart-required ones are only reported.
    pub async fn reload_config(
        &self,
        namespace: &str,
        group: &str,
        config_path: &str,
        content_hash: &str,
        restart_required: Vec<String>,
        wait: Duration,
    ) -> Result<ReloadConfigResponse, GatewayError> {
        let mut req = tonic::Request::new(ReloadConfigRequest {
            group: group_ref(namespace, group),
            config_path: config_path.into(),
            content_hash: content_hash.into(),
            restart_required_parameters: restart_required,
            wait_timeout_ms: millis(wait),
        });
        req.set_timeout(wait + Duration::from_secs(4));
        Ok(self.client().reload_config(req).await?.into_inner())
    }
}
