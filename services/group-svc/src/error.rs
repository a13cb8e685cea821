use midplane_operator::ErrorCategory;
use midplane_operator::apply::ApplyError;

/// Why a Group reconcile failed; the category is the Event reason and the metric label.
#[derive(Debug, thiserror::Error)]
pub enum GroupError {
    #[error("kubernetes API: {0}")]
    Kube(#[from] kube::Error),
    #[error(transparent)]
    Apply(#[from] ApplyError),
    #[error("{0} has no namespace")]
    NoNamespace(String),
    #[error(transparent)]
    Switchover(#[from] crate::gateway::GatewayError),
}

impl ErrorCategory for GroupError {
    fn category(&self) -> &'static str {
        match self {
            GroupError::Kube(_) => "KubeApiError",
            GroupError::Apply(_) => "ApplyFailed",
            GroupError::NoNamespace(_) => "NoNamespace",
            GroupError::Switchover(_) => "SwitchoverFailed",
        }
    }
    fn is_conflict(&self) -> bool {
        match self {
            GroupError::Kube(e) => midplane_operator::apply::is_conflict(e),
            GroupError::Apply(e) => e.is_conflict(),
            GroupError::NoNamespace(_) | GroupError::Switchover(_) => false,
        }
    }
    fn is_transient(&self) -> bool {
        match self {
            GroupError::Kube(e) => midplane_operator::apply::is_transient(e),
            GroupError::Apply(e) => e.is_transient(),
            GroupError::NoNamespace(_) => false,
            GroupError::Switchover(_) => true,
        }
    }
}
