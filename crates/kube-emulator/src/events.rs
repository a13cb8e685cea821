//! events.k8s.io/v1 Events are a view of core/v1 Events, as on a real apiserver: one storage,
//! two shapes. `kubectl get events` therefore shows what a kube-rs `Recorder` published.

use serde_json::{Map, Value, json};

use crate::registry::ResourceType;

/// events.k8s.io/v1 field ↔ core/v1 field.
const RENAMES: &[(&str, &str)] = &[
    ("regarding", "involvedObject"),
    ("note", "message"),
    ("deprecatedSource", "source"),
    ("deprecatedFirstTimestamp", "firstTimestamp"),
    ("deprecatedLastTimestamp", "lastTimestamp"),
    ("deprecatedCount", "count"),
    ("reportingController", "reportingComponent"),
];

fn rename(obj: &Value, to_core: bool) -> Value {
    let Some(m) = obj.as_object() else {
        return obj.clone();
    };
    let mut out = Map::new();
    for (k, v) in m {
        let renamed = RENAMES.iter().find_map(|(new, core)| {
            if to_core && k == new {
                Some(*core)
            } else if !to_core && k == core {
                Some(*new)
            } else {
                None
            }
        });
        out.insert(renamed.unwrap_or(k).to_string(), v.clone());
    }
    Value::Object(out)
}

/// Convert a request body to the stored shape.
pub fn to_storage(rt: &ResourceType, obj: Value) -> Value {
    if rt.storage.is_none() {
        return obj;
    }
    let mut o = rename(&obj, true);
    o["apiVersion"] = json!(rt.storage_api_version());
    o
}

/// Convert a stored object to the shape of the requested resource.
pub fn from_storage(rt: &ResourceType, obj: &Value) -> Value {
    if rt.storage.is_none() {
        return obj.clone();
    }
    rename(obj, false)
}

/// Field selectors name the view's fields; evaluate them on the stored shape.
pub fn storage_field_selector(rt: &ResourceType, sel: &str) -> String {
    if rt.storage.is_none() {
        return sel.to_string();
    }
    let mut s = sel.to_string();
    for (new, core) in RENAMES {
        s = s.replace(&format!("{new}."), &format!("{core}."));
        s = s.replace(&format!("{new}="), &format!("{core}="));
        s = s.replace(&format!("{new}!="), &format!("{core}!="));
    }
    s
}
