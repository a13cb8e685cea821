//! Label indexes that keep the endpoints controller linear: Pods by label and Services by
//! selector entry, per namespace, maintained from the event stream.

use std::collections::{BTreeSet, HashMap};

use serde_json::Value;

use crate::store::{EventType, WatchEvent, meta_str};

type Key = (String, String, String);

#[derive(Default)]
pub struct Index {
    pods: HashMap<Key, BTreeSet<String>>,
    services: HashMap<Key, BTreeSet<String>>,
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
        let (field, idx): (fn(&Value) -> &Value, _) =
            match (ev.gr.group.as_str(), ev.gr.resource.as_str()) {
                ("", "pods") => (|o: &Value| &o["metadata"]["labels"], &mut self.pods),
                ("", "services") => (|o: &Value| &o["spec"]["selector"], &mut self.services),
                _ => return,
            };
        let ns = meta_str(&ev.object, "namespace");
        let name = meta_str(&ev.object, "name");
        let old = ev
            .old
            .as_deref()
            .map(|o| pairs(field(o)))
            .unwrap_or_default();
        let new = if ev.etype == EventType::Deleted {
            Vec::new()
        } else {
            pairs(field(&ev.object))
        };
        if old != new {
            update(idx, ns, name, &old, &new);
        }
    }

    /// Services in `ns` with a selector entry among the pod's labels (to be verified).
    pub fn services_for(&self, ns: &str, labels: &Value) -> BTreeSet<String> {
        let mut out = BTreeSet::new();
        for (k, v) in pairs(labels) {
            if let Some(s) = self.services.get(&(ns.to_string(), k, v)) {
                out.extend(s.iter().cloned());
            }
        }
        out
    }

    /// Pods in `ns` carrying the first entry of a selector (to be verified against all of it).
    pub fn pods_for(&self, ns: &str, selector: &Value) -> Vec<String> {
        let Some((k, v)) = pairs(selector).into_iter().next() else {
            return Vec::new();
        };
        self.pods
            .get(&(ns.to_string(), k, v))
            .map(|s| s.iter().cloned().collect())
            .unwrap_or_default()
    }
}
