//! The agent gateway's Snapshot RPC behind [`Snapshots`].

use futures::future::BoxFuture;

use super::plan::SnapshotTaken;
use super::snapshot::{SnapshotError, Snapshots};

/// Snapshots through the agent gateway's Snapshot RPC.
pub struct GatewaySnapshots {
    channel: tonic::transport::Channel,
    auth: midplane_runtime::auth::MaybeBearerToken,
}

/// How long a snapshot may take before the Backup retries it.
const SNAPSHOT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(120);

impl GatewaySnapshots {
    /// A lazily connected client (the gateway may start after backup-svc).
    pub fn new(addr: &str, token: Option<&str>) -> Result<Self, String> {
        let channel = tonic::transport::Endpoint::from_shared(addr.to_string())
            .map_err(|e| format!("address {addr:?}: {e}"))?
            .connect_timeout(std::time::Duration::from_secs(3))
            .connect_lazy();
        let auth = match token {
            Some(t) => Some(
                midplane_runtime::auth::BearerToken::new(t).map_err(|e| format!("token: {e}"))?,
            ),
            None => None,
        };
        Ok(Self {
            channel,
            auth: midplane_runtime::auth::MaybeBearerToken(auth),
        })
    }
}

fn role_name(role: i32) -> &'static str {
    use midplane_proto::agent::Role;
    match Role::try_from(role) {
        Ok(Role::Primary) => "primary",
        Ok(Role::Replica) => "replica",
        Ok(Role::Fenced) => "fenced",
        _ => "unknown",
    }
}

impl Snapshots for GatewaySnapshots {
    fn take<'a>(
        &'a self,
        namespace: &'a str,
        group: &'a str,
        instance: &'a str,
        snapshot_id: &'a str,
    ) -> BoxFuture<'a, Result<SnapshotTaken, SnapshotError>> {
        use midplane_proto::gateway::GroupSnapshotRequest;
        use midplane_proto::gateway::agent_gateway_client::AgentGatewayClient;
        Box::pin(async move {
            let mut client =
                AgentGatewayClient::with_interceptor(self.channel.clone(), self.auth.clone());
            let mut req = tonic::Request::new(GroupSnapshotRequest {
                group: Some(midplane_proto::common::ObjectRef {
                    namespace: namespace.into(),
                    name: group.into(),
                }),
                instance: instance.into(),
                snapshot_id: snapshot_id.into(),
                timeout_ms: SNAPSHOT_TIMEOUT.as_millis() as u32,
            });
            req.set_timeout(SNAPSHOT_TIMEOUT + std::time::Duration::from_secs(10));
            let resp = client.snapshot(req).await.map_err(|s| {
                use tonic::Code;
                SnapshotError {
                    message: format!("agent gateway: {:?}: {}", s.code(), s.message()),
                    transient: matches!(
                        s.code(),
                        Code::Unavailable
                            | Code::DeadlineExceeded
                            | Code::ResourceExhausted
                            | Code::Aborted
                            | Code::Unknown
                            | Code::Internal
                            | Code::FailedPrecondition
                    ),
                }
            })?;
            let resp = resp.into_inner();
            let target = resp.target.unwrap_or_default();
            let snap = resp.snapshot.unwrap_or_default();
            let role = snap.role.unwrap_or_default();
            if snap.path.is_empty() || snap.path.starts_with('/') || snap.path.contains("..") {
                return Err(SnapshotError {
                    message: format!(
                        "the agent of {} answered an unusable snapshot path {:?}",
                        target.instance, snap.path
                    ),
                    transient: false,
                });
            }
            Ok(SnapshotTaken {
                instance: target.instance,
                role: role_name(role.role).into(),
                term: role.term,
                replication_offset: role.replication_offset,
                path: Some(snap.path),
            })
        })
    }
}
