//! plugin-svc as deployed: config from the environment, health, reflection,
//! the registry API, and a clean stop on SIGTERM.

use midplane_proto::plugin::plugin_registry_client::PluginRegistryClient;
use midplane_proto::plugin::{GetPluginRequest, ListPluginsRequest, RenderPreviewRequest};
use midplane_runtime::testing::SpawnedService;
use std::time::Duration;

#[tokio::test]
async fn serves_plugins_health_and_stops_on_sigterm() {
    let mut svc = SpawnedService::start(
        env!("CARGO_BIN_EXE_plugin-svc"),
        &[("MIDPLANE_KUBE__WATCH", "false")],
    )
    .expect("start");
    let (code, _) = svc.admin_get("/livez").expect("livez");
    assert_eq!(code, 200);
    let (code, _) = svc.admin_get("/readyz").expect("readyz");
    assert_eq!(code, 200);

    let channel = tonic::transport::Endpoint::from_shared(format!("http://{}", svc.grpc_addr))
        .expect("endpoint")
        .connect()
        .await
        .expect("connect");
    let health = tonic_health::pb::health_client::HealthClient::new(channel.clone())
        .check(tonic_health::pb::HealthCheckRequest::default())
        .await
        .expect("health");
    assert_eq!(health.into_inner().status, 1, "SERVING");

    let mut client = PluginRegistryClient::new(channel);
    let list = client
        .list_plugins(ListPluginsRequest {})
        .await
        .expect("list")
        .into_inner();
    assert_eq!(list.plugins.len(), 1);
    let redis = &list.plugins[0];
    assert_eq!(redis.name, "redis");
    assert_eq!(redis.plugin_hash.len(), "sha256:".len() + 64);
    assert!(redis.plugin_hash.starts_with("sha256:"));
    assert!(redis.parameters.iter().any(|p| p.name == "maxmemory"));

    let missing = client
        .get_plugin(GetPluginRequest {
            name: "mongodb".into(),
            plugin_version: String::new(),
        })
        .await
        .expect_err("unknown plugin");
    assert_eq!(missing.code(), tonic::Code::NotFound);

    let app = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/redis-app.yaml"),
    )
    .expect("example");
    let preview = client
        .render_preview(RenderPreviewRequest {
            plugin: "redis".into(),
            app_yaml: app.clone(),
        })
        .await
        .expect("render")
        .into_inner();
    assert_eq!(preview.objects_yaml.matches("kind: Deployment").count(), 3);

    let bad = client
        .render_preview(RenderPreviewRequest {
            plugin: String::new(),
            app_yaml: app.replace("replicas: 3", "replicas: 0"),
        })
        .await
        .expect_err("invalid app");
    assert_eq!(bad.code(), tonic::Code::InvalidArgument);
    assert!(
        bad.message()
            .contains("spec.components[0].replicas: must be at least 1"),
        "{}",
        bad.message()
    );

    let status = svc.terminate(Duration::from_secs(10)).expect("stops");
    assert!(status.success(), "exit status {status}");
}
