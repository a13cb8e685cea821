//! Group-level operations built from per-pod agent calls: role survey,
//! planned switchover, forced failover, config reload and snapshots. Reads
//! live here; role changes in [`roles`], config reload in [`reload`],
//! snapshots in [`snapshot`]. Every pod's outcome is reported; a failure
//! names the pod and the step.

mod reload;
mod roles;
pub mod snapshot;
mod watch;

pub use watch::{Events, RESOLVE_EVERY};

use std::time::Duration;

use midplane_proto::agent::{self as pb, Role};
use midplane_proto::common::ErrorDetail;
use midplane_proto::gateway as gw;

use crate::fanout::{AgentOp, AgentReply, FanOut};
use crate::resolver::{PodResolver, ResolveError};

/// A switchover gives the candidate this long to catch up, by default.
const DEFAULT_SWITCHOVER_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    #[error(transparent)]
    Resolve(#[from] ResolveError),
    #[error("group {0}: request.group is required")]
    MissingGroup(&'static str),
    #[error("group {group} has no pod with instance {instance:?}")]
    UnknownInstance { group: String, instance: String },
    #[error("group {group}: no instance to snapshot: {why}")]
    NoSnapshotSource { group: String, why: String },
    /// The chosen pod's agent failed the call: its status, passed through.
    #[error("instance {instance}: {}", status.message())]
    Agent {
        instance: String,
        status: tonic::Status,
    },
}

impl From<GatewayError> for tonic::Status {
    fn from(e: GatewayError) -> Self {
        match &e {
            GatewayError::Resolve(ResolveError::UnknownGroup { .. }) => {
                tonic::Status::not_found(e.to_string())
            }
            GatewayError::Resolve(ResolveError::Backend { .. }) => {
                tonic::Status::unavailable(e.to_string())
            }
            GatewayError::UnknownInstance { .. } => tonic::Status::not_found(e.to_string()),
            GatewayError::NoSnapshotSource { .. } => {
                tonic::Status::failed_precondition(e.to_string())
            }
            GatewayError::Agent { status, .. } => tonic::Status::new(status.code(), e.to_string()),
            _ => tonic::Status::invalid_argument(e.to_string()),
        }
    }
}

pub struct Gateway<R: PodResolver> {
    resolver: R,
    fanout: FanOut,
}

fn detail(reason: &str, message: impl Into<String>) -> ErrorDetail {
    ErrorDetail {
        reason: reason.into(),
        message: message.into(),
        fields: Vec::new(),
        retryable: false,
    }
}

fn unexpected(op: &str) -> ErrorDetail {
    detail(
        "AgentError",
        format!("agent answered {op} with another message type"),
    )
}

/// A pod's role report, or why there is none.
type Survey = Vec<(gw::PodTarget, Result<pb::RoleReport, ErrorDetail>)>;

/// The primary to trust: highest term, then highest offset. A primary with a
/// lower term than any other report (a replica that followed a newer
/// primary included) is a stale claim (an old primary that has not been
/// fenced yet) and never wins.
pub fn current_primary(survey: &Survey) -> Option<(gw::PodTarget, pb::RoleReport)> {
    let newest = max_term(survey);
    survey
        .iter()
        .filter_map(|(t, r)| r.as_ref().ok().map(|r| (t, r)))
        .filter(|(_, r)| r.role == Role::Primary as i32 && r.term >= newest)
        .max_by_key(|(_, r)| (r.term, r.replication_offset))
        .map(|(t, r)| (t.clone(), r.clone()))
}

fn max_term(survey: &Survey) -> i64 {
    survey
        .iter()
        .filter_map(|(_, r)| r.as_ref().ok().map(|r| r.term))
        .max()
        .unwrap_or(0)
}

impl<R: PodResolver> Gateway<R> {
    pub fn new(resolver: R, fanout: FanOut) -> Self {
        Self { resolver, fanout }
    }

    pub fn fanout(&self) -> &FanOut {
        &self.fanout
    }

    async fn pods(
        &self,
        group: Option<&midplane_proto::common::ObjectRef>,
        what: &'static str,
    ) -> Result<Vec<gw::PodTarget>, GatewayError> {
        let g = group.ok_or(GatewayError::MissingGroup(what))?;
        Ok(self.resolver.resolve(&g.namespace, &g.name).await?)
    }

    async fn survey(&self, pods: Vec<gw::PodTarget>, fresh: bool, deadline: Duration) -> Survey {
        self.fanout
            .all(pods, AgentOp::GetRole { fresh }, deadline, false)
            .await
            .into_iter()
            .map(|(t, r)| {
                let r = r.and_then(|r| match r {
                    AgentReply::Role(x) => Ok(x),
                    _ => Err(unexpected("GetRole")),
                });
                (t, r)
            })
            .collect()
    }

    pub async fn get_roles(
        &self,
        req: gw::GroupRequest,
    ) -> Result<gw::GetRolesResponse, GatewayError> {
        let pods = self.pods(req.group.as_ref(), "GetRoles").await?;
        let deadline = self.fanout.deadline(req.timeout_ms);
        let survey = self.survey(pods, req.fresh, deadline).await;
        let primary = current_primary(&survey);
        Ok(gw::GetRolesResponse {
            primary_instance: primary
                .as_ref()
                .map(|(t, _)| t.instance.clone())
                .unwrap_or_default(),
            term: primary.as_ref().map(|(_, r)| r.term).unwrap_or(0),
            pods: survey
                .into_iter()
                .map(|(target, r)| {
                    let (role, error) = split(r);
                    gw::PodRole {
                        target: Some(target),
                        role,
                        error,
                    }
                })
                .collect(),
        })
    }

    pub async fn get_statuses(
        &self,
        req: gw::GroupRequest,
    ) -> Result<gw::GetStatusesResponse, GatewayError> {
        let pods = self.pods(req.group.as_ref(), "GetStatuses").await?;
        let deadline = self.fanout.deadline(req.timeout_ms);
        let results = self
            .fanout
            .all(pods, AgentOp::GetStatus, deadline, true)
            .await;
        Ok(gw::GetStatusesResponse {
            pods: results
                .into_iter()
                .map(|(target, r)| {
                    let (status, error) = split(r.and_then(|r| match r {
                        AgentReply::Status(s) => Ok(s),
                        _ => Err(unexpected("GetStatus")),
                    }));
                    gw::PodStatus {
                        target: Some(target),
                        status,
                        error,
                    }
                })
                .collect(),
        })
    }

    pub async fn health_checks(
        &self,
        req: gw::GroupRequest,
    ) -> Result<gw::HealthChecksResponse, GatewayError> {
        let pods = self.pods(req.group.as_ref(), "HealthChecks").await?;
        let deadline = self.fanout.deadline(req.timeout_ms);
        let results = self
            .fanout
            .all(pods, AgentOp::HealthCheck, deadline, true)
            .await;
        Ok(gw::HealthChecksResponse {
            pods: results
                .into_iter()
                .map(|(target, r)| {
                    let (health, error) = split(r.and_then(|r| match r {
                        AgentReply::Health(h) => Ok(h),
                        _ => Err(unexpected("HealthCheck")),
                    }));
                    gw::PodHealth {
                        target: Some(target),
                        health,
                        error,
                    }
                })
                .collect(),
        })
    }
}

fn failed(error: ErrorDetail) -> gw::OrchestrationResponse {
    gw::OrchestrationResponse {
        success: false,
        error: Some(error),
        ..Default::default()
    }
}

fn split<T>(r: Result<T, ErrorDetail>) -> (Option<T>, Option<ErrorDetail>) {
    match r {
        Ok(x) => (Some(x), None),
        Err(e) => (None, Some(e)),
    }
}
