//! Request options and bodies: what the query string and body of a request ask for.

use super::*;

pub(super) fn is_true(v: Option<&String>) -> bool {
    matches!(v.map(String::as_str), Some("1" | "true" | "True"))
}

pub(super) fn write_opts(
    t: &Target,
    query: &HashMap<String, String>,
    headers: &HeaderMap,
) -> WriteOpts {
    // The apiserver names an unnamed writer after its user agent's program name.
    let ua = headers
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("unknown");
    let default_manager = ua.split('/').next().unwrap_or("unknown").to_string();
    WriteOpts {
        manager: query
            .get("fieldManager")
            .filter(|m| !m.is_empty())
            .cloned()
            .unwrap_or(default_manager),
        dry_run: query.get("dryRun").is_some_and(|v| v == "All"),
        force: is_true(query.get("force")),
        version: t.version.clone(),
        strict: query.get("fieldValidation").is_some_and(|v| v == "Strict"),
    }
}

pub(super) fn list_opts(query: &HashMap<String, String>) -> ListOpts {
    ListOpts {
        label_selector: query.get("labelSelector").cloned(),
        field_selector: query.get("fieldSelector").cloned(),
        limit: query.get("limit").and_then(|l| l.parse().ok()),
        continue_token: query.get("continue").cloned(),
    }
}

pub(super) fn delete_opts(query: &HashMap<String, String>, body: &Bytes) -> ApiResult<DeleteOpts> {
    let b: Value = if body.is_empty() {
        json!({})
    } else {
        decode_body(body)?
    };
    let mut propagation = b["propagationPolicy"]
        .as_str()
        .map(String::from)
        .or_else(|| query.get("propagationPolicy").cloned());
    if propagation.is_none() && b["orphanDependents"] == json!(true) {
        propagation = Some("Orphan".into());
    }
    let dry = b["dryRun"]
        .as_array()
        .is_some_and(|a| a.iter().any(|v| v == "All"))
        || query.get("dryRun").is_some_and(|v| v == "All");
    let grace_period = b["gracePeriodSeconds"]
        .as_i64()
        .or_else(|| query.get("gracePeriodSeconds").and_then(|g| g.parse().ok()));
    Ok(DeleteOpts {
        propagation,
        grace_period,
        uid: b["preconditions"]["uid"].as_str().map(String::from),
        resource_version: b["preconditions"]["resourceVersion"]
            .as_str()
            .map(String::from),
        dry_run: dry,
    })
}

/// The body of a create or update: JSON or YAML, or the protobuf kubectl's typed clients send.
pub(super) fn decode_object(headers: &HeaderMap, body: &Bytes) -> ApiResult<Value> {
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if ct.starts_with(protobuf::CONTENT_TYPE) {
        return protobuf::decode(body);
    }
    decode_body(body)
}

/// JSON, or YAML (server-side apply bodies).
pub(crate) fn decode_body(body: &Bytes) -> ApiResult<Value> {
    if let Ok(v) = serde_json::from_slice::<Value>(body) {
        return Ok(v);
    }
    serde_yaml::from_slice::<Value>(body).map_err(|e| {
        ApiError::bad_request(format!("the request body is neither JSON nor YAML: {e}"))
    })
}
