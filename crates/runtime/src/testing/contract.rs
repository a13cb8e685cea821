//! What an outside team's tooling checks on any Midplane port:
//! `grpc_health_probe`-style health checks by service name, and reflection
//! listings over both protocol versions (`grpc.reflection.v1` and `v1alpha`);
//! plus a plain HTTP/2 transport for generated clients, so a test sees the
//! server's answers as a non-tonic client does (tonic's own channel ends a
//! call whose deadline passes on its side with CANCELLED before the server's
//! answer arrives).

use crate::auth::BearerToken;
use crate::grpc::{HEALTH_SERVICE, REFLECTION_V1, REFLECTION_V1ALPHA};
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use tonic::transport::Channel;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};
use tonic_reflection::pb::{v1, v1alpha};

/// An HTTP/2 client that enforces no deadline of its own.
pub type PlainTransport = hyper_util::client::legacy::Client<
    hyper_util::client::legacy::connect::HttpConnector,
    tonic::body::Body,
>;

/// A transport and origin for `XClient::with_origin(transport, origin)`.
pub fn plain_transport(addr: SocketAddr) -> (PlainTransport, http::Uri) {
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .http2_only(true)
        .build_http();
    let origin = format!("http://{addr}")
        .parse()
        .unwrap_or_else(|e| panic!("origin for {addr}: {e}"));
    (client, origin)
}

async fn channel(addr: SocketAddr) -> Channel {
    let endpoint = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
        .unwrap_or_else(|e| panic!("endpoint {addr}: {e}"))
        .connect_timeout(Duration::from_secs(5));
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        match endpoint.connect().await {
            Ok(c) => return c,
            Err(e) if Instant::now() > deadline => panic!("connecting to {addr}: {e}"),
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}

/// Asserts, as `grpc_health_probe -service=NAME` would, that the port reports
/// SERVING for the overall health (`""`) and for each of `served` (waiting up
/// to 20 s for readiness), and NOT_FOUND for a service it does not serve.
pub async fn assert_health(addr: SocketAddr, served: &[&str]) {
    let mut client = HealthClient::new(channel(addr).await);
    for name in std::iter::once("").chain(served.iter().copied()) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let answer = client
                .check(HealthCheckRequest {
                    service: name.to_string(),
                })
                .await;
            match answer {
                Ok(r) if r.get_ref().status == ServingStatus::Serving as i32 => break,
                other => assert!(
                    Instant::now() < deadline,
                    "health of {name:?} on {addr} never turned SERVING: {other:?}"
                ),
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    let err = client
        .check(HealthCheckRequest {
            service: "midplane.nothing.v1.Nothing".into(),
        })
        .await
        .expect_err("an unserved name is not healthy");
    assert_eq!(err.code(), tonic::Code::NotFound, "{err:?}");
}

/// Lists a port's services over one reflection protocol version and
/// resolves each of `served`, asserting the listing is `want`.
macro_rules! reflect {
    ($name:ident, $pb:ident, $version:literal) => {
        async fn $name(ch: Channel, auth: BearerToken, served: &[&str], want: &[String]) {
            use $pb::server_reflection_request::MessageRequest as Ask;
            use $pb::server_reflection_response::MessageResponse as Answer;
            let ask = |m| $pb::ServerReflectionRequest {
                host: String::new(),
                message_request: Some(m),
            };
            let mut requests = vec![ask(Ask::ListServices(String::new()))];
            requests.extend(
                served
                    .iter()
                    .map(|s| ask(Ask::FileContainingSymbol(s.to_string()))),
            );
            let n = requests.len();
            let mut client =
                $pb::server_reflection_client::ServerReflectionClient::with_interceptor(ch, auth);
            let mut stream = client
                .server_reflection_info(tokio_stream::iter(requests))
                .await
                .unwrap_or_else(|e| panic!("reflection {}: {e:?}", $version))
                .into_inner();
            for i in 0..n {
                let msg = stream
                    .message()
                    .await
                    .unwrap_or_else(|e| panic!("reflection {} answer {i}: {e:?}", $version))
                    .unwrap_or_else(|| panic!("reflection {} ended after {i} answers", $version));
                match msg.message_response {
                    Some(Answer::ListServicesResponse(l)) => {
                        let mut got: Vec<String> = l.service.into_iter().map(|s| s.name).collect();
                        got.sort();
                        assert_eq!(got, want, "reflection {} listing", $version);
                    }
                    Some(Answer::FileDescriptorResponse(f)) => {
                        assert!(
                            !f.file_descriptor_proto.is_empty(),
                            "{}: no descriptor",
                            $version
                        );
                    }
                    other => panic!("reflection {}: unexpected answer {other:?}", $version),
                }
            }
        }
    };
}

reflect!(reflect_v1, v1, "v1");
reflect!(reflect_v1alpha, v1alpha, "v1alpha");

/// Asserts that reflection over both protocol versions (v1, and v1alpha as
/// Python's grpcio-reflection and older grpcurl speak it) lists exactly
/// `served` plus health and reflection, and resolves each served service's
/// file descriptor. `token` is the bearer token when the port requires one.
pub async fn assert_reflection(addr: SocketAddr, token: Option<&str>, served: &[&str]) {
    let mut want: Vec<String> = served
        .iter()
        .chain(&[HEALTH_SERVICE, REFLECTION_V1, REFLECTION_V1ALPHA])
        .map(std::string::ToString::to_string)
        .collect();
    want.sort();
    let ch = channel(addr).await;
    let auth = BearerToken::new(token.unwrap_or_default()).unwrap_or_else(|e| panic!("token: {e}"));
    reflect_v1(ch.clone(), auth.clone(), served, &want).await;
    reflect_v1alpha(ch, auth, served, &want).await;
}

/// Asserts a failed call's code, its ErrorInfo reason and (unless `fields` is
/// empty) its BadRequest field paths.
pub fn assert_error(err: &tonic::Status, code: tonic::Code, reason: &str, fields: &[&str]) {
    assert_eq!(err.code(), code, "{err:?}");
    assert_eq!(error_reason(err), reason, "{err:?}");
    if !fields.is_empty() {
        assert_eq!(violated_fields(err), fields, "{err:?}");
    }
}

/// An object reference for a request.
pub fn object_ref(namespace: &str, name: &str) -> Option<midplane_proto::common::ObjectRef> {
    Some(midplane_proto::common::ObjectRef {
        namespace: namespace.into(),
        name: name.into(),
    })
}

/// The `google.rpc.ErrorInfo` of a failed call, asserting it is there with
/// Midplane's domain.
pub fn error_info(status: &tonic::Status) -> tonic_types::ErrorInfo {
    use tonic_types::StatusExt;
    let info = status
        .get_details_error_info()
        .unwrap_or_else(|| panic!("no google.rpc.ErrorInfo in {status:?}"));
    assert_eq!(info.domain, crate::status::DOMAIN, "{status:?}");
    info
}

/// The `google.rpc.ErrorInfo` reason of a failed call.
pub fn error_reason(status: &tonic::Status) -> String {
    error_info(status).reason
}

/// The `google.rpc.ResourceInfo` (type, name) of a failed call.
pub fn resource(status: &tonic::Status) -> Option<(String, String)> {
    use tonic_types::StatusExt;
    status
        .get_details_resource_info()
        .map(|r| (r.resource_type, r.resource_name))
}

/// The `google.rpc.BadRequest` field paths of a failed call.
pub fn violated_fields(status: &tonic::Status) -> Vec<String> {
    use tonic_types::StatusExt;
    status
        .get_details_bad_request()
        .map(|b| b.field_violations.into_iter().map(|v| v.field).collect())
        .unwrap_or_default()
}

/// Whether a failed call carries `google.rpc.RetryInfo`.
pub fn has_retry_info(status: &tonic::Status) -> bool {
    use tonic_types::StatusExt;
    status.get_details_retry_info().is_some()
}
