//! Watch caches indexed by an owner label, so a reconcile reads its children
//! from memory instead of LISTing them from the API server. At 3,000 Groups a
//! per-reconcile LIST per kind is what makes a controller slow: the API server
//! scans every object of the kind for the label selector, each time.
//!
//! A [`LabelIndex`] is fed by a watcher stream (it sees each event before the
//! controller is triggered by it, so a reconcile never reads a cache older than
//! its trigger) and answers "every object in namespace N whose labels make key V".
//! Objects may be trimmed before they are stored (see [`trim`]): a controller
//! keeps only what it reads.

use crate::slim::{ManagedFields, Skip, Slim};
use futures::{Stream, TryStreamExt};
use kube::runtime::watcher;
use kube::{Resource, ResourceExt};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, RwLock};

type Bucket<K> = BTreeMap<String, Arc<K>>;
/// (namespace, label value) → name → object.
type Buckets<K> = HashMap<(String, String), Bucket<K>>;
/// (namespace, name) → the key it is filed under.
type Filed = HashMap<(String, String), String>;

struct Inner<K> {
    buckets: Buckets<K>,
    /// (namespace, name) → the label value it is filed under, to move or drop it.
    filed: Filed,
    /// A relist in progress: the new state is built aside and swapped in at
    /// InitDone, so readers never see a half-listed cache.
    relist: Option<(Buckets<K>, Filed)>,
    ready: bool,
}

/// Which bucket an object is filed under, from its labels; None: not kept.
pub type IndexKey = fn(&BTreeMap<String, String>) -> Option<String>;

/// Objects of one kind, bucketed by a key made of their labels.
pub struct LabelIndex<K> {
    key: IndexKey,
    /// Trims an object once it is filed: what only filing needed (its labels)
    /// need not be kept.
    stored: Option<fn(&mut K)>,
    inner: RwLock<Inner<K>>,
}

impl<K: Resource + Clone> LabelIndex<K> {
    /// Bucketed by `key` of each object's labels.
    pub fn new(key: IndexKey) -> Arc<Self> {
        Self::build(key, None)
    }

    /// Like [`LabelIndex::new`], trimming each object with `stored` once filed
    /// (e.g. dropping its labels when readers never look at them).
    pub fn storing(key: IndexKey, stored: fn(&mut K)) -> Arc<Self> {
        Self::build(key, Some(stored))
    }

    fn build(key: IndexKey, stored: Option<fn(&mut K)>) -> Arc<Self> {
        Arc::new(Self {
            key,
            stored,
            inner: RwLock::new(Inner {
                buckets: HashMap::new(),
                filed: HashMap::new(),
                relist: None,
                ready: false,
            }),
        })
    }

    /// Every object in `namespace` labelled `label=value`, by name.
    pub fn get(&self, namespace: &str, value: &str) -> Vec<Arc<K>> {
        let inner = self
            .inner
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        inner
            .buckets
            .get(&(namespace.to_string(), value.to_string()))
            .map(|b| b.values().cloned().collect())
            .unwrap_or_default()
    }

    /// Whether the first LIST has been seen (before that the cache is empty,
    /// not "nothing exists").
    pub fn is_ready(&self) -> bool {
        self.inner
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .ready
    }

    /// How many objects are cached (for metrics and tests).
    pub fn len(&self) -> usize {
        let inner = self
            .inner
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        inner.filed.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Applies one watcher event.
    pub fn apply(&self, event: &watcher::Event<K>) {
        let mut guard = self
            .inner
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let inner = &mut *guard;
        match event {
            watcher::Event::Apply(o) => file(
                (self.key, self.stored),
                &mut inner.buckets,
                &mut inner.filed,
                o,
            ),
            watcher::Event::Delete(o) => unfile(&mut inner.buckets, &mut inner.filed, o),
            watcher::Event::Init => inner.relist = Some((HashMap::new(), HashMap::new())),
            watcher::Event::InitApply(o) => {
                if let Some((b, f)) = inner.relist.as_mut() {
                    file((self.key, self.stored), b, f, o);
                }
            }
            watcher::Event::InitDone => {
                if let Some((b, f)) = inner.relist.take() {
                    inner.buckets = b;
                    inner.filed = f;
                }
                inner.ready = true;
            }
        }
    }

    /// Wraps a watcher stream: every event updates this index before it is
    /// passed on (to `touched_objects()` and a controller's trigger).
    pub fn feed<S>(
        self: &Arc<Self>,
        stream: S,
    ) -> impl Stream<Item = Result<watcher::Event<K>, watcher::Error>> + Send + use<K, S>
    where
        S: Stream<Item = Result<watcher::Event<K>, watcher::Error>> + Send,
        K: Send + Sync + 'static,
    {
        let me = self.clone();
        stream.inspect_ok(move |ev| me.apply(ev))
    }
}

/// What kube-runtime's watcher needs of a watched kind.
pub trait Watched:
    Resource<DynamicType = ()>
    + Clone
    + serde::de::DeserializeOwned
    + std::fmt::Debug
    + Send
    + Sync
    + 'static
{
}

impl<K> Watched for K where
    K: Resource<DynamicType = ()>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug
        + Send
        + Sync
        + 'static
{
}

impl<K: Watched> LabelIndex<K> {
    /// Watch every `K` (with `config`), decoded without managedFields and the
    /// top-level fields `S` names, trim each object further with `trim` (what
    /// lies deeper than the decoder skips, see [`trim`]), keep this index up
    /// to date, and yield every touched object: a controller's `owns_stream` /
    /// `watches_stream` trigger that also fills the cache its reconciles read.
    pub fn watch<S: Skip>(
        self: &Arc<Self>,
        client: kube::Client,
        config: watcher::Config,
        trim: Option<fn(&mut K)>,
    ) -> impl Stream<Item = Result<K, watcher::Error>> + Send + use<K, S> {
        use kube::runtime::WatchStreamExt;
        let events = slim_watch::<K, S>(client, config).modify(move |o| {
            if let Some(trim) = trim {
                trim(o);
            }
        });
        self.feed(events).touched_objects()
    }
}

/// Every `K` in the cluster, watched (with back-off) and decoded as
/// [`Slim<K, S>`], handed on as `K`.
pub fn slim_watch<K: Watched, S: Skip>(
    client: kube::Client,
    config: watcher::Config,
) -> impl Stream<Item = Result<watcher::Event<K>, watcher::Error>> + Send + use<K, S> {
    use kube::runtime::WatchStreamExt;
    watcher(kube::Api::<Slim<K, S>>::all(client), config)
        .default_backoff()
        .map_ok(|ev| match ev {
            watcher::Event::Apply(o) => watcher::Event::Apply(o.into_inner()),
            watcher::Event::Delete(o) => watcher::Event::Delete(o.into_inner()),
            watcher::Event::Init => watcher::Event::Init,
            watcher::Event::InitApply(o) => watcher::Event::InitApply(o.into_inner()),
            watcher::Event::InitDone => watcher::Event::InitDone,
        })
}

/// A controller's own watch of every `K`, decoded without managedFields
/// (see [`Slim`]): `Controller::for_stream(stream, store)`. At thousands of
/// objects managedFields are most of a controller's memory and decoding
/// time, and none reads them.
pub fn trimmed_watch<K: Watched>(
    client: kube::Client,
) -> (
    impl Stream<Item = Result<K, watcher::Error>> + Send + use<K>,
    kube::runtime::reflector::Store<K>,
) {
    use kube::runtime::WatchStreamExt;
    let (reader, writer) = kube::runtime::reflector::store();
    let stream = slim_watch::<K, ManagedFields>(client, watcher::Config::default())
        .reflect(writer)
        .applied_objects();
    (stream, reader)
}

fn key_of<K: Resource>(o: &K) -> (String, String) {
    (o.namespace().unwrap_or_default(), o.name_any())
}

fn file<K: Resource + Clone>(
    (key_fn, stored): (IndexKey, Option<fn(&mut K)>),
    buckets: &mut Buckets<K>,
    filed: &mut Filed,
    o: &K,
) {
    let key = key_of(o);
    let value = key_fn(o.labels());
    if let Some(old) = filed.get(&key)
        && Some(old) != value.as_ref()
    {
        unfile(buckets, filed, o);
    }
    let Some(value) = value else { return };
    let mut kept = o.clone();
    if let Some(trim) = stored {
        trim(&mut kept);
    }
    buckets
        .entry((key.0.clone(), value.clone()))
        .or_default()
        .insert(key.1.clone(), Arc::new(kept));
    filed.insert(key, value);
}

fn unfile<K: Resource>(buckets: &mut Buckets<K>, filed: &mut Filed, o: &K) {
    let key = key_of(o);
    let Some(value) = filed.remove(&key) else {
        return;
    };
    let bucket_key = (key.0, value);
    if let Some(b) = buckets.get_mut(&bucket_key) {
        b.remove(&key.1);
        if b.is_empty() {
            buckets.remove(&bucket_key);
        }
    }
}

/// Trimming cached objects below what the decoder skips ([`crate::slim`]
/// leaves out managedFields and whole top-level fields): a controller that
/// reads only metadata and a little status should not hold the rest.
pub mod trim {
    use k8s_openapi::api::apps::v1::Deployment;
    use k8s_openapi::api::core::v1::Pod;

    /// Keeps metadata, the status counters a rollout reads and the spec's
    /// replicas and selector (what a hand edit breaks); drops the pod
    /// template and the status conditions (long messages nobody reads).
    pub fn deployment(d: &mut Deployment) {
        if let Some(s) = d.status.as_mut() {
            s.conditions = None;
        }
        if let Some(spec) = d.spec.as_mut() {
            spec.template = Default::default();
        }
    }

    /// Once an object is filed under its owner, its labels are not read again.
    pub fn labels<K: kube::Resource>(o: &mut K) {
        o.meta_mut().labels = None;
    }

    /// Keeps metadata and the status the lifecycle reads (phase, conditions,
    /// per-container readiness and restart counts, why a container waits or
    /// ended, IPs); drops annotations and the container details (images,
    /// ids). Decode with
    /// [`crate::slim::Spec`] for the spec.
    pub fn pod(p: &mut Pod) {
        p.metadata.annotations = None;
        p.metadata.generate_name = None;
        if let Some(s) = p.status.as_mut() {
            s.init_container_statuses = None;
            s.ephemeral_container_statuses = None;
            s.host_ips = None;
            s.pod_ips = None;
            s.qos_class = None;
            for c in s.conditions.iter_mut().flatten() {
                c.message = None;
            }
            for c in s.container_statuses.iter_mut().flatten() {
                c.image.clear();
                c.image_id.clear();
                c.container_id = None;
                // Only why a container waits or ended: a rollout stops on it.
                if let Some(st) = c.state.as_mut() {
                    st.running = None;
                    for m in [
                        st.waiting.as_mut().and_then(|w| w.message.as_mut()),
                        st.terminated.as_mut().and_then(|t| t.message.as_mut()),
                    ]
                    .into_iter()
                    .flatten()
                    {
                        if let Some((at, _)) = m.char_indices().nth(200) {
                            m.truncate(at);
                        }
                    }
                }
                c.last_state = None;
                c.resources = None;
                c.volume_mounts = None;
                c.allocated_resources = None;
                c.user = None;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::ConfigMap;
    use kube::api::ObjectMeta;

    fn cm(name: &str, group: Option<&str>) -> ConfigMap {
        ConfigMap {
            metadata: ObjectMeta {
                name: Some(name.into()),
                namespace: Some("ns".into()),
                labels: group.map(|g| [("g".to_string(), g.to_string())].into()),
                ..Default::default()
            },
            ..Default::default()
        }
    }

    fn names(idx: &LabelIndex<ConfigMap>, g: &str) -> Vec<String> {
        idx.get("ns", g).iter().map(|c| c.name_any()).collect()
    }

    #[test]
    fn files_moves_and_drops_objects_by_label() {
        let idx = LabelIndex::<ConfigMap>::new(|l| l.get("g").cloned());
        idx.apply(&watcher::Event::Apply(cm("a", Some("one"))));
        idx.apply(&watcher::Event::Apply(cm("b", Some("one"))));
        idx.apply(&watcher::Event::Apply(cm("c", None)));
        assert_eq!(names(&idx, "one"), ["a", "b"]);
        assert_eq!(idx.len(), 2, "unlabelled objects are not kept");
        // The label changes: the object moves.
        idx.apply(&watcher::Event::Apply(cm("b", Some("two"))));
        assert_eq!(names(&idx, "one"), ["a"]);
        assert_eq!(names(&idx, "two"), ["b"]);
        // The label goes: the object goes.
        idx.apply(&watcher::Event::Apply(cm("a", None)));
        assert!(names(&idx, "one").is_empty());
        idx.apply(&watcher::Event::Delete(cm("b", Some("two"))));
        assert!(idx.is_empty());
        assert!(idx.get("other", "two").is_empty());
    }

    #[test]
    fn stored_objects_may_drop_what_only_filing_needed() {
        let idx = LabelIndex::<ConfigMap>::storing(|l| l.get("g").cloned(), trim::labels);
        idx.apply(&watcher::Event::Apply(cm("a", Some("one"))));
        let kept = idx.get("ns", "one");
        assert_eq!(kept.len(), 1);
        assert!(
            kept[0].metadata.labels.is_none(),
            "labels trimmed once filed"
        );
        // Moving and deleting still work: they go by what was filed.
        idx.apply(&watcher::Event::Apply(cm("a", Some("two"))));
        assert!(idx.get("ns", "one").is_empty());
        assert_eq!(names(&idx, "two"), ["a"]);
        idx.apply(&watcher::Event::Delete(cm("a", Some("two"))));
        assert!(idx.is_empty());
    }

    #[test]
    fn a_relist_replaces_the_state_only_when_done() {
        let idx = LabelIndex::<ConfigMap>::new(|l| l.get("g").cloned());
        assert!(!idx.is_ready());
        idx.apply(&watcher::Event::Init);
        idx.apply(&watcher::Event::InitApply(cm("a", Some("one"))));
        assert!(names(&idx, "one").is_empty(), "not visible before InitDone");
        idx.apply(&watcher::Event::InitDone);
        assert!(idx.is_ready());
        assert_eq!(names(&idx, "one"), ["a"]);
        // A relist after a 410 where "a" was deleted meanwhile and "x" created.
        idx.apply(&watcher::Event::Init);
        idx.apply(&watcher::Event::InitApply(cm("x", Some("one"))));
        assert_eq!(
            names(&idx, "one"),
            ["a"],
            "old state serves during the relist"
        );
        idx.apply(&watcher::Event::InitDone);
        assert_eq!(names(&idx, "one"), ["x"]);
        assert_eq!(idx.len(), 1);
    }
}
