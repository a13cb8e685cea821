//! Errors as the API server reports them: a `meta.k8s.io/v1 Status` with code, reason and causes.

use serde_json::{Value, json};

/// One `details.causes[]` entry: which field was wrong and why.
#[derive(Debug, Clone, PartialEq)]
pub struct Cause {
    pub reason: String,
    pub field: String,
    pub message: String,
}

/// An API error; `status()` renders it the way kube-apiserver does, so clients
/// (kube-rs `Error::Api`, kubectl) see the reason and code they would see on a real cluster.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{code} {reason}: {message}")]
pub struct ApiError {
    pub code: u16,
    pub reason: &'static str,
    pub message: String,
    /// Boxed to keep `Result<_, ApiError>` small on the hot path.
    pub details: Box<Details>,
}

/// `details` of the Status: the object the error is about and the per-field causes.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Details {
    pub group: String,
    pub kind: String,
    pub name: String,
    pub causes: Vec<Cause>,
}

impl ApiError {
    fn new(code: u16, reason: &'static str, message: impl Into<String>) -> Self {
        Self {
            code,
            reason,
            message: message.into(),
            details: Box::default(),
        }
    }

    fn with_target(mut self, group: &str, kind: &str, name: &str) -> Self {
        self.details.group = group.to_string();
        self.details.kind = kind.to_string();
        self.details.name = name.to_string();
        self
    }

    /// `<plural>.<group> "<name>"` as the apiserver quotes a resource in messages.
    fn qualified(group: &str, plural: &str) -> String {
        if group.is_empty() {
            plural.to_string()
        } else {
            format!("{plural}.{group}")
        }
    }

    pub fn not_found(group: &str, plural: &str, name: &str) -> Self {
        Self::new(
            404,
            "NotFound",
            format!("{} \"{name}\" not found", Self::qualified(group, plural)),
        )
        .with_target(group, plural, name)
    }

    pub fn already_exists(group: &str, plural: &str, name: &str) -> Self {
        Self::new(
            409,
            "AlreadyExists",
            format!(
                "{} \"{name}\" already exists",
                Self::qualified(group, plural)
            ),
        )
        .with_target(group, plural, name)
    }

    pub fn conflict(group: &str, plural: &str, name: &str, why: &str) -> Self {
        Self::new(
            409,
            "Conflict",
            format!(
                "Operation cannot be fulfilled on {} \"{name}\": {why}",
                Self::qualified(group, plural)
            ),
        )
        .with_target(group, plural, name)
    }

    pub fn stale(group: &str, plural: &str, name: &str) -> Self {
        Self::conflict(
            group,
            plural,
            name,
            "the object has been modified; please apply your changes to the latest version and try again",
        )
    }

    /// 409 from server-side apply naming each conflicting manager and field.
    pub fn apply_conflict(group: &str, plural: &str, name: &str, causes: Vec<Cause>) -> Self {
        let n = causes.len();
        let list: Vec<String> = causes.iter().map(|c| format!("- {}", c.message)).collect();
        let mut e = Self::new(
            409,
            "Conflict",
            format!(
                "Apply failed with {n} conflict{}: {}",
                if n == 1 { "" } else { "s" },
                list.join("\n")
            ),
        )
        .with_target(group, plural, name);
        e.details.causes = causes;
        e
    }

    /// 422 with one cause per invalid field.
    pub fn invalid(group: &str, kind: &str, name: &str, causes: Vec<Cause>) -> Self {
        let detail: Vec<String> = causes
            .iter()
            .map(|c| format!("{}: {}", c.field, c.message))
            .collect();
        let what = if group.is_empty() {
            kind.to_string()
        } else {
            format!("{kind}.{group}")
        };
        let mut e = Self::new(
            422,
            "Invalid",
            format!("{what} \"{name}\" is invalid: {}", detail.join(", ")),
        )
        .with_target(group, kind, name);
        e.details.causes = causes;
        e
    }

    pub fn invalid_field(group: &str, kind: &str, name: &str, field: &str, msg: &str) -> Self {
        Self::invalid(
            group,
            kind,
            name,
            vec![Cause {
                reason: "FieldValueInvalid".into(),
                field: field.into(),
                message: msg.into(),
            }],
        )
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(400, "BadRequest", message)
    }

    pub fn gone(message: impl Into<String>) -> Self {
        Self::new(410, "Expired", message)
    }

    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(403, "Forbidden", message)
    }

    /// 403 for a request RBAC refused, about `<resource>.<group> "<name>"`.
    pub fn forbidden_on(group: &str, resource: &str, name: &str, message: String) -> Self {
        Self::new(403, "Forbidden", message).with_target(group, resource, name)
    }

    /// 401 for credentials the server does not accept.
    pub fn unauthorized() -> Self {
        Self::new(401, "Unauthorized", "Unauthorized")
    }

    pub fn method_not_allowed(message: impl Into<String>) -> Self {
        Self::new(405, "MethodNotAllowed", message)
    }

    pub fn unsupported_media(message: impl Into<String>) -> Self {
        Self::new(415, "UnsupportedMediaType", message)
    }

    /// The emulator's loud "not faithful here" answer: 501 naming the missing feature.
    pub fn not_implemented(feature: &str) -> Self {
        Self::new(
            501,
            "NotImplemented",
            format!(
                "midplane kube-emulator does not implement {feature}; see crates/kube-emulator/README.md"
            ),
        )
    }

    pub fn path_not_found(path: &str) -> Self {
        Self::new(
            404,
            "NotFound",
            format!("the server could not find the requested resource (path {path})"),
        )
    }

    /// The Status object body.
    pub fn status(&self) -> Value {
        let mut details = serde_json::Map::new();
        let d = &self.details;
        if !d.name.is_empty() {
            details.insert("name".into(), json!(d.name));
        }
        if !d.group.is_empty() {
            details.insert("group".into(), json!(d.group));
        }
        if !d.kind.is_empty() {
            details.insert("kind".into(), json!(d.kind));
        }
        if !d.causes.is_empty() {
            let causes: Vec<Value> = d
                .causes
                .iter()
                .map(|c| json!({"reason": c.reason, "message": c.message, "field": c.field}))
                .collect();
            details.insert("causes".into(), Value::Array(causes));
        }
        let mut status = json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        });
        if !details.is_empty() {
            status["details"] = Value::Object(details);
        }
        status
    }
}

/// Errors starting or configuring the emulator (not API errors).
#[derive(Debug, thiserror::Error)]
pub enum EmulatorError {
    #[error("binding {addr}: {source}")]
    Bind {
        addr: std::net::SocketAddr,
        source: std::io::Error,
    },
    #[error("reading CRD directory {path}: {source}")]
    CrdDir {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    #[error("parsing CRD file {path}: {message}")]
    CrdFile {
        path: std::path::PathBuf,
        message: String,
    },
    #[error("writing kubeconfig {path}: {source}")]
    Kubeconfig {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    #[error("process pods: {0}")]
    ProcessPods(String),
    #[error("HTTPS listener: {0}")]
    Tls(String),
    #[error("{0}")]
    Api(#[from] ApiError),
}

pub type ApiResult<T> = Result<T, ApiError>;
