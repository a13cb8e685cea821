//! The in-memory object store: one global resourceVersion counter, objects per kind, a uid
//! index, an owner→dependents index for garbage collection, and the retained event window that
//! watches replay from.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use serde_json::Value;
use tokio::sync::broadcast;

use crate::error::{ApiError, ApiResult};
use crate::logged::LoggedEvent;
use crate::registry::{GroupResource, Registry};

/// A stored object's identity.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ObjKey {
    pub gr: GroupResource,
    pub namespace: String,
    pub name: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventType {
    Added,
    Modified,
    Deleted,
}

/// One change, as committed: what the built-in controllers receive. Watch clients get a
/// [`LoggedEvent`].
#[derive(Debug)]
pub struct WatchEvent {
    pub gr: GroupResource,
    pub etype: EventType,
    pub object: Arc<Value>,
    pub old: Option<Arc<Value>>,
}

pub type EventReceiver = broadcast::Receiver<Arc<LoggedEvent>>;

pub type Objects = BTreeMap<(String, String), Arc<Value>>;

pub struct Inner {
    pub rv: u64,
    /// Seeds addresses the apiserver allocates (ClusterIPs, NodePorts): one value per
    /// write, also for writes prepared outside the lock, so no two collide.
    alloc: AtomicU64,
    pub registry: Registry,
    pub objects: HashMap<GroupResource, Objects>,
    pub uids: HashMap<String, ObjKey>,
    pub dependents: HashMap<String, HashSet<ObjKey>>,
    /// Retained events per resource, like the apiserver's per-resource watch cache: churn of
    /// one kind never expires another kind's watchers.
    log: HashMap<GroupResource, VecDeque<Arc<LoggedEvent>>>,
    log_cap: usize,
    /// Per resource, the newest resourceVersion no longer in the window: watching from below
    /// it is 410 Gone.
    compacted: HashMap<GroupResource, u64>,
    /// Committed writes per resource and event type, then writes that changed nothing, for
    /// `GET /_emulator/stats`.
    pub writes: HashMap<GroupResource, [u64; 4]>,
    /// How long a list continue token stays valid (the apiserver: until etcd compaction).
    pub continue_ttl: std::time::Duration,
    /// Process pods: ClusterIPs come from `127.<block>.192.0/18` (see `process::addresses`)
    /// instead of 10.96.0.0/16, so that the userspace proxy can listen on them.
    pub loopback_block: Option<u8>,
    /// Pods are deleted gracefully (deletionTimestamp first, removed by the kubelet once
    /// their processes are gone); on for process pods, off for simulated ones.
    pub graceful_pods: bool,
    tx: broadcast::Sender<Arc<LoggedEvent>>,
    /// The built-in controllers get every event without loss (a watch client that lags is
    /// closed and resumes from its last version).
    internal: Vec<tokio::sync::mpsc::UnboundedSender<Arc<WatchEvent>>>,
}

/// What an apiserver write allocates addresses from: a seed unique to the write and, for
/// process pods, the loopback block ClusterIPs come from.
#[derive(Clone, Copy, Debug)]
pub struct Alloc {
    pub seed: u64,
    pub loopback_block: Option<u8>,
}

pub fn meta_str<'a>(obj: &'a Value, field: &str) -> &'a str {
    obj["metadata"][field].as_str().unwrap_or_default()
}

pub fn key_of(gr: &GroupResource, obj: &Value) -> ObjKey {
    ObjKey {
        gr: gr.clone(),
        namespace: meta_str(obj, "namespace").into(),
        name: meta_str(obj, "name").into(),
    }
}

fn owner_uids(obj: &Value) -> Vec<String> {
    obj["metadata"]["ownerReferences"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|r| r["uid"].as_str().map(String::from))
        .collect()
}

impl Inner {
    /// A fresh allocation seed (see [`Inner::alloc`]).
    pub fn next_alloc(&self) -> Alloc {
        Alloc {
            seed: self.alloc.fetch_add(1, Ordering::Relaxed),
            loopback_block: self.loopback_block,
        }
    }

    pub fn get(&self, gr: &GroupResource, ns: &str, name: &str) -> Option<Arc<Value>> {
        self.objects
            .get(gr)?
            .get(&(ns.to_string(), name.to_string()))
            .cloned()
    }

    pub fn get_key(&self, k: &ObjKey) -> Option<Arc<Value>> {
        self.get(&k.gr, &k.namespace, &k.name)
    }

    pub fn collection(&self, gr: &GroupResource) -> Option<&Objects> {
        self.objects.get(gr)
    }

    fn index(&mut self, key: &ObjKey, old: Option<&Value>, new: Option<&Value>) {
        if let Some(old) = old {
            for u in owner_uids(old) {
                if let Some(set) = self.dependents.get_mut(&u) {
                    set.remove(key);
                    if set.is_empty() {
                        self.dependents.remove(&u);
                    }
                }
            }
            self.uids.remove(meta_str(old, "uid"));
        }
        if let Some(new) = new {
            for u in owner_uids(new) {
                self.dependents.entry(u).or_default().insert(key.clone());
            }
            self.uids.insert(meta_str(new, "uid").into(), key.clone());
        }
    }

    fn record(
        &mut self,
        gr: &GroupResource,
        etype: EventType,
        object: Arc<Value>,
        old: Option<Arc<Value>>,
    ) {
        self.count_write(gr, etype as usize);
        let full = Arc::new(WatchEvent {
            gr: gr.clone(),
            etype,
            object: object.clone(),
            old: old.clone(),
        });
        self.internal.retain(|tx| tx.send(full.clone()).is_ok());
        let rt = self.registry.get(gr);
        let fields = rt.as_ref().map(|rt| rt.selectable_fields.as_slice());
        let ev = Arc::new(LoggedEvent::new(
            self.rv,
            gr.clone(),
            etype,
            object,
            old.as_deref(),
            fields.unwrap_or_default(),
        ));
        let log = self.log.entry(gr.clone()).or_default();
        log.push_back(ev.clone());
        while log.len() > self.log_cap {
            if let Some(dropped) = log.pop_front() {
                self.compacted.insert(gr.clone(), dropped.rv);
            }
        }
        // No receivers is fine: nobody is watching.
        let _ = self.tx.send(ev);
    }

    /// Count a write in slot `slot` of [`Inner::writes`] (the key is copied only once per
    /// resource).
    pub fn count_write(&mut self, gr: &GroupResource, slot: usize) {
        match self.writes.get_mut(gr) {
            Some(counts) => counts[slot] += 1,
            None => {
                let mut counts = [0; 4];
                counts[slot] = 1;
                self.writes.insert(gr.clone(), counts);
            }
        }
    }

    /// Store a created or updated object under a fresh resourceVersion.
    pub fn commit_put(&mut self, gr: &GroupResource, mut obj: Value) -> Arc<Value> {
        self.rv += 1;
        obj["metadata"]["resourceVersion"] = Value::String(self.rv.to_string());
        let key = key_of(gr, &obj);
        let obj = Arc::new(obj);
        let old = self
            .objects
            .entry(gr.clone())
            .or_default()
            .insert((key.namespace.clone(), key.name.clone()), obj.clone());
        self.index(&key, old.as_deref(), Some(&obj));
        let etype = if old.is_some() {
            EventType::Modified
        } else {
            EventType::Added
        };
        self.record(gr, etype, obj.clone(), old);
        obj
    }

    /// Remove an object; the DELETED event carries its final state at a fresh resourceVersion.
    pub fn commit_delete(&mut self, gr: &GroupResource, mut obj: Value) -> Arc<Value> {
        self.rv += 1;
        obj["metadata"]["resourceVersion"] = Value::String(self.rv.to_string());
        let key = key_of(gr, &obj);
        let old = self
            .objects
            .get_mut(gr)
            .and_then(|m| m.remove(&(key.namespace.clone(), key.name.clone())));
        self.index(&key, old.as_deref(), None);
        let obj = Arc::new(obj);
        self.record(gr, EventType::Deleted, obj.clone(), old);
        obj
    }
}

/// The shared store; every write takes the one lock, so resourceVersions are totally ordered.
pub struct Store {
    inner: Mutex<Inner>,
    tx: broadcast::Sender<Arc<LoggedEvent>>,
    /// Watches ended because their client fell behind (it resumes from its last version).
    pub watches_closed_lagging: AtomicU64,
    /// Watches refused with 410 Gone: their version had left the window (the client
    /// lists again).
    pub watches_expired: AtomicU64,
    /// Tokens, RBAC decisions' audit and the HTTPS endpoint (see [`crate::access`]).
    pub access: crate::access::Access,
}

impl Store {
    pub fn new(registry: Registry, event_window: usize) -> Self {
        let (tx, _) = broadcast::channel(16_384);
        Self {
            inner: Mutex::new(Inner {
                rv: 1,
                alloc: AtomicU64::new(1),
                registry,
                objects: HashMap::new(),
                uids: HashMap::new(),
                dependents: HashMap::new(),
                log: HashMap::new(),
                log_cap: event_window.max(1),
                compacted: HashMap::new(),
                writes: HashMap::new(),
                continue_ttl: std::time::Duration::from_secs(300),
                graceful_pods: false,
                loopback_block: None,
                tx: tx.clone(),
                internal: Vec::new(),
            }),
            tx,
            watches_closed_lagging: AtomicU64::new(0),
            watches_expired: AtomicU64::new(0),
            access: crate::access::Access::default(),
        }
    }

    pub fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock leaves consistent data (each commit is atomic).
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// A lossless receiver of all future events, for the built-in controllers.
    pub fn subscribe_internal(&self) -> tokio::sync::mpsc::UnboundedReceiver<Arc<WatchEvent>> {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        self.lock().internal.push(tx);
        rx
    }

    /// Events after `from` plus a receiver for what follows, taken atomically; 410 if `from`
    /// is older than the retained window.
    pub fn watch_from(
        &self,
        gr: &GroupResource,
        from: u64,
    ) -> ApiResult<(Vec<Arc<LoggedEvent>>, EventReceiver)> {
        let inner = self.lock();
        let compacted = inner.compacted.get(gr).copied().unwrap_or(0);
        if from < compacted {
            self.watches_expired.fetch_add(1, Ordering::Relaxed);
            return Err(too_old(from, compacted + 1));
        }
        let backlog = inner
            .log
            .get(gr)
            .map(|l| l.iter().filter(|e| e.rv > from).cloned().collect())
            .unwrap_or_default();
        Ok((backlog, self.tx.subscribe()))
    }
}

pub fn too_old(rv: u64, oldest: u64) -> ApiError {
    ApiError::gone(format!("too old resource version: {rv} ({oldest})"))
}

impl Inner {
    /// Subscribe while holding the lock, so a snapshot taken under the same lock plus this
    /// receiver see every change exactly once.
    pub fn subscribe(&self) -> EventReceiver {
        self.tx.subscribe()
    }
}
