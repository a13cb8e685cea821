//! The narrow boundary to Kubernetes Jobs: apply one, and wait until it has finished.
//! [`KubeJobs`] does it with server-side apply and one label-selected watch over all Backup
//! Jobs; tests can put a fake behind [`JobApi`].

use std::sync::Arc;
use std::time::Duration;

use futures::TryStreamExt;
use futures::future::BoxFuture;
use k8s_openapi::api::batch::v1::Job;
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client};
use midplane_operator::Applier;

/// The field manager of the Backup Jobs backup-svc creates.
pub const FIELD_MANAGER: &str = "midplane/backup";
use tokio::sync::Notify;

use crate::job_spec::JOB_SELECTOR;

/// How a Job ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum JobOutcome {
    Succeeded,
    /// `reason` from the Job's Failed condition (BackoffLimitExceeded, DeadlineExceeded…).
    Failed {
        reason: String,
        message: String,
    },
}

#[derive(Debug, thiserror::Error)]
pub enum JobError {
    #[error(transparent)]
    Apply(#[from] midplane_operator::apply::ApplyError),
    #[error("Job {namespace}/{name} was deleted before it finished")]
    Vanished { namespace: String, name: String },
    #[error("Job {namespace}/{name}: {message}")]
    Other {
        namespace: String,
        name: String,
        message: String,
    },
}

pub trait JobApi: Send + Sync + 'static {
    /// Creates or updates the Job (server-side apply).
    fn apply<'a>(&'a self, job: &'a Job) -> BoxFuture<'a, Result<(), JobError>>;
    /// Resolves once the Job has a Complete or Failed condition.
    fn wait<'a>(
        &'a self,
        namespace: &'a str,
        name: &'a str,
    ) -> BoxFuture<'a, Result<JobOutcome, JobError>>;
}

/// The outcome a Job's status shows, if it has finished.
pub fn outcome(job: &Job) -> Option<JobOutcome> {
    let status = job.status.as_ref()?;
    for c in status.conditions.iter().flatten() {
        if c.status != "True" {
            continue;
        }
        match c.type_.as_str() {
            // "SuccessCriteriaMet" precedes "Complete" on 1.31+; Complete is the final word.
            "Complete" => return Some(JobOutcome::Succeeded),
            "Failed" => {
                return Some(JobOutcome::Failed {
                    reason: c.reason.clone().unwrap_or_else(|| "Failed".into()),
                    message: c.message.clone().unwrap_or_default(),
                });
            }
            _ => {}
        }
    }
    None
}

/// Jobs on a cluster: applied with the platform's field manager, tracked through one watch.
#[derive(Clone)]
pub struct KubeJobs {
    applier: Applier,
    store: Store<Job>,
    changed: Arc<Notify>,
}

/// How often a waiter re-reads the cache even without a watch event.
const RECHECK: Duration = Duration::from_secs(5);

impl KubeJobs {
    /// Starts the watch over Backup Jobs (all namespaces, or one).
    pub fn start(client: Client, namespace: Option<&str>) -> (Self, tokio::task::JoinHandle<()>) {
        let api: Api<Job> = match namespace {
            Some(ns) => Api::namespaced(client.clone(), ns),
            None => Api::all(client.clone()),
        };
        let (store, writer) = reflector::store();
        let changed = Arc::new(Notify::new());
        let notify = changed.clone();
        let task = tokio::spawn(async move {
            let stream = watcher(api, watcher::Config::default().labels(JOB_SELECTOR))
                .default_backoff()
                .reflect(writer)
                .applied_objects();
            futures::pin_mut!(stream);
            loop {
                match stream.try_next().await {
                    Ok(Some(_)) => notify.notify_waiters(),
                    Ok(None) => break,
                    Err(e) => tracing::warn!(error = %e, "watching Backup Jobs"),
                }
            }
        });
        (
            Self {
                applier: Applier::new(client, FIELD_MANAGER),
                store,
                changed,
            },
            task,
        )
    }

    async fn wait_for(&self, namespace: &str, name: &str) -> Result<JobOutcome, JobError> {
        let key = ObjectRef::<Job>::new(name).within(namespace);
        let mut seen = false;
        loop {
            let notified = self.changed.notified();
            futures::pin_mut!(notified);
            notified.as_mut().enable();
            match self.store.get(&key) {
                Some(job) => {
                    seen = true;
                    if let Some(o) = outcome(&job) {
                        return Ok(o);
                    }
                }
                None if seen => {
                    return Err(JobError::Vanished {
                        namespace: namespace.into(),
                        name: name.into(),
                    });
                }
                None => {}
            }
            let _ = tokio::time::timeout(RECHECK, notified).await;
        }
    }
}

impl JobApi for KubeJobs {
    fn apply<'a>(&'a self, job: &'a Job) -> BoxFuture<'a, Result<(), JobError>> {
        Box::pin(async move {
            self.applier.apply(job).await?;
            Ok(())
        })
    }

    fn wait<'a>(
        &'a self,
        namespace: &'a str,
        name: &'a str,
    ) -> BoxFuture<'a, Result<JobOutcome, JobError>> {
        Box::pin(self.wait_for(namespace, name))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::batch::v1::{JobCondition, JobStatus};

    fn job(conditions: &[(&str, &str, &str)]) -> Job {
        Job {
            status: Some(JobStatus {
                conditions: Some(
                    conditions
                        .iter()
                        .map(|(t, s, r)| JobCondition {
                            type_: t.to_string(),
                            status: s.to_string(),
                            reason: Some(r.to_string()),
                            message: Some(format!("{t} {r}")),
                            ..Default::default()
                        })
                        .collect(),
                ),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn outcome_from_conditions() {
        assert_eq!(outcome(&Job::default()), None);
        assert_eq!(outcome(&job(&[("Suspended", "True", "x")])), None);
        assert_eq!(
            outcome(&job(&[
                ("SuccessCriteriaMet", "True", "CompletionsReached"),
                ("Complete", "True", "CompletionsReached")
            ])),
            Some(JobOutcome::Succeeded)
        );
        assert_eq!(outcome(&job(&[("Complete", "False", "x")])), None);
        assert_eq!(
            outcome(&job(&[("Failed", "True", "BackoffLimitExceeded")])),
            Some(JobOutcome::Failed {
                reason: "BackoffLimitExceeded".into(),
                message: "Failed BackoffLimitExceeded".into()
            })
        );
    }
}
