//! GroupService as an outside team's generated client sees it (plain HTTP/2,
//! no server internals): every method's error codes and google.rpc details as
//! group.proto documents them, the version vocabulary of a rendered Group,
//! health by service name, reflection v1 and v1alpha, and a start with
//! MIDPLANE_KUBECONFIG set.

use kube::api::{Api, Patch, PatchParams};
use midplane_api::Group;
use midplane_proto::group::group_service_client::GroupServiceClient;
use midplane_proto::group::{self as pb};
use midplane_runtime::testing::contract::{
    PlainTransport, assert_error, assert_health, assert_reflection, error_info, has_retry_info,
    object_ref, plain_transport, resource,
};
use midplane_runtime::testing::{SpawnedService, eventually as until, free_port};
use tonic::Code;

const SERVICE: &str = "midplane.group.v1.GroupService";

fn start(kubeconfig: &str, extra: &[(&str, &str)]) -> SpawnedService {
    let mut env = vec![
        ("MIDPLANE_KUBE__KUBECONFIG", kubeconfig),
        ("MIDPLANE_LEADER_ELECTION__ENABLED", "false"),
        ("MIDPLANE_SERVER__LOG__LEVEL", "warn"),
    ];
    env.extend_from_slice(extra);
    SpawnedService::start(env!("CARGO_BIN_EXE_group-svc"), &env).expect("start group-svc")
}

fn client(svc: &SpawnedService) -> GroupServiceClient<PlainTransport> {
    let (transport, origin) = plain_transport(svc.grpc_addr);
    GroupServiceClient::with_origin(transport, origin)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_method_answers_its_documented_errors() {
    let mut cfg = midplane_platform::PlatformConfig::emulator(Default::default()).expect("plugins");
    cfg.controllers = false;
    let platform = midplane_platform::Platform::start(cfg)
        .await
        .expect("platform");
    let (emu, kube) = (
        platform.emulator().expect("in-process emulator"),
        platform.client(),
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let kubeconfig = dir.path().join("kubeconfig");
    emu.write_kubeconfig(&kubeconfig).expect("kubeconfig");
    let kc = kubeconfig.to_str().expect("utf8");
    // The CLI's variable set in the environment: warned about, not fatal.
    let svc = start(kc, &[("MIDPLANE_KUBECONFIG", "/nonexistent/kubeconfig")]);
    assert_health(svc.grpc_addr, &[SERVICE]).await;
    assert_reflection(svc.grpc_addr, None, &[SERVICE]).await;
    let mut api = client(&svc);

    // A rendered Group speaks the one vocabulary.
    let groups = midplane_e2e::create_redis_group(&kube).await;
    until("the Group rendered", 30, || {
        let groups = groups.clone();
        async move { groups.get("cache-0").await.ok()?.status?.plugin_hash }
    })
    .await;
    let g = api
        .get_group(pb::GetGroupRequest {
            r#ref: object_ref("default", "cache-0"),
        })
        .await
        .expect("get")
        .into_inner();
    let redis = midplane_plugin::registry::bundled()
        .expect("bundled")
        .get("redis")
        .expect("redis");
    assert_eq!(g.plugin, "redis");
    assert_eq!(g.plugin_version, redis.metadata.version);
    assert_eq!(g.plugin_hash, format!("sha256:{}", redis.content_hash));
    assert_eq!(g.middleware_version, "", "the spec names no version");

    // GetGroup
    let err = api
        .get_group(pb::GetGroupRequest { r#ref: None })
        .await
        .expect_err("no ref");
    assert_error(&err, Code::InvalidArgument, "REQUEST_INVALID", &["ref"]);
    let err = api
        .get_group(pb::GetGroupRequest {
            r#ref: object_ref("", ""),
        })
        .await
        .expect_err("empty ref");
    assert_error(
        &err,
        Code::InvalidArgument,
        "REQUEST_INVALID",
        &["ref.namespace", "ref.name"],
    );
    let err = api
        .get_group(pb::GetGroupRequest {
            r#ref: object_ref("default", "nope"),
        })
        .await
        .expect_err("missing");
    assert_error(&err, Code::NotFound, "GROUP_NOT_FOUND", &[]);
    assert_eq!(
        resource(&err),
        Some(("Group".to_string(), "default/nope".to_string()))
    );

    // ListGroups
    let err = api
        .list_groups(pb::ListGroupsRequest {
            app: "not a label!".into(),
            ..Default::default()
        })
        .await
        .expect_err("bad label value");
    assert_error(&err, Code::InvalidArgument, "REQUEST_INVALID", &["app"]);
    let listed = api
        .list_groups(pb::ListGroupsRequest {
            namespace: "default".into(),
            plugin: "redis".into(),
            ..Default::default()
        })
        .await
        .expect("list")
        .into_inner();
    assert_eq!(listed.groups.len(), 1);

    // Rerender
    let err = api
        .rerender(pb::RerenderRequest {
            r#ref: object_ref("default", ""),
            reason: String::new(),
        })
        .await
        .expect_err("no name");
    assert_error(
        &err,
        Code::InvalidArgument,
        "REQUEST_INVALID",
        &["ref.name"],
    );
    let err = api
        .rerender(pb::RerenderRequest {
            r#ref: object_ref("default", "nope"),
            reason: String::new(),
        })
        .await
        .expect_err("missing");
    assert_error(&err, Code::NotFound, "GROUP_NOT_FOUND", &[]);
    let orphan = serde_json::json!({
        "apiVersion": "midplane.dev/v1alpha1", "kind": "Group",
        "metadata": {"name": "docs-0"},
        "spec": {"app": "docs", "component": "db", "shard": 0, "plugin": "mongodb", "replicas": 1}
    });
    let all: Api<Group> = Api::namespaced(kube.clone(), "default");
    all.patch(
        "docs-0",
        &PatchParams::apply("test"),
        &Patch::Apply(&orphan),
    )
    .await
    .expect("a Group of an unknown plugin");
    let err = api
        .rerender(pb::RerenderRequest {
            r#ref: object_ref("default", "docs-0"),
            reason: "test".into(),
        })
        .await
        .expect_err("no such plugin");
    assert_error(&err, Code::FailedPrecondition, "PLUGIN_UNAVAILABLE", &[]);
    assert_eq!(
        error_info(&err).metadata.get("plugin").map(String::as_str),
        Some("mongodb")
    );
    api.rerender(pb::RerenderRequest {
        r#ref: object_ref("default", "cache-0"),
        reason: "test".into(),
    })
    .await
    .expect("rerender");

    // Switchover: without a gateway, then with one that does not answer.
    let err = api
        .switchover(pb::SwitchoverRequest {
            r#ref: object_ref("default", "cache-0"),
            candidate: String::new(),
        })
        .await
        .expect_err("no gateway");
    assert_error(
        &err,
        Code::FailedPrecondition,
        "GATEWAY_NOT_CONFIGURED",
        &[],
    );
    let err = api
        .switchover(pb::SwitchoverRequest {
            r#ref: None,
            candidate: String::new(),
        })
        .await
        .expect_err("no ref");
    assert_error(&err, Code::InvalidArgument, "REQUEST_INVALID", &["ref"]);
    let gateway = format!("http://127.0.0.1:{}", free_port().expect("port"));
    let with_gateway = start(
        kc,
        &[
            ("MIDPLANE_AGENT_GATEWAY__ADDR", gateway.as_str()),
            ("MIDPLANE_KUBE__WATCH_PLUGIN_CONFIGMAPS", "false"),
        ],
    );
    let err = client(&with_gateway)
        .switchover(pb::SwitchoverRequest {
            r#ref: object_ref("default", "cache-0"),
            candidate: String::new(),
        })
        .await
        .expect_err("gateway unreachable");
    assert_error(&err, Code::Unavailable, "ORCHESTRATION_FAILED", &[]);
    assert!(has_retry_info(&err), "{err:?}");

    // With the API server gone: UNAVAILABLE, worth a retry.
    platform.stop().await;
    let err = api
        .get_group(pb::GetGroupRequest {
            r#ref: object_ref("default", "cache-0"),
        })
        .await
        .expect_err("no API server");
    assert_error(&err, Code::Unavailable, "KUBERNETES_UNAVAILABLE", &[]);
    assert!(has_retry_info(&err), "{err:?}");
}
