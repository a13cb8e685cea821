//! Events: a kube-rs `Recorder` publishes through events.k8s.io/v1, and the same objects are
//! visible as core/v1 Events (what `kubectl get events` reads), as on a real apiserver.

mod common;

use common::*;
use k8s_openapi::api::core::v1::{ConfigMap, Event as CoreEvent};
use k8s_openapi::api::events::v1::Event as NewEvent;
use kube::api::{Api, ListParams, PostParams};
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use kube::{Resource, ResourceExt};
use serde_json::json;

#[tokio::test]
async fn recorder_events_are_core_events_too() {
    let (emu, client) = start().await;
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    let cm = cms
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": "target"}})).expect("cm"),
        )
        .await
        .expect("cm");
    let recorder = Recorder::new(
        client.clone(),
        Reporter {
            controller: "group-controller".into(),
            instance: None,
        },
    );
    let ev = Event {
        type_: EventType::Warning,
        reason: "RenderFailed".into(),
        note: Some("template error at line 3".into()),
        action: "Render".into(),
        secondary: None,
    };
    let oref = cm.object_ref(&());
    recorder.publish(&ev, &oref).await.expect("publish");
    // Publishing the same event again patches its series.
    recorder.publish(&ev, &oref).await.expect("publish again");

    let new_api: Api<NewEvent> = Api::namespaced(client.clone(), "default");
    let listed = new_api
        .list(&ListParams::default())
        .await
        .expect("events.k8s.io list");
    assert_eq!(listed.items.len(), 1);
    let e = &listed.items[0];
    assert_eq!(e.reporting_controller.as_deref(), Some("group-controller"));
    assert_eq!(e.series.as_ref().map(|s| s.count), Some(2));

    let core: Api<CoreEvent> = Api::namespaced(client.clone(), "default");
    let lp = ListParams::default().fields("involvedObject.name=target,type=Warning");
    let items = core.list(&lp).await.expect("core list").items;
    assert_eq!(
        items.len(),
        1,
        "core view with involvedObject field selector"
    );
    let c = &items[0];
    assert_eq!(c.involved_object.name.as_deref(), Some("target"));
    assert_eq!(c.message.as_deref(), Some("template error at line 3"));
    assert_eq!(c.reason.as_deref(), Some("RenderFailed"));
    assert_eq!(c.name_any(), e.name_any());
    // The events.k8s.io view accepts its own field names in selectors.
    let lp = ListParams::default().fields("regarding.name=target");
    assert_eq!(new_api.list(&lp).await.expect("list").items.len(), 1);
    emu.shutdown().await;
}
