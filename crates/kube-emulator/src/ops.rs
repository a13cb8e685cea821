//! The write and read pipelines every request goes through: create, update (main resource or
//! /status), patch, delete with finalizers and propagation, list with selectors and paging.

use std::sync::Arc;

use rand::Rng as _;
use serde_json::{Value, json};

use crate::apply::{ApplyRequest, apply, track_update};
use crate::compare::{same_but_bookkeeping, spec_differs};
use crate::crd::{crd_established_status, from_crd};
use crate::error::{ApiError, ApiResult, Cause};
use crate::fields::Scope;
use crate::kinds;
use crate::patch::{json_patch, merge_patch, strategic_merge_patch};
use crate::registry::{GroupResource, ResourceType};
use crate::schema;
use crate::store::{Inner, meta_str};

/// The [`Inner::writes`] slot of writes that changed nothing (after added, modified, deleted).
const UNCHANGED: usize = 3;

pub const CRD_CLEANUP_FINALIZER: &str = "customresourcecleanup.apiextensions.k8s.io";

pub fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// Options every write carries.
#[derive(Clone, Debug, Default)]
pub struct WriteOpts {
    pub manager: String,
    pub dry_run: bool,
    pub force: bool,
    /// The version the request addressed (objects are stored at the storage version).
    pub version: String,
    /// `fieldValidation=Strict`: unknown fields are an error instead of being pruned.
    pub strict: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PatchKind {
    Merge,
    Json,
    Strategic,
    Apply,
}

#[derive(Clone, Debug, Default)]
pub struct DeleteOpts {
    pub propagation: Option<String>,
    pub uid: Option<String>,
    pub resource_version: Option<String>,
    pub dry_run: bool,
}

pub enum DeleteOutcome {
    /// The object is gone.
    Gone(Arc<Value>),
    /// Finalizers hold it; it now carries a deletionTimestamp.
    Pending(Arc<Value>),
}

#[derive(Clone, Debug, Default)]
pub struct ListOpts {
    pub label_selector: Option<String>,
    pub field_selector: Option<String>,
    pub limit: Option<usize>,
    pub continue_token: Option<String>,
}

pub struct ListPage {
    pub items: Vec<Arc<Value>>,
    pub resource_version: u64,
    pub continue_token: Option<String>,
    pub remaining: Option<usize>,
}

/// Set apiVersion to the version a client asked for (CRD versions convert with strategy None).
pub fn present(rt: &ResourceType, version: &str, obj: &Value) -> Value {
    present_cow(rt, version, obj).into_owned()
}

/// The object as served, borrowed when the stored shape already is that (the
/// common case): serving a watch event or a LIST then copies nothing.
pub fn present_cow<'a>(
    rt: &ResourceType,
    version: &str,
    obj: &'a Value,
) -> std::borrow::Cow<'a, Value> {
    let api_version = rt.api_version(version);
    if rt.storage.is_none()
        && obj["apiVersion"].as_str() == Some(api_version.as_str())
        && obj["kind"].as_str() == Some(rt.kind.as_str())
    {
        return std::borrow::Cow::Borrowed(obj);
    }
    let mut o = crate::events::from_storage(rt, obj);
    o["apiVersion"] = json!(api_version);
    o["kind"] = json!(rt.kind);
    std::borrow::Cow::Owned(o)
}

fn check_kind(rt: &ResourceType, obj: &Value, version: &str) -> ApiResult<()> {
    if !obj.is_object() {
        return Err(ApiError::bad_request(
            "the request body must be a JSON or YAML object",
        ));
    }
    let kind = obj["kind"].as_str().unwrap_or_default();
    let av = obj["apiVersion"].as_str().unwrap_or_default();
    if (!kind.is_empty() && kind != rt.kind) || (!av.is_empty() && av != rt.api_version(version)) {
        return Err(ApiError::bad_request(format!(
            "the API version in the data ({av}) does not match the expected API version ({})",
            rt.api_version(version)
        )));
    }
    Ok(())
}

fn generate_suffix() -> String {
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let mut rng = rand::rng();
    (0..5)
        .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
        .collect()
}

/// Everything of an object except metadata (and status when it is a subresource).
pub(crate) fn finalizers(obj: &Value) -> Vec<String> {
    obj["metadata"]["finalizers"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|f| f.as_str().map(String::from))
        .collect()
}

impl Inner {
    fn schema_check(&self, rt: &ResourceType, obj: &mut Value, strict: bool) -> ApiResult<()> {
        let Some(s) = rt.schemas.get(rt.storage_version()) else {
            return Ok(());
        };
        let name = meta_str(obj, "name").to_string();
        let mut pruned = Vec::new();
        schema::prune(s, obj, "", true, &mut pruned);
        if strict && !pruned.is_empty() {
            let list: Vec<String> = pruned
                .iter()
                .map(|p| format!("unknown field \"{p}\""))
                .collect();
            return Err(ApiError::bad_request(format!(
                "strict decoding error: {}",
                list.join(", ")
            )));
        }
        let mut causes = Vec::new();
        schema::validate(s, obj, "", true, &mut causes);
        if causes.is_empty() {
            Ok(())
        } else {
            Err(ApiError::invalid(&rt.group, &rt.kind, &name, causes))
        }
    }

    fn namespace_writable(&self, ns: &str) -> ApiResult<()> {
        let gr = GroupResource::new("", "namespaces");
        match self.get(&gr, "", ns) {
            None => Err(ApiError::not_found("", "namespaces", ns)),
            Some(n) if !n["metadata"]["deletionTimestamp"].is_null() => {
                Err(ApiError::forbidden(format!(
                    "unable to create new content in namespace {ns} because it is being terminated"
                )))
            }
            Some(_) => Ok(()),
        }
    }

    /// POST: create a new object (also the create half of server-side apply).
    pub fn create(
        &mut self,
        rt: &ResourceType,
        ns: &str,
        mut obj: Value,
        o: &WriteOpts,
        track: bool,
    ) -> ApiResult<Arc<Value>> {
        check_kind(rt, &obj, &o.version)?;
        obj = crate::events::to_storage(rt, obj);
        if !obj["metadata"].is_object() {
            obj["metadata"] = json!({});
        }
        if rt.namespaced {
            let body_ns = meta_str(&obj, "namespace");
            if !body_ns.is_empty() && body_ns != ns {
                return Err(ApiError::bad_request(
                    "the namespace of the provided object does not match the namespace sent on the request",
                ));
            }
            obj["metadata"]["namespace"] = json!(ns);
        } else if let Some(m) = obj["metadata"].as_object_mut() {
            m.remove("namespace");
        }
        if meta_str(&obj, "name").is_empty() {
            let prefix = meta_str(&obj, "generateName").to_string();
            if prefix.is_empty() {
                return Err(ApiError::invalid(
                    &rt.group,
                    &rt.kind,
                    "",
                    vec![Cause {
                        reason: "FieldValueRequired".into(),
                        field: "metadata.name".into(),
                        message: "Required value: name or generateName is required".into(),
                    }],
                ));
            }
            obj["metadata"]["name"] = json!(format!("{prefix}{}", generate_suffix()));
        }
        let name = meta_str(&obj, "name").to_string();
        if let Some(c) = kinds::validate_name(rt, &name) {
            return Err(ApiError::invalid(&rt.group, &rt.kind, &name, vec![c]));
        }
        if rt.namespaced {
            self.namespace_writable(ns)?;
        }
        if self.get(&rt.gr(), ns, &name).is_some() {
            return Err(ApiError::already_exists(&rt.group, &rt.plural, &name));
        }
        if rt.status_subresource
            && let Some(m) = obj.as_object_mut()
        {
            m.remove("status");
        }
        self.schema_check(rt, &mut obj, o.strict)?;
        // The uid first: defaulting may name it (a Job's controller-uid selector).
        obj["metadata"]["uid"] = json!(uuid::Uuid::new_v4().to_string());
        kinds::apply_defaults(rt, &mut obj, None, self.rv);
        let causes = kinds::validate(rt, &obj, None);
        if !causes.is_empty() {
            return Err(ApiError::invalid(&rt.group, &rt.kind, &name, causes));
        }
        let now = now();
        let meta = obj["metadata"]
            .as_object_mut()
            .ok_or_else(|| ApiError::bad_request("metadata must be an object"))?;
        for k in [
            "deletionTimestamp",
            "deletionGracePeriodSeconds",
            "resourceVersion",
            "selfLink",
        ] {
            meta.remove(k);
        }
        meta.insert("creationTimestamp".into(), json!(now));
        if rt.tracks_generation {
            meta.insert("generation".into(), json!(1));
        } else {
            meta.remove("generation");
        }
        let is_crd = rt.group == "apiextensions.k8s.io" && rt.kind == "CustomResourceDefinition";
        if is_crd {
            let defined = from_crd(&obj)?;
            if self.registry.get(&defined.gr()).is_some() {
                return Err(ApiError::already_exists(&rt.group, &rt.plural, &name));
            }
            obj["status"] = crd_established_status(&obj, &now);
            let mut f = finalizers(&obj);
            if !f.iter().any(|x| x == CRD_CLEANUP_FINALIZER) {
                f.push(CRD_CLEANUP_FINALIZER.into());
            }
            obj["metadata"]["finalizers"] = json!(f);
            if !o.dry_run {
                self.registry.insert(defined);
            }
        }
        if track {
            track_update(
                rt,
                None,
                &mut obj,
                &o.manager,
                Scope::All,
                &rt.api_version(&o.version),
                &now,
            );
        }
        obj["apiVersion"] = json!(rt.storage_api_version());
        obj["kind"] = json!(rt.kind);
        if o.dry_run {
            return Ok(Arc::new(obj));
        }
        Ok(self.commit_put(&rt.gr(), obj))
    }

    /// PUT on the resource or its /status.
    pub fn update(
        &mut self,
        rt: &ResourceType,
        ns: &str,
        name: &str,
        obj: Value,
        scope: Scope,
        o: &WriteOpts,
    ) -> ApiResult<Arc<Value>> {
        check_kind(rt, &obj, &o.version)?;
        let obj = crate::events::to_storage(rt, obj);
        let body_name = meta_str(&obj, "name");
        if body_name != name {
            return Err(ApiError::bad_request(format!(
                "the name of the object ({body_name}) does not match the name on the URL ({name})"
            )));
        }
        let body_ns = meta_str(&obj, "namespace");
        if rt.namespaced && !body_ns.is_empty() && body_ns != ns {
            return Err(ApiError::bad_request(
                "the namespace of the provided object does not match the namespace sent on the request",
            ));
        }
        let old = self
            .get(&rt.gr(), ns, name)
            .ok_or_else(|| ApiError::not_found(&rt.group, &rt.plural, name))?;
        let rv = meta_str(&obj, "resourceVersion");
        if rv.is_empty() {
            if rt.custom {
                return Err(ApiError::invalid_field(
                    &rt.group,
                    &rt.kind,
                    name,
                    "metadata.resourceVersion",
                    "Invalid value: 0: must be specified for an update",
                ));
            }
        } else if rv != meta_str(&old, "resourceVersion") {
            return Err(ApiError::stale(&rt.group, &rt.plural, name));
        }
        self.finish_update(rt, old, obj, scope, o, true)
    }

    /// PATCH in any of the four formats.
    #[allow(clippy::too_many_arguments)]
    pub fn patch(
        &mut self,
        rt: &ResourceType,
        ns: &str,
        name: &str,
        kind: PatchKind,
        body: &Value,
        scope: Scope,
        o: &WriteOpts,
    ) -> ApiResult<Arc<Value>> {
        let now = now();
        let Some(old) = self.get(&rt.gr(), ns, name) else {
            if kind != PatchKind::Apply || scope == Scope::Status {
                return Err(ApiError::not_found(&rt.group, &rt.plural, name));
            }
            check_kind(rt, body, &o.version)?;
            let req = ApplyRequest {
                manager: &o.manager,
                force: o.force,
                scope: Scope::All,
                api_version: &rt.api_version(&o.version),
                now: &now,
            };
            let mut created = apply(rt, None, body, &req)?;
            created["metadata"]["name"] = json!(name);
            return self.create(rt, ns, created, o, false);
        };
        let mut cur = present(rt, &o.version, &old);
        match kind {
            PatchKind::Merge => merge_patch(&mut cur, body),
            PatchKind::Json => json_patch(&mut cur, body)?,
            PatchKind::Strategic => strategic_merge_patch(rt, &mut cur, body)?,
            PatchKind::Apply => {
                check_kind(rt, body, &o.version)?;
                let body_name = meta_str(body, "name");
                if !body_name.is_empty() && body_name != name {
                    return Err(ApiError::bad_request(format!(
                        "the name of the object ({body_name}) does not match the name on the URL ({name})"
                    )));
                }
                let eff = if rt.status_subresource {
                    scope
                } else {
                    Scope::All
                };
                let req = ApplyRequest {
                    manager: &o.manager,
                    force: o.force,
                    scope: eff,
                    api_version: &rt.api_version(&o.version),
                    now: &now,
                };
                cur = apply(rt, Some(&cur), body, &req)?;
            }
        }
        let cur = crate::events::to_storage(rt, cur);
        let rv = meta_str(&cur, "resourceVersion");
        if !rv.is_empty() && rv != meta_str(&old, "resourceVersion") {
            return Err(ApiError::stale(&rt.group, &rt.plural, name));
        }
        self.finish_update(rt, old, cur, scope, o, kind != PatchKind::Apply)
    }

    /// The shared tail of every update: subresource rules, immutable metadata, finalizer rules,
    /// validation, generation, field management, no-op detection, commit.
    pub fn finish_update(
        &mut self,
        rt: &ResourceType,
        old: Arc<Value>,
        mut new: Value,
        scope: Scope,
        o: &WriteOpts,
        track: bool,
    ) -> ApiResult<Arc<Value>> {
        let name = meta_str(&old, "name").to_string();
        let scope = if rt.status_subresource {
            scope
        } else {
            Scope::All
        };
        match scope {
            Scope::Main => match old.get("status") {
                Some(s) => new["status"] = s.clone(),
                None => {
                    if let Some(m) = new.as_object_mut() {
                        m.remove("status");
                    }
                }
            },
            Scope::Status => {
                // Only status and managedFields are read from the request: internal
                // writers may pass just those (`{"status": …}`) and spare a copy.
                let status = new.as_object_mut().and_then(|m| m.remove("status"));
                let managed = new
                    .get_mut("metadata")
                    .and_then(Value::as_object_mut)
                    .and_then(|m| m.remove("managedFields"));
                new = (*old).clone();
                match status {
                    Some(s) => new["status"] = s,
                    None => {
                        if let Some(m) = new.as_object_mut() {
                            m.remove("status");
                        }
                    }
                }
                if let Some(mf) = managed {
                    new["metadata"]["managedFields"] = mf;
                }
            }
            Scope::All => {}
        }
        if !new["metadata"].is_object() {
            new["metadata"] = json!({});
        }
        for k in [
            "uid",
            "creationTimestamp",
            "deletionTimestamp",
            "deletionGracePeriodSeconds",
            "generation",
            "name",
            "namespace",
        ] {
            match old["metadata"].get(k) {
                Some(v) => new["metadata"][k] = v.clone(),
                None => {
                    if let Some(m) = new["metadata"].as_object_mut() {
                        m.remove(k);
                    }
                }
            }
        }
        let deleting = !old["metadata"]["deletionTimestamp"].is_null();
        let old_fin = finalizers(&old);
        let new_fin = finalizers(&new);
        if deleting && new_fin.iter().any(|f| !old_fin.contains(f)) {
            return Err(ApiError::invalid_field(
                &rt.group,
                &rt.kind,
                &name,
                "metadata.finalizers",
                "Forbidden: no new finalizers can be added if the object is being deleted",
            ));
        }
        // Nothing but bookkeeping changed (a controller re-writing what is
        // there): answer with the stored object before the costly steps.
        if same_but_bookkeeping(&old, &new) {
            self.count_write(&rt.gr(), UNCHANGED);
            return Ok(old);
        }
        if scope != Scope::Status {
            self.schema_check(rt, &mut new, o.strict)?;
        }
        kinds::apply_defaults(rt, &mut new, Some(&old), self.rv);
        let causes = kinds::validate(rt, &new, Some(&old));
        if !causes.is_empty() {
            return Err(ApiError::invalid(&rt.group, &rt.kind, &name, causes));
        }
        if rt.tracks_generation && spec_differs(rt, &old, &new) {
            let g = old["metadata"]["generation"].as_i64().unwrap_or(0) + 1;
            new["metadata"]["generation"] = json!(g);
        }
        new["apiVersion"] = json!(rt.storage_api_version());
        new["kind"] = json!(rt.kind);
        let now = now();
        if track {
            let fm_scope = if rt.status_subresource {
                scope
            } else {
                Scope::All
            };
            track_update(
                rt,
                Some(&old),
                &mut new,
                &o.manager,
                fm_scope,
                &rt.api_version(&o.version),
                &now,
            );
        }
        let is_crd = rt.group == "apiextensions.k8s.io" && rt.kind == "CustomResourceDefinition";
        if is_crd && scope != Scope::Status {
            let defined = from_crd(&new)?;
            if !o.dry_run {
                self.registry.insert(defined);
            }
        }
        if same_but_bookkeeping(&old, &new) {
            self.count_write(&rt.gr(), UNCHANGED);
            return Ok(old);
        }
        if o.dry_run {
            return Ok(Arc::new(new));
        }
        if deleting && new_fin.is_empty() {
            return Ok(self.remove(rt, new));
        }
        Ok(self.commit_put(&rt.gr(), new))
    }
}
