//! Leader election through a coordination.k8s.io Lease, so two replicas of a
//! service never both reconcile. Like client-go: acquire, renew every third of
//! the lease, and stop acting at once when a renewal fails.

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::api::{Api, PostParams};
use kube::{Client, ResourceExt};
use std::time::Duration;
use tokio::sync::watch;

use crate::readiness::{Readiness, Role};

#[derive(Clone)]
pub struct LeaderElector {
    api: Api<Lease>,
    name: String,
    identity: String,
    lease: Duration,
}

/// Tells whether this process still leads; flips to false once, for good.
pub struct Leadership {
    rx: watch::Receiver<bool>,
}

impl Leadership {
    /// Completes when leadership is lost.
    pub async fn lost(mut self) {
        while *self.rx.borrow() {
            if self.rx.changed().await.is_err() {
                return;
            }
        }
    }
}

impl LeaderElector {
    pub fn new(
        client: Client,
        namespace: &str,
        name: &str,
        identity: &str,
        lease: Duration,
    ) -> Self {
        Self {
            api: Api::namespaced(client, namespace),
            name: name.to_string(),
            identity: identity.to_string(),
            lease,
        }
    }

    /// Waits until this process holds the Lease, then keeps renewing it.
    /// `role` hears where this replica stands after every attempt.
    pub async fn acquire(&self, role: &(impl Fn(Role) + Send + Sync)) -> Leadership {
        loop {
            match self.try_acquire().await {
                Ok(true) => break,
                Ok(false) => role(Role::Standby { healthy: true }),
                Err(e) => {
                    role(Role::Standby { healthy: false });
                    tracing::warn!(error = %e, lease = %self.name, "lease acquisition failed");
                }
            }
            tokio::time::sleep(self.lease / 3).await;
        }
        role(Role::Leading);
        tracing::info!(lease = %self.name, identity = %self.identity, "became leader");
        let (tx, rx) = watch::channel(true);
        let me = self.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(me.lease / 3).await;
                match me.try_acquire().await {
                    Ok(true) => {}
                    Ok(false) => {
                        tracing::error!(lease = %me.name, "leadership taken by another replica");
                        let _ = tx.send(false);
                        return;
                    }
                    Err(e) => {
                        tracing::error!(error = %e, lease = %me.name, "lease renewal failed; stepping down");
                        let _ = tx.send(false);
                        return;
                    }
                }
            }
        });
        Leadership { rx }
    }

    /// One round: create, renew or take over an expired Lease.
    pub async fn try_acquire(&self) -> Result<bool, kube::Error> {
        let now = Timestamp::now();
        let secs = i32::try_from(self.lease.as_secs())
            .unwrap_or(i32::MAX)
            .max(1);
        let Some(existing) = self.api.get_opt(&self.name).await? else {
            let lease = Lease {
                metadata: ObjectMeta {
                    name: Some(self.name.clone()),
                    ..ObjectMeta::default()
                },
                spec: Some(LeaseSpec {
                    holder_identity: Some(self.identity.clone()),
                    lease_duration_seconds: Some(secs),
                    acquire_time: Some(MicroTime(now)),
                    renew_time: Some(MicroTime(now)),
                    lease_transitions: Some(0),
                    ..LeaseSpec::default()
                }),
            };
            return match self.api.create(&PostParams::default(), &lease).await {
                Ok(_) => Ok(true),
                Err(kube::Error::Api(s)) if s.code == 409 => Ok(false),
                Err(e) => Err(e),
            };
        };
        let spec = existing.spec.clone().unwrap_or_default();
        let held_by_me = spec.holder_identity.as_deref() == Some(self.identity.as_str());
        let expired = match (&spec.renew_time, spec.lease_duration_seconds) {
            (Some(MicroTime(renewed)), Some(d)) => {
                *renewed + SignedDuration::from_secs(i64::from(d)) < now
            }
            _ => true,
        };
        if !held_by_me && !expired {
            return Ok(false);
        }
        let mut lease = existing.clone();
        let mut new_spec = spec.clone();
        new_spec.renew_time = Some(MicroTime(now));
        new_spec.lease_duration_seconds = Some(secs);
        if !held_by_me {
            new_spec.holder_identity = Some(self.identity.clone());
            new_spec.acquire_time = Some(MicroTime(now));
            new_spec.lease_transitions = Some(spec.lease_transitions.unwrap_or(0) + 1);
        }
        lease.spec = Some(new_spec);
        // replace carries the resourceVersion: a concurrent taker makes this 409.
        match self
            .api
            .replace(&existing.name_any(), &PostParams::default(), &lease)
            .await
        {
            Ok(_) => Ok(true),
            Err(kube::Error::Api(s)) if s.code == 409 => Ok(false),
            Err(e) => Err(e),
        }
    }
}

/// The `leader_election:` section of a controller service's config.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LeaderElectionConfig {
    pub enabled: bool,
    /// Where the Lease lives.
    pub namespace: String,
    /// Default: `midplane-<service>`.
    pub lease_name: Option<String>,
    pub lease_seconds: u64,
}

impl Default for LeaderElectionConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            namespace: "midplane-system".into(),
            lease_name: None,
            lease_seconds: 15,
        }
    }
}

/// Runs `work` only while this process holds the service's Lease (or always,
/// when election is off). Losing the Lease ends `work` and calls `on_lost`, so
/// a replica never acts without it; `stop` ends the wait for the Lease.
/// `readiness` hears where this replica stands (see [`crate::readiness`]).
pub async fn run_as_leader(
    client: Client,
    config: &LeaderElectionConfig,
    service: &str,
    readiness: &Readiness,
    stop: impl std::future::Future<Output = ()>,
    work: impl std::future::Future<Output = ()>,
    on_lost: impl FnOnce(),
) {
    if !config.enabled {
        readiness.set_role(Role::Leading);
        work.await;
        return;
    }
    let identity =
        std::env::var("POD_NAME").unwrap_or_else(|_| format!("{service}-{}", std::process::id()));
    let lease = config
        .lease_name
        .clone()
        .unwrap_or_else(|| format!("midplane-{service}"));
    let elector = LeaderElector::new(
        client,
        &config.namespace,
        &lease,
        &identity,
        Duration::from_secs(config.lease_seconds),
    );
    let role = |r: Role| readiness.set_role(r);
    let leadership = tokio::select! {
        l = elector.acquire(&role) => l,
        _ = stop => return,
    };
    tokio::select! {
        _ = work => {}
        _ = leadership.lost() => {
            tracing::error!(%lease, "lost leadership; stopping");
            on_lost();
        }
    }
}
