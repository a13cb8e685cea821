//! The Deployment controller, kwok-style: one Pod per replica straight from the template
//! (no ReplicaSet layer), rolling or Recreate rollouts, and the Deployment's status.

use std::sync::Arc;

use serde_json::{Value, json};

use super::{
    Kubelet, condition, delete_pods, gr, is_ready, is_running, opts, owned_pods, pods, rt_of,
    template_hash,
};
use crate::error::ApiResult;
use crate::fields::Scope;
use crate::ops::now;
use crate::store::{ObjKey, meta_str};

impl Kubelet {
    /// The Deployment controller for one Deployment: Pods to the template and the replica
    /// count, then the status. Decisions are made from a snapshot and the writes go through
    /// the store's optimistic paths, so HTTP requests are not held up meanwhile.
    pub(super) fn reconcile_deployment(&self, key: &ObjKey) -> ApiResult<()> {
        let store = &*self.store;
        let (dep, pod_rt, dep_rt, owned) = {
            let inner = store.lock();
            let Some(dep) = inner.get_key(key) else {
                return Ok(());
            };
            let pod_rt = rt_of(&inner, &gr("", "pods"))?;
            let dep_rt = rt_of(&inner, &key.gr)?;
            let owned = owned_pods(&inner, meta_str(&dep, "uid"), &pod_rt.gr());
            (dep, pod_rt, dep_rt, owned)
        };
        if !dep["metadata"]["deletionTimestamp"].is_null() {
            return Ok(());
        }
        let uid = meta_str(&dep, "uid").to_string();
        let snapshot_generation = dep["metadata"]["generation"].clone();
        let desired = dep["spec"]["replicas"].as_i64().unwrap_or(1).max(0) as usize;
        let hash = template_hash(&dep["spec"]["template"]);
        let active: Vec<&Arc<Value>> = owned.iter().filter(|p| is_running(p)).collect();
        let (current, old): (Vec<&Arc<Value>>, Vec<&Arc<Value>>) = active
            .iter()
            .partition(|p| p["metadata"]["labels"]["pod-template-hash"] == hash.as_str());
        let recreate = dep["spec"]["strategy"]["type"] == "Recreate";
        // Recreate waits until no Pod of an older template runs, terminating ones included
        // (with graceful deletion they may run for their grace period).
        let old_running = owned.iter().any(|p| {
            p["metadata"]["labels"]["pod-template-hash"] != hash.as_str()
                && !matches!(p["status"]["phase"].as_str(), Some("Failed" | "Succeeded"))
        });
        let paused = dep["spec"]["paused"] == json!(true);
        if !paused {
            if current.len() < desired && (!recreate || !old_running) {
                for _ in current.len()..desired {
                    let pod = pods::from_template(&dep, &hash);
                    store.create(
                        &pod_rt,
                        &key.namespace,
                        pod,
                        &opts("kube-controller-manager"),
                        true,
                    )?;
                }
            }
            if current.len() > desired {
                let mut extra: Vec<&&Arc<Value>> = current.iter().collect();
                extra.sort_by_key(|p| {
                    (
                        is_ready(p),
                        std::cmp::Reverse(meta_str(p, "creationTimestamp").to_string()),
                    )
                });
                let extra = extra.into_iter().take(current.len() - desired);
                delete_pods(
                    &mut store.lock(),
                    &pod_rt,
                    &key.namespace,
                    extra.map(|p| meta_str(p, "name")),
                )?;
            }
            // Rolling: old pods go once the new ones are ready (maxUnavailable 0); Recreate: at once.
            let ready_current = current.iter().filter(|p| is_ready(p)).count();
            if recreate || ready_current >= desired {
                delete_pods(
                    &mut store.lock(),
                    &pod_rt,
                    &key.namespace,
                    old.iter().map(|p| meta_str(p, "name")),
                )?;
            }
        }
        let owned = owned_pods(&store.lock(), &uid, &pod_rt.gr());
        let live: Vec<&Arc<Value>> = owned.iter().filter(|p| is_running(p)).collect();
        let updated = live
            .iter()
            .filter(|p| p["metadata"]["labels"]["pod-template-hash"] == hash.as_str())
            .count();
        let ready = live.iter().filter(|p| is_ready(p)).count();
        let now = now();
        store.guaranteed_update(
            &dep_rt,
            &key.namespace,
            &key.name,
            Scope::Status,
            &opts("kube-controller-manager"),
            true,
            |dep| {
                // Another Deployment by the name, or a newer spec than the counts were made
                // for: its own event reconciles it again (a status must not claim a
                // generation its counts do not describe).
                if meta_str(dep, "uid") != uid
                    || dep["metadata"]["generation"] != snapshot_generation
                {
                    return Ok(None);
                }
                let prev = &dep["status"]["conditions"];
                let available = ready >= desired;
                let complete = updated == desired && live.len() == desired && available;
                let mut status = json!({
                    "observedGeneration": dep["metadata"]["generation"],
                    "replicas": live.len(),
                    "updatedReplicas": updated,
                    "readyReplicas": ready,
                    "availableReplicas": ready,
                    "conditions": [
                        if available {
                            condition("Available", true, "MinimumReplicasAvailable", "Deployment has minimum availability.", prev, &now)
                        } else {
                            condition("Available", false, "MinimumReplicasUnavailable", "Deployment does not have minimum availability.", prev, &now)
                        },
                        if complete {
                            condition("Progressing", true, "NewReplicaSetAvailable", &format!("ReplicaSet \"{}-{hash}\" has successfully progressed.", key.name), prev, &now)
                        } else {
                            condition("Progressing", true, "ReplicaSetUpdated", &format!("ReplicaSet \"{}-{hash}\" is progressing.", key.name), prev, &now)
                        },
                    ],
                });
                if live.len() > ready {
                    status["unavailableReplicas"] = json!(live.len() - ready);
                }
                // The apiserver omits zero counters.
                if let Some(m) = status.as_object_mut() {
                    m.retain(|_, v| v != &json!(0));
                }
                if status == dep["status"] {
                    return Ok(None);
                }
                Ok(Some(json!({ "status": status })))
            },
        )?;
        Ok(())
    }
}
