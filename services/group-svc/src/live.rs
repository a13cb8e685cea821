//! What a Group owns right now, read from the watch caches (and LISTed only
//! for kinds a plugin renders beyond the cached ones), shared by the steps
//! that need it: apply skips objects whose live `midplane.dev/applied-hash`
//! already matches, the rollout reads the Deployments, prune deletes what is
//! no longer rendered, status reads the Pods.

use crate::owned::OwnedCaches;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ApiResource, DynamicObject, ListParams};
use kube::{Resource, ResourceExt};
use midplane_api::{Group, labels};
use midplane_operator::ReconcileError;
use midplane_operator::apply::controlled_by;
use std::sync::Arc;

pub use midplane_operator::apply::APPLIED_HASH;

/// The label selector of everything a Group owns.
pub fn selector(group: &Group) -> String {
    format!("{}={}", labels::GROUP, group.name_any())
}

/// One live object labelled with the Group, as apply and prune see it.
#[derive(Debug, Clone)]
pub struct LiveObject {
    pub resource: ApiResource,
    pub name: String,
    pub applied_hash: Option<String>,
    /// The Group is its controller owner (never prune anyone else's object).
    pub controlled: bool,
    pub deleting: bool,
    /// What a hand edit would break, as live (see `drift`).
    pub drift_key: Option<String>,
}

impl LiveObject {
    fn of<K: Resource + serde::Serialize>(resource: &ApiResource, o: &K, uid: &str) -> Self {
        Self {
            drift_key: crate::drift::key_of(&resource.kind, o),
            resource: resource.clone(),
            name: o.meta().name.clone().unwrap_or_default(),
            applied_hash: o
                .meta()
                .annotations
                .as_ref()
                .and_then(|a| a.get(APPLIED_HASH))
                .cloned(),
            controlled: controlled_by(o, uid),
            deleting: o.meta().deletion_timestamp.is_some(),
        }
    }
}

pub struct LiveObjects {
    pub objects: Vec<LiveObject>,
    /// Applied by this controller, not yet in the caches (see `expect`).
    pub expected: Vec<(String, String, String)>,
    /// Shared with the watch cache: a reconcile copies nothing.
    pub deployments: Vec<Arc<Deployment>>,
    pub pods: Vec<Arc<Pod>>,
}

/// The kinds the caches hold; any other rendered kind is LISTed.
pub fn cached_kinds() -> [ApiResource; 4] {
    use k8s_openapi::api::core::v1::{ConfigMap, PersistentVolumeClaim, Service};
    [
        ApiResource::erase::<Deployment>(&()),
        ApiResource::erase::<Service>(&()),
        ApiResource::erase::<ConfigMap>(&()),
        ApiResource::erase::<PersistentVolumeClaim>(&()),
    ]
}

fn same_kind(a: &ApiResource, b: &ApiResource) -> bool {
    a.kind == b.kind && a.group == b.group
}

fn summarize<K: Resource<DynamicType = ()> + serde::Serialize>(
    items: &[Arc<K>],
    uid: &str,
) -> Vec<LiveObject> {
    let ar = ApiResource::erase::<K>(&());
    items
        .iter()
        .map(|o| LiveObject::of(&ar, o.as_ref(), uid))
        .collect()
}

impl LiveObjects {
    /// Everything labelled with the Group: the cached kinds from memory,
    /// `other_kinds` (rendered kinds the caches do not hold) by LIST.
    pub async fn fetch(
        group: &Group,
        other_kinds: &[ApiResource],
        caches: &OwnedCaches,
        client: &kube::Client,
    ) -> Result<Self, ReconcileError> {
        let ns = group.namespace().unwrap_or_default();
        let name = group.name_any();
        let uid = group.uid().unwrap_or_default();
        let deployments = caches.deployments.get(&ns, &name);
        let mut objects = summarize(&deployments, &uid);
        objects.extend(summarize(&caches.services.get(&ns, &name), &uid));
        objects.extend(summarize(&caches.config_maps.get(&ns, &name), &uid));
        objects.extend(summarize(&caches.pvcs.get(&ns, &name), &uid));
        let cached = cached_kinds();
        let lp = ListParams::default().labels(&selector(group));
        for ar in other_kinds {
            if cached.iter().any(|c| same_kind(c, ar)) {
                continue;
            }
            let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), &ns, ar);
            for o in api.list(&lp).await?.items {
                objects.push(LiveObject::of(ar, &o, &uid));
            }
        }
        Ok(Self {
            objects,
            expected: Vec::new(),
            deployments,
            pods: caches.pods.get(&ns, &name),
        })
    }

    /// The applied hash of a live object that is not being deleted; an
    /// apply the caches have not shown yet counts as live.
    pub fn applied_hash(&self, kind: &str, name: &str) -> Option<&str> {
        if let Some((_, _, hash)) = self
            .expected
            .iter()
            .find(|(k, n, _)| k == kind && n == name)
        {
            return Some(hash);
        }
        self.objects
            .iter()
            .find(|o| o.resource.kind == kind && o.name == name && !o.deleting)
            .and_then(|o| o.applied_hash.as_deref())
    }

    /// Whether a live `kind/name` was edited by hand: its fingerprint is not
    /// the rendered one. An apply the caches have not shown yet is not drift.
    pub fn drifted(&self, kind: &str, name: &str, rendered: Option<&str>) -> bool {
        let Some(rendered) = rendered else {
            return false;
        };
        if self.expected.iter().any(|(k, n, _)| k == kind && n == name) {
            return false;
        }
        self.objects
            .iter()
            .find(|o| o.resource.kind == kind && o.name == name && !o.deleting)
            .is_some_and(|o| o.drift_key.as_deref().is_some_and(|k| k != rendered))
    }

    /// Count `kind/name` as live with `applied_hash` (an unmet expectation).
    pub fn expect(&mut self, kind: &str, name: &str, applied_hash: &str) {
        self.expected
            .push((kind.into(), name.into(), applied_hash.into()));
    }
}
