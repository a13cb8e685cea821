//! The runtime end to end: admin endpoints, gRPC health and reflection, bearer
//! auth, and a graceful stop.

use midplane_runtime::{ServerConfig, Service};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tonic_health::pb::health_client::HealthClient;
use tonic_health::pb::{HealthCheckRequest, health_check_response::ServingStatus};
use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
use tonic_reflection::pb::v1::{
    ServerReflectionRequest, server_reflection_request::MessageRequest,
    server_reflection_response::MessageResponse,
};

async fn http_get(addr: std::net::SocketAddr, path: &str) -> (u16, String) {
    let mut s = tokio::net::TcpStream::connect(addr)
        .await
        .expect("connect admin");
    s.write_all(format!("GET {path} HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n").as_bytes())
        .await
        .expect("write");
    let mut buf = String::new();
    s.read_to_string(&mut buf).await.expect("read");
    let code = buf
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = buf.split("\r\n\r\n").nth(1).unwrap_or_default().to_string();
    (code, body)
}

#[tokio::test]
async fn serves_admin_health_reflection_auth_and_stops_gracefully() {
    let dir = tempfile::tempdir().expect("tempdir");
    let token_file = dir.path().join("token");
    std::fs::write(&token_file, "s3cret\n").expect("token");
    let config = ServerConfig {
        auth_token_file: Some(token_file),
        ..ServerConfig::default()
    };
    let service = Service::for_test("test-svc", config);
    let health = service.health();
    let shutdown = service.shutdown();
    health.set("dependency", false, "connecting");

    let admin = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let grpc = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let admin_addr = admin.local_addr().expect("addr");
    let grpc_addr = grpc.local_addr().expect("addr");
    let routes = midplane_runtime::Routes::default();
    let server = tokio::spawn(service.serve_on(admin, grpc, routes));

    let (code, _) = http_get(admin_addr, "/livez").await;
    assert_eq!(code, 200);
    let (code, body) = http_get(admin_addr, "/readyz").await;
    assert_eq!(code, 503, "not ready while a check is failing: {body}");
    assert!(body.contains("dependency: not ready connecting"), "{body}");
    health.set("dependency", true, "");
    let (code, _) = http_get(admin_addr, "/readyz").await;
    assert_eq!(code, 200);
    metrics::counter!("test_calls_total").increment(1);
    let (code, _) = http_get(admin_addr, "/metrics").await;
    assert_eq!(code, 200);

    let channel = tonic::transport::Endpoint::from_shared(format!("http://{grpc_addr}"))
        .expect("endpoint")
        .connect()
        .await
        .expect("connect grpc");

    // Health is open to unauthenticated probes and follows readiness.
    let mut serving = false;
    for _ in 0..20 {
        let resp = HealthClient::new(channel.clone())
            .check(HealthCheckRequest {
                service: String::new(),
            })
            .await
            .expect("health check");
        if resp.into_inner().status == ServingStatus::Serving as i32 {
            serving = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(serving, "health never turned SERVING");

    // Reflection needs the token.
    let request = || {
        tokio_stream::iter(vec![ServerReflectionRequest {
            host: String::new(),
            message_request: Some(MessageRequest::ListServices(String::new())),
        }])
    };
    let err = ServerReflectionClient::new(channel.clone())
        .server_reflection_info(request())
        .await
        .expect_err("unauthenticated call must be refused");
    assert_eq!(err.code(), tonic::Code::Unauthenticated);

    let token = midplane_runtime::auth::BearerToken::new("s3cret").expect("token");
    let mut client = ServerReflectionClient::with_interceptor(channel.clone(), token);
    let mut stream = client
        .server_reflection_info(request())
        .await
        .expect("reflection")
        .into_inner();
    let msg = stream.message().await.expect("msg").expect("one message");
    let Some(MessageResponse::ListServicesResponse(list)) = msg.message_response else {
        panic!("unexpected reflection answer");
    };
    let names: Vec<_> = list.service.iter().map(|s| s.name.as_str()).collect();
    assert!(names.contains(&"grpc.health.v1.Health"), "{names:?}");

    shutdown.trigger();
    tokio::time::timeout(Duration::from_secs(5), server)
        .await
        .expect("stops within the grace period")
        .expect("join")
        .expect("clean stop");
    assert!(
        tokio::net::TcpStream::connect(admin_addr).await.is_err(),
        "admin port closed after shutdown"
    );
}
