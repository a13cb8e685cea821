//! Patches (merge, JSON, strategic) and server-side apply with field managers, conflicts and
//! force — against kube-rs's `Patch` variants.

mod common;

use common::*;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::{Value, json};

fn applied(replicas: i64, labels: Value, containers: Value) -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "d", "labels": labels},
        "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": "d"}},
            "template": {"metadata": {"labels": {"app": "d"}}, "spec": {"containers": containers}}}
    })
}

fn managers(d: &Deployment) -> Vec<(String, String)> {
    d.metadata
        .managed_fields
        .iter()
        .flatten()
        .map(|m| {
            (
                m.manager.clone().unwrap_or_default(),
                m.operation.clone().unwrap_or_default(),
            )
        })
        .collect()
}

#[tokio::test]
async fn server_side_apply_owns_fields_conflicts_and_forces() {
    let (emu, client) = start().await;
    let deps: Api<Deployment> = Api::namespaced(client.clone(), "default");
    let a = PatchParams::apply("manager-a");
    let b = PatchParams::apply("manager-b");
    let one = json!([{"name": "main", "image": "redis:7"}]);
    // Apply creates the object when it is absent.
    let d = deps
        .patch(
            "d",
            &a,
            &Patch::Apply(applied(2, json!({"x": "1", "keep": "y"}), one.clone())),
        )
        .await
        .expect("apply creates");
    assert_eq!(
        managers(&d),
        vec![("manager-a".to_string(), "Apply".to_string())]
    );
    let fields =
        serde_json::to_value(&d.metadata.managed_fields.as_ref().expect("mf")[0].fields_v1)
            .expect("fields");
    assert!(
        fields["f:spec"]["f:replicas"].is_object(),
        "manager-a owns .spec.replicas: {fields}"
    );
    assert!(
        fields["f:spec"]["f:template"]["f:spec"]["f:containers"]["k:{\"name\":\"main\"}"]["f:image"].is_object(),
        "containers are keyed by name: {fields}"
    );

    // Another manager setting a field to a different value conflicts, naming the owner.
    match deps
        .patch(
            "d",
            &b,
            &Patch::Apply(json!({"apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "d"}, "spec": {"replicas": 3}})),
        )
        .await
    {
        Err(kube::Error::Api(s)) => {
            assert_eq!(s.code, 409);
            assert!(
                s.message.contains("manager-a") && s.message.contains(".spec.replicas"),
                "{}",
                s.message
            );
        }
        other => panic!("expected an apply conflict, got {other:?}"),
    }
    // Same value: shared ownership, no conflict.
    deps.patch(
        "d",
        &b,
        &Patch::Apply(json!({"apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "d"}, "spec": {"replicas": 2}})),
    )
    .await
    .expect("same value is no conflict");
    // force takes the field over.
    let forced = PatchParams::apply("manager-b").force();
    let d = deps
        .patch(
            "d",
            &forced,
            &Patch::Apply(json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "d"}, "spec": {"replicas": 3}})),
        )
        .await
        .expect("forced apply");
    assert_eq!(d.spec.as_ref().and_then(|s| s.replicas), Some(3));
    // manager-a re-applies without the label `x` and without replicas: x goes (only a owned it),
    // replicas stays (now b's).
    let d = deps
        .patch(
            "d",
            &a,
            &Patch::Apply({
                let mut v = applied(0, json!({"keep": "y"}), one.clone());
                v["spec"].as_object_mut().expect("spec").remove("replicas");
                v
            }),
        )
        .await
        .expect("reapply");
    let labels = d.metadata.labels.clone().unwrap_or_default();
    assert!(
        !labels.contains_key("x"),
        "field dropped from the applied config is removed"
    );
    assert_eq!(labels.get("keep").map(String::as_str), Some("y"));
    assert_eq!(d.spec.as_ref().and_then(|s| s.replicas), Some(3));

    // A second manager adds an env var to the same container (merge by name), not replacing it.
    let env = json!([{"name": "main", "env": [{"name": "MODE", "value": "x"}]}]);
    let d = deps
        .patch(
            "d",
            &PatchParams::apply("manager-env"),
            &Patch::Apply(json!({"apiVersion": "apps/v1",
            "kind": "Deployment", "metadata": {"name": "d"},
            "spec": {"template": {"spec": {"containers": env}}}})),
        )
        .await
        .expect("env apply");
    let c = &d
        .spec
        .as_ref()
        .expect("spec")
        .template
        .spec
        .as_ref()
        .expect("pod spec")
        .containers[0];
    assert_eq!(c.image.as_deref(), Some("redis:7"));
    assert_eq!(c.env.as_ref().map(Vec::len), Some(1));

    // An Update by another writer takes ownership; applying over it conflicts "using apps/v1".
    let upd = PatchParams {
        field_manager: Some("editor".into()),
        ..PatchParams::default()
    };
    deps.patch(
        "d",
        &upd,
        &Patch::Merge(json!({"metadata": {"labels": {"keep": "z"}}})),
    )
    .await
    .expect("merge patch");
    match deps
        .patch(
            "d",
            &a,
            &Patch::Apply(applied(0, json!({"keep": "y"}), one.clone())),
        )
        .await
    {
        Err(kube::Error::Api(s)) => {
            assert_eq!(s.code, 409);
            assert!(
                s.message.contains("conflict with \"editor\" using apps/v1"),
                "{}",
                s.message
            );
        }
        other => panic!("expected conflict with the editor, got {other:?}"),
    }
    // Apply without a field manager is rejected.
    let (c, _) = code(
        deps.patch(
            "d",
            &PatchParams::default(),
            &Patch::Apply(
                json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"}}),
            ),
        )
        .await,
    );
    assert_eq!(c, 400);
    emu.shutdown().await;
}

#[tokio::test]
async fn apply_to_status_subresource_of_a_custom_resource() {
    let (emu, client) = start().await;
    emu.install_crd(widget_crd()).expect("crd");
    let w = widgets(&client, "default");
    let pp = PatchParams::apply("ctrl");
    w.patch(
        "a",
        &pp,
        &Patch::Apply(json!({"apiVersion": "example.com/v1", "kind": "Widget",
        "metadata": {"name": "a"}, "spec": {"size": 1}, "status": {"ignored": true}})),
    )
    .await
    .expect("apply main");
    let s = w
        .patch_status(
            "a",
            &pp,
            &Patch::Apply(json!({"apiVersion": "example.com/v1", "kind": "Widget",
            "metadata": {"name": "a"}, "status": {"phase": "Ready", "observedGeneration": 1}})),
        )
        .await
        .expect("apply status");
    assert_eq!(s.data["status"]["phase"], "Ready");
    assert!(
        s.data["status"].get("ignored").is_none(),
        "status sent to the main resource was dropped"
    );
    let subresources: Vec<Option<String>> = s
        .metadata
        .managed_fields
        .iter()
        .flatten()
        .map(|m| m.subresource.clone())
        .collect();
    assert!(
        subresources.contains(&Some("status".into())),
        "status apply is tracked as subresource status"
    );
    emu.shutdown().await;
}

#[tokio::test]
async fn merge_json_and_strategic_patches() {
    let (emu, client) = start().await;
    let deps: Api<Deployment> = Api::namespaced(client.clone(), "default");
    let mut d = applied(
        1,
        json!({}),
        json!([
        {"name": "a", "image": "1", "ports": [{"containerPort": 80}], "env": [{"name": "X", "value": "1"}]},
        {"name": "b", "image": "1"}]),
    );
    d["spec"]["paused"] = json!(true);
    deps.create(
        &PostParams::default(),
        &serde_json::from_value(d).expect("dep"),
    )
    .await
    .expect("create");
    // Strategic merge: containers merge by name, env by name.
    let smp = json!({"spec": {"template": {"spec": {"containers": [
        {"name": "a", "env": [{"name": "Y", "value": "2"}]}]}}}});
    let d = deps
        .patch("d", &PatchParams::default(), &Patch::Strategic(smp))
        .await
        .expect("smp");
    let cs = &d
        .spec
        .as_ref()
        .expect("spec")
        .template
        .spec
        .as_ref()
        .expect("pod")
        .containers;
    assert_eq!(cs.len(), 2, "strategic merge keeps the other container");
    assert_eq!(cs[0].env.as_ref().map(Vec::len), Some(2));
    // Merge patch replaces the list.
    let mp =
        json!({"spec": {"template": {"spec": {"containers": [{"name": "only", "image": "2"}]}}}});
    let d = deps
        .patch("d", &PatchParams::default(), &Patch::Merge(mp))
        .await
        .expect("merge");
    assert_eq!(
        d.spec
            .as_ref()
            .expect("spec")
            .template
            .spec
            .as_ref()
            .expect("pod")
            .containers
            .len(),
        1
    );
    // JSON patch, including a failing test op (422).
    let jp: json_patch_ops::Ops =
        json_patch_ops::ops(json!([{"op": "replace", "path": "/spec/replicas", "value": 4}]));
    let d = deps
        .patch("d", &PatchParams::default(), &Patch::<()>::Json(jp))
        .await
        .expect("json patch");
    assert_eq!(d.spec.as_ref().and_then(|s| s.replicas), Some(4));
    let bad = json_patch_ops::ops(json!([{"op": "test", "path": "/spec/replicas", "value": 1}]));
    let (c, _) = code(
        deps.patch("d", &PatchParams::default(), &Patch::<()>::Json(bad))
            .await,
    );
    assert_eq!(c, 422);
    // A patch carrying a stale resourceVersion is a 409.
    let stale = json!({"metadata": {"resourceVersion": "1"}, "spec": {"replicas": 5}});
    let (c, _) = code(
        deps.patch("d", &PatchParams::default(), &Patch::Merge(stale))
            .await,
    );
    assert_eq!(c, 409);
    // Strategic merge on a custom resource is 415, as on a real apiserver.
    emu.install_crd(widget_crd()).expect("crd");
    let w = widgets(&client, "default");
    w.create(&PostParams::default(), &widget("w", 1))
        .await
        .expect("cr");
    let (c, _) = code(
        w.patch(
            "w",
            &PatchParams::default(),
            &Patch::Strategic(json!({"spec": {"size": 2}})),
        )
        .await,
    );
    assert_eq!(c, 415);
    // Config maps: merge patch with null deletes a key.
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    cms.create(
        &PostParams::default(),
        &serde_json::from_value(json!({"metadata": {"name": "c"}, "data": {"a": "1", "b": "2"}}))
            .expect("cm"),
    )
    .await
    .expect("cm");
    let c = cms
        .patch(
            "c",
            &PatchParams::default(),
            &Patch::Merge(json!({"data": {"a": null}})),
        )
        .await
        .expect("cm patch");
    assert_eq!(c.data.map(|d| d.len()), Some(1));
    emu.shutdown().await;
}

/// kube-rs takes JSON patches as `json_patch::Patch`; build one from JSON.
mod json_patch_ops {
    pub type Ops = json_patch::Patch;
    pub fn ops(v: serde_json::Value) -> Ops {
        serde_json::from_value(v).expect("json patch ops")
    }
}

/// A plain update takes exactly the fields it changed from their owner (a later apply of the
/// old value conflicts, naming the updater); fields it left alone, and a status write by a
/// third manager, leave everyone else's ownership as it was.
#[tokio::test]
async fn an_update_takes_only_the_fields_it_changed() {
    let (emu, client) = start().await;
    let deps: Api<Deployment> = Api::namespaced(client.clone(), "default");
    let one = json!([{"name": "main", "image": "redis:7"}]);
    deps.patch(
        "d",
        &PatchParams::apply("applier"),
        &Patch::Apply(applied(1, json!({"team": "a"}), one.clone())),
    )
    .await
    .expect("apply");
    let editor = PatchParams {
        field_manager: Some("editor".into()),
        ..PatchParams::default()
    };
    let d = deps
        .patch(
            "d",
            &editor,
            &Patch::Merge(json!({"spec": {"replicas": 2}})),
        )
        .await
        .expect("merge patch");
    let owned = |d: &Deployment, who: &str| -> Value {
        d.metadata
            .managed_fields
            .iter()
            .flatten()
            .find(|m| m.manager.as_deref() == Some(who))
            .map(|m| serde_json::to_value(&m.fields_v1).expect("fields"))
            .unwrap_or(Value::Null)
    };
    assert!(owned(&d, "editor")["f:spec"]["f:replicas"].is_object());
    assert!(
        owned(&d, "applier")["f:spec"]["f:replicas"].is_null(),
        "the applier lost .spec.replicas"
    );
    assert!(
        owned(&d, "applier")["f:metadata"]["f:labels"]["f:team"].is_object(),
        "and kept what the update did not touch"
    );
    // A status write by the kubelet changes no spec ownership.
    let status = PatchParams {
        field_manager: Some("kubelet".into()),
        ..PatchParams::default()
    };
    let d = deps
        .patch_status(
            "d",
            &status,
            &Patch::Merge(json!({"status": {"readyReplicas": 1}})),
        )
        .await
        .expect("status patch");
    assert!(owned(&d, "editor")["f:spec"]["f:replicas"].is_object());
    assert!(owned(&d, "kubelet")["f:status"]["f:readyReplicas"].is_object());
    // Applying the old value now conflicts with the editor.
    match deps
        .patch(
            "d",
            &PatchParams::apply("applier"),
            &Patch::Apply(applied(1, json!({"team": "a"}), one)),
        )
        .await
    {
        Err(kube::Error::Api(s)) => {
            assert_eq!(s.code, 409);
            assert!(s.message.contains("editor"), "{}", s.message);
        }
        other => panic!("expected a conflict with the editor, got {other:?}"),
    }
    emu.shutdown().await;
}
