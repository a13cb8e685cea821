//! Pod lifecycle (schedule → ContainerCreating → Running/Ready after the delay), injected
//! faults, Pods from a Deployment template, and PVC binding.

use serde_json::{Value, json};

use super::{Fault, Kubelet, condition, opts};
use crate::fields::Scope;
use crate::ops::now;
use crate::registry::ResourceType;
use crate::store::{ObjKey, Store, meta_str};

pub const NODE: &str = "midplane-node";

fn container_names(pod: &Value) -> Vec<(String, String)> {
    pod["spec"]["containers"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|c| {
            (
                c["name"].as_str().unwrap_or_default().to_string(),
                c["image"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

fn restarts(pod: &Value, name: &str) -> i64 {
    pod["status"]["containerStatuses"]
        .as_array()
        .and_then(|a| a.iter().find(|s| s["name"] == name))
        .and_then(|s| s["restartCount"].as_i64())
        .unwrap_or(0)
}

fn conditions(pod: &Value, ready: bool, now: &str) -> Value {
    let prev = &pod["status"]["conditions"];
    let mut out = Vec::new();
    for (ty, ok) in [
        ("PodScheduled", true),
        ("Initialized", true),
        ("ContainersReady", ready),
        ("Ready", ready),
    ] {
        let mut c = condition(ty, ok, "", "", prev, now);
        if let Some(m) = c.as_object_mut() {
            m.remove("lastUpdateTime");
            m.remove("message");
            if ok {
                m.remove("reason");
            } else {
                m.insert("reason".into(), json!("ContainersNotReady"));
            }
        }
        out.push(c);
    }
    Value::Array(out)
}

/// A pod's status for a given container state (`running`, `waiting`, `terminated`).
fn status_with(
    pod: &Value,
    phase: &str,
    ready: bool,
    state: &dyn Fn(&str) -> Value,
    restart_bump: bool,
    now: &str,
) -> Value {
    let statuses: Vec<Value> = container_names(pod)
        .into_iter()
        .map(|(name, image)| {
            let rc = restarts(pod, &name) + i64::from(restart_bump);
            let mut s = json!({
                "name": name, "image": image, "imageID": format!("docker.io/library/{image}@sha256:emulated"),
                "containerID": format!("containerd://{}", meta_str(pod, "uid")),
                "ready": ready, "started": phase == "Running", "restartCount": rc, "state": state(&name),
            });
            if restart_bump {
                s["lastState"] = json!({"terminated": {"exitCode": 1, "reason": "Error", "finishedAt": now}});
            }
            s
        })
        .collect();
    let mut st = pod["status"].clone();
    if !st.is_object() {
        st = json!({});
    }
    st["phase"] = json!(phase);
    st["conditions"] = conditions(pod, ready, now);
    st["containerStatuses"] = Value::Array(statuses);
    st
}

/// Whether a pod change can move its Deployment's status or its Service endpoints.
pub fn relevant_change(ev: &crate::store::WatchEvent) -> bool {
    let Some(old) = &ev.old else { return true };
    let new = &ev.object;
    ev.etype == crate::store::EventType::Deleted
        || old["metadata"]["labels"] != new["metadata"]["labels"]
        || old["metadata"]["deletionTimestamp"] != new["metadata"]["deletionTimestamp"]
        || old["status"]["phase"] != new["status"]["phase"]
        || old["status"]["podIP"] != new["status"]["podIP"]
        || super::is_ready(old) != super::is_ready(new)
}

/// The status an injected fault leads to.
pub fn fault_status(pod: &Value, fault: Fault, now: &str) -> Value {
    match fault {
        Fault::Fail => status_with(
            pod,
            "Failed",
            false,
            &|_| json!({"terminated": {"exitCode": 1, "reason": "Error", "finishedAt": now}}),
            false,
            now,
        ),
        Fault::Crash => status_with(
            pod,
            "Running",
            false,
            &|_| json!({"waiting": {"reason": "CrashLoopBackOff", "message": "back-off restarting failed container"}}),
            true,
            now,
        ),
        Fault::NotReady => status_with(
            pod,
            "Running",
            false,
            &|_| json!({"running": {"startedAt": now}}),
            false,
            now,
        ),
        Fault::Ready | Fault::Delete => status_with(
            pod,
            "Running",
            true,
            &|_| json!({"running": {"startedAt": now}}),
            false,
            now,
        ),
    }
}

/// A new pod: bind it to the node and start creating its containers.
pub fn schedule(k: &Kubelet, store: &Store, rt: &ResourceType, key: &ObjKey) {
    let now = now();
    // Binding and the kubelet's first status land in one write (Scope::All is internal only).
    let mut binds = false;
    let mut allocated: Option<String> = None;
    let bound = store.guaranteed_update(
        rt,
        &key.namespace,
        &key.name,
        Scope::All,
        &opts("kubelet"),
        true,
        |pod| {
            binds =
                pod["spec"]["nodeName"].is_null() && pod["metadata"]["deletionTimestamp"].is_null();
            if !binds {
                return Ok(None);
            }
            let mut bound = pod.clone();
            bound["spec"]["nodeName"] = json!(NODE);
            let mut st = status_with(
                &bound,
                "Pending",
                false,
                &|_| json!({"waiting": {"reason": "ContainerCreating"}}),
                false,
                &now,
            );
            // Process pods: one address per Pod uid (a retried bind gets the same one).
            let Some(ip) = k.next_ip(meta_str(pod, "uid")) else {
                return Err(crate::error::ApiError::forbidden(
                    "no free Pod address left in the emulator's loopback block",
                ));
            };
            allocated = Some(meta_str(pod, "uid").to_string());
            let host = if k.process.is_some() {
                "127.0.0.1"
            } else {
                "10.0.0.1"
            };
            st["hostIP"] = json!(host);
            st["hostIPs"] = json!([{"ip": host}]);
            st["podIP"] = json!(ip);
            st["podIPs"] = json!([{"ip": st["podIP"]}]);
            st["startTime"] = json!(now);
            st["qosClass"] = json!("BestEffort");
            bound["status"] = st;
            Ok(Some(bound))
        },
    );
    let committed = matches!(bound, Ok(Some(_))) && binds;
    if !committed && let (Some(uid), Some(rt)) = (allocated, &k.process) {
        rt.release_ip(&uid);
    }
    // Process pods start when the node sees the binding; simulated ones after the delay.
    if committed && k.process.is_none() {
        k.later(key.clone());
    }
}

/// The readiness timer fired: waiting containers start and turn ready.
pub fn start(store: &Store, rt: &ResourceType, key: &ObjKey) {
    let now = now();
    let started = store.guaranteed_update(
        rt,
        &key.namespace,
        &key.name,
        Scope::Status,
        &opts("kubelet"),
        true,
        |pod| {
            let waiting = pod["status"]["containerStatuses"]
                .as_array()
                .is_some_and(|a| a.iter().any(|s| s["state"]["waiting"].is_object()));
            if !waiting
                || pod["status"]["phase"] == "Failed"
                || !pod["metadata"]["deletionTimestamp"].is_null()
            {
                return Ok(None);
            }
            Ok(Some(json!({"status": status_with(
                pod,
                "Running",
                true,
                &|_| json!({"running": {"startedAt": now}}),
                false,
                &now,
            )})))
        },
    );
    if let Err(e) = started {
        tracing::debug!(error = %e, "kubelet start");
    }
}

/// The Pod a Deployment's template describes, named `<deployment>-<hash>-<random>`.
pub fn from_template(dep: &Value, hash: &str) -> Value {
    let t = &dep["spec"]["template"];
    let mut labels = t["metadata"]["labels"].clone();
    if !labels.is_object() {
        labels = json!({});
    }
    labels["pod-template-hash"] = json!(hash);
    let mut meta = json!({
        "generateName": format!("{}-{hash}-", meta_str(dep, "name")),
        "labels": labels,
        "ownerReferences": [{
            "apiVersion": "apps/v1", "kind": "Deployment", "name": meta_str(dep, "name"),
            "uid": meta_str(dep, "uid"), "controller": true, "blockOwnerDeletion": true,
        }],
    });
    if t["metadata"]["annotations"].is_object() {
        meta["annotations"] = t["metadata"]["annotations"].clone();
    }
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": t["spec"].clone()})
}

/// A pending claim binds at once to an emulated volume of the requested size.
pub fn bind_pvc(store: &Store, rt: &ResourceType, key: &ObjKey) {
    // Bind and report Bound in one write, as the PV controller's two updates would end up.
    let bound = store.guaranteed_update(
        rt,
        &key.namespace,
        &key.name,
        Scope::All,
        &opts("kube-controller-manager"),
        true,
        |pvc| {
            if pvc["status"]["phase"] == "Bound" || !pvc["metadata"]["deletionTimestamp"].is_null()
            {
                return Ok(None);
            }
            let mut new = pvc.clone();
            new["spec"]["volumeName"] = json!(format!("pvc-{}", meta_str(pvc, "uid")));
            new["metadata"]["annotations"]["pv.kubernetes.io/bind-completed"] = json!("yes");
            new["status"] = json!({
                "phase": "Bound",
                "accessModes": pvc["spec"]["accessModes"],
                "capacity": {"storage": pvc["spec"]["resources"]["requests"]["storage"]},
            });
            Ok(Some(new))
        },
    );
    if let Err(e) = bound {
        tracing::debug!(error = %e, "pvc bind");
    }
}
