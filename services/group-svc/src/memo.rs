//! What the last render of each Group produced — names, kinds and hashes, not
//! the objects — so the many reconciles a rollout triggers (every Pod and
//! Deployment status change wakes the Group) do not re-render a plugin whose
//! output cannot have changed. A render is a pure function of the Group's
//! spec and metadata and the plugin's content, which is exactly the key.

use crate::live::LiveObjects;
use kube::ResourceExt;
use kube::api::ApiResource;
use midplane_api::Group;
use midplane_operator::apply::{api_resource, stamp_applied_hash};
use midplane_plugin::Plugin;
use midplane_render::GroupRender;
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

#[derive(Debug, Clone, PartialEq)]
pub struct RenderedRef {
    pub resource: ApiResource,
    pub name: String,
    pub applied_hash: String,
    /// What a hand edit would break, as rendered (see `drift`).
    pub drift_key: Option<String>,
}

/// A render, remembered by what identifies its output.
#[derive(Debug, Clone)]
pub struct RenderSummary {
    pub objects: Vec<RenderedRef>,
    /// The instances, in ordinal order.
    pub instances: Vec<String>,
    pub instance_hashes: BTreeMap<String, String>,
    /// Pod template hash per instance: a change restarts the instance.
    pub template_hashes: BTreeMap<String, String>,
    /// sha256 (hex) of the rendered config file, if the plugin has one.
    pub config_hash: Option<String>,
    pub plugin_id: String,
    pub plugin_hash: String,
}

impl RenderSummary {
    /// Stamps every rendered object with its applied hash and remembers it.
    pub fn of(render: &mut GroupRender) -> Self {
        let objects = render
            .objects
            .iter_mut()
            .map(|o| {
                let applied_hash = stamp_applied_hash(&mut o.object);
                RenderedRef {
                    drift_key: crate::drift::key(o.kind(), &o.object),
                    resource: api_resource(&o.object).unwrap_or_else(|| {
                        ApiResource::from_gvk(&kube::api::GroupVersionKind::gvk("", "v1", o.kind()))
                    }),
                    name: o.name().to_string(),
                    applied_hash,
                }
            })
            .collect();
        Self {
            objects,
            instances: render.instances.clone(),
            instance_hashes: render.instance_hashes.clone(),
            template_hashes: render.template_hashes.clone(),
            config_hash: render.config_hash.clone(),
            plugin_id: render.plugin.clone(),
            plugin_hash: render.plugin_hash.clone(),
        }
    }

    pub fn kinds(&self) -> Vec<ApiResource> {
        let mut kinds: Vec<ApiResource> = Vec::new();
        for o in &self.objects {
            if !kinds
                .iter()
                .any(|k| k.kind == o.resource.kind && k.group == o.resource.group)
            {
                kinds.push(o.resource.clone());
            }
        }
        kinds
    }

    /// Every rendered object is live with the hash it was rendered with: there
    /// is nothing to apply and no instance to roll.
    pub fn in_sync(&self, live: &LiveObjects) -> bool {
        self.objects.iter().all(|o| {
            live.applied_hash(&o.resource.kind, &o.name) == Some(o.applied_hash.as_str())
                && !live.drifted(&o.resource.kind, &o.name, o.drift_key.as_deref())
        })
    }
}

/// The inputs of a render: spec (by generation), labels and annotations
/// (templates may read them), and the plugin's identity and content.
pub fn key(group: &Group, plugin: &Plugin) -> String {
    format!(
        "{}|{:?}|{:?}|{}|{}",
        group.metadata.generation.unwrap_or_default(),
        group.labels(),
        group.annotations(),
        plugin.id(),
        plugin.content_hash
    )
}

#[derive(Default)]
pub struct RenderMemo {
    by_uid: Mutex<HashMap<String, (String, Arc<RenderSummary>)>>,
}

impl RenderMemo {
    pub fn get(&self, uid: &str, key: &str) -> Option<Arc<RenderSummary>> {
        let m = self
            .by_uid
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        m.get(uid).filter(|(k, _)| k == key).map(|(_, s)| s.clone())
    }

    /// The last render, whatever its key (cleanup needs only its kinds).
    pub fn get_any(&self, uid: &str) -> Option<Arc<RenderSummary>> {
        let m = self
            .by_uid
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        m.get(uid).map(|(_, s)| s.clone())
    }

    pub fn put(&self, uid: &str, key: String, summary: Arc<RenderSummary>) {
        let mut m = self
            .by_uid
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        m.insert(uid.to_string(), (key, summary));
    }

    pub fn forget(&self, uid: &str) {
        let mut m = self
            .by_uid
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        m.remove(uid);
    }
}
