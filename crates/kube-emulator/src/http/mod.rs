//! The HTTP front: path parsing, content negotiation and the verb handlers. Everything
//! unknown is a proper `Status` 404, everything unsupported a loud 501.

mod admin;
mod discovery;
mod logs;
mod options;
mod protobuf;
mod scale;
mod table;
mod watch;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::response::Response;
use serde_json::{Value, json};

use crate::access;
use crate::error::{ApiError, ApiResult};
use crate::fields::Scope;
use crate::kubelet::Kubelet;
use crate::ops::{DeleteOpts, DeleteOutcome, ListOpts, PatchKind, WriteOpts, present, present_cow};
use crate::registry::ResourceType;
use crate::store::Store;
pub(crate) use options::decode_body;
use options::{decode_object, delete_opts, is_true, list_opts, write_opts};

/// What every request handler shares.
pub struct Shared {
    pub store: Arc<Store>,
    pub kubelet: Arc<Kubelet>,
    pub bookmark_interval: Duration,
    pub shutdown: tokio::sync::watch::Receiver<bool>,
}

pub fn router(shared: Arc<Shared>) -> axum::Router {
    axum::Router::new().fallback(handle).with_state(shared)
}

pub(crate) fn json_response(code: u16, body: &impl serde::Serialize) -> Response {
    let status = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    // Serializing a JSON value cannot fail (its keys are strings).
    let mut r = Response::new(Body::from(serde_json::to_vec(body).unwrap_or_default()));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/json"),
    );
    r
}

fn error_response(e: &ApiError) -> Response {
    json_response(e.code, &e.status())
}

fn hex(b: u8) -> Option<u8> {
    (b as char).to_digit(16).map(|d| d as u8)
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push(h * 16 + l);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

pub(crate) fn parse_query(q: Option<&str>) -> HashMap<String, String> {
    q.unwrap_or_default()
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| match p.split_once('=') {
            Some((k, v)) => (percent_decode(k), percent_decode(v)),
            None => (percent_decode(p), String::new()),
        })
        .collect()
}

/// A parsed resource path.
struct Target {
    rt: Arc<ResourceType>,
    version: String,
    namespace: Option<String>,
    name: Option<String>,
    sub: Option<String>,
}

fn parse_target(shared: &Shared, segs: &[&str]) -> ApiResult<Option<Target>> {
    let (group, version, rest) = match segs {
        ["api", v, rest @ ..] if !rest.is_empty() => ("", *v, rest),
        ["apis", g, v, rest @ ..] if !rest.is_empty() => (*g, *v, rest),
        _ => return Ok(None),
    };
    let (namespace, rest) = match rest {
        ["namespaces", ns, plural, tail @ ..] if !matches!(*plural, "status" | "finalize") => {
            (Some(ns.to_string()), {
                let mut v = vec![*plural];
                v.extend_from_slice(tail);
                v
            })
        }
        _ => (None, rest.to_vec()),
    };
    let plural = rest[0];
    let inner = shared.store.lock();
    let Some(rt) = inner.registry.lookup(group, version, plural) else {
        return Ok(None);
    };
    drop(inner);
    if namespace.is_some() && !rt.namespaced {
        return Ok(None);
    }
    let name = rest.get(1).map(std::string::ToString::to_string);
    let sub = rest.get(2).map(std::string::ToString::to_string);
    if rest.len() > 3 {
        return Ok(None);
    }
    if let Some(s) = &sub
        && !(s == "status" && rt.status_subresource)
        && !(s == "scale" && scale::has_scale(&rt))
        && !(s == "log" && rt.group.is_empty() && rt.kind == "Pod")
    {
        if s == "scale" || s == "log" || s == "exec" || s == "eviction" || s == "finalize" {
            return Err(ApiError::not_implemented(&format!("the {s} subresource")));
        }
        return Ok(None);
    }
    Ok(Some(Target {
        rt,
        version: version.to_string(),
        namespace,
        name,
        sub,
    }))
}

async fn handle(State(shared): State<Arc<Shared>>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let path = parts.uri.path().to_string();
    let query = parse_query(parts.uri.query());
    // Without credentials a request is the administrator's (see crate::access).
    let caller = match access::caller(&shared.store, &parts.headers) {
        Ok(c) => c,
        Err(e) => return error_response(&e),
    };
    let attributes = caller
        .as_ref()
        .map(|_| access::Attributes::of_request(&parts.method, &path, &query));
    if let (Some(who), Some(a)) = (&caller, &attributes)
        && let Err(e) = access::authorize(&shared.store, who, a)
    {
        shared.store.access.record(who, a, e.code);
        return error_response(&e);
    }
    let body = match axum::body::to_bytes(body, 64 * 1024 * 1024).await {
        Ok(b) => b,
        Err(e) => return error_response(&ApiError::bad_request(format!("reading body: {e}"))),
    };
    let response = match route(
        &shared,
        caller.as_ref(),
        &parts.method,
        &path,
        &query,
        &parts.headers,
        body,
    )
    .await
    {
        Ok(r) => r,
        Err(e) => error_response(&e),
    };
    if let (Some(who), Some(a)) = (&caller, &attributes) {
        shared
            .store
            .access
            .record(who, a, response.status().as_u16());
    }
    response
}

async fn route(
    shared: &Arc<Shared>,
    caller: Option<&access::Identity>,
    method: &Method,
    path: &str,
    query: &HashMap<String, String>,
    headers: &HeaderMap,
    body: Bytes,
) -> ApiResult<Response> {
    let segs: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    if let Some(r) = discovery::serve(shared, method, &segs, headers) {
        return Ok(r);
    }
    if segs.first() == Some(&"_emulator") {
        if caller.is_some() {
            return Err(ApiError::forbidden(
                "the emulator's own endpoints (/_emulator) are for its administrator (no credentials)",
            ));
        }
        return admin::serve(shared, method, &segs[1..]);
    }
    if let Some(r) =
        access::reviews::serve(&shared.store, caller, *method == Method::POST, &segs, &body)
    {
        return r.map(|(code, v)| json_response(code, &v));
    }
    let Some(t) = parse_target(shared, &segs)? else {
        return Err(ApiError::path_not_found(path));
    };
    let ns = t.namespace.clone().unwrap_or_default();
    if t.rt.namespaced && t.name.is_some() && t.namespace.is_none() {
        return Err(ApiError::path_not_found(path));
    }
    let accept = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let table = accept.contains("as=Table");
    let scope = if t.sub.as_deref() == Some("status") {
        Scope::Status
    } else {
        Scope::Main
    };
    let opts = write_opts(&t, query, headers);
    if let Some(name) = &t.name {
        match t.sub.as_deref() {
            Some("scale") => {
                return scale::serve(shared, &t.rt, method, &ns, name, headers, &body, &opts);
            }
            Some("log") if *method == Method::GET => {
                return logs::serve(shared, &ns, name, query).await;
            }
            Some("log") => {
                return Err(ApiError::method_not_allowed(format!(
                    "the server does not allow this method ({method}) on the requested resource"
                )));
            }
            _ => {}
        }
    }
    match (method.clone(), &t.name) {
        (Method::GET, None) if is_true(query.get("watch")) => Ok(watch::serve(
            shared,
            &t.rt,
            &t.version,
            t.namespace.clone(),
            query,
        )?),
        (Method::GET, None) => {
            let lo = list_opts(query);
            let page = shared
                .store
                .lock()
                .list(&t.rt, t.namespace.as_deref(), &lo)?;
            if table {
                let items: Vec<Value> = page
                    .items
                    .iter()
                    .map(|o| present(&t.rt, &t.version, o))
                    .collect();
                return Ok(json_response(
                    200,
                    &table::table(
                        &t.rt,
                        &items,
                        page.resource_version,
                        page.continue_token.as_deref(),
                    ),
                ));
            }
            let mut meta = json!({"resourceVersion": page.resource_version.to_string()});
            if let Some(c) = page.continue_token {
                meta["continue"] = json!(c);
            }
            if let Some(r) = page.remaining {
                meta["remainingItemCount"] = json!(r);
            }
            // Items are served as stored where that is already their shape: a
            // LIST of thousands of objects copies none of them.
            let items: Vec<std::borrow::Cow<'_, Value>> = page
                .items
                .iter()
                .map(|o| present_cow(&t.rt, &t.version, o))
                .collect();
            Ok(json_response(
                200,
                &ListBody {
                    kind: format!("{}List", t.rt.kind),
                    api_version: t.rt.api_version(&t.version),
                    metadata: meta,
                    items,
                },
            ))
        }
        (Method::GET, Some(name)) => {
            let obj = shared
                .store
                .lock()
                .get(&t.rt.gr(), &ns, name)
                .ok_or_else(|| ApiError::not_found(&t.rt.group, &t.rt.plural, name))?;
            let obj = present_cow(&t.rt, &t.version, &obj);
            if table {
                let rv = obj["metadata"]["resourceVersion"]
                    .as_str()
                    .unwrap_or_default()
                    .parse()
                    .unwrap_or(0);
                return Ok(json_response(
                    200,
                    &table::table(&t.rt, &[obj.into_owned()], rv, None),
                ));
            }
            Ok(json_response(200, &obj))
        }
        (Method::POST, None) => {
            let obj = decode_object(headers, &body)?;
            let created = shared.store.create(&t.rt, &ns, obj, &opts, true)?;
            Ok(json_response(
                201,
                &present_cow(&t.rt, &t.version, &created),
            ))
        }
        (Method::PUT, Some(name)) => {
            let obj = decode_object(headers, &body)?;
            let updated = shared.store.update(&t.rt, &ns, name, obj, scope, &opts)?;
            Ok(json_response(
                200,
                &present_cow(&t.rt, &t.version, &updated),
            ))
        }
        (Method::PATCH, Some(name)) => {
            let ct = headers
                .get(header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default();
            let kind = match ct.split(';').next().unwrap_or_default().trim() {
                "application/merge-patch+json" => PatchKind::Merge,
                "application/json-patch+json" => PatchKind::Json,
                "application/strategic-merge-patch+json" => PatchKind::Strategic,
                "application/apply-patch+yaml" => PatchKind::Apply,
                other => {
                    return Err(ApiError::unsupported_media(format!(
                        "the body of the request was in an unknown format ({other}) - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml, application/strategic-merge-patch+json"
                    )));
                }
            };
            if kind == PatchKind::Apply && query.get("fieldManager").is_none_or(String::is_empty) {
                return Err(ApiError::bad_request(
                    "fieldManager is required for apply requests",
                ));
            }
            if kind != PatchKind::Apply && query.contains_key("force") {
                return Err(ApiError::bad_request(
                    "force may not be specified for non-apply patch",
                ));
            }
            let body = decode_body(&body)?;
            let updated = shared
                .store
                .patch(&t.rt, &ns, name, kind, &body, scope, &opts)?;
            Ok(json_response(
                200,
                &present_cow(&t.rt, &t.version, &updated),
            ))
        }
        (Method::DELETE, Some(name)) => {
            let d = delete_opts(query, &body)?;
            match shared.store.lock().delete(&t.rt, &ns, name, &d)? {
                DeleteOutcome::Pending(obj) => {
                    Ok(json_response(200, &present_cow(&t.rt, &t.version, &obj)))
                }
                DeleteOutcome::Gone(obj) => Ok(json_response(
                    200,
                    &json!({
                        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success",
                        "details": {"name": name, "group": t.rt.group, "kind": t.rt.plural,
                                    "uid": obj["metadata"]["uid"]},
                    }),
                )),
            }
        }
        (Method::DELETE, None) => {
            let d = delete_opts(query, &body)?;
            let lo = list_opts(query);
            let mut inner = shared.store.lock();
            let page = inner.list(
                &t.rt,
                t.namespace.as_deref(),
                &ListOpts {
                    limit: None,
                    continue_token: None,
                    ..lo
                },
            )?;
            let mut items = Vec::new();
            for obj in page.items {
                let (ons, oname) = (
                    crate::store::meta_str(&obj, "namespace").to_string(),
                    crate::store::meta_str(&obj, "name").to_string(),
                );
                match inner.delete(&t.rt, &ons, &oname, &d)? {
                    DeleteOutcome::Gone(o) | DeleteOutcome::Pending(o) => {
                        items.push(present(&t.rt, &t.version, &o));
                    }
                }
            }
            let rv = inner.rv;
            Ok(json_response(
                200,
                &json!({
                    "kind": format!("{}List", t.rt.kind), "apiVersion": t.rt.api_version(&t.version),
                    "metadata": {"resourceVersion": rv.to_string()}, "items": items,
                }),
            ))
        }
        (m, _) => Err(ApiError::method_not_allowed(format!(
            "the server does not allow this method ({m}) on the requested resource"
        ))),
    }
}

/// A LIST response; items borrow the stored objects.
#[derive(serde::Serialize)]
struct ListBody<'a> {
    kind: String,
    #[serde(rename = "apiVersion")]
    api_version: String,
    metadata: Value,
    items: Vec<std::borrow::Cow<'a, Value>>,
}
