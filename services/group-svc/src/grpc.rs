//! GroupService: replication groups over gRPC — read them, ask for a
//! re-render, and run a planned switchover through the agent gateway.

use crate::Context;
use kube::api::{Api, ListParams};
use kube::{Resource, ResourceExt};
use midplane_api::{Group, labels};
use midplane_proto::common::{Condition, ObjectRef};
use midplane_proto::group as pb;
use midplane_proto::group::group_service_server::GroupService;
use midplane_runtime::status::{ApiError, RETRY_SOON, from_kubernetes, reason, require_ref};
use std::sync::Arc;
use std::time::Duration;
use tonic::{Code, Request, Response, Status};

/// Longest a switchover may take when the caller sets no deadline.
const SWITCHOVER_TIMEOUT: Duration = Duration::from_secs(30);

pub struct GroupApi {
    ctx: Arc<Context>,
}

impl GroupApi {
    pub fn new(ctx: Arc<Context>) -> Self {
        Self { ctx }
    }

    async fn get(&self, r: Option<ObjectRef>) -> Result<Group, Status> {
        let (namespace, name) = require_ref(r)?;
        Api::<Group>::namespaced(self.ctx.client.clone(), &namespace)
            .get(&name)
            .await
            .map_err(|e| kube_status(e, &format!("{namespace}/{name}")))
    }
}

/// A failed Kubernetes call about the Group `name`, by the API conventions.
fn kube_status(e: kube::Error, name: &str) -> Status {
    match &e {
        kube::Error::Api(s) => from_kubernetes(
            s.code,
            &s.reason,
            &s.message,
            "Group",
            name,
            reason::GROUP_NOT_FOUND,
        )
        .into_status(),
        _ => ApiError::unavailable(
            reason::KUBERNETES_UNAVAILABLE,
            format!("Kubernetes API: {e}"),
            RETRY_SOON,
        )
        .into_status(),
    }
}

/// A failed switchover through the agent gateway.
fn gateway_status(e: crate::gateway::GatewayError) -> Status {
    use crate::gateway::GatewayError as E;
    match e {
        E::Call(s) => match s.code() {
            // The gateway answered: the request cannot succeed as it is.
            Code::InvalidArgument | Code::NotFound | Code::FailedPrecondition => ApiError::new(
                Code::FailedPrecondition,
                reason::ORCHESTRATION_FAILED,
                format!("agent gateway refused: {}", s.message()),
            )
            .meta("gatewayCode", format!("{:?}", s.code())),
            code => ApiError::unavailable(
                reason::ORCHESTRATION_FAILED,
                format!("agent gateway: {}", s.message()),
                RETRY_SOON,
            )
            .meta("gatewayCode", format!("{code:?}")),
        },
        E::Failed { .. } => ApiError::new(
            Code::FailedPrecondition,
            reason::ORCHESTRATION_FAILED,
            e.to_string(),
        ),
        E::Address { .. } | E::Token(_) => ApiError::internal(e.to_string()),
    }
    .into_status()
}

/// `name@version/hex` (a Group's `status.pluginHash`) as (version, `sha256:hex`).
fn plugin_ref(rendered_from: &str) -> (String, String) {
    let Some((id, hash)) = rendered_from.split_once('/') else {
        return (String::new(), String::new());
    };
    let version = id.rsplit_once('@').map(|(_, v)| v).unwrap_or_default();
    let hash = if hash.starts_with("sha256:") {
        hash.to_string()
    } else {
        format!("sha256:{hash}")
    };
    (version.to_string(), hash)
}

fn to_proto(g: &Group) -> pb::Group {
    let st = g.status.clone().unwrap_or_default();
    let (plugin_version, plugin_hash) = plugin_ref(st.plugin_hash.as_deref().unwrap_or_default());
    pb::Group {
        namespace: g.namespace().unwrap_or_default(),
        name: g.name_any(),
        app: g.spec.app.clone(),
        component: g.spec.component.clone(),
        shard: g.spec.shard,
        plugin: g.spec.middleware.plugin.clone(),
        plugin_version,
        plugin_hash,
        middleware_version: g.spec.middleware.version.clone(),
        primary: st.primary.clone().unwrap_or_default(),
        term: st.term,
        paused: g.spec.paused,
        rollout: st.rollout.as_ref().map(|r| pb::Rollout {
            state: r.state.clone(),
            target_hash: r.target_hash.clone(),
            instance: r.instance.clone().unwrap_or_default(),
            message: r.message.clone(),
            rolled: r.rolled.clone(),
        }),
        config_hash: st.config_hash.clone().unwrap_or_default(),
        replicas: g.spec.middleware.replicas,
        instances: st
            .instances
            .iter()
            .map(|i| pb::Instance {
                name: i.name.clone(),
                pod: i.pod.clone().unwrap_or_default(),
                role: i.role.clone().unwrap_or_default(),
                term: st.term,
                phase: i.phase.clone(),
                content_hash: i.content_hash.clone().unwrap_or_default(),
                last_transition_time: None,
            })
            .collect(),
        conditions: st
            .conditions
            .iter()
            .map(|c| Condition {
                r#type: c.type_.clone(),
                status: c.status.clone(),
                reason: c.reason.clone(),
                message: c.message.clone(),
                observed_generation: c.observed_generation.unwrap_or_default(),
                last_transition_time: Some(prost_types_timestamp(&c.last_transition_time.0)),
            })
            .collect(),
        generation: g.meta().generation.unwrap_or_default(),
        observed_generation: st.observed_generation.unwrap_or_default(),
    }
}

/// A Kubernetes label value (empty allowed: no filter).
fn label_value(v: &str) -> bool {
    v.is_empty()
        || (v.len() <= 63
            && v.starts_with(|c: char| c.is_ascii_alphanumeric())
            && v.ends_with(|c: char| c.is_ascii_alphanumeric())
            && v.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')))
}

fn prost_types_timestamp(t: &k8s_openapi::jiff::Timestamp) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: t.as_second(),
        nanos: t.subsec_nanosecond(),
    }
}

#[tonic::async_trait]
impl GroupService for GroupApi {
    async fn get_group(
        &self,
        req: Request<pb::GetGroupRequest>,
    ) -> Result<Response<pb::Group>, Status> {
        Ok(Response::new(to_proto(
            &self.get(req.into_inner().r#ref).await?,
        )))
    }

    async fn list_groups(
        &self,
        req: Request<pb::ListGroupsRequest>,
    ) -> Result<Response<pb::ListGroupsResponse>, Status> {
        let req = req.into_inner();
        let api: Api<Group> = if req.namespace.is_empty() {
            Api::all(self.ctx.client.clone())
        } else {
            Api::namespaced(self.ctx.client.clone(), &req.namespace)
        };
        for (field, value) in [("app", &req.app), ("component", &req.component)] {
            if !label_value(value) {
                return Err(ApiError::new(
                    Code::InvalidArgument,
                    reason::REQUEST_INVALID,
                    format!("{field}: {value:?} is not a valid label value"),
                )
                .field(field, "must be a label value: at most 63 letters, digits, '-', '_' or '.', starting and ending with a letter or digit")
                .into());
            }
        }
        let mut selector = Vec::new();
        if !req.app.is_empty() {
            selector.push(format!("{}={}", labels::APP, req.app));
        }
        if !req.component.is_empty() {
            selector.push(format!("{}={}", labels::COMPONENT_NAME, req.component));
        }
        let groups = api
            .list(&ListParams::default().labels(&selector.join(",")))
            .await
            .map_err(|e| kube_status(e, "Groups"))?
            .items;
        Ok(Response::new(pb::ListGroupsResponse {
            groups: groups
                .iter()
                .filter(|g| req.plugin.is_empty() || g.spec.middleware.plugin == req.plugin)
                .map(to_proto)
                .collect(),
        }))
    }

    async fn rerender(
        &self,
        req: Request<pb::RerenderRequest>,
    ) -> Result<Response<pb::RerenderResponse>, Status> {
        let req = req.into_inner();
        let group = self.get(req.r#ref).await?;
        let plugin = self
            .ctx
            .plugins
            .get(&group.spec.middleware.plugin)
            .ok_or_else(|| {
                ApiError::new(
                    Code::FailedPrecondition,
                    reason::PLUGIN_UNAVAILABLE,
                    format!(
                        "plugin {:?} is not registered",
                        group.spec.middleware.plugin
                    ),
                )
                .meta("plugin", &group.spec.middleware.plugin)
            })?;
        let rendered = midplane_render::render_group(&group, &plugin).map_err(|e| {
            ApiError::new(
                Code::FailedPrecondition,
                reason::PLUGIN_UNAVAILABLE,
                format!("plugin {} does not render this Group: {e}", plugin.id()),
            )
            .meta("plugin", plugin.id())
        })?;
        let key = format!(
            "{}/{}",
            group.namespace().unwrap_or_default(),
            group.name_any()
        );
        let ns = group.namespace().unwrap_or_default();
        let deployments: Api<k8s_openapi::api::apps::v1::Deployment> =
            Api::namespaced(self.ctx.client.clone(), &ns);
        let live = deployments
            .list(&ListParams::default().labels(&crate::live::selector(&group)))
            .await
            .map_err(|e| kube_status(e, &key))?
            .items;
        let live = crate::rollout::live_instances(&live);
        let changed = rendered
            .instance_hashes
            .iter()
            .filter(|(n, h)| {
                live.get(*n)
                    .is_none_or(|l| l.content_hash.as_ref() != Some(h))
            })
            .map(|(n, _)| n.clone())
            .collect();
        // Render afresh (forget the memo) and wake the controller for this
        // Group, in-process: no write to the Group is needed to wake it.
        self.ctx.renders.forget(&group.uid().unwrap_or_default());
        tracing::info!(group = %group.name_any(), reason = %req.reason, "re-render requested");
        if !self.ctx.wake.group(&ns, &group.name_any()) {
            return Err(ApiError::unavailable(
                reason::CONTROLLER_UNAVAILABLE,
                "the Group controller is not running here",
                RETRY_SOON,
            )
            .into_status());
        }
        Ok(Response::new(pb::RerenderResponse {
            changed_instances: changed,
        }))
    }

    async fn switchover(
        &self,
        req: Request<pb::SwitchoverRequest>,
    ) -> Result<Response<pb::SwitchoverResponse>, Status> {
        // Leave time to record the outcome before the caller's deadline.
        let timeout = midplane_runtime::deadline::client_timeout_of(req.metadata())
            .map(|d| d.saturating_sub(Duration::from_secs(3)))
            .unwrap_or(SWITCHOVER_TIMEOUT)
            .min(SWITCHOVER_TIMEOUT);
        let req = req.into_inner();
        let group = self.get(req.r#ref).await?;
        let gateway = self.ctx.gateway.as_ref().ok_or_else(|| {
            ApiError::new(
                Code::FailedPrecondition,
                reason::GATEWAY_NOT_CONFIGURED,
                "no agent gateway configured (agent_gateway.addr): switchovers need the agents",
            )
        })?;
        let ns = group.namespace().unwrap_or_default();
        let resp = gateway
            .switchover(&ns, &group.name_any(), &req.candidate, timeout)
            .await
            .map_err(gateway_status)?;
        let mut status = (self.ctx.status)
            .latest(&group, group.status.as_ref())
            .unwrap_or_default();
        status.primary = Some(resp.new_primary_instance.clone());
        status.term = status.term.max(resp.term);
        self.ctx
            .status
            .write_now(&group, &status)
            .await
            .map_err(|e| {
                ApiError::unavailable(
                    reason::KUBERNETES_UNAVAILABLE,
                    format!(
                        "primary is now {} (term {}), but the Group's status was not written: {e}",
                        resp.new_primary_instance, resp.term
                    ),
                    RETRY_SOON,
                )
            })?;
        self.ctx
            .events
            .normal(
                &group,
                "Switchover",
                "Switchover",
                format!(
                    "primary is now {} (term {})",
                    resp.new_primary_instance, resp.term
                ),
            )
            .await;
        Ok(Response::new(pb::SwitchoverResponse {
            new_primary: resp.new_primary_instance,
            term: resp.term,
        }))
    }

    async fn resume_rollout(
        &self,
        req: Request<pb::ResumeRolloutRequest>,
    ) -> Result<Response<pb::Group>, Status> {
        let group = self.get(req.into_inner().r#ref).await?;
        let ns = group.namespace().unwrap_or_default();
        let api: Api<Group> = Api::namespaced(self.ctx.client.clone(), &ns);
        let key = format!("{ns}/{}", group.name_any());
        let group = if group.spec.paused {
            let patch = serde_json::json!({"spec": {"paused": false}});
            api.patch(
                &group.name_any(),
                &kube::api::PatchParams::default(),
                &kube::api::Patch::Merge(&patch),
            )
            .await
            .map_err(|e| kube_status(e, &key))?
        } else {
            group
        };
        // A failed rollout is held until its content changes or it is
        // resumed: forget the hold and look again now.
        self.ctx.rollouts.resume(&group);
        if !self.ctx.wake.group(&ns, &group.name_any()) {
            return Err(ApiError::unavailable(
                reason::CONTROLLER_UNAVAILABLE,
                "the Group controller is not running here",
                RETRY_SOON,
            )
            .into_status());
        }
        Ok(Response::new(to_proto(&group)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plugin_ref_splits_the_rendered_from_string() {
        assert_eq!(
            plugin_ref("redis@0.1.0/abc123"),
            ("0.1.0".to_string(), "sha256:abc123".to_string())
        );
        assert_eq!(plugin_ref(""), (String::new(), String::new()));
    }

    #[test]
    fn label_values() {
        assert!(label_value("") && label_value("shop") && label_value("a.b_c-1"));
        assert!(!label_value("-x") && !label_value("a b") && !label_value(&"x".repeat(64)));
    }
}
