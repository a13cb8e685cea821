//! The AgentGateway gRPC service: thin glue over [`crate::orchestrate::Gateway`].

use std::pin::Pin;
use std::sync::Arc;

use midplane_proto::gateway as gw;
use midplane_proto::gateway::agent_gateway_server::{AgentGateway, AgentGatewayServer};
use tonic::{Request, Response, Status};

use crate::orchestrate::Gateway;
use crate::resolver::PodResolver;

pub struct GatewayService<R: PodResolver>(pub Arc<Gateway<R>>);

impl<R: PodResolver> GatewayService<R> {
    pub fn server(gateway: Arc<Gateway<R>>) -> AgentGatewayServer<Self> {
        AgentGatewayServer::new(Self(gateway))
    }
}

fn count(method: &'static str, ok: bool) {
    metrics::counter!("midplane_gateway_requests_total", "method" => method, "outcome" => if ok { "ok" } else { "error" }).increment(1);
}

#[tonic::async_trait]
impl<R: PodResolver> AgentGateway for GatewayService<R> {
    async fn get_roles(
        &self,
        request: Request<gw::GroupRequest>,
    ) -> Result<Response<gw::GetRolesResponse>, Status> {
        let r = self.0.get_roles(request.into_inner()).await;
        count("GetRoles", r.is_ok());
        Ok(Response::new(r?))
    }

    async fn get_statuses(
        &self,
        request: Request<gw::GroupRequest>,
    ) -> Result<Response<gw::GetStatusesResponse>, Status> {
        let r = self.0.get_statuses(request.into_inner()).await;
        count("GetStatuses", r.is_ok());
        Ok(Response::new(r?))
    }

    async fn health_checks(
        &self,
        request: Request<gw::GroupRequest>,
    ) -> Result<Response<gw::HealthChecksResponse>, Status> {
        let r = self.0.health_checks(request.into_inner()).await;
        count("HealthChecks", r.is_ok());
        Ok(Response::new(r?))
    }

    async fn switchover(
        &self,
        request: Request<gw::SwitchoverRequest>,
    ) -> Result<Response<gw::OrchestrationResponse>, Status> {
        let r = self.0.switchover(request.into_inner()).await;
        count("Switchover", r.as_ref().is_ok_and(|x| x.success));
        Ok(Response::new(r?))
    }

    async fn failover(
        &self,
        request: Request<gw::FailoverRequest>,
    ) -> Result<Response<gw::OrchestrationResponse>, Status> {
        let r = self.0.failover(request.into_inner()).await;
        count("Failover", r.as_ref().is_ok_and(|x| x.success));
        Ok(Response::new(r?))
    }

    async fn reload_config(
        &self,
        request: Request<gw::ReloadConfigRequest>,
    ) -> Result<Response<gw::ReloadConfigResponse>, Status> {
        let r = self.0.reload_config(request.into_inner()).await;
        count("ReloadConfig", r.as_ref().is_ok_and(|x| x.all_applied));
        Ok(Response::new(r?))
    }

    type WatchLifecycleStream = LifecycleStream;

    async fn watch_lifecycle(
        &self,
        request: Request<gw::GroupRequest>,
    ) -> Result<Response<Self::WatchLifecycleStream>, Status> {
        let r = self.0.clone().watch_lifecycle(request.into_inner()).await;
        count("WatchLifecycle", r.is_ok());
        let rx = r?;
        Ok(Response::new(Box::pin(
            tokio_stream::wrappers::ReceiverStream::new(rx),
        )))
    }

    async fn rejoin(
        &self,
        request: Request<gw::RejoinRequest>,
    ) -> Result<Response<gw::OrchestrationResponse>, Status> {
        let r = self.0.rejoin(request.into_inner()).await;
        count("Rejoin", r.as_ref().is_ok_and(|x| x.success));
        Ok(Response::new(r?))
    }

    async fn snapshot(
        &self,
        request: Request<gw::GroupSnapshotRequest>,
    ) -> Result<Response<gw::GroupSnapshotResponse>, Status> {
        let r = self.0.snapshot(request.into_inner()).await;
        count("Snapshot", r.is_ok());
        Ok(Response::new(r?))
    }
}

/// The merged lifecycle stream of a Group's pods.
pub type LifecycleStream =
    Pin<Box<dyn tokio_stream::Stream<Item = Result<gw::GroupLifecycleEvent, Status>> + Send>>;
