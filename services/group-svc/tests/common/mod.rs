//! Helpers the group-svc tests share.
#![allow(dead_code)]

use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::api::events::v1::Event;
use kube::ResourceExt;
use kube::api::{Api, ListParams, Patch, PatchParams};
use midplane_runtime::testing::eventually;

/// Applies a plugin ConfigMap as an operator would (server-side apply).
pub async fn apply_cm(cms: &Api<ConfigMap>, cm: &ConfigMap) {
    let mut body = serde_json::to_value(cm).expect("json");
    let m = body.as_object_mut().expect("object");
    m.insert("apiVersion".into(), "v1".into());
    m.insert("kind".into(), "ConfigMap".into());
    cms.patch(
        &cm.name_any(),
        &PatchParams::apply("test").force(),
        &Patch::Apply(&body),
    )
    .await
    .expect("apply plugin ConfigMap");
}

/// Waits for an Event with `reason` in `namespace` and returns its note.
pub async fn event_note(client: &kube::Client, namespace: &str, reason: &str) -> String {
    let events: Api<Event> = Api::namespaced(client.clone(), namespace);
    eventually(&format!("an Event {reason}"), 30, || {
        let events = events.clone();
        async move {
            events
                .list(&ListParams::default())
                .await
                .ok()?
                .items
                .into_iter()
                .find_map(|e| {
                    (e.reason.as_deref() == Some(reason)).then(|| e.note.unwrap_or_default())
                })
        }
    })
    .await
}
