//! Call-level tests: each write is checked as the API server receives it
//! (method, path, query, content type and body), with a mock HTTP service in
//! place of the API server, as kube-rs' controller-rs fixtures do.

use super::*;
use crate::mock_api::{answer, mock};
use k8s_openapi::api::core::v1::{ConfigMap, Pod};
use serde_json::{Value, json};

fn not_found() -> Value {
    json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "NotFound", "code": 404, "message": "gone"})
}

fn cm() -> ConfigMap {
    serde_json::from_value(json!({
        "metadata": {"name": "cfg", "namespace": "ns", "resourceVersion": "7",
                     "finalizers": ["other/keep"]},
        "data": {"k": "v"}
    }))
    .expect("ConfigMap")
}

#[tokio::test]
async fn apply_is_forced_server_side_apply_under_the_controllers_manager() {
    let (applier, mut handle) = mock();
    let obj = json!({"apiVersion": "v1", "kind": "ConfigMap",
                     "metadata": {"name": "cfg", "namespace": "ns"}, "data": {"k": "v"}});
    let call = tokio::spawn({
        let (a, o) = (applier.clone(), obj.clone());
        async move { a.apply_json(&o).await }
    });
    let seen = answer(&mut handle, 200, obj.clone()).await;
    call.await.expect("join").expect("applied");
    assert_eq!(seen.method, "PATCH");
    assert_eq!(seen.path, "/api/v1/namespaces/ns/configmaps/cfg");
    assert_eq!(
        seen.query.get("fieldManager").map(String::as_str),
        Some("midplane/test")
    );
    assert_eq!(seen.query.get("force").map(String::as_str), Some("true"));
    assert_eq!(seen.content_type, "application/apply-patch+yaml");
    assert_eq!(seen.body, obj);
}

#[tokio::test]
async fn an_unchanged_stamp_is_not_written() {
    let (applier, _handle) = mock();
    let mut obj = json!({"apiVersion": "v1", "kind": "ConfigMap",
                         "metadata": {"name": "cfg", "namespace": "ns"}});
    let hash = stamp_applied_hash(&mut obj);
    assert_eq!(
        stamp_applied_hash(&mut obj.clone()),
        hash,
        "stamping again gives the same hash"
    );
    // A request would never be answered: the call must not make one.
    let wrote = tokio::time::timeout(
        Duration::from_secs(1),
        applier.apply_stamped(&obj, &hash, Some(&hash)),
    )
    .await
    .expect("no request, no wait")
    .expect("ok");
    assert_eq!(wrote, Applied::Current);
}

#[tokio::test]
async fn a_typed_apply_is_stamped_and_skipped_when_live_matches() {
    let (applier, mut handle) = mock();
    let desired = cm();
    let call = tokio::spawn({
        let (a, d) = (applier.clone(), desired.clone());
        async move { a.apply_if_changed(&d, None).await }
    });
    let seen = answer(&mut handle, 200, json!({})).await;
    assert_eq!(
        call.await.expect("join").expect("applied"),
        Applied::Written,
        "nothing live: written"
    );
    assert_eq!(seen.body["kind"], "ConfigMap");
    assert_eq!(seen.body["apiVersion"], "v1");
    let stamp = seen.body["metadata"]["annotations"][APPLIED_HASH]
        .as_str()
        .expect("stamped")
        .to_string();

    let mut live = desired.clone();
    live.metadata
        .annotations
        .get_or_insert_with(Default::default)
        .insert(APPLIED_HASH.into(), stamp);
    let wrote = tokio::time::timeout(
        Duration::from_secs(1),
        applier.apply_if_changed(&desired, Some(&live)),
    )
    .await
    .expect("no request")
    .expect("ok");
    assert_eq!(
        wrote,
        Applied::Current,
        "live carries the same stamp: skipped"
    );
}

#[tokio::test]
async fn a_stamp_just_written_is_not_written_again_before_the_cache_shows_it() {
    let (applier, mut handle) = mock();
    let desired = cm();
    let call = tokio::spawn({
        let (a, d) = (applier.clone(), desired.clone());
        async move { a.apply_if_changed(&d, None).await }
    });
    answer(&mut handle, 200, json!({})).await;
    assert_eq!(call.await.expect("join").expect("ok"), Applied::Written);
    // The cache still shows nothing: the same stamp is expected, not re-sent.
    let again = tokio::time::timeout(
        Duration::from_secs(1),
        applier.apply_if_changed(&desired, None),
    )
    .await
    .expect("no request")
    .expect("ok");
    assert_eq!(again, Applied::Expected);
    // Another desired state is written at once.
    let mut other = desired.clone();
    other.data = Some(BTreeMap::from([("k".to_string(), "w".to_string())]));
    let call = tokio::spawn({
        let a = applier.clone();
        async move { a.apply_if_changed(&other, None).await }
    });
    answer(&mut handle, 200, json!({})).await;
    assert_eq!(call.await.expect("join").expect("ok"), Applied::Written);
}

#[tokio::test]
async fn status_is_applied_on_the_status_subresource() {
    let (applier, mut handle) = mock();
    let obj = cm();
    let call = tokio::spawn({
        let a = applier.clone();
        async move { a.apply_status(&obj, &json!({"ready": true})).await }
    });
    let seen = answer(&mut handle, 200, json!({})).await;
    call.await.expect("join").expect("applied");
    assert_eq!(seen.method, "PATCH");
    assert_eq!(seen.path, "/api/v1/namespaces/ns/configmaps/cfg/status");
    assert_eq!(
        seen.query.get("fieldManager").map(String::as_str),
        Some("midplane/test")
    );
    assert_eq!(seen.content_type, "application/apply-patch+yaml");
    assert_eq!(
        seen.body,
        json!({"apiVersion": "v1", "kind": "ConfigMap",
               "metadata": {"name": "cfg", "namespace": "ns"}, "status": {"ready": true}})
    );
}

#[tokio::test]
async fn labels_are_applied_alone_and_a_missing_pod_is_fine() {
    let (applier, mut handle) = mock();
    let pod: Pod = serde_json::from_value(json!({"metadata": {"name": "p", "namespace": "ns",
        "labels": {"app": "x"}}}))
    .expect("pod");
    let labels = BTreeMap::from([("midplane.dev/role".to_string(), "primary".to_string())]);
    let call = tokio::spawn({
        let (a, p, l) = (applier.clone(), pod.clone(), labels.clone());
        async move { a.apply_labels(&p, &l).await }
    });
    let seen = answer(&mut handle, 404, not_found()).await;
    call.await
        .expect("join")
        .expect("a missing Pod is not an error");
    assert_eq!(seen.path, "/api/v1/namespaces/ns/pods/p");
    assert_eq!(seen.query.get("force").map(String::as_str), Some("true"));
    assert_eq!(
        seen.body,
        json!({"apiVersion": "v1", "kind": "Pod",
               "metadata": {"name": "p", "namespace": "ns", "labels": {"midplane.dev/role": "primary"}}}),
        "only the label this controller owns is in the body"
    );
    // Written once, the same labels are expected, not sent again.
    let call = tokio::spawn({
        let (a, p, l) = (applier.clone(), pod.clone(), labels.clone());
        async move { a.apply_labels(&p, &l).await }
    });
    answer(&mut handle, 200, json!({})).await;
    assert_eq!(call.await.expect("join").expect("ok"), Applied::Written);
    let again = tokio::time::timeout(Duration::from_secs(1), applier.apply_labels(&pod, &labels))
        .await
        .expect("no request")
        .expect("ok");
    assert_eq!(again, Applied::Expected);
}

#[tokio::test]
async fn finalizers_are_written_with_the_resource_version() {
    let (applier, mut handle) = mock();
    let obj = cm();
    let call = tokio::spawn({
        let (a, o) = (applier.clone(), obj.clone());
        async move { a.add_finalizer(&o, "midplane.dev/cleanup").await }
    });
    let seen = answer(&mut handle, 200, serde_json::to_value(cm()).expect("json")).await;
    call.await.expect("join").expect("added");
    assert_eq!(seen.content_type, "application/merge-patch+json");
    assert_eq!(
        seen.query.get("fieldManager").map(String::as_str),
        Some("midplane/test")
    );
    assert_eq!(
        seen.body,
        json!({"metadata": {"finalizers": ["other/keep", "midplane.dev/cleanup"], "resourceVersion": "7"}})
    );

    let call = tokio::spawn({
        let (a, mut o) = (applier.clone(), obj.clone());
        o.metadata.finalizers = Some(vec!["other/keep".into(), "midplane.dev/cleanup".into()]);
        async move { a.remove_finalizer(&o, "midplane.dev/cleanup").await }
    });
    let seen = answer(&mut handle, 404, not_found()).await;
    call.await.expect("join").expect("gone counts as removed");
    assert_eq!(
        seen.body,
        json!({"metadata": {"finalizers": ["other/keep"], "resourceVersion": "7"}}),
        "someone else's finalizer stays"
    );

    let call = tokio::spawn({
        let a = applier.clone();
        async move { a.add_finalizer(&obj, "midplane.dev/cleanup").await }
    });
    let conflict = json!({"kind": "Status", "apiVersion": "v1", "status": "Failure",
                          "reason": "Conflict", "code": 409, "message": "changed"});
    answer(&mut handle, 409, conflict).await;
    let err = call
        .await
        .expect("join")
        .expect_err("a concurrent change fails");
    assert!(err.is_conflict());
}

#[tokio::test]
async fn deletes_go_in_the_foreground() {
    let (applier, mut handle) = mock();
    let ar = ApiResource::erase::<ConfigMap>(&());
    let call = tokio::spawn({
        let a = applier.clone();
        async move { a.delete(&ar, "ns", "cfg").await }
    });
    let seen = answer(&mut handle, 404, not_found()).await;
    call.await
        .expect("join")
        .expect("missing counts as deleted");
    assert_eq!(seen.method, "DELETE");
    assert_eq!(seen.path, "/api/v1/namespaces/ns/configmaps/cfg");
    assert_eq!(seen.body["propagationPolicy"], "Foreground");
}

#[tokio::test]
async fn a_finalizer_just_added_is_not_added_again_before_the_cache_shows_it() {
    let (applier, mut handle) = mock();
    let mut stale = cm();
    stale.metadata.uid = Some("u-1".into());
    let stale = std::sync::Arc::new(stale);
    let call = tokio::spawn({
        let (a, o) = (applier.clone(), stale.clone());
        async move { crate::children::with_finalizer(&a, o).await }
    });
    let mut added = cm();
    added.metadata.finalizers = Some(vec!["other/keep".into(), crate::FINALIZER.into()]);
    answer(
        &mut handle,
        200,
        serde_json::to_value(&added).expect("json"),
    )
    .await;
    call.await.expect("join").expect("added");
    assert!(applier.added_finalizer_lately(stale.as_ref(), crate::FINALIZER));

    // A reconcile woken before the watch shows the finalizer: no second write
    // (it would only fail on the stale resourceVersion), and the object goes
    // on with both finalizers.
    let again = tokio::time::timeout(
        Duration::from_secs(1),
        crate::children::with_finalizer(&applier, stale.clone()),
    )
    .await
    .expect("no request was sent")
    .expect("ok");
    assert_eq!(again.finalizers(), ["other/keep", crate::FINALIZER]);
}
