//! The machinery every Midplane controller shares, so each reconciler is only
//! its pipeline: validate → build (pure) → apply (one SSA helper) → status.

pub mod apply;
pub mod backoff;
pub mod cache;
pub mod children;
pub mod condition;
pub mod error;
pub mod events;
pub mod finalizer;
pub mod leader;
pub mod metrics;
#[cfg(test)]
mod mock_api;
pub mod plugins;
pub mod readiness;
pub mod slim;
pub mod status;

pub use apply::Applier;
pub use backoff::Backoff;
pub use error::ReconcileError;
pub use events::EventRecorder;

/// How every Midplane controller schedules its reconciles. Bounded
/// concurrency keeps memory flat when thousands of objects wake at once (the
/// API server is the shared bottleneck anyway); a short debounce folds a burst
/// of child events — a Pod created, scheduled, started, ready — into one
/// reconcile without delaying a single change noticeably.
pub fn controller_config() -> kube::runtime::controller::Config {
    kube::runtime::controller::Config::default()
        .concurrency(CONCURRENT_RECONCILES)
        .debounce(std::time::Duration::from_millis(50))
}

/// Reconciles one controller runs at a time.
pub const CONCURRENT_RECONCILES: u16 = 32;

pub use midplane_api::FINALIZER;

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("kubeconfig {path}: {source}")]
    Kubeconfig {
        path: String,
        source: kube::config::KubeconfigError,
    },
    #[error("no Kubernetes configuration found: {0}")]
    Infer(#[from] kube::config::InferConfigError),
    #[error(transparent)]
    Kube(#[from] kube::Error),
}

/// A client from an explicit kubeconfig file, else the usual inference
/// (`$KUBECONFIG`, `~/.kube/config`, in-cluster service account).
pub async fn kube_client(
    kubeconfig: Option<&std::path::Path>,
) -> Result<kube::Client, ClientError> {
    let Some(path) = kubeconfig else {
        let cfg = kube::Config::infer().await?;
        return Ok(kube::Client::try_from(cfg)?);
    };
    let err = |source| ClientError::Kubeconfig {
        path: path.display().to_string(),
        source,
    };
    let kc = kube::config::Kubeconfig::read_from(path).map_err(err)?;
    let cfg = kube::Config::from_custom_kubeconfig(kc, &kube::config::KubeConfigOptions::default())
        .await
        .map_err(err)?;
    Ok(kube::Client::try_from(cfg)?)
}

/// The key an object's back-off is tracked under.
pub fn object_key<K: kube::Resource>(controller: &str, obj: &K) -> String {
    use kube::ResourceExt;
    format!(
        "{controller}/{}/{}",
        obj.namespace().unwrap_or_default(),
        obj.name_any()
    )
}

/// Runs a reconcile inside a tracing span naming the controller and the
/// object, records its metrics and clears the object's back-off on success;
/// the error is returned as is for the error policy.
pub async fn instrumented<K: kube::Resource, T>(
    controller: &'static str,
    obj: &K,
    backoff: &Backoff,
    fut: impl std::future::Future<Output = Result<T, ReconcileError>>,
) -> Result<T, ReconcileError> {
    use tracing::Instrument as _;
    metrics::init(controller);
    let key = object_key(controller, obj);
    let span = tracing::info_span!("reconcile", controller, object = %key);
    let start = std::time::Instant::now();
    let result = fut.instrument(span).await;
    match &result {
        Ok(_) => {
            metrics::reconciled(controller, start.elapsed());
            backoff.reset(&key);
        }
        Err(e) => metrics::failed(controller, e.category()),
    }
    result
}

/// The error policy every controller uses: a Warning Event whose reason is the
/// error's category, then a back-off requeue for transient errors, or a wait
/// for the object to change.
pub fn on_error<K>(
    controller: &'static str,
    obj: &std::sync::Arc<K>,
    err: &ReconcileError,
    events: &EventRecorder,
    backoff: &Backoff,
) -> kube::runtime::controller::Action
where
    K: kube::Resource<DynamicType = ()> + Clone + Send + Sync + 'static,
{
    let key = object_key(controller, obj.as_ref());
    if err.is_conflict() {
        tracing::debug!(controller, object = %key, "write conflict; retrying");
        return kube::runtime::controller::Action::requeue(std::time::Duration::from_millis(100));
    }
    tracing::warn!(controller, object = %key, category = err.category(), error = %err, "reconcile failed");
    let (events, obj, reason, note) =
        (events.clone(), obj.clone(), err.category(), err.to_string());
    tokio::spawn(async move {
        events
            .warning(obj.as_ref(), reason, "Reconcile", note)
            .await;
    });
    if err.is_transient() {
        kube::runtime::controller::Action::requeue(backoff.next(&key))
    } else {
        kube::runtime::controller::Action::await_change()
    }
}
