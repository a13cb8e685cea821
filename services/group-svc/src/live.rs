//! What a Group owns right now, listed once per reconcile (by the Group's
//! label) and shared by the steps that need it: apply skips objects whose
//! live `midplane.dev/applied-hash` already matches, the rollout reads the
//! Deployments, prune deletes what is no longer rendered.

use crate::error::GroupError;
use crate::reconcile::{pruned_kinds, selector};
use k8s_openapi::api::apps::v1::Deployment;
use kube::ResourceExt;
use kube::api::{Api, ApiResource, DynamicObject, ListParams};
use midplane_api::Group;
use midplane_operator::apply::api_resource;
use midplane_render::RenderedObject;
use sha2::{Digest, Sha256};

/// sha256 of the rendered object as applied: an unchanged object is not re-applied.
pub const APPLIED_HASH: &str = "midplane.dev/applied-hash";

/// Stamps the applied-hash annotation (computed without it) and returns it.
pub fn stamp_applied_hash(o: &mut RenderedObject) -> String {
    let hash = hex::encode(Sha256::digest(o.object.to_string().as_bytes()));
    if let Some(meta) = o.object.get_mut("metadata").and_then(|m| m.as_object_mut()) {
        let ann = meta
            .entry("annotations")
            .or_insert_with(|| serde_json::Value::Object(Default::default()));
        if let Some(a) = ann.as_object_mut() {
            a.insert(APPLIED_HASH.into(), hash.clone().into());
        }
    }
    hash
}

pub struct LiveObjects {
    pub by_kind: Vec<(ApiResource, Vec<DynamicObject>)>,
}

impl LiveObjects {
    /// Lists every kind the Group renders or may have rendered before.
    pub async fn fetch(
        group: &Group,
        rendered: &[RenderedObject],
        client: &kube::Client,
    ) -> Result<Self, GroupError> {
        let ns = group.namespace().unwrap_or_default();
        let mut kinds = pruned_kinds();
        for o in rendered {
            if let Some(ar) = api_resource(&o.object)
                && !kinds
                    .iter()
                    .any(|k| k.kind == ar.kind && k.group == ar.group)
            {
                kinds.push(ar);
            }
        }
        let lp = ListParams::default().labels(&selector(group));
        let mut by_kind = Vec::new();
        for ar in kinds {
            let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), &ns, &ar);
            let items = api.list(&lp).await?.items;
            by_kind.push((ar, items));
        }
        Ok(Self { by_kind })
    }

    pub fn applied_hash(&self, kind: &str, name: &str) -> Option<&str> {
        self.by_kind
            .iter()
            .filter(|(ar, _)| ar.kind == kind)
            .flat_map(|(_, items)| items)
            .find(|o| o.name_any() == name && o.metadata.deletion_timestamp.is_none())
            .and_then(|o| o.metadata.annotations.as_ref()?.get(APPLIED_HASH))
            .map(String::as_str)
    }

    pub fn deployments(&self) -> Vec<Deployment> {
        self.by_kind
            .iter()
            .filter(|(ar, _)| ar.kind == "Deployment" && ar.group == "apps")
            .flat_map(|(_, items)| items)
            .filter_map(|o| o.clone().try_parse::<Deployment>().ok())
            .collect()
    }
}
