//! Drift repair: the App is the source of truth. An owned object edited by
//! hand keeps its `midplane.dev/applied-hash` stamp, so the stamp alone
//! cannot see the edit; each rendered object also remembers a fingerprint of
//! the fields a hand edit breaks (a ConfigMap's data, a workload's replicas,
//! a Service's selector), and a live object whose fingerprint differs is
//! applied again (and an Event names it). A deleted object has no stamp and
//! is re-created by the same path.

use serde_json::{Value, json};
use sha2::{Digest, Sha256};

/// The fingerprint of what a hand edit of `object` would break; None for
/// kinds without one (their stamp is all that is compared).
pub fn key(kind: &str, object: &Value) -> Option<String> {
    let owned = match kind {
        "ConfigMap" | "Secret" => json!([object.get("data"), object.get("binaryData")]),
        // A missing replicas is 1 (the API server's default).
        "Deployment" | "StatefulSet" => {
            json!(
                object
                    .pointer("/spec/replicas")
                    .cloned()
                    .unwrap_or(json!(1))
            )
        }
        "Service" => json!(object.pointer("/spec/selector")),
        _ => return None,
    };
    let mut h = Sha256::new();
    h.update(owned.to_string().as_bytes());
    Some(hex::encode(h.finalize()))
}

/// The fingerprint of a typed live object.
pub fn key_of<K: serde::Serialize>(kind: &str, object: &K) -> Option<String> {
    let value = serde_json::to_value(object).ok()?;
    key(kind, &value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hand_edit_changes_the_key_and_defaults_do_not() {
        let cm = json!({"kind": "ConfigMap", "data": {"redis.conf": "maxmemory 1"}});
        let edited = json!({"kind": "ConfigMap", "data": {"redis.conf": "maxmemory 2"}});
        assert_ne!(key("ConfigMap", &cm), key("ConfigMap", &edited));
        let rendered = json!({"spec": {"template": {}}});
        let live = json!({"spec": {"replicas": 1, "template": {"x": 1}}});
        assert_eq!(key("Deployment", &rendered), key("Deployment", &live));
        let scaled = json!({"spec": {"replicas": 0}});
        assert_ne!(key("Deployment", &rendered), key("Deployment", &scaled));
        assert_eq!(key("PersistentVolumeClaim", &cm), None);
    }
}
