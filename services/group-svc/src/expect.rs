//! Apply expectations (client-go's ControllerExpectations, for applies): an
//! object this controller just applied may not be in the watch cache yet, and
//! a reconcile woken meanwhile (by the Group's own status write, say) must not
//! take "not in the cache" for "missing" and render and apply it all again.
//!
//! An expectation holds until the cache shows the object with the applied
//! hash, shows it being deleted, or a short time passes, after which the
//! cache is believed again (a reconcile that used one requeues by then).
//!
//! Pod role labels work the same way: a relabel just sent is not sent again
//! while the Pod cache still shows the old role.

use crate::live::LiveObjects;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long an apply is trusted over a watch cache that has not shown it.
pub const TTL: Duration = Duration::from_secs(5);

struct Expectation {
    kind: String,
    name: String,
    applied_hash: String,
    at: Instant,
}

/// A role label sent to a Pod: (pod name, role, when).
type Relabel = (String, &'static str, Instant);

#[derive(Default)]
pub struct Expectations {
    by_group: Mutex<HashMap<String, Vec<Expectation>>>,
    relabels: Mutex<HashMap<String, Vec<Relabel>>>,
}

impl Expectations {
    /// Remember that `kind/name` of the Group `uid` was applied with `applied_hash`.
    pub fn applied(&self, uid: &str, kind: &str, name: &str, applied_hash: &str) {
        let mut m = self.by_group.lock().unwrap_or_else(|e| e.into_inner());
        let list = m.entry(uid.to_string()).or_default();
        list.retain(|e| !(e.kind == kind && e.name == name));
        list.push(Expectation {
            kind: kind.into(),
            name: name.into(),
            applied_hash: applied_hash.into(),
            at: Instant::now(),
        });
    }

    /// Lay the Group's unmet expectations over what the caches show; met and
    /// expired ones are dropped. Returns whether any was laid over.
    pub fn overlay(&self, uid: &str, live: &mut LiveObjects) -> bool {
        let mut m = self.by_group.lock().unwrap_or_else(|e| e.into_inner());
        let Some(list) = m.get_mut(uid) else {
            return false;
        };
        let now = Instant::now();
        list.retain(|e| {
            let seen = live
                .objects
                .iter()
                .find(|o| o.resource.kind == e.kind && o.name == e.name);
            let met = seen.is_some_and(|o| {
                o.deleting || o.applied_hash.as_deref() == Some(e.applied_hash.as_str())
            });
            !met && now.duration_since(e.at) < TTL
        });
        for e in list.iter() {
            live.expect(&e.kind, &e.name, &e.applied_hash);
        }
        let used = !list.is_empty();
        if !used {
            m.remove(uid);
        }
        used
    }

    /// Remember that Pod `pod` of the Group `uid` was labelled `role`.
    pub fn relabelled(&self, uid: &str, pod: &str, role: &'static str) {
        let mut m = self.relabels.lock().unwrap_or_else(|e| e.into_inner());
        let list = m.entry(uid.to_string()).or_default();
        list.retain(|(p, _, _)| p != pod);
        list.push((pod.to_string(), role, Instant::now()));
    }

    /// Whether labelling Pod `pod` `role` was sent within the TTL (so the
    /// cache showing another role is only behind). Expired entries go.
    pub fn relabelling(&self, uid: &str, pod: &str, role: &str) -> bool {
        let mut m = self.relabels.lock().unwrap_or_else(|e| e.into_inner());
        let Some(list) = m.get_mut(uid) else {
            return false;
        };
        let now = Instant::now();
        list.retain(|(_, _, at)| now.duration_since(*at) < TTL);
        let sent = list.iter().any(|(p, r, _)| p == pod && *r == role);
        if list.is_empty() {
            m.remove(uid);
        }
        sent
    }

    /// Forget a Group (it is gone).
    pub fn forget(&self, uid: &str) {
        self.by_group
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(uid);
        self.relabels
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(uid);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::live::LiveObject;
    use k8s_openapi::api::apps::v1::Deployment;
    use kube::api::ApiResource;

    fn live(objects: Vec<(&str, Option<&str>, bool)>) -> LiveObjects {
        LiveObjects {
            objects: objects
                .into_iter()
                .map(|(name, hash, deleting)| LiveObject {
                    resource: ApiResource::erase::<Deployment>(&()),
                    name: name.into(),
                    applied_hash: hash.map(String::from),
                    controlled: true,
                    deleting,
                })
                .collect(),
            expected: Vec::new(),
            deployments: Vec::new(),
            pods: Vec::new(),
        }
    }

    #[test]
    fn an_apply_counts_until_the_cache_shows_it() {
        let e = Expectations::default();
        e.applied("g", "Deployment", "a", "h2");
        e.applied("g", "Deployment", "b", "h1");
        // Neither is in the cache as applied: both count as live.
        let mut l = live(vec![("a", Some("h1"), false)]);
        assert!(e.overlay("g", &mut l));
        assert_eq!(l.applied_hash("Deployment", "a"), Some("h2"));
        assert_eq!(l.applied_hash("Deployment", "b"), Some("h1"));
        assert_eq!(l.applied_hash("Deployment", "c"), None);
        // The cache shows a, and shows b being deleted: both are met and dropped.
        let mut l = live(vec![("a", Some("h2"), false), ("b", Some("h1"), true)]);
        assert!(!e.overlay("g", &mut l));
        assert_eq!(
            l.applied_hash("Deployment", "b"),
            None,
            "deleting is not live"
        );
        // Another Group's expectations are its own.
        e.applied("other", "Deployment", "a", "h9");
        let mut l = live(vec![]);
        assert!(!e.overlay("g", &mut l));
        e.forget("other");
        assert!(!e.overlay("other", &mut live(vec![])));
    }

    #[test]
    fn a_relabel_is_not_sent_twice_within_the_ttl() {
        let e = Expectations::default();
        assert!(!e.relabelling("g", "p", "primary"));
        e.relabelled("g", "p", "primary");
        assert!(e.relabelling("g", "p", "primary"));
        assert!(!e.relabelling("g", "p", "replica"), "another role is sent");
        assert!(!e.relabelling("g", "q", "primary"), "another Pod is sent");
        assert!(!e.relabelling("other", "p", "primary"));
        // A switchover relabels the same Pod again: the newest role counts.
        e.relabelled("g", "p", "replica");
        assert!(e.relabelling("g", "p", "replica"));
        assert!(!e.relabelling("g", "p", "primary"));
        if let Some(list) = e.relabels.lock().expect("lock").get_mut("g") {
            list[0].2 -= TTL;
        }
        assert!(!e.relabelling("g", "p", "replica"), "expired");
        e.relabelled("g", "p", "primary");
        e.forget("g");
        assert!(!e.relabelling("g", "p", "primary"));
    }

    #[test]
    fn an_expectation_expires() {
        let e = Expectations::default();
        e.applied("g", "Deployment", "a", "h");
        if let Some(list) = e.by_group.lock().expect("lock").get_mut("g") {
            list[0].at -= TTL;
        }
        let mut l = live(vec![]);
        assert!(
            !e.overlay("g", &mut l),
            "after the TTL the cache is believed"
        );
        assert_eq!(l.applied_hash("Deployment", "a"), None);
    }
}
