//! DELETE: preconditions, propagation policy finalizers, deletionTimestamp, final removal.

use std::sync::Arc;

use serde_json::{Value, json};

use crate::error::{ApiError, ApiResult};
use crate::ops::{DeleteOpts, DeleteOutcome, finalizers, now};
use crate::registry::{GroupResource, ResourceType};
use crate::store::{Inner, meta_str};

impl Inner {
    /// Final removal; a CRD takes its kind out of the registry.
    pub fn remove(&mut self, rt: &ResourceType, obj: Value) -> Arc<Value> {
        if rt.group == "apiextensions.k8s.io" && rt.kind == "CustomResourceDefinition" {
            let g = obj["spec"]["group"].as_str().unwrap_or_default();
            let p = obj["spec"]["names"]["plural"].as_str().unwrap_or_default();
            self.registry.remove(&GroupResource::new(g, p));
        }
        self.commit_delete(&rt.gr(), obj)
    }

    /// DELETE: immediate when nothing holds the object, otherwise sets deletionTimestamp.
    pub fn delete(
        &mut self,
        rt: &ResourceType,
        ns: &str,
        name: &str,
        d: &DeleteOpts,
    ) -> ApiResult<DeleteOutcome> {
        let old = self
            .get(&rt.gr(), ns, name)
            .ok_or_else(|| ApiError::not_found(&rt.group, &rt.plural, name))?;
        if let Some(uid) = &d.uid
            && uid != meta_str(&old, "uid")
        {
            return Err(ApiError::conflict(
                &rt.group,
                &rt.plural,
                name,
                &format!(
                    "Precondition failed: UID in precondition: {uid}, UID in object meta: {}",
                    meta_str(&old, "uid")
                ),
            ));
        }
        if let Some(rv) = &d.resource_version
            && rv != meta_str(&old, "resourceVersion")
        {
            return Err(ApiError::conflict(
                &rt.group,
                &rt.plural,
                name,
                &format!(
                    "Precondition failed: ResourceVersion in precondition: {rv}, ResourceVersion in object meta: {}",
                    meta_str(&old, "resourceVersion")
                ),
            ));
        }
        let mut obj = (*old).clone();
        let mut fin = finalizers(&obj);
        match d.propagation.as_deref() {
            Some("Foreground") if !fin.iter().any(|f| f == "foregroundDeletion") => {
                fin.push("foregroundDeletion".into());
            }
            Some("Orphan") if !fin.iter().any(|f| f == "orphan") => fin.push("orphan".into()),
            Some("Foreground" | "Orphan" | "Background") | None => {}
            Some(other) => {
                return Err(ApiError::invalid_field(
                    "",
                    "DeleteOptions",
                    "",
                    "propagationPolicy",
                    &format!(
                        "Unsupported value: \"{other}\": supported values: \"Foreground\", \"Background\", \"Orphan\""
                    ),
                ));
            }
        }
        let is_ns = rt.group.is_empty() && rt.kind == "Namespace";
        if let Some(grace) = self.pod_grace(rt, &obj, d) {
            return self.delete_gracefully(rt, old, obj, fin, grace, d.dry_run);
        }
        if fin.is_empty() && !is_ns {
            if d.dry_run {
                return Ok(DeleteOutcome::Gone(old));
            }
            return Ok(DeleteOutcome::Gone(self.remove(rt, obj)));
        }
        if !fin.is_empty() {
            obj["metadata"]["finalizers"] = json!(fin);
        }
        if obj["metadata"]["deletionTimestamp"].is_null() {
            obj["metadata"]["deletionTimestamp"] = json!(now());
            obj["metadata"]["deletionGracePeriodSeconds"] = json!(0);
            if rt.tracks_generation {
                let g = obj["metadata"]["generation"].as_i64().unwrap_or(0) + 1;
                obj["metadata"]["generation"] = json!(g);
            }
        }
        if is_ns {
            obj["status"]["phase"] = json!("Terminating");
        }
        if d.dry_run || *old == obj {
            return Ok(DeleteOutcome::Pending(old));
        }
        Ok(DeleteOutcome::Pending(self.commit_put(&rt.gr(), obj)))
    }
}

impl Inner {
    /// Graceful deletion of a Pod (process pods only): the grace period when this delete
    /// should mark the Pod and leave its removal to the kubelet, as the apiserver does for a
    /// scheduled, not yet terminal Pod and a positive grace period.
    fn pod_grace(&self, rt: &ResourceType, obj: &Value, d: &DeleteOpts) -> Option<i64> {
        if !(self.graceful_pods && rt.group.is_empty() && rt.kind == "Pod") {
            return None;
        }
        let grace = d
            .grace_period
            .or_else(|| obj["spec"]["terminationGracePeriodSeconds"].as_i64())
            .unwrap_or(30)
            .max(0);
        let scheduled = obj["spec"]["nodeName"]
            .as_str()
            .is_some_and(|n| !n.is_empty());
        let terminal = matches!(
            obj["status"]["phase"].as_str(),
            Some("Succeeded" | "Failed")
        );
        (grace > 0 && scheduled && !terminal).then_some(grace)
    }

    /// Mark a Pod for deletion in `grace` seconds; a later delete may only shorten that.
    fn delete_gracefully(
        &mut self,
        rt: &ResourceType,
        old: Arc<Value>,
        mut obj: Value,
        fin: Vec<String>,
        grace: i64,
        dry_run: bool,
    ) -> ApiResult<DeleteOutcome> {
        let current = obj["metadata"]["deletionGracePeriodSeconds"].as_i64();
        if obj["metadata"]["deletionTimestamp"].is_null() || current.is_some_and(|c| grace < c) {
            let at = chrono::Utc::now() + chrono::Duration::seconds(grace);
            obj["metadata"]["deletionTimestamp"] =
                json!(at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true));
            obj["metadata"]["deletionGracePeriodSeconds"] = json!(grace);
        }
        if !fin.is_empty() {
            obj["metadata"]["finalizers"] = json!(fin);
        }
        if dry_run || *old == obj {
            return Ok(DeleteOutcome::Pending(old));
        }
        Ok(DeleteOutcome::Pending(self.commit_put(&rt.gr(), obj)))
    }
}
