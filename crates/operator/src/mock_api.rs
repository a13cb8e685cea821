//! A mock API server for call-level tests: each request is checked as the
//! API server receives it (method, path, query, content type and body), as
//! kube-rs' controller-rs fixtures do.

use crate::apply::Applier;
use http::{Request, Response};
use kube::Client;
use kube::client::Body;
use serde_json::Value;
use std::collections::BTreeMap;
use std::time::Duration;

pub type Handle = tower_test::mock::Handle<Request<Body>, Response<Body>>;

pub fn mock() -> (Applier, Handle) {
    let (svc, handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    (
        Applier::new(Client::new(svc, "default"), "midplane/test"),
        handle,
    )
}

/// What the API server saw of one request.
pub struct Seen {
    pub method: String,
    pub path: String,
    pub query: BTreeMap<String, String>,
    pub content_type: String,
    pub body: Value,
}

/// Answers the next request with `code` and `answer`, and returns it.
pub async fn answer(handle: &mut Handle, code: u16, answer: Value) -> Seen {
    let (req, send) = tokio::time::timeout(Duration::from_secs(5), handle.next_request())
        .await
        .expect("a request within 5 s")
        .expect("a request");
    let query = req
        .uri()
        .query()
        .unwrap_or_default()
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.to_string(), v.replace("%2F", "/")))
        .collect();
    let content_type = req
        .headers()
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let (method, path) = (req.method().to_string(), req.uri().path().to_string());
    let bytes = req.into_body().collect_bytes().await.expect("body");
    let body = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes).expect("JSON body")
    };
    let resp = Response::builder()
        .status(code)
        .body(Body::from(serde_json::to_vec(&answer).expect("json")))
        .expect("response");
    send.send_response(resp);
    Seen {
        method,
        path,
        query,
        content_type,
        body,
    }
}
