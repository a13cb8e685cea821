//! Endpoints and EndpointSlices follow the Pods a Service selects (ready ones as addresses,
//! others as not-ready).

use std::collections::BTreeSet;

use serde_json::{Value, json};

use super::index::Index;
use super::{gr, is_ready, opts, rt_of, template_hash};
use crate::fields::Scope;
use crate::ops::{DeleteOpts, WriteOpts};
use crate::selector::LabelSelector;
use crate::store::{Inner, ObjKey, meta_str};

/// Queue every Service in the pod's namespace whose selector matches it.
pub fn services_selecting(inner: &Inner, index: &Index, pod: &Value, out: &mut BTreeSet<ObjKey>) {
    let ns = meta_str(pod, "namespace");
    let svc_gr = gr("", "services");
    let labels = &pod["metadata"]["labels"];
    for name in index.services_for(ns, labels) {
        let Some(svc) = inner.get(&svc_gr, ns, &name) else {
            continue;
        };
        let Some(sel) = svc["spec"]["selector"].as_object() else {
            continue;
        };
        if !sel.is_empty() && sel.iter().all(|(k, v)| labels.get(k) == Some(v)) {
            out.insert(ObjKey {
                gr: svc_gr.clone(),
                namespace: ns.to_string(),
                name,
            });
        }
    }
}

fn target_port(port: &Value, pod: &Value) -> Option<i64> {
    match &port["targetPort"] {
        Value::Number(n) => n.as_i64(),
        Value::String(named) => pod["spec"]["containers"]
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|c| c["ports"].as_array().cloned().unwrap_or_default())
            .find(|p| p["name"] == named.as_str())
            .and_then(|p| p["containerPort"].as_i64()),
        _ => port["port"].as_i64(),
    }
}

fn upsert(
    inner: &mut Inner,
    g: &str,
    res: &str,
    ns: &str,
    name: &str,
    desired: Value,
    o: &WriteOpts,
) {
    let Ok(rt) = rt_of(inner, &gr(g, res)) else {
        return;
    };
    let r = match inner.get(&rt.gr(), ns, name) {
        // Most Pod changes leave a Service's endpoints as they were: no write.
        Some(old)
            if ["subsets", "endpoints", "ports", "addressType"]
                .iter()
                .all(|k| old.get(*k) == desired.get(*k))
                && old["metadata"]["labels"] == desired["metadata"]["labels"] =>
        {
            Ok(())
        }
        Some(old) => {
            let mut new = (*old).clone();
            for k in ["subsets", "endpoints", "ports", "addressType"] {
                match desired.get(k) {
                    Some(v) => new[k] = v.clone(),
                    None => {
                        if let Some(m) = new.as_object_mut() {
                            m.remove(k);
                        }
                    }
                }
            }
            new["metadata"]["labels"] = desired["metadata"]["labels"].clone();
            inner
                .finish_update(&rt, old, new, Scope::All, o, true)
                .map(|_| ())
        }
        None => inner.create(&rt, ns, desired, o, true).map(|_| ()),
    };
    if let Err(e) = r {
        tracing::debug!(error = %e, "endpoints controller");
    }
}

/// Bring a Service's Endpoints and EndpointSlice in line with its Pods.
pub fn reconcile(inner: &mut Inner, index: &Index, key: &ObjKey) {
    let ns = key.namespace.clone();
    let h = template_hash(&json!(key.name));
    let slice_name = format!("{}-{}", key.name, &h[..h.len().min(5)]);
    let Some(svc) = inner
        .get_key(key)
        .filter(|s| s["metadata"]["deletionTimestamp"].is_null())
    else {
        // The Service is gone: its Endpoints go too (the slice goes by ownerReference).
        if let Ok(rt) = rt_of(inner, &gr("", "endpoints"))
            && inner.get(&rt.gr(), &ns, &key.name).is_some()
        {
            let _ = inner.delete(&rt, &ns, &key.name, &DeleteOpts::default());
        }
        return;
    };
    let Some(sel) = LabelSelector::from_map(&svc["spec"]["selector"]) else {
        return;
    };
    let pod_gr = gr("", "pods");
    let pods: Vec<std::sync::Arc<Value>> = index
        .pods_for(&ns, &svc["spec"]["selector"])
        .iter()
        .filter_map(|name| inner.get(&pod_gr, &ns, name))
        .filter(|p| {
            sel.matches(p)
                && p["status"]["podIP"].is_string()
                && p["metadata"]["deletionTimestamp"].is_null()
        })
        .collect();
    let svc_ports: Vec<Value> = svc["spec"]["ports"].as_array().cloned().unwrap_or_default();
    // publishNotReadyAddresses: every selected Pod is listed (and resolves) as ready.
    let publish = svc["spec"]["publishNotReadyAddresses"] == json!(true);
    let counts_ready = |p: &std::sync::Arc<Value>| publish || is_ready(p);
    let addr = |p: &std::sync::Arc<Value>| {
        let mut a = json!({"ip": p["status"]["podIP"], "nodeName": p["spec"]["nodeName"],
        "targetRef": {"kind": "Pod", "name": meta_str(p, "name"), "namespace": ns, "uid": meta_str(p, "uid")}});
        // A Pod's hostname is published by the Service its subdomain names (its DNS record).
        if let Some(h) = p["spec"]["hostname"].as_str().filter(|h| !h.is_empty())
            && p["spec"]["subdomain"] == key.name.as_str()
        {
            a["hostname"] = json!(h);
        }
        a
    };
    let ready: Vec<Value> = pods.iter().filter(|p| counts_ready(p)).map(addr).collect();
    let not_ready: Vec<Value> = pods.iter().filter(|p| !counts_ready(p)).map(addr).collect();
    let ports: Vec<Value> = svc_ports
        .iter()
        .map(|p| {
            let tp = pods
                .first()
                .and_then(|pod| target_port(p, pod))
                .or_else(|| p["port"].as_i64());
            let mut out = json!({"port": tp, "protocol": p["protocol"].as_str().unwrap_or("TCP")});
            if let Some(n) = p["name"].as_str() {
                out["name"] = json!(n);
            }
            out
        })
        .collect();
    let mut subset = json!({"ports": ports});
    if !ready.is_empty() {
        subset["addresses"] = json!(ready);
    }
    if !not_ready.is_empty() {
        subset["notReadyAddresses"] = json!(not_ready);
    }
    let mut ep = json!({"apiVersion": "v1", "kind": "Endpoints",
        "metadata": {"name": key.name, "labels": svc["metadata"]["labels"].clone()}});
    if !pods.is_empty() {
        ep["subsets"] = json!([subset]);
    }
    if !ep["metadata"]["labels"].is_object() {
        ep["metadata"]["labels"] = json!({});
    }
    let o = opts("endpoint-controller");
    upsert(inner, "", "endpoints", &ns, &key.name, ep, &o);
    let endpoints: Vec<Value> = pods
        .iter()
        .map(|p| {
            let r = counts_ready(p);
            json!({"addresses": [p["status"]["podIP"]], "nodeName": p["spec"]["nodeName"],
                   "conditions": {"ready": r, "serving": r, "terminating": false},
                   "targetRef": {"kind": "Pod", "name": meta_str(p, "name"), "namespace": ns, "uid": meta_str(p, "uid")}})
        })
        .collect();
    let slice = json!({"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
        "metadata": {"name": slice_name,
            "labels": {"kubernetes.io/service-name": key.name, "endpointslice.kubernetes.io/managed-by": "endpointslice-controller.k8s.io"},
            "ownerReferences": [{"apiVersion": "v1", "kind": "Service", "name": key.name, "uid": meta_str(&svc, "uid"), "controller": true, "blockOwnerDeletion": true}]},
        "addressType": "IPv4", "endpoints": endpoints, "ports": ports});
    let mut so = opts("endpointslice-controller");
    so.version = "v1".into();
    upsert(
        inner,
        "discovery.k8s.io",
        "endpointslices",
        &ns,
        &slice_name,
        slice,
        &so,
    );
}
