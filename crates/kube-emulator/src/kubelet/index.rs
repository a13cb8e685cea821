//! Label indexes that keep the endpoints controller linear: Pods by label and Services by
//! selector entry, per namespace, maintained from the event stream.
//!
//! A Service is filed under one entry of its selector only — the one fewest Pods carry when
//! it is filed. A Pod can only be selected by a Service whose every entry it carries, the
//! filed one included, so looking a Pod's own labels up finds every candidate; and since
//! entries every Pod shares (`app.kubernetes.io/managed-by`) are never chosen, a Pod event
//! touches the few Services of its own group, not every Service in the namespace.

use std::collections::{BTreeSet, HashMap};

use serde_json::Value;

use crate::store::{EventType, WatchEvent, meta_str};

/// (namespace, label key, label value).
type Key = (String, String, String);

#[derive(Default)]
pub struct Index {
    pods: HashMap<Key, BTreeSet<String>>,
    services: HashMap<Key, BTreeSet<String>>,
    /// (namespace, Service) → the selector entry it is filed under.
    filed: HashMap<(String, String), Key>,
}

fn pairs(map: &Value) -> Vec<(String, String)> {
    map.as_object()
        .into_iter()
        .flatten()
        .filter_map(|(k, v)| v.as_str().map(|v| (k.clone(), v.to_string())))
        .collect()
}

fn update(
    idx: &mut HashMap<Key, BTreeSet<String>>,
    ns: &str,
    name: &str,
    old: &[(String, String)],
    new: &[(String, String)],
) {
    for (k, v) in old {
        let key = (ns.to_string(), k.clone(), v.clone());
        if let Some(set) = idx.get_mut(&key) {
            set.remove(name);
            if set.is_empty() {
                idx.remove(&key);
            }
        }
    }
    for (k, v) in new {
        idx.entry((ns.to_string(), k.clone(), v.clone()))
            .or_default()
            .insert(name.to_string());
    }
}

impl Index {
    /// Follow one committed change.
    pub fn observe(&mut self, ev: &WatchEvent) {
        let ns = meta_str(&ev.object, "namespace");
        let name = meta_str(&ev.object, "name");
        match (ev.gr.group.as_str(), ev.gr.resource.as_str()) {
            ("", "pods") => {
                let field = |o: &Value| pairs(&o["metadata"]["labels"]);
                let old = ev.old.as_deref().map(field).unwrap_or_default();
                let new = if ev.etype == EventType::Deleted {
                    Vec::new()
                } else {
                    field(&ev.object)
                };
                if old != new {
                    update(&mut self.pods, ns, name, &old, &new);
                }
            }
            ("", "services") => {
                let selector = if ev.etype == EventType::Deleted {
                    Vec::new()
                } else {
                    pairs(&ev.object["spec"]["selector"])
                };
                self.file_service(ns, name, &selector);
            }
            _ => {}
        }
    }

    fn file_service(&mut self, ns: &str, name: &str, selector: &[(String, String)]) {
        let id = (ns.to_string(), name.to_string());
        let rarest = selector
            .iter()
            .map(|(k, v)| (ns.to_string(), k.clone(), v.clone()))
            .min_by_key(|key| (self.pods.get(key).map_or(0, BTreeSet::len), key.clone()));
        if self.filed.get(&id) == rarest.as_ref() {
            return;
        }
        if let Some(old) = self.filed.remove(&id)
            && let Some(set) = self.services.get_mut(&old)
        {
            set.remove(name);
            if set.is_empty() {
                self.services.remove(&old);
            }
        }
        if let Some(key) = rarest {
            self.services
                .entry(key.clone())
                .or_default()
                .insert(name.to_string());
            self.filed.insert(id, key);
        }
    }

    /// Services in `ns` that may select a Pod with these labels (to be verified).
    pub fn services_for(&self, ns: &str, labels: &Value) -> BTreeSet<String> {
        let mut out = BTreeSet::new();
        for (k, v) in pairs(labels) {
            if let Some(s) = self.services.get(&(ns.to_string(), k, v)) {
                out.extend(s.iter().cloned());
            }
        }
        out
    }

    /// Pods in `ns` carrying the selector's rarest entry (to be verified against all of it).
    /// Only that one set is copied: entries every Pod shares can hold thousands of names.
    pub fn pods_for(&self, ns: &str, selector: &Value) -> Vec<String> {
        let mut rarest: Option<&BTreeSet<String>> = None;
        for (k, v) in pairs(selector) {
            match self.pods.get(&(ns.to_string(), k, v)) {
                // No Pod carries this entry: none can match the whole selector.
                None => return Vec::new(),
                Some(set) if rarest.is_none_or(|r| set.len() < r.len()) => rarest = Some(set),
                Some(_) => {}
            }
        }
        rarest
            .map(|s| s.iter().cloned().collect())
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::GroupResource;
    use crate::store::WatchEvent;
    use serde_json::json;
    use std::sync::Arc;

    fn ev(resource: &str, object: Value) -> WatchEvent {
        WatchEvent {
            gr: GroupResource {
                group: String::new(),
                resource: resource.into(),
            },
            etype: EventType::Added,
            object: Arc::new(object),
            old: None,
        }
    }

    fn pod(name: &str, group: &str) -> WatchEvent {
        ev(
            "pods",
            json!({"metadata": {"name": name, "namespace": "ns",
                "labels": {"managed-by": "midplane", "group": group}}}),
        )
    }

    fn svc(name: &str, selector: Value) -> WatchEvent {
        ev(
            "services",
            json!({"metadata": {"name": name, "namespace": "ns"}, "spec": {"selector": selector}}),
        )
    }

    #[test]
    fn a_pod_finds_only_its_own_groups_services() {
        let mut idx = Index::default();
        for g in 0..50 {
            idx.observe(&pod(&format!("p{g}"), &format!("g{g}")));
        }
        for g in 0..50 {
            idx.observe(&svc(
                &format!("s{g}"),
                json!({"managed-by": "midplane", "group": format!("g{g}")}),
            ));
        }
        // A Service selecting every pod still finds them all.
        idx.observe(&svc("all", json!({"managed-by": "midplane"})));
        let labels = json!({"managed-by": "midplane", "group": "g7"});
        let found: Vec<String> = idx.services_for("ns", &labels).into_iter().collect();
        assert_eq!(found, ["all", "s7"]);
        assert_eq!(
            idx.pods_for("ns", &json!({"managed-by": "midplane", "group": "g7"})),
            ["p7"]
        );
        // Deleting a Service unfiles it.
        let mut del = svc("s7", json!({"managed-by": "midplane", "group": "g7"}));
        del.etype = EventType::Deleted;
        idx.observe(&del);
        let found: Vec<String> = idx.services_for("ns", &labels).into_iter().collect();
        assert_eq!(found, ["all"]);
    }
}
