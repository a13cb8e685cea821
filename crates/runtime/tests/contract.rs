//! The server wiring as outside clients see it: health per served service,
//! reflection v1 and v1alpha listing only what the port serves, and
//! DEADLINE_EXCEEDED (with ErrorInfo) for the server's own limit and the
//! caller's deadline alike.

use midplane_proto::plugin::plugin_registry_client::PluginRegistryClient;
use midplane_proto::plugin::plugin_registry_server::{PluginRegistry, PluginRegistryServer};
use midplane_proto::plugin::{self as pb};
use midplane_runtime::testing::contract::{
    assert_health, assert_reflection, error_reason, plain_transport,
};
use midplane_runtime::{Routes, ServerConfig, Service};
use std::time::Duration;
use tokio::net::TcpListener;
use tonic::{Request, Response, Status};

/// Answers GetPlugin after sleeping the milliseconds named in `name`.
struct Slow;

#[tonic::async_trait]
impl PluginRegistry for Slow {
    async fn list_plugins(
        &self,
        _: Request<pb::ListPluginsRequest>,
    ) -> Result<Response<pb::ListPluginsResponse>, Status> {
        Ok(Response::new(pb::ListPluginsResponse::default()))
    }
    async fn get_plugin(
        &self,
        req: Request<pb::GetPluginRequest>,
    ) -> Result<Response<pb::Plugin>, Status> {
        let ms: u64 = req.get_ref().name.parse().unwrap_or(0);
        tokio::time::sleep(Duration::from_millis(ms)).await;
        Ok(Response::new(pb::Plugin::default()))
    }
    async fn validate_plugin(
        &self,
        _: Request<pb::ValidatePluginRequest>,
    ) -> Result<Response<pb::ValidatePluginResponse>, Status> {
        Err(Status::unimplemented("not in this test"))
    }
    async fn render_preview(
        &self,
        _: Request<pb::RenderPreviewRequest>,
    ) -> Result<Response<pb::RenderPreviewResponse>, Status> {
        Err(Status::unimplemented("not in this test"))
    }
}

async fn start(request_timeout_ms: u64) -> std::net::SocketAddr {
    let config = ServerConfig {
        request_timeout_ms,
        ..ServerConfig::default()
    };
    let service = Service::for_test("contract-test", config);
    let admin = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let grpc = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = grpc.local_addr().expect("addr");
    let routes = Routes::new(PluginRegistryServer::new(Slow));
    assert_eq!(routes.names(), ["midplane.plugin.v1.PluginRegistry"]);
    tokio::spawn(service.serve_on(admin, grpc, routes));
    addr
}

#[tokio::test]
async fn health_and_reflection_speak_for_exactly_the_served_services() {
    let addr = start(30_000).await;
    assert_health(addr, &["midplane.plugin.v1.PluginRegistry"]).await;
    assert_reflection(addr, None, &["midplane.plugin.v1.PluginRegistry"]).await;
    // A service of another port is not routed here: UNIMPLEMENTED, not served.
    let (transport, origin) = plain_transport(addr);
    let mut other =
        midplane_proto::app::app_service_client::AppServiceClient::with_origin(transport, origin);
    let err = other
        .get_app(midplane_proto::app::GetAppRequest::default())
        .await
        .expect_err("not served");
    assert_eq!(err.code(), tonic::Code::Unimplemented);
}

#[tokio::test]
async fn the_servers_own_limit_ends_calls_with_deadline_exceeded() {
    let addr = start(150).await;
    let (transport, origin) = plain_transport(addr);
    let mut client = PluginRegistryClient::with_origin(transport, origin);
    let mut codes = Vec::new();
    for _ in 0..10 {
        let err = client
            .get_plugin(pb::GetPluginRequest {
                name: "2000".into(),
                plugin_version: String::new(),
            })
            .await
            .expect_err("runs past the server's limit");
        assert_eq!(error_reason(&err), "DEADLINE_EXCEEDED");
        assert!(
            err.message().contains("server.request_timeout_ms"),
            "{err:?}"
        );
        codes.push(err.code());
    }
    assert!(
        codes.iter().all(|c| *c == tonic::Code::DeadlineExceeded),
        "{codes:?}"
    );
    // A quick call still answers.
    client
        .get_plugin(pb::GetPluginRequest::default())
        .await
        .expect("quick call");
}

#[tokio::test]
async fn the_callers_deadline_ends_calls_with_deadline_exceeded_never_cancelled() {
    let addr = start(30_000).await;
    let (transport, origin) = plain_transport(addr);
    let mut client = PluginRegistryClient::with_origin(transport, origin);
    let (mut exceeded, mut other) = (0, Vec::new());
    for _ in 0..200 {
        let mut req = Request::new(pb::GetPluginRequest {
            name: "20".into(),
            plugin_version: String::new(),
        });
        req.set_timeout(Duration::from_millis(1));
        match client.get_plugin(req).await {
            Err(e) if e.code() == tonic::Code::DeadlineExceeded => {
                assert_eq!(error_reason(&e), "DEADLINE_EXCEEDED");
                exceeded += 1;
            }
            r => other.push(format!("{r:?}")),
        }
    }
    assert_eq!(
        exceeded, 200,
        "answers other than DEADLINE_EXCEEDED: {other:?}"
    );
}
