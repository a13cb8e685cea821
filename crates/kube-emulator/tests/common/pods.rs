//! Helpers for process-pod tests that create Pods one at a time in [`NS`]: the Pod,
//! a shell command, waits by name, its Events, an HTTP probe and file reads.

use std::time::Duration;

use k8s_openapi::api::core::v1::{Event, Pod};
use kube::api::{Api, ListParams, PostParams};
use serde_json::{Value, json};

use super::process::pod_where;

pub const NS: &str = "apps";

pub async fn create(client: &kube::Client, name: &str, spec: Value) {
    let pod: Pod = serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": NS, "labels": {"app": name}},
        "spec": spec,
    }))
    .expect("pod");
    Api::<Pod>::namespaced(client.clone(), NS)
        .create(&PostParams::default(), &pod)
        .await
        .expect("create pod");
}

pub fn sh(script: &str) -> Value {
    json!(["sh", "-c", script])
}

pub async fn pod_named(
    client: &kube::Client,
    name: &str,
    secs: u64,
    what: &str,
    ok: impl Fn(&Value) -> bool,
) -> Value {
    let pods: Api<Pod> = Api::namespaced(client.clone(), NS);
    pod_where(&pods, &format!("app={name}"), secs, what, ok).await
}

pub async fn events_of(client: &kube::Client, pod: &str) -> Vec<Event> {
    Api::<Event>::namespaced(client.clone(), NS)
        .list(&ListParams::default().fields(&format!("involvedObject.name={pod}")))
        .await
        .expect("events")
        .items
}

/// The status code of `GET /` at `addr`.
pub async fn http_status(addr: &str) -> Option<u16> {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let mut s = tokio::net::TcpStream::connect(addr).await.ok()?;
    s.write_all(b"GET / HTTP/1.0\r\n\r\n").await.ok()?;
    let mut buf = vec![0u8; 64];
    let n = tokio::time::timeout(Duration::from_secs(2), s.read(&mut buf))
        .await
        .ok()?
        .ok()?;
    String::from_utf8_lossy(&buf[..n])
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

pub fn read(path: &std::path::Path) -> String {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .trim()
        .to_string()
}
