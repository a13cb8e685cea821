//! The one error every Midplane reconcile returns. Its category is both the
//! Kubernetes Event reason and the `category` label of
//! `midplane_reconcile_errors_total`; whether it is transient decides between
//! a requeue with back-off and waiting for the object to change.

use crate::apply::{self, ApplyError};

#[derive(Debug, thiserror::Error)]
pub enum ReconcileError {
    #[error("kubernetes API: {0}")]
    Kube(#[from] kube::Error),
    #[error(transparent)]
    Apply(#[from] ApplyError),
    #[error("{0} has no namespace")]
    NoNamespace(String),
    /// A call through the agent gateway failed (switchover, failover, reload…).
    #[error("{message}")]
    Agents {
        /// The Event reason, e.g. `SwitchoverFailed`.
        category: &'static str,
        message: String,
        transient: bool,
    },
}

impl ReconcileError {
    /// The Event reason and metric label.
    pub fn category(&self) -> &'static str {
        match self {
            ReconcileError::Kube(_) => "KubeApiError",
            ReconcileError::Apply(_) => "ApplyFailed",
            ReconcileError::NoNamespace(_) => "NoNamespace",
            ReconcileError::Agents { category, .. } => category,
        }
    }

    /// Worth a requeue with back-off; otherwise the object waits for a change.
    pub fn is_transient(&self) -> bool {
        match self {
            ReconcileError::Kube(e) => apply::is_transient(e),
            ReconcileError::Apply(e) => e.is_transient(),
            ReconcileError::NoNamespace(_) => false,
            ReconcileError::Agents { transient, .. } => *transient,
        }
    }

    /// A 409 from a concurrent writer: retried at once, without an Event.
    pub fn is_conflict(&self) -> bool {
        match self {
            ReconcileError::Kube(e) => apply::is_conflict(e),
            ReconcileError::Apply(e) => e.is_conflict(),
            ReconcileError::NoNamespace(_) | ReconcileError::Agents { .. } => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn api(code: u16) -> kube::Error {
        kube::Error::Api(
            kube::core::Status::failure("x", "y")
                .with_code(code)
                .boxed(),
        )
    }

    #[test]
    fn categories_and_retry_policy() {
        let conflict = ReconcileError::Kube(api(409));
        assert!(conflict.is_conflict() && conflict.is_transient());
        let invalid = ReconcileError::Kube(api(422));
        assert_eq!(invalid.category(), "KubeApiError");
        assert!(!invalid.is_transient(), "the object itself is wrong: wait");
        assert!(ReconcileError::Kube(api(503)).is_transient());
        let agents = ReconcileError::Agents {
            category: "SwitchoverFailed",
            message: "no candidate".into(),
            transient: true,
        };
        assert_eq!(agents.category(), "SwitchoverFailed");
        assert_eq!(agents.to_string(), "no candidate");
        assert!(!ReconcileError::NoNamespace("x".into()).is_transient());
    }
}
