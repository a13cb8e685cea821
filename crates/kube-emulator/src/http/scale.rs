//! The `/scale` subresource of apps/v1 Deployments (`kubectl scale`): an `autoscaling/v1`
//! Scale view of `spec.replicas` and `status.replicas`; GET, PUT and the merge, JSON and
//! strategic-merge PATCHes kubectl sends change only `spec.replicas`.

use axum::body::Bytes;
use axum::http::{HeaderMap, Method, header};
use axum::response::Response;
use serde_json::{Value, json};

use super::{Shared, decode_body, json_response};
use crate::error::{ApiError, ApiResult};
use crate::fields::Scope;
use crate::ops::WriteOpts;
use crate::patch::{json_patch, merge_patch};
use crate::registry::ResourceType;
use crate::store::meta_str;

/// Whether `rt` has a scale subresource here.
pub fn has_scale(rt: &ResourceType) -> bool {
    rt.group == "apps" && rt.kind == "Deployment"
}

/// `spec.selector` in the label-selector string form Scale's `status.selector` carries.
fn selector_string(sel: &Value) -> String {
    let mut parts: Vec<String> = sel["matchLabels"]
        .as_object()
        .into_iter()
        .flatten()
        .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
        .collect();
    for e in sel["matchExpressions"].as_array().into_iter().flatten() {
        let key = e["key"].as_str().unwrap_or_default();
        let values: Vec<&str> = e["values"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        parts.push(match e["operator"].as_str().unwrap_or_default() {
            "In" => format!("{key} in ({})", values.join(",")),
            "NotIn" => format!("{key} notin ({})", values.join(",")),
            "Exists" => key.to_string(),
            _ => format!("!{key}"),
        });
    }
    parts.join(",")
}

/// The Scale view of a Deployment.
pub fn scale_of(dep: &Value) -> Value {
    let m = &dep["metadata"];
    json!({
        "kind": "Scale", "apiVersion": "autoscaling/v1",
        "metadata": {"name": m["name"], "namespace": m["namespace"], "uid": m["uid"],
                     "resourceVersion": m["resourceVersion"], "creationTimestamp": m["creationTimestamp"]},
        "spec": {"replicas": dep["spec"]["replicas"].as_i64().unwrap_or(1)},
        "status": {"replicas": dep["status"]["replicas"].as_i64().unwrap_or(0),
                   "selector": selector_string(&dep["spec"]["selector"])},
    })
}

/// What a PUT or PATCH makes of the current Scale.
type Change = Box<dyn Fn(&Value) -> ApiResult<Value>>;

/// GET, PUT or PATCH `<deployment>/scale`.
#[allow(clippy::too_many_arguments)]
pub fn serve(
    shared: &Shared,
    rt: &ResourceType,
    method: &Method,
    ns: &str,
    name: &str,
    headers: &HeaderMap,
    body: &Bytes,
    opts: &WriteOpts,
) -> ApiResult<Response> {
    let not_found = || ApiError::not_found(&rt.group, &rt.plural, name);
    if method == Method::GET {
        let dep = shared
            .store
            .lock()
            .get(&rt.gr(), ns, name)
            .ok_or_else(not_found)?;
        return Ok(json_response(200, &scale_of(&dep)));
    }
    let change: Change = match *method {
        Method::PUT => {
            let scale = decode_body(body)?;
            Box::new(move |_current: &Value| Ok(scale.clone()))
        }
        Method::PATCH => {
            let ct = headers
                .get(header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default();
            let patch = decode_body(body)?;
            match ct.split(';').next().unwrap_or_default().trim() {
                // A Scale has no lists: a strategic merge patch is a merge patch.
                "application/merge-patch+json" | "application/strategic-merge-patch+json" => {
                    Box::new(move |current: &Value| {
                        let mut s = current.clone();
                        merge_patch(&mut s, &patch);
                        Ok(s)
                    })
                }
                "application/json-patch+json" => Box::new(move |current: &Value| {
                    let mut s = current.clone();
                    json_patch(&mut s, &patch)?;
                    Ok(s)
                }),
                other => {
                    return Err(ApiError::unsupported_media(format!(
                        "the emulator's /scale takes merge, strategic merge and JSON patches, not {other}"
                    )));
                }
            }
        }
        ref m => {
            return Err(ApiError::method_not_allowed(format!(
                "the server does not allow this method ({m}) on the requested resource"
            )));
        }
    };
    let updated = shared
        .store
        .guaranteed_update(rt, ns, name, Scope::Main, opts, true, |dep| {
            let current = scale_of(dep);
            let wanted = change(&current)?;
            let rv = meta_str(&wanted, "resourceVersion");
            if !rv.is_empty() && rv != meta_str(dep, "resourceVersion") {
                return Err(ApiError::stale("autoscaling", "scale", name));
            }
            let replicas = &wanted["spec"]["replicas"];
            if !replicas.is_i64() {
                return Err(ApiError::invalid_field(
                    "autoscaling",
                    "Scale",
                    name,
                    "spec.replicas",
                    &format!("Invalid value: {replicas}: must be an integer"),
                ));
            }
            if dep["spec"]["replicas"] == *replicas {
                return Ok(None);
            }
            let mut new = dep.clone();
            new["spec"]["replicas"] = replicas.clone();
            Ok(Some(new))
        })?;
    let dep = updated.ok_or_else(not_found)?;
    Ok(json_response(200, &scale_of(&dep)))
}
