//! The review APIs and TokenRequest: `authentication.k8s.io/v1` TokenReview and
//! SelfSubjectReview, `authorization.k8s.io/v1` SubjectAccessReview,
//! LocalSubjectAccessReview and SelfSubjectAccessReview (`kubectl auth can-i`), and
//! `POST serviceaccounts/<name>/token` (`kubectl create token`). Reviews are answered,
//! never stored, as upstream.

use serde_json::{Value, json};

use super::{Attributes, Identity, service_account_identity};
use crate::error::{ApiError, ApiResult};
use crate::registry::GroupResource;
use crate::store::Store;

/// How long the tokens the emulator issues are said to live (they do not expire).
const TOKEN_SECONDS: i64 = 3600;

fn identity_json(id: &Identity) -> Value {
    json!({"username": id.username, "uid": id.uid, "groups": id.groups})
}

fn parse(body: &[u8]) -> ApiResult<Value> {
    crate::http::decode_body(&axum::body::Bytes::copy_from_slice(body))
}

/// Answers a review or TokenRequest path (`Some`), or `None` for any other path.
pub(crate) fn serve(
    store: &Store,
    caller: Option<&Identity>,
    post: bool,
    segs: &[&str],
    body: &[u8],
) -> Option<ApiResult<(u16, Value)>> {
    let kind = match segs {
        ["apis", "authentication.k8s.io", "v1", "tokenreviews"] => "TokenReview",
        ["apis", "authentication.k8s.io", "v1", "selfsubjectreviews"] => "SelfSubjectReview",
        ["apis", "authorization.k8s.io", "v1", "subjectaccessreviews"] => "SubjectAccessReview",
        [
            "apis",
            "authorization.k8s.io",
            "v1",
            "selfsubjectaccessreviews",
        ] => "SelfSubjectAccessReview",
        [
            "apis",
            "authorization.k8s.io",
            "v1",
            "namespaces",
            _,
            "localsubjectaccessreviews",
        ] => "LocalSubjectAccessReview",
        ["api", "v1", "namespaces", _, "serviceaccounts", _, "token"] => "TokenRequest",
        _ => return None,
    };
    if !post {
        return Some(Err(ApiError::method_not_allowed(format!(
            "the server does not allow this method on the requested resource ({kind} is create-only)"
        ))));
    }
    Some(parse(body).and_then(|req| match kind {
        "TokenReview" => Ok(token_review(store, req)),
        "SelfSubjectReview" => Ok(self_subject_review(caller)),
        "TokenRequest" => token_request(store, segs[3], segs[5], req),
        "SubjectAccessReview" => Ok(access_review(store, kind, req, None)),
        "LocalSubjectAccessReview" => Ok(access_review(store, kind, req, Some(segs[4]))),
        _ => Ok(self_access_review(store, caller, req)),
    }))
}

fn token_review(store: &Store, mut req: Value) -> (u16, Value) {
    let token = req["spec"]["token"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let status = match store.access.authenticate(&store.lock(), &token) {
        Some(id) => json!({
            "authenticated": true,
            "user": identity_json(&id),
            "audiences": ["https://kubernetes.default.svc.cluster.local"],
        }),
        None => json!({"user": {}, "error": "invalid bearer token"}),
    };
    req["status"] = status;
    req["apiVersion"] = json!("authentication.k8s.io/v1");
    req["kind"] = json!("TokenReview");
    (201, req)
}

fn self_subject_review(caller: Option<&Identity>) -> (u16, Value) {
    let user = match caller {
        Some(id) => identity_json(id),
        None => {
            json!({"username": "kube:admin", "groups": ["system:masters", "system:authenticated"]})
        }
    };
    (
        201,
        json!({"kind": "SelfSubjectReview", "apiVersion": "authentication.k8s.io/v1",
               "metadata": {}, "status": {"userInfo": user}}),
    )
}

fn token_request(store: &Store, ns: &str, name: &str, mut req: Value) -> ApiResult<(u16, Value)> {
    let sa = store
        .lock()
        .get(&GroupResource::new("", "serviceaccounts"), ns, name)
        .ok_or_else(|| ApiError::not_found("", "serviceaccounts", name))?;
    let uid = sa["metadata"]["uid"].as_str().unwrap_or_default();
    let token = store.access.issue(ns, name, uid);
    let seconds = req["spec"]["expirationSeconds"]
        .as_i64()
        .unwrap_or(TOKEN_SECONDS);
    let expires = chrono::Utc::now() + chrono::Duration::seconds(seconds);
    req["kind"] = json!("TokenRequest");
    req["apiVersion"] = json!("authentication.k8s.io/v1");
    req["metadata"] = json!({"name": name, "namespace": ns});
    req["spec"]["expirationSeconds"] = json!(seconds);
    req["status"] = json!({
        "token": token,
        "expirationTimestamp": expires.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
    });
    Ok((201, req))
}

/// The attributes a review's spec asks about.
fn spec_attributes(spec: &Value, namespace: Option<&str>) -> Attributes {
    let s = |v: &Value| v.as_str().unwrap_or_default().to_string();
    let r = &spec["resourceAttributes"];
    if r.is_object() {
        return Attributes {
            verb: s(&r["verb"]),
            group: s(&r["group"]),
            resource: s(&r["resource"]),
            subresource: s(&r["subresource"]),
            namespace: namespace.map_or_else(|| s(&r["namespace"]), String::from),
            name: s(&r["name"]),
            path: String::new(),
        };
    }
    let n = &spec["nonResourceAttributes"];
    Attributes {
        verb: s(&n["verb"]),
        path: s(&n["path"]),
        ..Attributes::default()
    }
}

fn answer(mut req: Value, kind: &str, allowed: bool, reason: &str) -> (u16, Value) {
    let mut status = json!({"allowed": allowed});
    if !reason.is_empty() {
        status["reason"] = json!(reason);
    }
    req["status"] = status;
    req["kind"] = json!(kind);
    req["apiVersion"] = json!("authorization.k8s.io/v1");
    (201, req)
}

fn access_review(store: &Store, kind: &str, req: Value, namespace: Option<&str>) -> (u16, Value) {
    let spec = &req["spec"];
    let user = spec["user"].as_str().unwrap_or_default().to_string();
    let mut groups: Vec<String> = spec["groups"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|g| g.as_str().map(String::from))
        .collect();
    // A ServiceAccount asked about by name alone is in its groups, as upstream assumes.
    if groups.is_empty()
        && let Some(rest) = user.strip_prefix("system:serviceaccount:")
        && let Some((ns, name)) = rest.split_once(':')
    {
        groups = service_account_identity(ns, name, "").groups;
    }
    let who = Identity {
        username: user,
        uid: spec["uid"].as_str().unwrap_or_default().to_string(),
        groups,
    };
    let decision = super::review(store, &who, &spec_attributes(spec, namespace));
    answer(req, kind, decision.allowed, &decision.reason)
}

fn self_access_review(store: &Store, caller: Option<&Identity>, req: Value) -> (u16, Value) {
    let attributes = spec_attributes(&req["spec"], None);
    let (allowed, reason) = match caller {
        None => (
            true,
            "the emulator's administrator (no credentials)".to_string(),
        ),
        Some(id) => {
            let d = super::review(store, id, &attributes);
            (d.allowed, d.reason)
        }
    };
    answer(req, "SelfSubjectAccessReview", allowed, &reason)
}
