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

/// The emulator with Midplane's CRDs and the plugin namespace, and a client for it.
pub async fn emulator() -> (midplane_kube_emulator::EmulatorHandle, kube::Client) {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let emu = midplane_kube_emulator::Emulator::start(midplane_kube_emulator::EmulatorConfig {
        crd_dir: Some(root.join("k8s/crds")),
        namespaces: vec!["midplane-system".into()],
        pod_ready_delay: std::time::Duration::from_millis(50),
        ..midplane_kube_emulator::EmulatorConfig::default()
    })
    .await
    .expect("emulator");
    let url: http::Uri = emu.url().parse().expect("url");
    let client = kube::Client::try_from(kube::Config::new(url)).expect("client");
    (emu, client)
}

/// Creates the Group `default/cache-0`: two Redis instances of app `shop`.
pub async fn create_redis_group(client: &kube::Client) -> Api<midplane_api::Group> {
    use midplane_api::{Group, GroupSpec, MiddlewareSpec};
    let group = Group::new(
        "cache-0",
        GroupSpec {
            app: "shop".into(),
            component: "cache".into(),
            shard: 0,
            middleware: MiddlewareSpec {
                plugin: "redis".into(),
                replicas: 2,
                shards: 1,
                ..MiddlewareSpec::default()
            },
        },
    );
    let groups: Api<Group> = Api::namespaced(client.clone(), "default");
    let mut body = serde_json::to_value(&group).expect("json");
    body.as_object_mut().expect("object").remove("status");
    groups
        .patch("cache-0", &PatchParams::apply("test"), &Patch::Apply(&body))
        .await
        .expect("create group");
    groups
}
