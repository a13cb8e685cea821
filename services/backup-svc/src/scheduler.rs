//! The backup scheduler: which targets exist (from the watched Apps), when each is due, and
//! the loop that fires them. [`Scheduler`] is plain state driven by explicit times; [`run`]
//! feeds it from an App watch and a clock.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures::StreamExt;
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client, ResourceExt};
use midplane_api::App;
use midplane_backup::{Listing, Store};
use midplane_operator::EventRecorder;
use tokio::sync::{Semaphore, mpsc};

use crate::config::BackupSettings;
use crate::cron::{Clock, Decision, decide};
use crate::execute::{RunError, Runner, same_instance};
use crate::policy::{self, PolicyError, Target, TargetKey};

/// The outcome of the last run of a target.
#[derive(Clone, Debug)]
pub enum LastRun {
    Completed { id: String, deleted: Vec<String> },
    Failed { id: String, error: RunError },
}

#[derive(Clone, Debug)]
struct Entry {
    target: Target,
    /// The last slot fired, or since when the target has been watched.
    last: DateTime<Utc>,
    running: bool,
    last_run: Option<LastRun>,
}

/// A backup to start now.
#[derive(Clone, Debug)]
pub struct Due {
    pub target: Target,
    pub slot: DateTime<Utc>,
    /// Earlier slots folded into this run (downtime, or a run that outlasted its interval).
    pub missed: u32,
}

type AppKey = (String, String);

#[derive(Debug, Default)]
pub struct Scheduler {
    entries: BTreeMap<TargetKey, Entry>,
}

impl Scheduler {
    pub fn new() -> Self {
        Self::default()
    }

    /// Keys among `targets` the scheduler does not know yet (they need an anchor).
    pub fn unknown<'a>(&self, targets: &'a [Target]) -> Vec<&'a Target> {
        targets
            .iter()
            .filter(|t| !self.entries.contains_key(&t.key))
            .collect()
    }

    /// Replaces the targets of one App. A new target starts from its `anchors` entry (the
    /// time of its newest backup) or `now`; a known one keeps its history and running state.
    pub fn set_app(
        &mut self,
        namespace: &str,
        app: &str,
        targets: Vec<Target>,
        anchors: &BTreeMap<TargetKey, DateTime<Utc>>,
        now: DateTime<Utc>,
    ) {
        let keep: BTreeSet<TargetKey> = targets.iter().map(|t| t.key.clone()).collect();
        self.entries
            .retain(|k, _| !(k.namespace == namespace && k.app == app) || keep.contains(k));
        for t in targets {
            match self.entries.get_mut(&t.key) {
                Some(e) => e.target = t,
                None => {
                    let last = anchors.get(&t.key).copied().unwrap_or(now).min(now);
                    self.entries.insert(
                        t.key.clone(),
                        Entry {
                            target: t,
                            last,
                            running: false,
                            last_run: None,
                        },
                    );
                }
            }
        }
    }

    pub fn remove_app(&mut self, namespace: &str, app: &str) {
        self.entries
            .retain(|k, _| !(k.namespace == namespace && k.app == app));
    }

    /// Apps that have targets.
    pub fn apps(&self) -> BTreeSet<AppKey> {
        self.entries
            .keys()
            .map(|k| (k.namespace.clone(), k.app.clone()))
            .collect()
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Backups due at `now`, each marked running. A target whose backup is still running is
    /// not started twice; its slots in the meantime fold into one run after it finishes.
    pub fn due(&mut self, now: DateTime<Utc>) -> Vec<Due> {
        let mut out = Vec::new();
        for e in self.entries.values_mut().filter(|e| !e.running) {
            if let Decision::Fire { slot, missed } = decide(&e.target.schedule, e.last, now) {
                e.last = slot;
                e.running = true;
                out.push(Due {
                    target: e.target.clone(),
                    slot,
                    missed,
                });
            }
        }
        out
    }

    /// Records the end of a run (a target removed meanwhile is ignored).
    pub fn finished(&mut self, key: &TargetKey, run: LastRun) {
        if let Some(e) = self.entries.get_mut(key) {
            e.running = false;
            e.last_run = Some(run);
        }
    }

    pub fn last_run(&self, key: &TargetKey) -> Option<&LastRun> {
        self.entries.get(key).and_then(|e| e.last_run.as_ref())
    }

    pub fn is_running(&self, key: &TargetKey) -> bool {
        self.entries.get(key).is_some_and(|e| e.running)
    }

    /// The earliest next slot of a target that is not running.
    pub fn next_wake(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.entries
            .values()
            .filter(|e| !e.running)
            .filter_map(|e| match decide(&e.target.schedule, e.last, now) {
                Decision::Fire { .. } => Some(now),
                Decision::Wait { next } => next,
            })
            .min()
    }
}

/// Time of the newest backup of each target, read from the targets' storages. A storage
/// already in `listings` is not listed again (the start-up pass over every App shares one
/// listing per storage); new listings are added to it.
pub async fn anchors(
    settings: &BackupSettings,
    targets: &[&Target],
    listings: &mut BTreeMap<String, Listing>,
) -> BTreeMap<TargetKey, DateTime<Utc>> {
    let mut by_storage: BTreeMap<&str, Vec<&Target>> = BTreeMap::new();
    for t in targets {
        by_storage
            .entry(t.storage_uri.as_str())
            .or_default()
            .push(t);
    }
    let mut out = BTreeMap::new();
    for (uri, ts) in by_storage {
        if !listings.contains_key(uri) {
            let listing = match crate::resolve::store(settings, uri) {
                Ok(store) => store.list().await.map_err(|e| e.to_string()),
                Err(s) => Err(s.message().to_string()),
            };
            match listing {
                Ok(l) => {
                    listings.insert(uri.to_string(), l);
                }
                Err(e) => {
                    // describe(): the URI may carry credentials.
                    let store = Store::from_uri(uri)
                        .map(|s| s.describe())
                        .unwrap_or_default();
                    tracing::warn!(storage = %store, error = %e, "cannot read past backups; schedules start now");
                    continue;
                }
            }
        }
        if let Some(l) = listings.get(uri) {
            for t in ts {
                if let Some(m) = l.complete.iter().rev().find(|m| same_instance(m, t)) {
                    out.insert(t.key.clone(), m.started_at);
                }
            }
        }
    }
    out
}

/// The target of each Group's first instance (ordinal 0), standing for its Group.
fn first_per_group(targets: Vec<Target>) -> Vec<Target> {
    let mut seen = BTreeSet::new();
    targets
        .into_iter()
        .filter(|t| seen.insert((t.key.namespace.clone(), t.group.clone())))
        .collect()
}

/// Longest sleep between checks, so a clock that jumps (or a test's manual clock) is noticed.
const MAX_SLEEP: Duration = Duration::from_secs(1);

/// Everything the scheduler loop needs.
pub struct SchedulerLoop {
    pub client: Client,
    pub namespace: Option<String>,
    pub settings: Arc<BackupSettings>,
    pub runner: Arc<Runner>,
    pub clock: Arc<dyn Clock>,
    pub max_concurrent: usize,
    pub recorder: Option<EventRecorder>,
    /// `scheduler.mode: resources`: each due slot creates a Backup resource for the Group
    /// instead of running the backup here.
    pub resources: bool,
}

/// Reports from the loop, for tests and logs.
#[derive(Clone, Debug)]
pub enum Report {
    Scheduled {
        app: AppKey,
        targets: usize,
    },
    PolicyInvalid {
        app: AppKey,
        errors: Vec<PolicyError>,
    },
    Finished {
        key: TargetKey,
        result: Result<String, RunError>,
    },
}

impl SchedulerLoop {
    /// Watches Apps and fires their backups until `stop` resolves.
    pub async fn run(
        self,
        stop: impl std::future::Future<Output = ()>,
        reports: Option<mpsc::UnboundedSender<Report>>,
    ) {
        let api: Api<App> = match &self.namespace {
            Some(ns) => Api::namespaced(self.client.clone(), ns),
            None => Api::all(self.client.clone()),
        };
        let stream = watcher(api, watcher::Config::default()).default_backoff();
        futures::pin_mut!(stream);
        futures::pin_mut!(stop);
        let report = |r: Report| {
            if let Some(tx) = &reports {
                let _ = tx.send(r);
            }
        };
        let mut sched = Scheduler::new();
        let mut policy_errors: BTreeMap<AppKey, Vec<PolicyError>> = BTreeMap::new();
        let mut listed: Option<BTreeSet<AppKey>> = None;
        // Storage listings shared by the Apps of one initial list, dropped when it ends.
        let mut init_listings: BTreeMap<String, Listing> = BTreeMap::new();
        let (done_tx, mut done_rx) =
            mpsc::unbounded_channel::<(TargetKey, String, Result<Vec<String>, RunError>)>();
        let permits = Arc::new(Semaphore::new(self.max_concurrent.max(1)));
        // Kept across iterations, so a steady stream of App events cannot starve the ticks.
        let mut tick_at = tokio::time::Instant::now();
        loop {
            tokio::select! {
                _ = &mut stop => break,
                ev = stream.next() => {
                    let Some(ev) = ev else { break };
                    let ev = match ev {
                        Ok(ev) => ev,
                        Err(e) => {
                            tracing::warn!(error = %e, "watching Apps");
                            continue;
                        }
                    };
                    match ev {
                        watcher::Event::Init => listed = Some(BTreeSet::new()),
                        watcher::Event::InitApply(app) | watcher::Event::Apply(app) => {
                            let key = (app.namespace().unwrap_or_default(), app.name_any());
                            if let Some(l) = listed.as_mut() {
                                l.insert(key.clone());
                            }
                            if app.metadata.deletion_timestamp.is_some() {
                                sched.remove_app(&key.0, &key.1);
                                continue;
                            }
                            let (targets, errors) = policy::targets(&app, &self.settings);
                            // One Backup per Group: the snapshot picks the instance.
                            let targets = if self.resources { first_per_group(targets) } else { targets };
                            if policy_errors.get(&key) != Some(&errors) {
                                if !errors.is_empty() {
                                    self.policy_invalid(&app, &errors).await;
                                    report(Report::PolicyInvalid { app: key.clone(), errors: errors.clone() });
                                }
                                policy_errors.insert(key.clone(), errors);
                            }
                            let unknown = sched.unknown(&targets);
                            let mut fresh = BTreeMap::new();
                            let listings = if listed.is_some() { &mut init_listings } else { &mut fresh };
                            let anchors = anchors(&self.settings, &unknown, listings).await;
                            let n = targets.len();
                            sched.set_app(&key.0, &key.1, targets, &anchors, self.clock.now());
                            report(Report::Scheduled { app: key, targets: n });
                        }
                        watcher::Event::InitDone => {
                            init_listings.clear();
                            if let Some(seen) = listed.take() {
                                for (ns, name) in sched.apps() {
                                    if !seen.contains(&(ns.clone(), name.clone())) {
                                        sched.remove_app(&ns, &name);
                                    }
                                }
                                policy_errors.retain(|k, _| seen.contains(k));
                            }
                        }
                        watcher::Event::Delete(app) => {
                            let key = (app.namespace().unwrap_or_default(), app.name_any());
                            sched.remove_app(&key.0, &key.1);
                            policy_errors.remove(&key);
                        }
                    }
                }
                Some((key, id, result)) = done_rx.recv() => {
                    let run = match &result {
                        Ok(deleted) => LastRun::Completed { id: id.clone(), deleted: deleted.clone() },
                        Err(e) => LastRun::Failed { id: id.clone(), error: e.clone() },
                    };
                    sched.finished(&key, run);
                    report(Report::Finished { key, result: result.map(|_| id) });
                }
                _ = tokio::time::sleep_until(tick_at) => {
                    for due in sched.due(self.clock.now()) {
                        if due.missed > 0 {
                            tracing::info!(target = %due.target.key, missed = due.missed, slot = %due.slot, "missed backup slots; running once");
                        }
                        let id = midplane_backup::manifest::new_backup_id(Utc::now());
                        let (runner, permits, done) = (self.runner.clone(), permits.clone(), done_tx.clone());
                        if self.resources {
                            let client = self.client.clone();
                            tokio::spawn(async move {
                                let result = crate::resources::create_scheduled(&client, &due.target, &id).await;
                                let _ = done.send((due.target.key.clone(), id, result.map(|_| Vec::new())));
                            });
                            continue;
                        }
                        tokio::spawn(async move {
                            let _permit = permits.acquire_owned().await;
                            let result = runner.run(&due.target, &id).await.map(|r| r.deleted);
                            let _ = done.send((due.target.key.clone(), id, result));
                        });
                    }
                    let now = self.clock.now();
                    let sleep = sched
                        .next_wake(now)
                        .and_then(|t| (t - now).to_std().ok())
                        .unwrap_or(MAX_SLEEP)
                        .min(MAX_SLEEP);
                    tick_at = tokio::time::Instant::now() + sleep;
                }
            }
        }
    }

    async fn policy_invalid(&self, app: &App, errors: &[PolicyError]) {
        let note = errors
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("; ");
        tracing::warn!(app = %app.name_any(), namespace = ?app.namespace(), %note, "backup policy cannot run");
        if let Some(rec) = &self.recorder {
            rec.warning(app, "BackupPolicyInvalid", "Schedule", note)
                .await;
        }
    }
}

#[cfg(test)]
#[path = "scheduler_tests.rs"]
mod tests;
