//! Which fields a write changed and which it removed, found by walking the old and the new
//! object side by side: equal subtrees are skipped without a copy, so a status write of a Pod
//! never looks at its spec.
//!
//! The result is what comparing the two whole field sets gives: `changed` holds every field
//! of the new object the old one lacks, or holds with another value (for leaves); `removed`
//! every field of the old object the new one lacks.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Value};

use super::{FieldPath, FieldSet, ListType, Pe, SERVER_META, Scope, item_key, list_type, walk};
use crate::registry::ResourceType;

pub struct Diff {
    pub changed: FieldSet,
    pub removed: FieldSet,
}

/// Fields `new` changed or removed relative to `old` (a create when `old` is `None`).
pub fn diff(rt: &ResourceType, old: Option<&Value>, new: &Value, scope: Scope) -> Diff {
    let mut d = Diff {
        changed: FieldSet::new(),
        removed: FieldSet::new(),
    };
    let empty = Map::new();
    let o = old.and_then(Value::as_object).unwrap_or(&empty);
    let n = new.as_object().unwrap_or(&empty);
    let mut w = Walker {
        rt,
        names: Vec::new(),
        path: Vec::new(),
    };
    for k in union(o, n) {
        if k == "apiVersion" || k == "kind" {
            continue;
        }
        match scope {
            Scope::Main if k == "status" => continue,
            Scope::Status if k != "status" => continue,
            _ => {}
        }
        let (ov, nv) = (present(o, k), present(n, k));
        w.path.push(Pe::F(k.to_string()));
        w.names.push(k);
        if k == "metadata" {
            let om = ov.and_then(Value::as_object).unwrap_or(&empty);
            let nm = nv.and_then(Value::as_object).unwrap_or(&empty);
            for mk in union(om, nm) {
                if SERVER_META.contains(&mk) {
                    continue;
                }
                w.path.push(Pe::F(mk.to_string()));
                w.names.push(mk);
                w.node(present(om, mk), present(nm, mk), &mut d);
                w.names.pop();
                w.path.pop();
            }
        } else {
            w.node(ov, nv, &mut d);
        }
        w.names.pop();
        w.path.pop();
    }
    d
}

/// Stands in for a list item that is not an object (it has no fields).
static EMPTY: std::sync::LazyLock<Map<String, Value>> = std::sync::LazyLock::new(Map::new);

/// A map's child, with null meaning absent (as field sets see it).
fn present<'a>(m: &'a Map<String, Value>, k: &str) -> Option<&'a Value> {
    m.get(k).filter(|v| !v.is_null())
}

fn union<'a>(a: &'a Map<String, Value>, b: &'a Map<String, Value>) -> BTreeSet<&'a str> {
    a.keys().chain(b.keys()).map(String::as_str).collect()
}

/// How a value contributes to a field set.
enum Shape<'a> {
    Object(&'a Map<String, Value>),
    Set(&'a [Value]),
    Keyed(&'a [Value], Vec<String>),
    /// The path itself is a leaf: a scalar, an empty object or list, an atomic list.
    Leaf,
}

struct Walker<'a> {
    rt: &'a ResourceType,
    names: Vec<&'a str>,
    path: FieldPath,
}

impl<'a> Walker<'a> {
    fn shape(&self, v: &'a Value) -> Shape<'a> {
        match v {
            Value::Object(m) if !m.is_empty() => Shape::Object(m),
            Value::Array(items) if !items.is_empty() => match list_type(self.rt, &self.names) {
                ListType::Atomic => Shape::Leaf,
                ListType::Set => Shape::Set(items),
                ListType::Map(keys) => Shape::Keyed(items, keys),
            },
            _ => Shape::Leaf,
        }
    }

    /// Every field of `v` (at the current path) into `out`.
    fn all(&mut self, v: &'a Value, out: &mut FieldSet) {
        walk(self.rt, v, &mut self.names, &mut self.path, out);
    }

    fn node(&mut self, old: Option<&'a Value>, new: Option<&'a Value>, d: &mut Diff) {
        let (o, n) = match (old, new) {
            (None, None) => return,
            (Some(o), None) => return self.all(o, &mut d.removed),
            (None, Some(n)) => return self.all(n, &mut d.changed),
            (Some(o), Some(n)) if o == n => return,
            (Some(o), Some(n)) => (o, n),
        };
        match (self.shape(o), self.shape(n)) {
            (Shape::Leaf, Shape::Leaf) => {
                d.changed.insert(self.path.clone());
            }
            (Shape::Object(om), Shape::Object(nm)) => self.fields(om, nm, d),
            (Shape::Set(oi), Shape::Set(ni)) => {
                let os: BTreeSet<String> = oi.iter().map(Value::to_string).collect();
                let ns: BTreeSet<String> = ni.iter().map(Value::to_string).collect();
                for (from, to, out) in [(&ns, &os, &mut d.changed), (&os, &ns, &mut d.removed)] {
                    for v in from.difference(to) {
                        self.path.push(Pe::V(v.clone()));
                        out.insert(self.path.clone());
                        self.path.pop();
                    }
                }
            }
            (Shape::Keyed(oi, keys), Shape::Keyed(ni, _)) => {
                let by_key = |items: &'a [Value]| -> BTreeMap<String, &'a Value> {
                    items.iter().map(|i| (item_key(i, &keys), i)).collect()
                };
                let (ok, nk) = (by_key(oi), by_key(ni));
                let empty: &'a Map<String, Value> = &EMPTY;
                for key in ok.keys().chain(nk.keys()).collect::<BTreeSet<_>>() {
                    let (oi, ni) = (ok.get(key).copied(), nk.get(key).copied());
                    if oi == ni {
                        continue;
                    }
                    self.path.push(Pe::K(key.clone()));
                    match (oi, ni) {
                        (Some(o), Some(n)) => self.fields(
                            o.as_object().unwrap_or(empty),
                            n.as_object().unwrap_or(empty),
                            d,
                        ),
                        // The item marker and all its fields come or go together.
                        (Some(i), None) => {
                            d.removed.insert(self.path.clone());
                            self.item_fields(i.as_object().unwrap_or(empty), &mut d.removed);
                        }
                        (None, Some(i)) => {
                            d.changed.insert(self.path.clone());
                            self.item_fields(i.as_object().unwrap_or(empty), &mut d.changed);
                        }
                        (None, None) => {}
                    }
                    self.path.pop();
                }
            }
            // The shape changed: nothing below is shared, the path itself is not a leaf on
            // both sides, so the old fields all go and the new ones all come.
            _ => {
                self.all(o, &mut d.removed);
                self.all(n, &mut d.changed);
            }
        }
    }

    fn fields(&mut self, om: &'a Map<String, Value>, nm: &'a Map<String, Value>, d: &mut Diff) {
        for k in union(om, nm) {
            self.path.push(Pe::F(k.to_string()));
            self.names.push(k);
            self.node(present(om, k), present(nm, k), d);
            self.names.pop();
            self.path.pop();
        }
    }

    fn item_fields(&mut self, item: &'a Map<String, Value>, out: &mut FieldSet) {
        for (k, child) in item {
            if child.is_null() {
                continue;
            }
            self.path.push(Pe::F(k.clone()));
            self.names.push(k);
            self.all(child, out);
            self.names.pop();
            self.path.pop();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fields::{field_set, get_path};
    use crate::registry::builtins;
    use serde_json::json;

    /// The definition: compare the two whole field sets.
    fn by_sets(rt: &ResourceType, old: Option<&Value>, new: &Value, scope: Scope) -> Diff {
        let old_set = old.map(|o| field_set(rt, o, scope)).unwrap_or_default();
        let new_set = field_set(rt, new, scope);
        let leaf = |p: &FieldPath| !matches!(p.last(), Some(Pe::K(_) | Pe::V(_)));
        Diff {
            changed: new_set
                .iter()
                .filter(|p| {
                    !old_set.contains(*p)
                        || (leaf(p) && old.and_then(|o| get_path(o, p)) != get_path(new, p))
                })
                .cloned()
                .collect(),
            removed: old_set.difference(&new_set).cloned().collect(),
        }
    }

    fn pod(labels: Value, containers: Value, status: Value) -> Value {
        json!({"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "p", "resourceVersion": "7", "labels": labels,
                "finalizers": ["a", "b"], "managedFields": [{"manager": "x"}]},
            "spec": {"nodeName": null, "containers": containers, "volumes": []},
            "status": status})
    }

    #[test]
    fn the_walk_finds_what_comparing_whole_field_sets_finds() {
        let rt = builtins()
            .into_iter()
            .find(|t| t.kind == "Pod")
            .expect("pod kind");
        let c = |name: &str, image: &str, ports: Value| json!({"name": name, "image": image, "args": ["--x"], "ports": ports});
        let base = pod(
            json!({"app": "a", "role": "primary"}),
            json!([
                c("redis", "r:7", json!([{"containerPort": 6379}])),
                c("agent", "a:1", json!([]))
            ]),
            json!({"phase": "Pending", "conditions": [{"type": "Ready", "status": "False"}]}),
        );
        let variants = [
            base.clone(),
            // A label changes, one goes, one comes; a finalizer goes.
            {
                let mut v = base.clone();
                v["metadata"]["labels"] = json!({"app": "b", "tier": "cache"});
                v["metadata"]["finalizers"] = json!(["a", "c"]);
                v
            },
            // A container's image and ports change, another container goes, one comes.
            pod(
                json!({"app": "a", "role": "primary"}),
                json!([
                    c("redis", "r:8", json!([{"containerPort": 6380}])),
                    c("exporter", "e:1", json!(null))
                ]),
                json!({"phase": "Pending", "conditions": [{"type": "Ready", "status": "False"}]}),
            ),
            // Status moves on; a null field, an empty object, a shape change.
            {
                let mut v = base.clone();
                v["status"] = json!({"phase": "Running", "podIP": "10.0.0.2", "hostIP": {},
                    "conditions": [{"type": "Ready", "status": "True"}, {"type": "Initialized", "status": "True"}]});
                v["spec"]["volumes"] = json!({"odd": "shape"});
                v["spec"]["nodeName"] = json!("node");
                v
            },
            json!({"metadata": {"name": "p"}}),
        ];
        for old in &variants {
            for new in &variants {
                for scope in [Scope::All, Scope::Main, Scope::Status] {
                    let want = by_sets(&rt, Some(old), new, scope);
                    let got = diff(&rt, Some(old), new, scope);
                    assert_eq!(
                        got.changed, want.changed,
                        "changed {old} -> {new} {scope:?}"
                    );
                    assert_eq!(
                        got.removed, want.removed,
                        "removed {old} -> {new} {scope:?}"
                    );
                }
            }
            let create = diff(&rt, None, old, Scope::All);
            assert_eq!(create.changed, by_sets(&rt, None, old, Scope::All).changed);
            assert!(create.removed.is_empty());
        }
    }
}
