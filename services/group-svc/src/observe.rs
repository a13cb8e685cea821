//! What the agents report, per Group (docs/design.md, "Roles from agents"
//! and "Failover"): one task per Group follows the gateway's merged
//! `WatchLifecycle` stream (agent 1 of every pod: phase, role, term, the
//! primary followed and the link to it), keeps the last report of each pod,
//! wakes the Group's reconcile when a report is news, and fails the primary
//! over when it has been lost for [`FAILOVER_AFTER`].
//!
//! The reconcile reads the reports (see [`Seen::primary`]): the primary is
//! the instance whose agent reports the primary role under the highest term
//! any agent reports, so a switchover or failover done by anyone is in the
//! status and the role labels one reconcile later, and a returning old
//! primary (a lower term) never wins.

use crate::gateway::Gateway;
use midplane_proto::agent::lifecycle_event::Phase;
use midplane_proto::agent::{Role, RoleReport};
use midplane_proto::gateway::GroupLifecycleEvent;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::task::JoinHandle;

/// How long the primary may be lost (its agent unreachable, its middleware
/// not answering or not primary, no replica's link to it up) before the
/// controller fails it over.
pub const FAILOVER_AFTER: Duration = Duration::from_millis(1000);
/// How often the loss is looked for.
const CHECK_EVERY: Duration = Duration::from_millis(100);
/// Wait after a failover attempt before the next one.
const RETRY_FAILOVER: Duration = Duration::from_secs(2);
/// Wait before asking the gateway for the stream again.
const RECONNECT: Duration = Duration::from_millis(500);
/// Deadline of a failover through the gateway.
const FAILOVER_TIMEOUT: Duration = Duration::from_secs(10);

/// The last report of one pod.
#[derive(Clone, Debug, PartialEq)]
pub struct PodSeen {
    pub instance: String,
    pub phase: Option<Phase>,
    pub message: String,
    pub role: Option<RoleReport>,
    /// Why the pod's agent 1 could not be heard, when it could not.
    pub error: Option<String>,
}

impl PodSeen {
    fn role_is(&self, role: Role) -> bool {
        self.error.is_none() && self.role.as_ref().is_some_and(|r| r.role == role as i32)
    }

    /// A replica following a primary with the link up: its sync is done.
    pub fn in_sync_replica(&self) -> bool {
        self.role_is(Role::Replica) && self.role.as_ref().is_some_and(|r| r.primary_link_up)
    }

    /// Agent 1's phase as the Group's status shows it.
    pub fn agent_phase(&self) -> &'static str {
        if self.error.is_some() {
            return "Unreachable";
        }
        match self.phase {
            Some(Phase::Started) => "Started",
            Some(Phase::Ready) => "Ready",
            Some(Phase::NotReady) => "NotReady",
            Some(Phase::Stopping) => "Stopping",
            Some(Phase::Stopped) => "Stopped",
            _ => "Unknown",
        }
    }
}

/// A failover the watch made, for the reconcile to announce.
#[derive(Clone, Debug, PartialEq)]
pub struct FailoverDone {
    pub failed_primary: String,
    pub new_primary: String,
    pub term: i64,
    /// From the loss being noticed to the promotion.
    pub after: Duration,
}

/// Every pod's last report, by pod name.
#[derive(Clone, Debug, Default)]
pub struct Seen {
    pub pods: BTreeMap<String, PodSeen>,
    /// Whether the stream from the gateway is up (the controller sees).
    pub connected: bool,
    /// Instances seen answering as primary since the watch began: only
    /// those can be lost (one still starting is not).
    pub answered: BTreeSet<String>,
}

impl Seen {
    /// The highest term any agent reports.
    pub fn max_term(&self) -> i64 {
        self.pods
            .values()
            .filter(|p| p.error.is_none())
            .filter_map(|p| p.role.as_ref().map(|r| r.term))
            .max()
            .unwrap_or_default()
    }

    /// The primary the agents name among `current` (instance → its current
    /// Pod): the primary role under the highest term reported, then the
    /// highest offset. None when no agent of a current Pod claims it.
    pub fn primary(&self, current: &BTreeMap<String, String>) -> Option<(String, i64)> {
        let newest = self.max_term();
        current
            .iter()
            .filter_map(|(instance, pod)| Some((instance, self.pods.get(pod)?)))
            .filter(|(_, p)| p.role_is(Role::Primary))
            .filter_map(|(i, p)| p.role.as_ref().map(|r| (i, r)))
            .filter(|(_, r)| r.term >= newest)
            .max_by_key(|(_, r)| (r.term, r.replication_offset))
            .map(|(i, r)| (i.clone(), r.term))
    }

    /// Instances of `current` that answer but neither are `primary` nor
    /// follow it (a returning old primary, a replica of an older primary).
    pub fn astray(&self, current: &BTreeMap<String, String>, primary: &str) -> Vec<String> {
        let Some(address) = current
            .get(primary)
            .and_then(|pod| self.pods.get(pod))
            .and_then(|p| p.role.as_ref())
            .map(|r| r.address.clone())
            .filter(|a| !a.is_empty())
        else {
            return Vec::new();
        };
        current
            .iter()
            .filter(|(instance, _)| instance.as_str() != primary)
            .filter_map(|(instance, pod)| Some((instance, self.pods.get(pod)?)))
            .filter(|(_, p)| p.error.is_none())
            .filter(|(_, p)| match &p.role {
                Some(r) if r.role == Role::Replica as i32 => r.primary_address != address,
                Some(r) => r.role == Role::Primary as i32 || r.role == Role::Fenced as i32,
                None => false,
            })
            .map(|(i, _)| i.clone())
            .collect()
    }

    /// Whether `primary` is lost as the agents tell it: it answered as
    /// primary before, now no pod of it does, and no replica's link to a
    /// primary is up.
    pub fn primary_lost(&self, primary: &str) -> bool {
        if !self.answered.contains(primary) {
            return false;
        }
        let answers = self
            .pods
            .values()
            .any(|p| p.instance == primary && p.role_is(Role::Primary));
        let linked = self.pods.values().any(|p| {
            p.role_is(Role::Replica) && p.role.as_ref().is_some_and(|r| r.primary_link_up)
        });
        !answers && !linked
    }

    /// Takes an event in; returns whether it is news (worth a reconcile).
    fn take(&mut self, ev: GroupLifecycleEvent) -> bool {
        let Some(target) = ev.target else {
            return false;
        };
        let next = match (ev.event, ev.error) {
            (Some(e), _) => PodSeen {
                instance: target.instance.clone(),
                phase: Phase::try_from(e.phase).ok(),
                message: e.message,
                role: e.role,
                error: None,
            },
            (None, Some(err)) => PodSeen {
                instance: target.instance.clone(),
                phase: None,
                message: String::new(),
                role: None,
                error: Some(err.message),
            },
            (None, None) => return false,
        };
        let news = self.pods.get(&target.pod).is_none_or(|p| {
            (p.phase, &p.error, p.role.as_ref().map(shape))
                != (next.phase, &next.error, next.role.as_ref().map(shape))
        });
        if next.role_is(Role::Primary) {
            self.answered.insert(next.instance.clone());
        }
        self.pods.insert(target.pod, next);
        news
    }
}

/// The parts of a role report that change what the controller does (not
/// the offsets, which move with every write).
fn shape(r: &RoleReport) -> (i32, i64, &str, bool) {
    (
        r.role,
        r.term,
        r.primary_address.as_str(),
        r.primary_link_up,
    )
}

/// One Group's watch.
#[derive(Default)]
struct Watch {
    seen: Mutex<Seen>,
    /// The primary the Group's status names (set by each reconcile).
    primary: Mutex<String>,
    failovers: Mutex<Vec<FailoverDone>>,
    task: Mutex<Option<JoinHandle<()>>>,
}

/// The watches of every Group this controller reconciles.
#[derive(Default)]
pub struct Observers {
    groups: Mutex<HashMap<(String, String), Arc<Watch>>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Observers {
    /// Starts the Group's watch unless it runs; `wake` asks for a reconcile.
    pub fn ensure(
        &self,
        namespace: &str,
        name: &str,
        gateway: &Gateway,
        wake: impl Fn() + Send + Sync + 'static,
    ) {
        let key = (namespace.to_string(), name.to_string());
        let watch = lock(&self.groups).entry(key).or_default().clone();
        let mut task = lock(&watch.task);
        if task.as_ref().is_some_and(|t| !t.is_finished()) {
            return;
        }
        let (gw, ns, n, w) = (
            gateway.clone(),
            namespace.to_string(),
            name.to_string(),
            watch.clone(),
        );
        *task = Some(tokio::spawn(follow(gw, ns, n, w, Arc::new(wake))));
    }

    /// The reports so far (empty when the Group is not watched).
    pub fn seen(&self, namespace: &str, name: &str) -> Seen {
        self.watch(namespace, name)
            .map(|w| lock(&w.seen).clone())
            .unwrap_or_default()
    }

    /// Tells the watch which instance the status names primary, and which
    /// Pods are current (reports of other Pods are dropped).
    pub fn update(&self, namespace: &str, name: &str, primary: &str, pods: &[String]) {
        if let Some(w) = self.watch(namespace, name) {
            *lock(&w.primary) = primary.to_string();
            lock(&w.seen).pods.retain(|p, _| pods.contains(p));
        }
    }

    /// Failovers made since the last call.
    pub fn failovers(&self, namespace: &str, name: &str) -> Vec<FailoverDone> {
        self.watch(namespace, name)
            .map(|w| std::mem::take(&mut *lock(&w.failovers)))
            .unwrap_or_default()
    }

    /// Stops the Group's watch (the Group is gone).
    pub fn forget(&self, namespace: &str, name: &str) {
        let key = (namespace.to_string(), name.to_string());
        if let Some(w) = lock(&self.groups).remove(&key)
            && let Some(t) = lock(&w.task).take()
        {
            t.abort();
        }
    }

    fn watch(&self, namespace: &str, name: &str) -> Option<Arc<Watch>> {
        lock(&self.groups)
            .get(&(namespace.to_string(), name.to_string()))
            .cloned()
    }
}

/// Follows the Group's stream, reconnecting, and fails a lost primary over.
async fn follow(
    gateway: Gateway,
    namespace: String,
    name: String,
    watch: Arc<Watch>,
    wake: Arc<dyn Fn() + Send + Sync>,
) {
    let mut lost_since: Option<Instant> = None;
    let mut next_attempt = Instant::now();
    loop {
        let mut stream = match gateway.watch_lifecycle(&namespace, &name).await {
            Ok(s) => s,
            Err(e) => {
                tracing::debug!(group = %name, error = %e, "WatchLifecycle");
                tokio::time::sleep(RECONNECT).await;
                continue;
            }
        };
        lock(&watch.seen).connected = true;
        let mut tick = tokio::time::interval(CHECK_EVERY);
        loop {
            tokio::select! {
                msg = stream.message() => match msg {
                    Ok(Some(ev)) => {
                        if lock(&watch.seen).take(ev) {
                            wake();
                        }
                    }
                    Ok(None) | Err(_) => break,
                },
                _ = tick.tick() => {
                    let primary = lock(&watch.primary).clone();
                    let lost = {
                        let seen = lock(&watch.seen);
                        seen.connected && !primary.is_empty() && seen.primary_lost(&primary)
                    };
                    if !lost {
                        lost_since = None;
                        continue;
                    }
                    let since = *lost_since.get_or_insert_with(Instant::now);
                    if since.elapsed() < FAILOVER_AFTER || Instant::now() < next_attempt {
                        continue;
                    }
                    next_attempt = Instant::now() + RETRY_FAILOVER;
                    if let Some(done) = failover(&gateway, &namespace, &name, &primary, since).await {
                        *lock(&watch.primary) = done.new_primary.clone();
                        lock(&watch.failovers).push(done);
                        lost_since = None;
                        wake();
                    }
                }
            }
        }
        // The controller lost sight: never a reason to fail over.
        lock(&watch.seen).connected = false;
        lost_since = None;
        tokio::time::sleep(RECONNECT).await;
    }
}

/// Asks the gateway to fail `primary` over. The gateway refuses while a
/// primary of the top term still answers it.
async fn failover(
    gateway: &Gateway,
    namespace: &str,
    name: &str,
    primary: &str,
    since: Instant,
) -> Option<FailoverDone> {
    match gateway
        .failover(namespace, name, primary, FAILOVER_TIMEOUT)
        .await
    {
        Ok(r) if r.success => {
            tracing::warn!(group = %name, failed = %primary, new = %r.new_primary_instance, term = r.term, "failover");
            Some(FailoverDone {
                failed_primary: primary.to_string(),
                new_primary: r.new_primary_instance,
                term: r.term,
                after: since.elapsed(),
            })
        }
        Ok(r) => {
            let why = r.error.map(|e| e.message).unwrap_or_default();
            tracing::info!(group = %name, primary = %primary, why = %why, "failover not done");
            None
        }
        Err(e) => {
            tracing::warn!(group = %name, error = %e, "failover call");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use midplane_proto::agent::LifecycleEvent;
    use midplane_proto::gateway::PodTarget;

    fn report(role: Role, term: i64, address: &str, follows: &str, link: bool) -> RoleReport {
        RoleReport {
            role: role as i32,
            term,
            address: address.into(),
            primary_address: follows.into(),
            primary_link_up: link,
            ..RoleReport::default()
        }
    }

    fn event(pod: &str, instance: &str, role: Option<RoleReport>) -> GroupLifecycleEvent {
        GroupLifecycleEvent {
            target: Some(PodTarget {
                pod: pod.into(),
                instance: instance.into(),
                ..PodTarget::default()
            }),
            event: Some(LifecycleEvent {
                instance: instance.into(),
                phase: Phase::Ready as i32,
                role,
                ..LifecycleEvent::default()
            }),
            error: None,
        }
    }

    fn current() -> BTreeMap<String, String> {
        BTreeMap::from([
            ("g-0".to_string(), "p0".to_string()),
            ("g-1".to_string(), "p1".to_string()),
        ])
    }

    #[test]
    fn the_highest_term_names_the_primary() {
        let mut s = Seen::default();
        assert!(s.take(event(
            "p0",
            "g-0",
            Some(report(Role::Primary, 1, "a0", "", false))
        )));
        assert!(s.take(event(
            "p1",
            "g-1",
            Some(report(Role::Replica, 1, "a1", "a0", true))
        )));
        assert_eq!(s.primary(&current()), Some(("g-0".into(), 1)));
        assert!(s.astray(&current(), "g-0").is_empty());
        assert!(
            !s.take(event(
                "p1",
                "g-1",
                Some(report(Role::Replica, 1, "a1", "a0", true))
            )),
            "the same shape is no news"
        );
        // g-1 promoted under term 2; g-0 comes back still claiming term 1.
        s.take(event(
            "p1",
            "g-1",
            Some(report(Role::Primary, 2, "a1", "", false)),
        ));
        assert_eq!(s.primary(&current()), Some(("g-1".into(), 2)));
        assert_eq!(
            s.astray(&current(), "g-1"),
            ["g-0"],
            "the old primary rejoins"
        );
    }

    #[test]
    fn a_primary_is_lost_only_when_nobody_sees_it() {
        let mut s = Seen::default();
        s.take(event(
            "p0",
            "g-0",
            Some(report(Role::Primary, 1, "a0", "", false)),
        ));
        s.take(event(
            "p1",
            "g-1",
            Some(report(Role::Replica, 1, "a1", "a0", true)),
        ));
        assert!(!s.primary_lost("g-0"));
        s.take(GroupLifecycleEvent {
            error: Some(Default::default()),
            event: None,
            ..event("p0", "g-0", None)
        });
        assert!(!s.primary_lost("g-0"), "a replica still has its link up");
        s.take(event(
            "p1",
            "g-1",
            Some(report(Role::Replica, 1, "a1", "a0", false)),
        ));
        assert!(s.primary_lost("g-0"));
        assert_eq!(s.pods["p0"].agent_phase(), "Unreachable");
    }
}
