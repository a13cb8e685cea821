//! core/v1 Events the kubelet records about a Pod, aggregated like the kubelet's event
//! correlator: a repeat of the same reason and message bumps `count` and `lastTimestamp`.

use std::collections::HashMap;

use serde_json::{Value, json};

use crate::fields::Scope;
use crate::kubelet::{gr, opts, rt_of};
use crate::store::{Store, meta_str};

/// The Events one Pod worker has recorded, by (fieldPath, reason, message).
#[derive(Default)]
pub struct Recorder {
    seen: HashMap<(String, String, String), String>,
}

impl Recorder {
    /// Record an Event (`kind` is Normal or Warning) about `pod`, optionally one container.
    pub fn record(
        &mut self,
        store: &Store,
        pod: &Value,
        container: Option<&str>,
        kind: &str,
        reason: &str,
        message: &str,
    ) {
        let field_path = container
            .map(|c| format!("spec.containers{{{c}}}"))
            .unwrap_or_default();
        let key = (field_path.clone(), reason.to_string(), message.to_string());
        let ns = meta_str(pod, "namespace").to_string();
        let now = crate::ops::now();
        let Ok(rt) = rt_of(&store.lock(), &gr("", "events")) else {
            return;
        };
        if let Some(name) = self.seen.get(&key) {
            let bumped =
                store.guaranteed_update(&rt, &ns, name, Scope::All, &opts("kubelet"), true, |ev| {
                    let mut new = ev.clone();
                    new["count"] = json!(ev["count"].as_i64().unwrap_or(1) + 1);
                    new["lastTimestamp"] = json!(now);
                    Ok(Some(new))
                });
            if matches!(bumped, Ok(Some(_))) {
                return;
            }
        }
        let nanos = chrono::Utc::now().timestamp_nanos_opt().unwrap_or_default();
        let name = format!("{}.{nanos:x}", meta_str(pod, "name"));
        let mut involved = json!({
            "kind": "Pod", "apiVersion": "v1", "namespace": ns,
            "name": meta_str(pod, "name"), "uid": meta_str(pod, "uid"),
        });
        if !field_path.is_empty() {
            involved["fieldPath"] = json!(field_path);
        }
        let ev = json!({
            "apiVersion": "v1", "kind": "Event",
            "metadata": {"name": name, "namespace": ns},
            "involvedObject": involved,
            "reason": reason, "message": message, "type": kind,
            "source": {"component": "kubelet", "host": crate::kubelet::NODE},
            "reportingComponent": "kubelet", "reportingInstance": crate::kubelet::NODE,
            "firstTimestamp": now, "lastTimestamp": now, "count": 1,
        });
        match store.create(&rt, &ns, ev, &opts("kubelet"), true) {
            Ok(_) => {
                self.seen.insert(key, name);
            }
            Err(e) => tracing::debug!(error = %e, "kubelet event"),
        }
    }
}
