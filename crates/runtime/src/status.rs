//! The error model of every Midplane gRPC API: a status code by the gRPC
//! conventions plus `google.rpc` details a client can act on without parsing
//! the message text (docs/api.md lists them per method):
//!
//! - `ErrorInfo` on every error: a stable `reason` (UPPER_SNAKE_CASE, one of
//!   [`reason`]), the domain [`DOMAIN`] and string metadata;
//! - `BadRequest` field violations for INVALID_ARGUMENT, with the same field
//!   paths the objects' status conditions use (`spec.components[0].replicas`);
//! - `RetryInfo` when repeating the same call later can succeed;
//! - `ResourceInfo` naming the object of a NOT_FOUND.

use std::collections::HashMap;
use std::time::Duration;
use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};

/// `ErrorInfo.domain` of every Midplane error.
pub use midplane_proto::reason::DOMAIN;

/// Stable `ErrorInfo.reason` values (defined with the protos, as part of the API).
pub use midplane_proto::reason;

/// A failed call under construction: code, reason and message, then details.
#[derive(Debug, Clone)]
pub struct ApiError {
    code: Code,
    reason: &'static str,
    message: String,
    metadata: HashMap<String, String>,
    violations: Vec<(String, String)>,
    retry_after: Option<Duration>,
    resource: Option<(String, String)>,
}

impl ApiError {
    pub fn new(code: Code, reason: &'static str, message: impl Into<String>) -> Self {
        Self {
            code,
            reason,
            message: message.into(),
            metadata: HashMap::new(),
            violations: Vec::new(),
            retry_after: None,
            resource: None,
        }
    }

    /// INVALID_ARGUMENT with one violation of `field`.
    pub fn invalid_field(field: &str, description: impl Into<String>) -> Self {
        let description = description.into();
        Self::new(
            Code::InvalidArgument,
            reason::REQUEST_INVALID,
            format!("{field}: {description}"),
        )
        .field(field, description)
    }

    /// NOT_FOUND of one object, e.g. (`App`, `shop/cache`).
    pub fn not_found(reason: &'static str, kind: &str, name: &str) -> Self {
        Self::new(Code::NotFound, reason, format!("{kind} {name} not found")).resource(kind, name)
    }

    /// UNAVAILABLE, worth retrying after `after`.
    pub fn unavailable(reason: &'static str, message: impl Into<String>, after: Duration) -> Self {
        Self::new(Code::Unavailable, reason, message).retry_after(after)
    }

    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(Code::Internal, reason::INTERNAL, message)
    }

    /// Adds a `BadRequest` field violation.
    pub fn field(mut self, field: impl Into<String>, description: impl Into<String>) -> Self {
        self.violations.push((field.into(), description.into()));
        self
    }

    /// Adds an `ErrorInfo` metadata entry (lowerCamelCase keys).
    pub fn meta(mut self, key: &str, value: impl Into<String>) -> Self {
        self.metadata.insert(key.to_string(), value.into());
        self
    }

    /// Adds `RetryInfo`: the same call may succeed after `after`.
    pub fn retry_after(mut self, after: Duration) -> Self {
        self.retry_after = Some(after);
        self
    }

    /// Adds `ResourceInfo` for the object the error is about.
    pub fn resource(mut self, kind: &str, name: &str) -> Self {
        self.resource = Some((kind.to_string(), name.to_string()));
        self
    }

    pub fn code(&self) -> Code {
        self.code
    }

    pub fn reason(&self) -> &'static str {
        self.reason
    }

    pub fn message(&self) -> &str {
        &self.message
    }

    pub fn into_status(self) -> Status {
        let mut details = ErrorDetails::with_error_info(self.reason, DOMAIN, self.metadata);
        for (field, description) in self.violations {
            details.add_bad_request_violation(field, description);
        }
        if let Some(after) = self.retry_after {
            details.set_retry_info(Some(after));
        }
        if let Some((kind, name)) = self.resource {
            details.set_resource_info(kind, name, "", "");
        }
        Status::with_error_details(self.code, self.message, details)
    }
}

impl From<ApiError> for Status {
    fn from(e: ApiError) -> Self {
        e.into_status()
    }
}

/// `(namespace, name)` of a request's required object reference, or
/// INVALID_ARGUMENT REQUEST_INVALID naming each missing field (`ref`,
/// `ref.namespace`, `ref.name`).
pub fn require_ref(
    r: Option<midplane_proto::common::ObjectRef>,
) -> Result<(String, String), Status> {
    let r = r.ok_or_else(|| ApiError::invalid_field("ref", "is required"))?;
    let mut missing = Vec::new();
    if r.namespace.is_empty() {
        missing.push("ref.namespace");
    }
    if r.name.is_empty() {
        missing.push("ref.name");
    }
    if missing.is_empty() {
        return Ok((r.namespace, r.name));
    }
    let mut err = ApiError::new(
        Code::InvalidArgument,
        reason::REQUEST_INVALID,
        format!("{} required", missing.join(" and ")),
    );
    for f in missing {
        err = err.field(f, "is required");
    }
    Err(err.into())
}

/// INVALID_ARGUMENT APP_INVALID with one field violation per (path, problem),
/// the paths the App's Ready condition names; `summary` is every problem on
/// a line of its own.
pub fn app_invalid<F, M>(problems: impl IntoIterator<Item = (F, M)>, summary: &str) -> Status
where
    F: Into<String>,
    M: Into<String>,
{
    let mut err = ApiError::new(
        Code::InvalidArgument,
        reason::APP_INVALID,
        format!("invalid App:\n{summary}"),
    );
    for (field, problem) in problems {
        err = err.field(field, problem);
    }
    err.into()
}

/// How long a client should wait before retrying an unavailable dependency.
pub const RETRY_SOON: Duration = Duration::from_secs(1);

/// The status for an error answer of the Kubernetes API (HTTP `code`, the
/// Status `reason` such as `AlreadyExists`, and its message), for a call about
/// the object `kind` `name`. `not_found` is the reason a 404 gets.
pub fn from_kubernetes(
    code: u16,
    k8s_reason: &str,
    message: &str,
    kind: &str,
    name: &str,
    not_found: &'static str,
) -> ApiError {
    match code {
        404 => ApiError::not_found(not_found, kind, name),
        409 if k8s_reason == "AlreadyExists" => {
            ApiError::new(Code::AlreadyExists, reason::ALREADY_EXISTS, message).resource(kind, name)
        }
        // Server-side apply reports fields owned by another manager as a 409.
        409 if message.starts_with("Apply failed") => ApiError::new(
            Code::Aborted,
            reason::FIELD_MANAGER_CONFLICT,
            format!("{message} (apply with force to take the fields over)"),
        ),
        409 => ApiError::new(Code::Aborted, reason::CONFLICT, message).retry_after(RETRY_SOON),
        400 | 422 => ApiError::new(Code::InvalidArgument, reason::REQUEST_INVALID, message),
        401 | 403 => ApiError::new(
            Code::PermissionDenied,
            reason::KUBERNETES_FORBIDDEN,
            format!("the service's Kubernetes identity was refused: {message}"),
        ),
        429 => ApiError::unavailable(reason::KUBERNETES_UNAVAILABLE, message, RETRY_SOON),
        _ => ApiError::unavailable(
            reason::KUBERNETES_UNAVAILABLE,
            format!("Kubernetes API answered {code}: {message}"),
            RETRY_SOON,
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn details_round_trip_through_a_status() {
        let status = ApiError::new(Code::InvalidArgument, reason::APP_INVALID, "invalid App")
            .field("spec.components[0].replicas", "must be at least 1")
            .meta("app", "shop/cache")
            .into_status();
        assert_eq!(status.code(), Code::InvalidArgument);
        let info = status.get_details_error_info().expect("ErrorInfo");
        assert_eq!(info.reason, "APP_INVALID");
        assert_eq!(info.domain, DOMAIN);
        assert_eq!(
            info.metadata.get("app").map(String::as_str),
            Some("shop/cache")
        );
        let bad = status.get_details_bad_request().expect("BadRequest");
        assert_eq!(bad.field_violations.len(), 1);
        assert_eq!(bad.field_violations[0].field, "spec.components[0].replicas");
        assert!(status.get_details_retry_info().is_none());
    }

    #[test]
    fn kubernetes_answers_map_by_convention() {
        let e = from_kubernetes(404, "NotFound", "x", "App", "a/b", reason::APP_NOT_FOUND);
        assert_eq!((e.code(), e.reason()), (Code::NotFound, "APP_NOT_FOUND"));
        let s = e.into_status();
        assert_eq!(
            s.get_details_resource_info().map(|r| r.resource_name),
            Some("a/b".to_string())
        );
        let e = from_kubernetes(
            409,
            "Conflict",
            "the object has been modified",
            "App",
            "a/b",
            "",
        );
        assert_eq!((e.code(), e.reason()), (Code::Aborted, "CONFLICT"));
        assert!(e.into_status().get_details_retry_info().is_some());
        let e = from_kubernetes(
            409,
            "Conflict",
            "Apply failed with 1 conflict",
            "App",
            "a/b",
            "",
        );
        assert_eq!(e.reason(), "FIELD_MANAGER_CONFLICT");
        let e = from_kubernetes(409, "AlreadyExists", "exists", "App", "a/b", "");
        assert_eq!(e.code(), Code::AlreadyExists);
        let e = from_kubernetes(503, "", "etcd", "App", "a/b", "");
        assert_eq!(e.code(), Code::Unavailable);
        assert!(e.into_status().get_details_retry_info().is_some());
    }
}
