//! The suite's own manifests as tests install them: `kubectl kustomize` of a
//! directory under `k8s/`, and creating each object as an administrator would
//! with `kubectl apply -k`.

use kube::Client;
use kube::api::{Api, DynamicObject, GroupVersionKind, PostParams};
use serde_json::Value;

/// The objects `kubectl kustomize k8s/<dir>` prints, in order.
pub fn kustomize(dir: &str) -> Vec<Value> {
    let out = std::process::Command::new("kubectl")
        .arg("kustomize")
        .arg(crate::root().join("k8s").join(dir))
        .output()
        .unwrap_or_else(|e| {
            panic!("kubectl not runnable ({e}); install it with scripts/services/kubectl.sh")
        });
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_yaml::Deserializer::from_str(&String::from_utf8_lossy(&out.stdout))
        .map(|d| <Value as serde::Deserialize>::deserialize(d).expect("YAML document"))
        .filter(|v| !v.is_null())
        .collect()
}

/// Creates one object with `admin`'s client; a Namespace that exists already is fine.
pub async fn create(admin: &Client, doc: &Value) {
    let obj: DynamicObject = serde_json::from_value(doc.clone()).expect("object");
    let gvk = GroupVersionKind::try_from(obj.types.as_ref().expect("types")).expect("gvk");
    let (ar, caps) = kube::discovery::pinned_kind(admin, &gvk)
        .await
        .unwrap_or_else(|e| panic!("{gvk:?}: {e}"));
    let api: Api<DynamicObject> = match (&caps.scope, obj.metadata.namespace.as_deref()) {
        (kube::discovery::Scope::Namespaced, Some(ns)) => {
            Api::namespaced_with(admin.clone(), ns, &ar)
        }
        _ => Api::all_with(admin.clone(), &ar),
    };
    match api.create(&PostParams::default(), &obj).await {
        Ok(_) => {}
        // The emulator makes midplane-system at start.
        Err(kube::Error::Api(e)) if e.code == 409 && doc["kind"] == "Namespace" => {}
        Err(e) => panic!("create {} {}: {e}", doc["kind"], doc["metadata"]["name"]),
    }
}
