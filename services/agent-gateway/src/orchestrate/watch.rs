//! One lifecycle stream for a whole Group: agent 1's `WatchLifecycle` of
//! every pod, merged. Pods are resolved again every [`RESOLVE_EVERY`], so a
//! replacement Pod joins the stream without the caller asking again; a pod
//! whose agent cannot be reached (or whose stream ended) is reported once
//! with an error and asked again with back-off until it answers.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use midplane_proto::common::{ErrorDetail, ObjectRef};
use midplane_proto::gateway as gw;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::{Gateway, GatewayError, detail};
use crate::resolver::PodResolver;

/// How often the Group's pods are resolved again.
pub const RESOLVE_EVERY: Duration = Duration::from_secs(1);
/// Longest wait for a pod's stream to answer before it is reported unreachable.
const CONNECT: Duration = Duration::from_secs(2);
/// Back-off between attempts to reach an unreachable pod: from the first to the last.
const RETRY_FIRST: Duration = Duration::from_millis(100);
const RETRY_LAST: Duration = Duration::from_secs(2);

pub type Events = mpsc::Receiver<Result<gw::GroupLifecycleEvent, tonic::Status>>;
type Sender = mpsc::Sender<Result<gw::GroupLifecycleEvent, tonic::Status>>;

impl<R: PodResolver> Gateway<R> {
    /// The merged stream of `req.group`; NOT_FOUND up front when the Group
    /// has no pods. Ends when the receiver is dropped.
    pub async fn watch_lifecycle(
        self: Arc<Self>,
        req: gw::GroupRequest,
    ) -> Result<Events, GatewayError> {
        let group = req
            .group
            .clone()
            .ok_or(GatewayError::MissingGroup("WatchLifecycle"))?;
        let pods = self.resolver.resolve(&group.namespace, &group.name).await?;
        let (tx, rx) = mpsc::channel(256);
        tokio::spawn(async move { self.merge(group, pods, tx).await });
        Ok(rx)
    }

    async fn merge(self: Arc<Self>, group: ObjectRef, first: Vec<gw::PodTarget>, tx: Sender) {
        let mut watching: HashMap<(String, String), JoinHandle<()>> = HashMap::new();
        let mut resolved = Some(first);
        loop {
            // A failed resolve (None) keeps watching the pods as they were.
            if let Some(pods) = resolved.take() {
                let wanted: Vec<(String, String)> = pods
                    .iter()
                    .map(|p| (p.pod.clone(), p.lifecycle_address.clone()))
                    .collect();
                watching.retain(|k, task| {
                    let keep = wanted.contains(k);
                    if !keep {
                        task.abort();
                    }
                    keep
                });
                for pod in pods {
                    let key = (pod.pod.clone(), pod.lifecycle_address.clone());
                    if let std::collections::hash_map::Entry::Vacant(slot) = watching.entry(key) {
                        slot.insert(tokio::spawn(self.clone().follow(pod, tx.clone())));
                    }
                }
            }
            tokio::select! {
                _ = tx.closed() => break,
                _ = tokio::time::sleep(RESOLVE_EVERY) => {}
            }
            resolved = match self.resolver.resolve(&group.namespace, &group.name).await {
                Ok(p) => Some(p),
                Err(e) => {
                    tracing::debug!(group = %group.name, error = %e, "resolve for WatchLifecycle");
                    None
                }
            };
        }
        for (_, task) in watching {
            task.abort();
        }
    }

    /// One pod's stream, forwarded until the receiver goes; reconnects.
    async fn follow(self: Arc<Self>, pod: gw::PodTarget, tx: Sender) {
        let mut backoff = RETRY_FIRST;
        let mut reported = false;
        loop {
            let why = match self
                .fanout
                .watch_lifecycle(&pod.lifecycle_address, CONNECT)
                .await
            {
                Ok(mut stream) => {
                    backoff = RETRY_FIRST;
                    reported = false;
                    loop {
                        match stream.message().await {
                            Ok(Some(event)) => {
                                let ev = gw::GroupLifecycleEvent {
                                    target: Some(pod.clone()),
                                    event: Some(event),
                                    error: None,
                                };
                                if tx.send(Ok(ev)).await.is_err() {
                                    return;
                                }
                            }
                            Ok(None) => break detail("Unavailable", "lifecycle stream ended"),
                            Err(s) => {
                                break detail(
                                    "Unavailable",
                                    format!("lifecycle stream: {}", s.message()),
                                );
                            }
                        }
                    }
                }
                Err(e) => e,
            };
            if !reported {
                reported = true;
                let ev = gw::GroupLifecycleEvent {
                    target: Some(pod.clone()),
                    event: None,
                    error: Some(ErrorDetail {
                        retryable: true,
                        ..why
                    }),
                };
                if tx.send(Ok(ev)).await.is_err() {
                    return;
                }
            }
            tokio::select! {
                _ = tx.closed() => return,
                _ = tokio::time::sleep(backoff) => {}
            }
            backoff = (backoff * 2).min(RETRY_LAST);
        }
    }
}
