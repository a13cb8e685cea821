//! What the Group controller watches, cached in memory and indexed by the
//! `midplane.dev/group` label: a reconcile reads its Group's objects from
//! here instead of LISTing five kinds from the API server every time.

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, PersistentVolumeClaim, Pod, Service};
use midplane_api::labels;
use midplane_operator::cache::{LabelIndex, trim};
use std::sync::Arc;

pub struct OwnedCaches {
    pub deployments: Arc<LabelIndex<Deployment>>,
    pub services: Arc<LabelIndex<Service>>,
    pub config_maps: Arc<LabelIndex<ConfigMap>>,
    pub pvcs: Arc<LabelIndex<PersistentVolumeClaim>>,
    pub pods: Arc<LabelIndex<Pod>>,
}

impl Default for OwnedCaches {
    fn default() -> Self {
        Self {
            // Pods keep their labels (instance, role); the rest are only filed by them.
            deployments: LabelIndex::storing(group_of, trim::labels),
            services: LabelIndex::storing(group_of, trim::labels),
            config_maps: LabelIndex::storing(group_of, trim::labels),
            pvcs: LabelIndex::storing(group_of, trim::labels),
            pods: LabelIndex::new(group_of),
        }
    }
}

fn group_of(l: &std::collections::BTreeMap<String, String>) -> Option<String> {
    l.get(labels::GROUP).cloned()
}

impl OwnedCaches {
    /// Whether every cache has seen its first LIST: until then an empty cache
    /// would look like "nothing exists" and a reconcile would re-create or
    /// prune wrongly.
    pub fn ready(&self) -> bool {
        self.deployments.is_ready()
            && self.services.is_ready()
            && self.config_maps.is_ready()
            && self.pvcs.is_ready()
            && self.pods.is_ready()
    }
}
