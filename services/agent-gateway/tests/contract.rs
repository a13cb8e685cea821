//! The agent-gateway binary as a client sees it: health by service name,
//! reflection v1 and v1alpha listing only AgentGateway, a start with
//! MIDPLANE_KUBECONFIG set, and the status codes gateway.proto documents for
//! every method (INVALID_ARGUMENT without a group, NOT_FOUND for an unknown one).

use midplane_proto::common::ObjectRef;
use midplane_proto::gateway::agent_gateway_client::AgentGatewayClient;
use midplane_proto::gateway::{self as gw};
use midplane_runtime::testing::SpawnedService;
use midplane_runtime::testing::contract::{assert_health, assert_reflection, plain_transport};
use tonic::Code;

const SERVICE: &str = "midplane.gateway.v1.AgentGateway";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_reflection_and_every_methods_codes() {
    let svc = SpawnedService::start(
        env!("CARGO_BIN_EXE_agent-gateway"),
        &[
            ("MIDPLANE_RESOLVER", "static"),
            ("MIDPLANE_SERVER__LOG__LEVEL", "warn"),
            // The CLI's variable: warned about, not fatal.
            ("MIDPLANE_KUBECONFIG", "/nonexistent/kubeconfig"),
        ],
    )
    .expect("start agent-gateway");
    assert_health(svc.grpc_addr, &[SERVICE]).await;
    assert_reflection(svc.grpc_addr, None, &[SERVICE]).await;

    let (transport, origin) = plain_transport(svc.grpc_addr);
    let mut api = AgentGatewayClient::with_origin(transport, origin);
    let unknown = || {
        Some(ObjectRef {
            namespace: "shop".into(),
            name: "nope".into(),
        })
    };
    let group = |group| gw::GroupRequest {
        group,
        ..Default::default()
    };
    for (method, missing, absent) in [
        (
            "GetRoles",
            api.get_roles(group(None)).await.map(|_| ()),
            api.get_roles(group(unknown())).await.map(|_| ()),
        ),
        (
            "GetStatuses",
            api.get_statuses(group(None)).await.map(|_| ()),
            api.get_statuses(group(unknown())).await.map(|_| ()),
        ),
        (
            "HealthChecks",
            api.health_checks(group(None)).await.map(|_| ()),
            api.health_checks(group(unknown())).await.map(|_| ()),
        ),
        (
            "Switchover",
            api.switchover(gw::SwitchoverRequest::default())
                .await
                .map(|_| ()),
            api.switchover(gw::SwitchoverRequest {
                group: unknown(),
                ..Default::default()
            })
            .await
            .map(|_| ()),
        ),
        (
            "Failover",
            api.failover(gw::FailoverRequest::default())
                .await
                .map(|_| ()),
            api.failover(gw::FailoverRequest {
                group: unknown(),
                ..Default::default()
            })
            .await
            .map(|_| ()),
        ),
        (
            "ReloadConfig",
            api.reload_config(gw::ReloadConfigRequest::default())
                .await
                .map(|_| ()),
            api.reload_config(gw::ReloadConfigRequest {
                group: unknown(),
                ..Default::default()
            })
            .await
            .map(|_| ()),
        ),
        (
            "Snapshot",
            api.snapshot(gw::GroupSnapshotRequest::default())
                .await
                .map(|_| ()),
            api.snapshot(gw::GroupSnapshotRequest {
                group: unknown(),
                ..Default::default()
            })
            .await
            .map(|_| ()),
        ),
    ] {
        let missing = missing.expect_err("no group");
        assert_eq!(
            missing.code(),
            Code::InvalidArgument,
            "{method}: {missing:?}"
        );
        let absent = absent.expect_err("unknown group");
        assert_eq!(absent.code(), Code::NotFound, "{method}: {absent:?}");
    }
}
