//! GroupService: replication groups over gRPC — read them, ask for a
//! re-render, and run a planned switchover through the agent gateway.

use crate::Context;
use kube::api::{Api, ListParams};
use kube::{Resource, ResourceExt};
use midplane_api::{Group, labels};
use midplane_proto::common::{Condition, ObjectRef};
use midplane_proto::group as pb;
use midplane_proto::group::group_service_server::GroupService;
use std::sync::Arc;
use std::time::Duration;
use tonic::{Request, Response, Status};

pub struct GroupApi {
    ctx: Arc<Context>,
}

impl GroupApi {
    pub fn new(ctx: Arc<Context>) -> Self {
        Self { ctx }
    }

    async fn get(&self, r: Option<ObjectRef>) -> Result<Group, Status> {
        let r = r.ok_or_else(|| Status::invalid_argument("ref: is required"))?;
        if r.namespace.is_empty() || r.name.is_empty() {
            return Err(Status::invalid_argument(
                "ref: namespace and name are required",
            ));
        }
        Api::<Group>::namespaced(self.ctx.client.clone(), &r.namespace)
            .get(&r.name)
            .await
            .map_err(kube_status)
    }
}

fn kube_status(e: kube::Error) -> Status {
    match &e {
        kube::Error::Api(s) if s.code == 404 => Status::not_found(s.message.clone()),
        kube::Error::Api(s) if s.code == 409 => Status::aborted(s.message.clone()),
        _ => Status::unavailable(e.to_string()),
    }
}

fn to_proto(g: &Group) -> pb::Group {
    let st = g.status.clone().unwrap_or_default();
    pb::Group {
        namespace: g.namespace().unwrap_or_default(),
        name: g.name_any(),
        app: g.spec.app.clone(),
        component: g.spec.component.clone(),
        shard: g.spec.shard,
        plugin: g.spec.middleware.plugin.clone(),
        plugin_version: st.plugin_hash.clone().unwrap_or_default(),
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
            .map_err(kube_status)?
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
                Status::failed_precondition(format!(
                    "plugin {:?} is not registered",
                    group.spec.middleware.plugin
                ))
            })?;
        let rendered = midplane_render::render_group(&group, &plugin)
            .map_err(|e| Status::failed_precondition(e.to_string()))?;
        let ns = group.namespace().unwrap_or_default();
        let deployments: Api<k8s_openapi::api::apps::v1::Deployment> =
            Api::namespaced(self.ctx.client.clone(), &ns);
        let live = deployments
            .list(&ListParams::default().labels(&crate::live::selector(&group)))
            .await
            .map_err(kube_status)?
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
            return Err(Status::unavailable(
                "the Group controller is not running here",
            ));
        }
        Ok(Response::new(pb::RerenderResponse {
            changed_instances: changed,
        }))
    }

    async fn switchover(
        &self,
        req: Request<pb::SwitchoverRequest>,
    ) -> Result<Response<pb::SwitchoverResponse>, Status> {
        let req = req.into_inner();
        let group = self.get(req.r#ref).await?;
        let gateway = self.ctx.gateway.as_ref().ok_or_else(|| {
            Status::failed_precondition(
                "no agent gateway configured (agent_gateway.addr): switchovers need the agents",
            )
        })?;
        let ns = group.namespace().unwrap_or_default();
        let resp = gateway
            .switchover(
                &ns,
                &group.name_any(),
                &req.candidate,
                Duration::from_secs(30),
            )
            .await
            .map_err(|e| match e {
                crate::gateway::GatewayError::Call(s) => s,
                other => Status::aborted(other.to_string()),
            })?;
        let mut status = group.status.clone().unwrap_or_default();
        status.primary = Some(resp.new_primary_instance.clone());
        status.term = status.term.max(resp.term);
        self.ctx
            .applier
            .apply_status(&group, &status)
            .await
            .map_err(|e| Status::unavailable(e.to_string()))?;
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
}
