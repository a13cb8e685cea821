//! Discovery (`/version`, `/api`, `/apis`, group and group-version resource lists) and the
//! OpenAPI v3 documents kubectl consults (paths with their PATCH `fieldValidation` parameter,
//! no schemas) — legacy discovery only; aggregated discovery requests get the legacy shape,
//! which clients accept by content type.

use std::sync::Arc;

use axum::http::{HeaderMap, Method};
use axum::response::Response;
use serde_json::{Value, json};

use super::{Shared, json_response};
use crate::error::ApiError;
use crate::registry::{Registry, ResourceType};

const VERBS: [&str; 8] = [
    "create",
    "delete",
    "deletecollection",
    "get",
    "list",
    "patch",
    "update",
    "watch",
];

fn resource_list(reg: &Registry, group: &str, version: &str) -> Value {
    let mut resources = Vec::new();
    for t in reg.all().filter(|t| t.group == group && t.serves(version)) {
        let mut r = json!({
            "name": t.plural, "singularName": t.singular, "namespaced": t.namespaced,
            "kind": t.kind, "verbs": VERBS,
        });
        if !t.short_names.is_empty() {
            r["shortNames"] = json!(t.short_names);
        }
        if !t.categories.is_empty() {
            r["categories"] = json!(t.categories);
        }
        resources.push(r);
        if t.status_subresource {
            resources.push(json!({
                "name": format!("{}/status", t.plural), "singularName": "", "namespaced": t.namespaced,
                "kind": t.kind, "verbs": ["get", "patch", "update"],
            }));
        }
        if super::scale::has_scale(t) {
            resources.push(json!({
                "name": format!("{}/scale", t.plural), "singularName": "", "namespaced": t.namespaced,
                "group": "autoscaling", "version": "v1", "kind": "Scale", "verbs": ["get", "patch", "update"],
            }));
        }
        if t.group.is_empty() && t.kind == "Pod" {
            resources.push(json!({
                "name": "pods/log", "singularName": "", "namespaced": true,
                "kind": "Pod", "verbs": ["get"],
            }));
        }
    }
    let gv = if group.is_empty() {
        version.to_string()
    } else {
        format!("{group}/{version}")
    };
    json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv, "resources": resources})
}

fn api_group(group: &str, versions: &[String]) -> Value {
    let vs: Vec<Value> = versions
        .iter()
        .map(|v| json!({"groupVersion": format!("{group}/{v}"), "version": v}))
        .collect();
    json!({"kind": "APIGroup", "apiVersion": "v1", "name": group, "versions": vs, "preferredVersion": vs.first().cloned().unwrap_or(Value::Null)})
}

fn openapi_paths(t: &ResourceType, version: &str) -> Vec<(String, Value)> {
    let prefix = if t.group.is_empty() {
        format!("/api/{version}")
    } else {
        format!("/apis/{}/{version}", t.group)
    };
    let gvk = json!({"group": t.group, "version": version, "kind": t.kind});
    let params = json!([
        {"name": "dryRun", "in": "query", "schema": {"type": "string"}},
        {"name": "fieldManager", "in": "query", "schema": {"type": "string"}},
        {"name": "fieldValidation", "in": "query", "schema": {"type": "string"}},
        {"name": "force", "in": "query", "schema": {"type": "boolean"}},
    ]);
    let op = |action: &str| json!({"x-kubernetes-action": action, "x-kubernetes-group-version-kind": gvk, "parameters": params, "responses": {}});
    let coll = if t.namespaced {
        format!("{prefix}/namespaces/{{namespace}}/{}", t.plural)
    } else {
        format!("{prefix}/{}", t.plural)
    };
    let mut out = vec![
        (
            coll.clone(),
            json!({"get": op("list"), "post": op("post"), "delete": op("deletecollection")}),
        ),
        (
            format!("{coll}/{{name}}"),
            json!({"get": op("get"), "put": op("put"), "patch": op("patch"), "delete": op("delete")}),
        ),
    ];
    if t.status_subresource {
        out.push((
            format!("{coll}/{{name}}/status"),
            json!({"get": op("get"), "put": op("put"), "patch": op("patch")}),
        ));
    }
    out
}

fn openapi_root(reg: &Registry) -> Value {
    let mut paths = serde_json::Map::new();
    for (group, versions) in reg.groups() {
        for v in versions {
            let key = if group.is_empty() {
                format!("api/{v}")
            } else {
                format!("apis/{group}/{v}")
            };
            paths.insert(
                key.clone(),
                json!({"serverRelativeURL": format!("/openapi/v3/{key}")}),
            );
        }
    }
    json!({"paths": paths})
}

fn openapi_gv(reg: &Registry, group: &str, version: &str) -> Option<Value> {
    let mut paths = serde_json::Map::new();
    for t in reg.all().filter(|t| t.group == group && t.serves(version)) {
        for (p, v) in openapi_paths(t, version) {
            paths.insert(p, v);
        }
    }
    if paths.is_empty() {
        return None;
    }
    Some(json!({
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes (midplane kube-emulator)", "version": "v1.33.0"},
        "paths": paths,
        "components": {"schemas": {}},
    }))
}

/// Answer a discovery or OpenAPI path, or `None` when the path is something else.
pub(super) fn serve(
    shared: &Arc<Shared>,
    method: &Method,
    segs: &[&str],
    _headers: &HeaderMap,
) -> Option<Response> {
    if method != Method::GET {
        return None;
    }
    let reg = shared.store.lock().registry.clone();
    let body = match segs {
        ["version"] => json!({
            "major": "1", "minor": "33", "gitVersion": "v1.33.0-midplane-emulator",
            "gitCommit": "0000000000000000000000000000000000000000", "gitTreeState": "clean",
            "buildDate": "2026-01-01T00:00:00Z", "goVersion": "n/a", "compiler": "rustc",
            "platform": "linux/amd64",
        }),
        ["healthz" | "livez" | "readyz"] => {
            let mut r = Response::new(axum::body::Body::from("ok"));
            r.headers_mut().insert(
                axum::http::header::CONTENT_TYPE,
                axum::http::HeaderValue::from_static("text/plain"),
            );
            return Some(r);
        }
        ["api"] => json!({"kind": "APIVersions", "versions": ["v1"],
            "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": ""}]}),
        ["api", "v1"] => resource_list(&reg, "", "v1"),
        ["apis"] => {
            let groups: Vec<Value> = reg
                .groups()
                .into_iter()
                .filter(|(g, _)| !g.is_empty())
                .map(|(g, vs)| api_group(&g, &vs))
                .collect();
            json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})
        }
        ["apis", g] => match reg.groups().get(*g) {
            Some(vs) => api_group(g, vs),
            None => return Some(not_found(segs)),
        },
        ["apis", g, v] => {
            if !reg
                .groups()
                .get(*g)
                .is_some_and(|vs| vs.iter().any(|x| x == v))
            {
                return Some(not_found(segs));
            }
            resource_list(&reg, g, v)
        }
        ["openapi", "v2"] => {
            // kubectl falls back to its compiled-in schemas when v2 is absent; saying so plainly.
            return Some(super::error_response(&ApiError::not_implemented(
                "OpenAPI v2 (/openapi/v2)",
            )));
        }
        ["openapi", "v3"] => openapi_root(&reg),
        ["openapi", "v3", "api", v] => openapi_gv(&reg, "", v)?,
        ["openapi", "v3", "apis", g, v] => openapi_gv(&reg, g, v)?,
        _ => return None,
    };
    Some(json_response(200, &body))
}

fn not_found(segs: &[&str]) -> Response {
    super::error_response(&ApiError::path_not_found(&format!("/{}", segs.join("/"))))
}
