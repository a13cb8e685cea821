//! The emulator's own endpoints under `/_emulator`: Pod fault hooks, health, statistics,
//! the audit of authenticated requests.

use std::sync::Arc;

use axum::http::Method;
use axum::response::Response;
use serde_json::{Value, json};

use super::{Shared, json_response};
use crate::error::{ApiError, ApiResult};
use crate::kubelet::Fault;

/// `POST /_emulator/pods/<ns>/<name>/<fail|crash|notready|ready|delete>`: the test hooks.
pub(super) fn serve(shared: &Arc<Shared>, method: &Method, segs: &[&str]) -> ApiResult<Response> {
    match (method, segs) {
        (&Method::POST, ["pods", ns, name, action]) => {
            let fault = match *action {
                "fail" => Fault::Fail,
                "crash" => Fault::Crash,
                "notready" => Fault::NotReady,
                "ready" => Fault::Ready,
                "delete" => Fault::Delete,
                other => {
                    return Err(ApiError::bad_request(format!(
                        "unknown pod action \"{other}\": use fail, crash, notready, ready or delete"
                    )));
                }
            };
            let pod = shared.kubelet.inject(ns, name, fault)?;
            Ok(json_response(200, &pod))
        }
        (&Method::GET, ["audit"]) => Ok(json_response(
            200,
            &json!({"items": shared.store.access.audit()}),
        )),
        (&Method::GET, ["healthz"]) => Ok(json_response(200, &json!({"status": "ok"}))),
        (&Method::GET, ["stats"]) => {
            let inner = shared.store.lock();
            let mut writes: Vec<Value> = inner
                .writes
                .iter()
                .map(|(gr, [added, modified, deleted, unchanged])| {
                    json!({"group": gr.group, "resource": gr.resource,
                           "added": added, "modified": modified, "deleted": deleted,
                           "unchanged": unchanged})
                })
                .collect();
            writes.sort_by_key(|w| (w["group"].to_string(), w["resource"].to_string()));
            let relaxed = std::sync::atomic::Ordering::Relaxed;
            Ok(json_response(
                200,
                &json!({"resourceVersion": inner.rv.to_string(), "writes": writes,
                "watches": {
                    "closedLagging": shared.store.watches_closed_lagging.load(relaxed),
                    "expired": shared.store.watches_expired.load(relaxed),
                }}),
            ))
        }
        _ => Err(ApiError::path_not_found(&format!(
            "/_emulator/{}",
            segs.join("/")
        ))),
    }
}
