//! Core REST semantics: discovery, CRUD, resourceVersion concurrency, generation, the status
//! subresource, Status errors, CRDs and schema validation — pinned with kube-rs as the client.

mod common;

use common::*;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::discovery::Discovery;
use serde_json::json;

fn configmap(name: &str) -> ConfigMap {
    serde_json::from_value(json!({"metadata": {"name": name}, "data": {"k": "v"}})).expect("cm")
}

fn deployment(name: &str, replicas: i32) -> Deployment {
    serde_json::from_value(json!({
        "metadata": {"name": name},
        "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
            "template": {"metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "c", "image": "redis:7"}]}}}}))
    .expect("deployment")
}

#[tokio::test]
async fn discovery_lists_builtins_and_crds() {
    let (emu, client) = start().await;
    emu.install_crd(widget_crd()).expect("crd installs");
    let d = Discovery::new(client.clone())
        .run()
        .await
        .expect("discovery runs");
    let mut kinds = Vec::new();
    for g in d.groups() {
        for (ar, caps) in g.recommended_resources() {
            kinds.push((
                ar.api_version.clone(),
                ar.kind.clone(),
                caps.scope == kube::discovery::Scope::Namespaced,
            ));
        }
    }
    for want in [
        ("v1", "ConfigMap", true),
        ("v1", "Namespace", false),
        ("apps/v1", "Deployment", true),
        ("coordination.k8s.io/v1", "Lease", true),
        ("discovery.k8s.io/v1", "EndpointSlice", true),
        ("events.k8s.io/v1", "Event", true),
        ("example.com/v1", "Widget", true),
    ] {
        assert!(
            kinds
                .iter()
                .any(|(a, k, n)| a == want.0 && k == want.1 && *n == want.2),
            "discovery lacks {want:?}"
        );
    }
    let v = client.apiserver_version().await.expect("version");
    assert_eq!(v.major, "1");
    emu.shutdown().await;
}

#[tokio::test]
async fn create_get_update_delete_with_conventions() {
    let (emu, client) = start().await;
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    let created = cms
        .create(&PostParams::default(), &configmap("a"))
        .await
        .expect("create");
    let meta = &created.metadata;
    assert!(
        meta.uid.as_deref().is_some_and(|u| u.len() == 36),
        "uid assigned"
    );
    assert!(meta.creation_timestamp.is_some(), "creationTimestamp set");
    assert!(meta.resource_version.is_some(), "resourceVersion set");
    let mf = meta
        .managed_fields
        .as_ref()
        .expect("managedFields recorded");
    assert_eq!(mf[0].operation.as_deref(), Some("Update"));

    let (c, reason) = code(cms.create(&PostParams::default(), &configmap("a")).await);
    assert_eq!((c, reason.as_str()), (409, "AlreadyExists"));
    let (c, reason) = code(cms.get("missing").await);
    assert_eq!((c, reason.as_str()), (404, "NotFound"));

    // Optimistic concurrency: an update carrying an old resourceVersion is a 409 Conflict.
    let mut first = created.clone();
    first.data = Some([("k".to_string(), "v2".to_string())].into());
    let updated = cms
        .replace("a", &PostParams::default(), &first)
        .await
        .expect("update");
    assert_ne!(
        updated.metadata.resource_version,
        created.metadata.resource_version
    );
    let mut stale = created.clone();
    stale.data = Some([("k".to_string(), "v3".to_string())].into());
    let (c, reason) = code(cms.replace("a", &PostParams::default(), &stale).await);
    assert_eq!((c, reason.as_str()), (409, "Conflict"));

    // A no-op update keeps the resourceVersion.
    let same = cms
        .replace("a", &PostParams::default(), &updated)
        .await
        .expect("no-op update");
    assert_eq!(
        same.metadata.resource_version,
        updated.metadata.resource_version
    );

    // Invalid names are 422 with the field named.
    let (c, reason) = code(
        cms.create(&PostParams::default(), &configmap("Bad_Name"))
            .await,
    );
    assert_eq!((c, reason.as_str()), (422, "Invalid"));

    // Creating in a namespace that does not exist is 404.
    let missing_ns: Api<ConfigMap> = Api::namespaced(client.clone(), "nope");
    let (c, _) = code(
        missing_ns
            .create(&PostParams::default(), &configmap("x"))
            .await,
    );
    assert_eq!(c, 404);

    let gone = cms
        .delete("a", &DeleteParams::default())
        .await
        .expect("delete");
    assert!(gone.is_right(), "immediate deletion answers a Status");
    let (c, _) = code(cms.get("a").await);
    assert_eq!(c, 404);
    emu.shutdown().await;
}

#[tokio::test]
async fn generation_moves_with_spec_only_and_status_is_a_subresource() {
    let (emu, client) = start().await;
    let deps: Api<Deployment> = Api::namespaced(client.clone(), "default");
    let d = deps
        .create(&PostParams::default(), &deployment("g", 0))
        .await
        .expect("create");
    assert_eq!(d.metadata.generation, Some(1));
    // Metadata change: generation stays.
    let p = json!({"metadata": {"labels": {"x": "y"}}});
    let d = deps
        .patch("g", &PatchParams::default(), &Patch::Merge(&p))
        .await
        .expect("label patch");
    assert_eq!(d.metadata.generation, Some(1));
    // Status through the main resource is ignored.
    let p = json!({"status": {"replicas": 42}});
    let d = deps
        .patch("g", &PatchParams::default(), &Patch::Merge(&p))
        .await
        .expect("status via main");
    assert_ne!(d.status.as_ref().and_then(|s| s.replicas), Some(42));
    // Spec change: generation bumps.
    let p = json!({"spec": {"replicas": 0, "paused": true}});
    let d = deps
        .patch("g", &PatchParams::default(), &Patch::Merge(&p))
        .await
        .expect("spec patch");
    assert_eq!(d.metadata.generation, Some(2));
    // /status ignores spec and takes status.
    let p = json!({"spec": {"replicas": 7}, "status": {"observedGeneration": 2, "replicas": 42}});
    let d = deps
        .patch_status("g", &PatchParams::default(), &Patch::Merge(&p))
        .await
        .expect("status patch");
    assert_eq!(d.status.as_ref().and_then(|s| s.replicas), Some(42));
    assert_eq!(d.spec.as_ref().and_then(|s| s.replicas), Some(0));
    assert_eq!(d.metadata.generation, Some(2));
    // Validation: a selector that does not match the template is 422 naming the field.
    let mut bad = deployment("bad", 1);
    if let Some(spec) = bad.spec.as_mut() {
        spec.template.metadata =
            Some(serde_json::from_value(json!({"labels": {"app": "other"}})).expect("meta"));
    }
    match deps.create(&PostParams::default(), &bad).await {
        Err(kube::Error::Api(s)) => {
            assert_eq!(s.code, 422);
            assert!(
                s.message.contains("spec.template.metadata.labels"),
                "{}",
                s.message
            );
        }
        other => panic!("expected 422, got {other:?}"),
    }
    emu.shutdown().await;
}

#[tokio::test]
async fn crds_serve_custom_resources_with_schema_and_status() {
    let (emu, client) = start().await;
    let crds: Api<k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition> =
        Api::all(client.clone());
    let crd = crds
        .create(
            &PostParams::default(),
            &serde_json::from_value(widget_crd()).expect("crd"),
        )
        .await
        .expect("crd create");
    let established = crd.status.and_then(|s| s.conditions).is_some_and(|c| {
        c.iter()
            .any(|c| c.type_ == "Established" && c.status == "True")
    });
    assert!(established, "CRD reports Established");
    let w = widgets(&client, "default");
    let created = w
        .create(&PostParams::default(), &widget("w", 3))
        .await
        .expect("cr create");
    assert_eq!(created.metadata.generation, Some(1));
    // Unknown fields are pruned; with fieldValidation=Strict they are an error.
    let p = json!({"spec": {"junk": true}});
    let patched = w
        .patch("w", &PatchParams::default(), &Patch::Merge(&p))
        .await
        .expect("pruned");
    assert!(
        patched.data["spec"].get("junk").is_none(),
        "unknown field pruned"
    );
    assert_eq!(
        patched.metadata.generation,
        Some(1),
        "a pruned no-op does not bump generation"
    );
    let strict = PatchParams {
        field_validation: Some(kube::api::ValidationDirective::Strict),
        ..PatchParams::default()
    };
    let (c, _) = code(w.patch("w", &strict, &Patch::Merge(&p)).await);
    assert_eq!(c, 400);
    // Type, enum and minimum violations are 422 with the field paths.
    let p = json!({"spec": {"size": -1, "mode": "slow"}});
    match w
        .patch("w", &PatchParams::default(), &Patch::Merge(&p))
        .await
    {
        Err(kube::Error::Api(s)) => {
            assert_eq!(s.code, 422);
            assert!(
                s.message.contains("spec.size") && s.message.contains("spec.mode"),
                "{}",
                s.message
            );
        }
        other => panic!("expected 422, got {other:?}"),
    }
    // Custom resources need a resourceVersion on PUT.
    let mut no_rv = created.clone();
    no_rv.metadata.resource_version = None;
    let (c, _) = code(w.replace("w", &PostParams::default(), &no_rv).await);
    assert_eq!(c, 422);
    // The status subresource.
    let p = json!({"status": {"phase": "Ready"}, "spec": {"size": 9}});
    let s = w
        .patch_status("w", &PatchParams::default(), &Patch::Merge(&p))
        .await
        .expect("status");
    assert_eq!(s.data["status"]["phase"], "Ready");
    assert_eq!(s.data["spec"]["size"], 3);
    // Deleting the CRD deletes its objects and stops serving the kind.
    crds.delete("widgets.example.com", &DeleteParams::default())
        .await
        .expect("crd delete");
    eventually("CRD gone", 5, || {
        let crds = crds.clone();
        async move {
            crds.get_opt("widgets.example.com")
                .await
                .expect("get")
                .is_none()
                .then_some(())
        }
    })
    .await;
    let (c, _) = code(w.list(&ListParams::default()).await);
    assert_eq!(c, 404);
    emu.shutdown().await;
}

#[tokio::test]
async fn crd_dir_is_loaded_at_start() {
    let dir = tempfile::tempdir().expect("tempdir");
    let yaml = serde_yaml::to_string(&widget_crd()).expect("yaml");
    std::fs::write(
        dir.path().join("widgets.yaml"),
        format!("---\n{yaml}\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {{name: ignored}}\n"),
    )
    .expect("write");
    let (emu, client) = start_with(midplane_kube_emulator::EmulatorConfig {
        crd_dir: Some(dir.path().into()),
        ..Default::default()
    })
    .await;
    let w = widgets(&client, "default");
    w.create(&PostParams::default(), &widget("a", 1))
        .await
        .expect("served from crd_dir");
    emu.shutdown().await;
}

#[tokio::test]
async fn namespace_deletion_removes_its_content() {
    let (emu, client) = start().await;
    let nss: Api<Namespace> = Api::all(client.clone());
    nss.create(
        &PostParams::default(),
        &serde_json::from_value(json!({"metadata": {"name": "tmp"}})).expect("ns"),
    )
    .await
    .expect("ns create");
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "tmp");
    cms.create(&PostParams::default(), &configmap("c"))
        .await
        .expect("cm");
    let pending = nss
        .delete("tmp", &DeleteParams::default())
        .await
        .expect("ns delete");
    let ns = pending.left().expect("namespace deletion is not immediate");
    assert_eq!(
        ns.status.and_then(|s| s.phase).as_deref(),
        Some("Terminating")
    );
    eventually("namespace gone", 5, || {
        let nss = nss.clone();
        async move {
            nss.get_opt("tmp")
                .await
                .expect("get")
                .is_none()
                .then_some(())
        }
    })
    .await;
    assert!(
        cms.get_opt("c").await.expect("get").is_none(),
        "content deleted with the namespace"
    );
    emu.shutdown().await;
}
