//! Field paths and field sets as structured-merge-diff sees them: the list semantics of each
//! field (atomic, set, map keyed by fields), `managedFields[].fieldsV1` encoding, and
//! get/remove of one path inside an object.

use std::collections::BTreeSet;

use serde_json::{Map, Value};

use crate::registry::ResourceType;

mod diff;
pub use diff::{Diff, diff};

/// One step of a field path: a map field, an associative-list item by key, a set item by value.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Pe {
    F(String),
    K(String),
    V(String),
}

pub type FieldPath = Vec<Pe>;
pub type FieldSet = BTreeSet<FieldPath>;

/// How a list merges, from `x-kubernetes-list-type` or the built-in kinds' merge keys.
#[derive(Clone, Debug, PartialEq)]
pub enum ListType {
    Atomic,
    Set,
    Map(Vec<String>),
}

/// Metadata fields the server owns; field management never tracks them.
const SERVER_META: &[&str] = &[
    "name",
    "namespace",
    "uid",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "managedFields",
    "selfLink",
];

/// List semantics of the field reached by `names` (field names from the root, list steps elided).
pub fn list_type(rt: &ResourceType, names: &[&str]) -> ListType {
    let Some(last) = names.last() else {
        return ListType::Atomic;
    };
    if rt.custom && names.first() != Some(&"metadata") {
        return crd_list_type(rt, names);
    }
    match *last {
        "containers"
        | "initContainers"
        | "ephemeralContainers"
        | "volumes"
        | "env"
        | "imagePullSecrets"
        | "resourceClaims" => ListType::Map(vec!["name".into()]),
        "volumeMounts" => ListType::Map(vec!["mountPath".into()]),
        "volumeDevices" => ListType::Map(vec!["devicePath".into()]),
        "hostAliases" => ListType::Map(vec!["ip".into()]),
        "conditions" => ListType::Map(vec!["type".into()]),
        "ownerReferences" => ListType::Map(vec!["uid".into()]),
        "finalizers" => ListType::Set,
        "ports" if names.iter().any(|n| n.ends_with("ontainers")) => {
            ListType::Map(vec!["containerPort".into()])
        }
        "ports" if rt.kind == "Service" && names == ["spec", "ports"] => {
            ListType::Map(vec!["port".into()])
        }
        _ => ListType::Atomic,
    }
}

fn crd_list_type(rt: &ResourceType, names: &[&str]) -> ListType {
    let Some(mut node) = rt.schemas.get(rt.storage_version()) else {
        return ListType::Atomic;
    };
    for name in names {
        if node["type"] == "array" {
            node = &node["items"];
        }
        node = match node["properties"].get(*name) {
            Some(n) => n,
            None => &node["additionalProperties"],
        };
    }
    match node["x-kubernetes-list-type"].as_str() {
        Some("set") => ListType::Set,
        Some("map") => ListType::Map(
            node["x-kubernetes-list-map-keys"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|k| k.as_str().map(String::from))
                .collect(),
        ),
        _ => ListType::Atomic,
    }
}

/// Canonical (sorted-key) JSON of an associative-list item's key fields.
pub fn item_key(item: &Value, keys: &[String]) -> String {
    let mut sorted: Vec<&String> = keys.iter().collect();
    sorted.sort();
    let parts: Vec<String> = sorted
        .iter()
        .map(|k| {
            format!(
                "{}:{}",
                Value::String((*k).clone()),
                item.get(k.as_str()).cloned().unwrap_or(Value::Null)
            )
        })
        .collect();
    format!("{{{}}}", parts.join(","))
}

/// Which top-level part of the object a request may own.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Scope {
    /// Everything (resources without a status subresource).
    All,
    /// Everything but `status`.
    Main,
    /// Only `status`.
    Status,
}

/// The set of leaf fields (plus associative-item markers) an object sets.
pub fn field_set(rt: &ResourceType, obj: &Value, scope: Scope) -> FieldSet {
    let mut out = FieldSet::new();
    let Some(map) = obj.as_object() else {
        return out;
    };
    for (k, v) in map {
        if k == "apiVersion" || k == "kind" || v.is_null() {
            continue;
        }
        match scope {
            Scope::Main if k == "status" => continue,
            Scope::Status if k != "status" => continue,
            _ => {}
        }
        let mut path = vec![Pe::F(k.clone())];
        let mut names = vec![k.as_str()];
        if k == "metadata" {
            if let Some(meta) = v.as_object() {
                for (mk, mv) in meta {
                    if SERVER_META.contains(&mk.as_str()) || mv.is_null() {
                        continue;
                    }
                    path.push(Pe::F(mk.clone()));
                    names.push(mk.as_str());
                    walk(rt, mv, &mut names, &mut path, &mut out);
                    path.pop();
                    names.pop();
                }
            }
            continue;
        }
        walk(rt, v, &mut names, &mut path, &mut out);
    }
    out
}

fn walk<'a>(
    rt: &ResourceType,
    v: &'a Value,
    names: &mut Vec<&'a str>,
    path: &mut FieldPath,
    out: &mut FieldSet,
) {
    match v {
        Value::Object(m) if !m.is_empty() => {
            for (k, child) in m {
                if child.is_null() {
                    continue;
                }
                path.push(Pe::F(k.clone()));
                names.push(k.as_str());
                walk(rt, child, names, path, out);
                names.pop();
                path.pop();
            }
        }
        Value::Array(items) if !items.is_empty() => match list_type(rt, names) {
            ListType::Atomic => {
                out.insert(path.clone());
            }
            ListType::Set => {
                for item in items {
                    path.push(Pe::V(item.to_string()));
                    out.insert(path.clone());
                    path.pop();
                }
            }
            ListType::Map(keys) => {
                for item in items {
                    path.push(Pe::K(item_key(item, &keys)));
                    out.insert(path.clone());
                    if let Some(m) = item.as_object() {
                        for (k, child) in m {
                            if child.is_null() {
                                continue;
                            }
                            path.push(Pe::F(k.clone()));
                            names.push(k.as_str());
                            walk(rt, child, names, path, out);
                            names.pop();
                            path.pop();
                        }
                    }
                    path.pop();
                }
            }
        },
        _ => {
            out.insert(path.clone());
        }
    }
}

fn list_keys_of(item_key_json: &str) -> Vec<String> {
    serde_json::from_str::<Map<String, Value>>(item_key_json)
        .map(|m| m.keys().cloned().collect())
        .unwrap_or_default()
}

/// The value a path points at.
pub fn get_path<'a>(obj: &'a Value, path: &[Pe]) -> Option<&'a Value> {
    let mut cur = obj;
    for pe in path {
        cur = match pe {
            Pe::F(name) => cur.as_object()?.get(name)?,
            Pe::K(key) => {
                let keys = list_keys_of(key);
                cur.as_array()?
                    .iter()
                    .find(|i| item_key(i, &keys) == *key)?
            }
            Pe::V(val) => cur.as_array()?.iter().find(|i| i.to_string() == *val)?,
        };
    }
    Some(cur)
}

/// Remove the field or list item a path points at; missing paths are a no-op.
pub fn remove_path(obj: &mut Value, path: &[Pe]) {
    let Some((last, parent_path)) = path.split_last() else {
        return;
    };
    let mut cur = obj;
    for pe in parent_path {
        let next = match pe {
            Pe::F(name) => cur.as_object_mut().and_then(|m| m.get_mut(name)),
            Pe::K(key) => {
                let keys = list_keys_of(key);
                cur.as_array_mut()
                    .and_then(|a| a.iter_mut().find(|i| item_key(i, &keys) == *key))
            }
            Pe::V(val) => cur
                .as_array_mut()
                .and_then(|a| a.iter_mut().find(|i| i.to_string() == *val)),
        };
        match next {
            Some(n) => cur = n,
            None => return,
        }
    }
    match last {
        Pe::F(name) => {
            if let Some(m) = cur.as_object_mut() {
                m.remove(name);
            }
        }
        Pe::K(key) => {
            let keys = list_keys_of(key);
            if let Some(a) = cur.as_array_mut() {
                a.retain(|i| item_key(i, &keys) != *key);
            }
        }
        Pe::V(val) => {
            if let Some(a) = cur.as_array_mut() {
                a.retain(|i| i.to_string().as_str() != val.as_str());
            }
        }
    }
}

/// `.spec.replicas`-style rendering of a path for conflict messages.
pub fn display_path(path: &[Pe]) -> String {
    let mut s = String::new();
    for pe in path {
        match pe {
            Pe::F(n) => {
                s.push('.');
                s.push_str(n);
            }
            Pe::K(k) => s.push_str(&format!("[{k}]")),
            Pe::V(v) => s.push_str(&format!("[={v}]")),
        }
    }
    s
}

fn push_pe_key(buf: &mut String, pe: &Pe) {
    let (prefix, s) = match pe {
        Pe::F(n) => ("f:", n),
        Pe::K(k) => ("k:", k),
        Pe::V(v) => ("v:", v),
    };
    buf.push_str(prefix);
    buf.push_str(s);
}

/// Walk (creating as needed) the nodes of `path`; `key` is a reusable buffer, so a node that
/// exists costs a lookup, not an allocation.
fn insert_path(node: &mut Map<String, Value>, path: &[Pe], mark_self: bool, key: &mut String) {
    let Some((first, rest)) = path.split_first() else {
        if mark_self {
            node.insert(".".into(), Value::Object(Map::new()));
        }
        return;
    };
    key.clear();
    push_pe_key(key, first);
    if !node.contains_key(key.as_str()) {
        node.insert(key.clone(), Value::Object(Map::new()));
    }
    if let Some(m) = node.get_mut(key.as_str()).and_then(Value::as_object_mut) {
        insert_path(m, rest, mark_self, key);
    }
}

/// Encode a field set as `fieldsV1`.
pub fn to_fields_v1(set: &FieldSet) -> Value {
    let mut root = Map::new();
    let mut key = String::new();
    let mut paths = set.iter().peekable();
    while let Some(path) = paths.next() {
        // A path that also has children marks itself with "."; a pure leaf stays `{}`.
        // Sorted order puts a path's first descendant right after it.
        let is_prefix = paths
            .peek()
            .is_some_and(|next| next.len() > path.len() && next.starts_with(path));
        let mark = is_prefix || matches!(path.last(), Some(Pe::K(_)));
        insert_path(&mut root, path, mark, &mut key);
    }
    Value::Object(root)
}

/// Whether encoded `fieldsV1` holds `path`, as [`from_fields_v1`] would decode it, without
/// decoding it: a write checks other managers' entries this way and decodes only those it
/// takes fields from. (Stored entries are always in the canonical form the emulator writes.)
pub fn fields_v1_contains(v: &Value, path: &[Pe]) -> bool {
    if path.is_empty() {
        return false;
    }
    let mut cur = v;
    let mut key = String::new();
    for pe in path {
        key.clear();
        push_pe_key(&mut key, pe);
        match cur.as_object().and_then(|m| m.get(key.as_str())) {
            Some(c) => cur = c,
            None => return false,
        }
    }
    cur.as_object()
        .is_none_or(|m| m.is_empty() || m.contains_key("."))
}

/// Decode `fieldsV1` into a field set.
pub fn from_fields_v1(v: &Value) -> FieldSet {
    let mut out = FieldSet::new();
    let mut path = Vec::new();
    decode(v, &mut path, &mut out);
    out
}

fn decode(v: &Value, path: &mut FieldPath, out: &mut FieldSet) {
    let Some(m) = v.as_object() else { return };
    for (k, child) in m {
        if k == "." {
            out.insert(path.clone());
            continue;
        }
        let pe = if let Some(n) = k.strip_prefix("f:") {
            Pe::F(n.into())
        } else if let Some(n) = k.strip_prefix("k:") {
            // Re-canonicalise so keys compare equal whatever order the writer used.
            let keys = list_keys_of(n);
            let item: Value = serde_json::from_str(n).unwrap_or(Value::Null);
            Pe::K(item_key(&item, &keys))
        } else if let Some(n) = k.strip_prefix("v:") {
            let val: Value = serde_json::from_str(n).unwrap_or(Value::Null);
            Pe::V(val.to_string())
        } else {
            continue;
        };
        path.push(pe);
        if child.as_object().is_none_or(serde_json::Map::is_empty) {
            out.insert(path.clone());
        } else {
            decode(child, path, out);
        }
        path.pop();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::builtins;
    use serde_json::json;

    fn deployment() -> ResourceType {
        builtins()
            .into_iter()
            .find(|t| t.kind == "Deployment")
            .expect("deployment kind")
    }

    #[test]
    fn containers_are_keyed_by_name_and_roundtrip_fields_v1() {
        let rt = deployment();
        let obj = json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "d", "labels": {"a": "1"}},
            "spec": {"replicas": 2, "template": {"spec": {"containers": [
                {"name": "c", "image": "i", "args": ["x"]}]}}}});
        let set = field_set(&rt, &obj, Scope::Main);
        let encoded = to_fields_v1(&set);
        assert_eq!(
            encoded["f:spec"]["f:template"]["f:spec"]["f:containers"]["k:{\"name\":\"c\"}"],
            json!({".": {}, "f:name": {}, "f:image": {}, "f:args": {}})
        );
        assert_eq!(encoded["f:metadata"], json!({"f:labels": {"f:a": {}}}));
        assert_eq!(from_fields_v1(&encoded), set);
        for p in &set {
            assert!(fields_v1_contains(&encoded, p), "{p:?}");
        }
        let f = |n: &str| Pe::F(n.into());
        for absent in [
            vec![f("spec")],
            vec![f("spec"), f("template")],
            vec![f("metadata"), f("labels"), f("b")],
            vec![f("status")],
        ] {
            assert!(!fields_v1_contains(&encoded, &absent), "{absent:?}");
        }
        let mut o = obj.clone();
        let item = vec![
            Pe::F("spec".into()),
            Pe::F("template".into()),
            Pe::F("spec".into()),
            Pe::F("containers".into()),
            Pe::K("{\"name\":\"c\"}".into()),
        ];
        assert_eq!(
            get_path(&o, &item).map(|c| c["image"].clone()),
            Some(json!("i"))
        );
        remove_path(&mut o, &item);
        assert_eq!(o["spec"]["template"]["spec"]["containers"], json!([]));
    }
}
