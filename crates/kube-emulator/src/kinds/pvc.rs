//! PersistentVolumeClaim rules of the apiserver: resource quantities, and what an update
//! may change.

use serde_json::Value;

use crate::error::Cause;

/// A resource quantity (`2Gi`, `500M`, `1.5e3`, `100m`) as a number, for comparisons.
pub fn quantity(s: &str) -> Option<f64> {
    const SUFFIXES: [(&str, f64); 13] = [
        ("Ki", 1024.0),
        ("Mi", 1_048_576.0),
        ("Gi", 1_073_741_824.0),
        ("Ti", 1_099_511_627_776.0),
        ("Pi", 1_125_899_906_842_624.0),
        ("Ei", 1_152_921_504_606_846_976.0),
        ("n", 1e-9),
        ("u", 1e-6),
        ("m", 1e-3),
        ("k", 1e3),
        ("M", 1e6),
        ("G", 1e9),
        ("T", 1e12),
    ];
    let s = s.trim();
    for (suffix, mult) in SUFFIXES.iter().chain([("P", 1e15), ("E", 1e18)].iter()) {
        if let Some(n) = s.strip_suffix(suffix) {
            return n.parse::<f64>().ok().map(|n| n * mult);
        }
    }
    s.parse::<f64>().ok()
}

/// What the apiserver allows a PVC update to change (ValidatePersistentVolumeClaimUpdate):
/// nothing of its spec except `resources.requests` of a bound claim (never below the
/// provisioned `status.capacity`), `volumeAttributesClassName`, and `volumeName` while
/// unset (binding).
pub(super) fn validate_pvc_update(obj: &Value, old: &Value, out: &mut Vec<Cause>) {
    let bound = old["status"]["phase"] == "Bound";
    let mut new_spec = obj["spec"].clone();
    let mut old_spec = old["spec"].clone();
    for spec in [&mut new_spec, &mut old_spec] {
        if let Some(m) = spec.as_object_mut() {
            m.remove("volumeAttributesClassName");
        }
    }
    if old_spec["volumeName"].as_str().is_none_or(str::is_empty)
        && let Some(v) = new_spec.get("volumeName").cloned()
    {
        old_spec["volumeName"] = v;
    }
    if bound {
        new_spec["resources"]["requests"] = old_spec["resources"]["requests"].clone();
    }
    if new_spec != old_spec {
        out.push(Cause {
            reason: "FieldValueForbidden".into(),
            field: "spec".into(),
            message: "Forbidden: spec is immutable after creation except resources.requests and volumeAttributesClassName for bound claims".into(),
        });
        return;
    }
    let size = |v: &Value| v.as_str().and_then(quantity);
    let (new_size, old_size) = (
        size(&obj["spec"]["resources"]["requests"]["storage"]),
        size(&old["spec"]["resources"]["requests"]["storage"]),
    );
    if let (Some(n), Some(o)) = (new_size, old_size)
        && n < o
    {
        // RecoverVolumeExpansionFailure: a failed expansion may be lowered again, but
        // never to the provisioned capacity or below.
        let capacity = size(&old["status"]["capacity"]["storage"]);
        if capacity.is_none_or(|c| n <= c) {
            out.push(Cause {
                reason: "FieldValueForbidden".into(),
                field: "spec.resources.requests.storage".into(),
                message: "Forbidden: field can not be less than status.capacity".into(),
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn quantities_compare_across_units() {
        assert_eq!(quantity("1Gi"), Some(1_073_741_824.0));
        assert!(quantity("1G").expect("G") < quantity("1Gi").expect("Gi"));
        assert_eq!(quantity("100m"), Some(0.1));
        assert_eq!(quantity("lots"), None);
    }

    #[test]
    fn an_unbound_claim_cannot_change_its_size() {
        let old = json!({"spec": {"resources": {"requests": {"storage": "1Gi"}}}, "status": {"phase": "Pending"}});
        let new = json!({"spec": {"resources": {"requests": {"storage": "2Gi"}}}});
        let mut out = Vec::new();
        validate_pvc_update(&new, &old, &mut out);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].field, "spec");
        let bound = json!({"spec": {"resources": {"requests": {"storage": "1Gi"}}},
                           "status": {"phase": "Bound", "capacity": {"storage": "1Gi"}}});
        let mut out = Vec::new();
        validate_pvc_update(&new, &bound, &mut out);
        assert!(out.is_empty(), "{out:?}");
    }
}
