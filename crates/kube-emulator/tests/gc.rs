//! Finalizers and deletionTimestamp, ownerReference garbage collection (background,
//! foreground with blockOwnerDeletion, orphan), kube-runtime's finalizer helper, and Leases.

mod common;

use std::sync::Arc;

use common::*;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams, PropagationPolicy};
use kube::runtime::finalizer::{Event as FinalizerEvent, finalizer};
use kube::{Resource, ResourceExt};
use serde_json::json;

async fn owner_and_child(
    client: &kube::Client,
    name: &str,
    block: bool,
) -> (Api<ConfigMap>, ConfigMap) {
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    let owner = cms
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": name}})).expect("cm"),
        )
        .await
        .expect("owner");
    let mut oref = owner.controller_owner_ref(&()).expect("owner ref");
    oref.block_owner_deletion = Some(block);
    let child: ConfigMap = serde_json::from_value(json!({"metadata": {
        "name": format!("{name}-child"), "ownerReferences": [oref],
        "finalizers": ["test/hold"]}}))
    .expect("child");
    cms.create(&PostParams::default(), &child)
        .await
        .expect("child");
    (cms, owner)
}

async fn gone(cms: &Api<ConfigMap>, name: &str) {
    let n = name.to_string();
    eventually(&format!("{name} deleted"), 5, || {
        let cms = cms.clone();
        let n = n.clone();
        async move { cms.get_opt(&n).await.expect("get").is_none().then_some(()) }
    })
    .await;
}

async fn release(cms: &Api<ConfigMap>, name: &str) {
    cms.patch(
        name,
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"finalizers": null}})),
    )
    .await
    .expect("drop finalizers");
}

#[tokio::test]
async fn finalizers_hold_deletion_until_removed() {
    let (emu, client) = start().await;
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    cms.create(
        &PostParams::default(),
        &serde_json::from_value(json!({"metadata": {"name": "f", "finalizers": ["a/b", "c/d"]}}))
            .expect("cm"),
    )
    .await
    .expect("create");
    let pending = cms
        .delete("f", &DeleteParams::default())
        .await
        .expect("delete");
    let obj = pending.left().expect("held by finalizers");
    assert!(
        obj.metadata.deletion_timestamp.is_some(),
        "deletionTimestamp set"
    );
    // No new finalizers during deletion.
    let (c, _) = code(
        cms.patch(
            "f",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"finalizers": ["a/b", "c/d", "e/f"]}})),
        )
        .await,
    );
    assert_eq!(c, 422);
    cms.patch(
        "f",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"finalizers": ["c/d"]}})),
    )
    .await
    .expect("remove one");
    assert!(
        cms.get_opt("f").await.expect("get").is_some(),
        "still held by the other finalizer"
    );
    release(&cms, "f").await;
    assert!(
        cms.get_opt("f").await.expect("get").is_none(),
        "gone once finalizers are empty"
    );
    emu.shutdown().await;
}

#[tokio::test]
async fn background_propagation_deletes_dependents_after_the_owner() {
    let (emu, client) = start().await;
    let (cms, _) = owner_and_child(&client, "bg", false).await;
    let r = cms
        .delete("bg", &DeleteParams::background())
        .await
        .expect("delete");
    assert!(r.is_right(), "owner deleted immediately");
    eventually("child marked for deletion", 5, || {
        let cms = cms.clone();
        async move {
            cms.get_opt("bg-child")
                .await
                .expect("get")
                .and_then(|c| c.metadata.deletion_timestamp)
        }
    })
    .await;
    release(&cms, "bg-child").await;
    gone(&cms, "bg-child").await;
    emu.shutdown().await;
}

#[tokio::test]
async fn foreground_propagation_waits_for_blocking_dependents() {
    let (emu, client) = start().await;
    let (cms, _) = owner_and_child(&client, "fg", true).await;
    let r = cms
        .delete("fg", &DeleteParams::foreground())
        .await
        .expect("delete");
    let owner = r.left().expect("owner waits in foreground");
    assert!(owner.finalizers().iter().any(|f| f == "foregroundDeletion"));
    eventually("child marked for deletion", 5, || {
        let cms = cms.clone();
        async move {
            cms.get_opt("fg-child")
                .await
                .expect("get")
                .and_then(|c| c.metadata.deletion_timestamp)
        }
    })
    .await;
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    assert!(
        cms.get_opt("fg").await.expect("get").is_some(),
        "owner stays while a blocking dependent exists"
    );
    release(&cms, "fg-child").await;
    gone(&cms, "fg-child").await;
    gone(&cms, "fg").await;
    emu.shutdown().await;
}

#[tokio::test]
async fn orphan_propagation_keeps_dependents_without_the_reference() {
    let (emu, client) = start().await;
    let (cms, _) = owner_and_child(&client, "or", true).await;
    let dp = DeleteParams {
        propagation_policy: Some(PropagationPolicy::Orphan),
        ..DeleteParams::default()
    };
    cms.delete("or", &dp).await.expect("delete");
    gone(&cms, "or").await;
    let child = cms.get("or-child").await.expect("child survives");
    assert!(
        child.owner_references().is_empty(),
        "owner reference removed"
    );
    assert!(child.metadata.deletion_timestamp.is_none());
    emu.shutdown().await;
}

#[tokio::test]
async fn kube_runtime_finalizer_helper_runs_cleanup() {
    let (emu, client) = start().await;
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    cms.create(
        &PostParams::default(),
        &serde_json::from_value(json!({"metadata": {"name": "h"}})).expect("cm"),
    )
    .await
    .expect("create");
    let cleaned = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let run = |obj: Arc<ConfigMap>| {
        let cms = cms.clone();
        let cleaned = cleaned.clone();
        async move {
            finalizer(&cms, "midplane.dev/test", obj, |ev| async move {
                if let FinalizerEvent::Cleanup(_) = ev {
                    cleaned.store(true, std::sync::atomic::Ordering::SeqCst);
                }
                Ok::<_, kube::Error>(kube::runtime::controller::Action::await_change())
            })
            .await
        }
    };
    run(Arc::new(cms.get("h").await.expect("get")))
        .await
        .expect("adds finalizer");
    assert!(
        cms.get("h")
            .await
            .expect("get")
            .finalizers()
            .iter()
            .any(|f| f == "midplane.dev/test")
    );
    cms.delete("h", &DeleteParams::default())
        .await
        .expect("delete");
    run(Arc::new(cms.get("h").await.expect("still there")))
        .await
        .expect("cleanup");
    assert!(
        cleaned.load(std::sync::atomic::Ordering::SeqCst),
        "cleanup ran"
    );
    assert!(
        cms.get_opt("h").await.expect("get").is_none(),
        "gone after cleanup"
    );
    emu.shutdown().await;
}

#[tokio::test]
async fn leases_support_optimistic_leader_election() {
    let (emu, client) = start().await;
    let leases: Api<Lease> = Api::namespaced(client.clone(), "default");
    let lease: Lease = serde_json::from_value(json!({"metadata": {"name": "leader"},
        "spec": {"holderIdentity": "a", "leaseDurationSeconds": 15}}))
    .expect("lease");
    let l = leases
        .create(&PostParams::default(), &lease)
        .await
        .expect("a acquires");
    // Two candidates race to take over from the same observed version: exactly one wins.
    let mut b = l.clone();
    b.spec.as_mut().expect("spec").holder_identity = Some("b".into());
    let mut c = l.clone();
    c.spec.as_mut().expect("spec").holder_identity = Some("c".into());
    let rb = leases.replace("leader", &PostParams::default(), &b).await;
    let rc = leases.replace("leader", &PostParams::default(), &c).await;
    assert!(rb.is_ok());
    let (code_c, _) = code(rc);
    assert_eq!(code_c, 409);
    let now = leases.get("leader").await.expect("get");
    assert_eq!(
        now.spec.and_then(|s| s.holder_identity).as_deref(),
        Some("b")
    );
    emu.shutdown().await;
}
