//! What a real kube-apiserver (v1.3x) does and kubectl relies on: PVC spec immutability,
//! `kubectl create namespace|configmap|secret` (protobuf bodies), `kubectl scale` (the
//! Deployment /scale subresource), `kubectl logs` of a simulated Pod.

mod common;

use common::process::{kubectl, wait};
use k8s_openapi::api::core::v1::PersistentVolumeClaim;
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::json;

#[tokio::test]
async fn a_pvc_spec_is_immutable_but_a_bound_claim_may_grow() {
    let (emu, client) = common::start().await;
    let pvcs: Api<PersistentVolumeClaim> = Api::namespaced(client.clone(), "default");
    let pvc: PersistentVolumeClaim = serde_json::from_value(json!({
        "metadata": {"name": "data"},
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}},
    }))
    .expect("pvc");
    pvcs.create(&PostParams::default(), &pvc)
        .await
        .expect("create");
    wait("the claim to bind", 10, || async {
        let p = pvcs.get("data").await.map_err(|e| e.to_string())?;
        match p.status.and_then(|s| s.phase).as_deref() {
            Some("Bound") => Ok(()),
            other => Err(format!("{other:?}")),
        }
    })
    .await;
    let resize =
        |size: &str| Patch::Merge(json!({"spec": {"resources": {"requests": {"storage": size}}}}));
    pvcs.patch("data", &PatchParams::default(), &resize("2Gi"))
        .await
        .expect("a bound claim may grow");
    let (code, reason) = common::code(
        pvcs.patch("data", &PatchParams::default(), &resize("1Gi"))
            .await,
    );
    assert_eq!(
        (code, reason.as_str()),
        (422, "Invalid"),
        "a shrink to the capacity is refused"
    );
    let err = pvcs
        .patch("data", &PatchParams::default(), &resize("512Mi"))
        .await
        .expect_err("shrink");
    assert!(
        err.to_string().contains("spec.resources.requests.storage"),
        "{err}"
    );
    let class = Patch::Merge(json!({"spec": {"storageClassName": "fast"}}));
    let err = pvcs
        .patch("data", &PatchParams::default(), &class)
        .await
        .expect_err("immutable");
    assert!(
        err.to_string().contains("spec is immutable after creation"),
        "{err}"
    );
    emu.shutdown().await;
}

#[tokio::test]
async fn kubectl_create_and_scale_work() {
    let (emu, _client) = common::start().await;
    let dir = tempfile::tempdir().expect("dir");
    let kc = dir.path().join("kubeconfig");
    emu.write_kubeconfig(&kc).expect("kubeconfig");
    for args in [
        vec!["create", "namespace", "shop"],
        vec![
            "create",
            "configmap",
            "settings",
            "-n",
            "shop",
            "--from-literal=level=one",
        ],
        vec![
            "create",
            "secret",
            "generic",
            "creds",
            "-n",
            "shop",
            "--from-literal=pw=hunter2",
        ],
        vec![
            "create",
            "deployment",
            "web",
            "-n",
            "shop",
            "--image=busybox",
            "--dry-run=client",
            "-o",
            "yaml",
        ],
    ] {
        let (ok, out) = kubectl(&kc, &args).await;
        assert!(ok, "kubectl {args:?}: {out}");
    }
    let (ok, out) = kubectl(
        &kc,
        &[
            "get",
            "configmap",
            "settings",
            "-n",
            "shop",
            "-o",
            "jsonpath={.data.level}",
        ],
    )
    .await;
    assert!(ok && out == "one", "{out}");
    let (ok, out) = kubectl(
        &kc,
        &[
            "get",
            "secret",
            "creds",
            "-n",
            "shop",
            "-o",
            "jsonpath={.data.pw}",
        ],
    )
    .await;
    assert!(ok && out == "aHVudGVyMg==", "{out}");

    let manifest = dir.path().join("web.yaml");
    std::fs::write(
        &manifest,
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web, namespace: shop}\nspec:\n  replicas: 1\n  \
         selector: {matchLabels: {app: web}}\n  template:\n    metadata: {labels: {app: web}}\n    spec:\n      \
         containers: [{name: web, image: busybox}]\n",
    )
    .expect("manifest");
    let (ok, out) = kubectl(&kc, &["apply", "-f", manifest.to_str().expect("path")]).await;
    assert!(ok, "{out}");
    let (ok, out) = kubectl(
        &kc,
        &["scale", "deployment", "web", "-n", "shop", "--replicas=3"],
    )
    .await;
    assert!(ok && out.contains("scaled"), "kubectl scale: {out}");
    let (ok, out) = kubectl(
        &kc,
        &[
            "scale",
            "deployment/web",
            "-n",
            "shop",
            "--current-replicas=3",
            "--replicas=2",
        ],
    )
    .await;
    assert!(ok, "kubectl scale with a precondition: {out}");
    let (ok, out) = kubectl(
        &kc,
        &[
            "scale",
            "deployment/web",
            "-n",
            "shop",
            "--current-replicas=5",
            "--replicas=1",
        ],
    )
    .await;
    assert!(!ok, "a wrong --current-replicas is refused: {out}");
    wait("two Pods of the scaled Deployment", 10, || async {
        let (_, out) = kubectl(
            &kc,
            &["get", "pods", "-n", "shop", "-l", "app=web", "-o", "name"],
        )
        .await;
        if out.lines().count() == 2 {
            Ok(())
        } else {
            Err(out)
        }
    })
    .await;
    let (_, pod) = kubectl(
        &kc,
        &[
            "get",
            "pods",
            "-n",
            "shop",
            "-l",
            "app=web",
            "-o",
            "jsonpath={.items[0].metadata.name}",
        ],
    )
    .await;
    let (ok, out) = kubectl(&kc, &["logs", "-n", "shop", &pod]).await;
    assert!(ok && out.is_empty(), "a simulated Pod logs nothing: {out}");
    emu.shutdown().await;
}

/// The apiserver's container defaults reach init containers too, and a gRPC probe's service
/// defaults to "": `kubectl describe` of a Deployment with one (as the Redis plugin renders)
/// works.
#[tokio::test]
async fn grpc_probes_and_init_containers_are_defaulted() {
    let (emu, client) = common::start().await;
    let dir = tempfile::tempdir().expect("dir");
    let kc = dir.path().join("kubeconfig");
    emu.write_kubeconfig(&kc).expect("kubeconfig");
    let body = json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "probed", "namespace": "default"},
        "spec": {"selector": {"matchLabels": {"app": "probed"}},
            "template": {"metadata": {"labels": {"app": "probed"}}, "spec": {
                "initContainers": [{"name": "init", "image": "busybox", "ports": [{"containerPort": 1}]}],
                "containers": [{"name": "c", "image": "busybox",
                    "readinessProbe": {"grpc": {"port": 50051}}}]}}}
    });
    let api: Api<k8s_openapi::api::apps::v1::Deployment> = Api::namespaced(client, "default");
    let d = api
        .create(
            &PostParams::default(),
            &serde_json::from_value(body).expect("deployment"),
        )
        .await
        .expect("create");
    let pod = d.spec.expect("spec").template.spec.expect("pod spec");
    let probe = pod.containers[0].readiness_probe.clone().expect("probe");
    assert_eq!(probe.grpc.expect("grpc").service.as_deref(), Some(""));
    let init = &pod.init_containers.expect("init")[0];
    assert_eq!(
        init.ports.as_ref().expect("ports")[0].protocol.as_deref(),
        Some("TCP")
    );
    let (ok, out) = kubectl(&kc, &["describe", "deployment", "probed"]).await;
    assert!(ok && out.contains("grpc"), "kubectl describe: {out}");
    emu.shutdown().await;
}
