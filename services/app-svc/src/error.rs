use midplane_operator::ErrorCategory;
use midplane_operator::apply::ApplyError;

/// Why an App or Component reconcile failed. The category is the Event reason
/// and the metric label.
#[derive(Debug, thiserror::Error)]
pub enum ReconcileError {
    #[error("kubernetes API: {0}")]
    Kube(#[from] kube::Error),
    #[error(transparent)]
    Apply(#[from] ApplyError),
    #[error("{0} has no namespace")]
    NoNamespace(String),
}

impl ErrorCategory for ReconcileError {
    fn category(&self) -> &'static str {
        match self {
            ReconcileError::Kube(_) => "KubeApiError",
            ReconcileError::Apply(_) => "ApplyFailed",
            ReconcileError::NoNamespace(_) => "NoNamespace",
        }
    }
    fn is_conflict(&self) -> bool {
        match self {
            ReconcileError::Kube(e) => midplane_operator::apply::is_conflict(e),
            ReconcileError::Apply(e) => e.is_conflict(),
            ReconcileError::NoNamespace(_) => false,
        }
    }
    fn is_transient(&self) -> bool {
        match self {
            ReconcileError::Kube(e) => midplane_operator::apply::is_transient(e),
            ReconcileError::Apply(e) => e.is_transient(),
            ReconcileError::NoNamespace(_) => false,
        }
    }
}
