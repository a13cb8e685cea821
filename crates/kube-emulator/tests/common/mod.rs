//! Shared helpers: start an emulator and a kube-rs client for it.
#![allow(dead_code)]

pub mod jobs;
pub mod pods;
pub mod process;

use std::future::Future;
use std::time::Duration;

use midplane_kube_emulator::{Emulator, EmulatorConfig, EmulatorHandle};

pub async fn start_with(config: EmulatorConfig) -> (EmulatorHandle, kube::Client) {
    let emu = Emulator::start(config).await.expect("emulator starts");
    let url: http::Uri = emu.url().parse().expect("emulator url");
    let client = kube::Client::try_from(kube::Config::new(url)).expect("kube client");
    (emu, client)
}

pub async fn start() -> (EmulatorHandle, kube::Client) {
    start_with(EmulatorConfig::default()).await
}

/// Poll `f` until it yields `Some`, failing the test after `secs` seconds.
pub async fn eventually<T, F, Fut>(what: &str, secs: u64, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// The `kube::Error::Api` status code of a failed call.
pub fn code<T: std::fmt::Debug>(r: Result<T, kube::Error>) -> (u16, String) {
    match r {
        Err(kube::Error::Api(s)) => (s.code, s.reason.clone()),
        other => panic!("expected an API error, got {other:?}"),
    }
}

pub fn widget_crd() -> serde_json::Value {
    serde_json::json!({
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": "widgets.example.com"},
        "spec": {"group": "example.com", "scope": "Namespaced",
            "names": {"plural": "widgets", "singular": "widget", "kind": "Widget", "shortNames": ["wd"]},
            "versions": [{"name": "v1", "served": true, "storage": true,
                "subresources": {"status": {}},
                "schema": {"openAPIV3Schema": {"type": "object", "properties": {
                    "spec": {"type": "object", "required": ["size"], "properties": {
                        "size": {"type": "integer", "minimum": 0},
                        "tags": {"type": "array", "items": {"type": "string"}},
                        "mode": {"type": "string", "enum": ["fast", "safe"]}}},
                    "status": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}}}}}]}
    })
}

pub fn widget_resource() -> kube::api::ApiResource {
    kube::api::ApiResource {
        group: "example.com".into(),
        version: "v1".into(),
        api_version: "example.com/v1".into(),
        kind: "Widget".into(),
        plural: "widgets".into(),
    }
}

pub fn widgets(client: &kube::Client, ns: &str) -> kube::Api<kube::api::DynamicObject> {
    kube::Api::namespaced_with(client.clone(), ns, &widget_resource())
}

pub fn widget(name: &str, size: i64) -> kube::api::DynamicObject {
    serde_json::from_value(serde_json::json!({
        "apiVersion": "example.com/v1", "kind": "Widget",
        "metadata": {"name": name}, "spec": {"size": size}}))
    .expect("widget object")
}
