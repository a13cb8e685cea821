//! The write and read pipelines every request goes through: create, update (main resource or
//! /status), patch, delete with finalizers and propagation, list with selectors and paging.
//! What a write decides is worked out in [`crate::prepare`]; committing it happens here,
//! under the store's lock.

use std::sync::Arc;

use serde_json::{Value, json};

use crate::crd::from_crd;
use crate::error::{ApiError, ApiResult};
use crate::fields::Scope;
use crate::prepare::{Prepared, is_crd, named, prepare_create, prepare_update};
use crate::registry::{GroupResource, ResourceType};
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
    /// `gracePeriodSeconds`; only Pods use it (with graceful Pod deletion on).
    pub grace_period: Option<i64>,
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

/// Whether a stored object (or a view with its apiVersion and kind) is served to a
/// client of `api_version` exactly as stored.
pub fn served_as_stored(rt: &ResourceType, api_version: &str, obj: &Value) -> bool {
    rt.storage.is_none()
        && obj["apiVersion"].as_str() == Some(api_version)
        && obj["kind"].as_str() == Some(rt.kind.as_str())
}

/// The object as served, borrowed when the stored shape already is that (the
/// common case): serving a watch event or a LIST then copies nothing.
pub fn present_cow<'a>(
    rt: &ResourceType,
    version: &str,
    obj: &'a Value,
) -> std::borrow::Cow<'a, Value> {
    let api_version = rt.api_version(version);
    if served_as_stored(rt, &api_version, obj) {
        return std::borrow::Cow::Borrowed(obj);
    }
    let mut o = crate::events::from_storage(rt, obj);
    o["apiVersion"] = json!(api_version);
    o["kind"] = json!(rt.kind);
    std::borrow::Cow::Owned(o)
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
        obj: Value,
        o: &WriteOpts,
        track: bool,
    ) -> ApiResult<Arc<Value>> {
        let obj = named(rt, ns, obj, o)?;
        self.may_create(rt, ns, &obj)?;
        let obj = prepare_create(rt, obj, o, track, self.next_alloc())?;
        self.commit_create(rt, ns, obj, o)
    }

    /// What a create needs of the store: a live namespace, a free name (and for a CRD a
    /// free resource). Checked before the costly steps and again at the commit.
    pub fn may_create(&self, rt: &ResourceType, ns: &str, obj: &Value) -> ApiResult<()> {
        let name = meta_str(obj, "name");
        if rt.namespaced {
            self.namespace_writable(ns)?;
        }
        if self.get(&rt.gr(), ns, name).is_some() {
            return Err(ApiError::already_exists(&rt.group, &rt.plural, name));
        }
        if is_crd(rt) && self.registry.get(&from_crd(obj)?.gr()).is_some() {
            return Err(ApiError::already_exists(&rt.group, &rt.plural, name));
        }
        Ok(())
    }

    /// Store an object [`prepare_create`] built, if its name is still free.
    pub fn commit_create(
        &mut self,
        rt: &ResourceType,
        ns: &str,
        obj: Value,
        o: &WriteOpts,
    ) -> ApiResult<Arc<Value>> {
        self.may_create(rt, ns, &obj)?;
        if o.dry_run {
            return Ok(Arc::new(obj));
        }
        if is_crd(rt) {
            self.registry.insert(from_crd(&obj)?);
        }
        Ok(self.commit_put(&rt.gr(), obj))
    }
    /// The shared tail of every update: [`prepare_update`], then [`Inner::commit_update`].
    pub fn finish_update(
        &mut self,
        rt: &ResourceType,
        old: Arc<Value>,
        new: Value,
        scope: Scope,
        o: &WriteOpts,
        track: bool,
    ) -> ApiResult<Arc<Value>> {
        let prepared = prepare_update(rt, &old, new, scope, o, track, self.next_alloc())?;
        self.commit_update(rt, old, prepared, scope, o)
    }

    /// Store what [`prepare_update`] worked out from `old` (which must still be the stored
    /// version: the caller holds the lock it read `old` under, or has checked).
    pub fn commit_update(
        &mut self,
        rt: &ResourceType,
        old: Arc<Value>,
        prepared: Prepared,
        scope: Scope,
        o: &WriteOpts,
    ) -> ApiResult<Arc<Value>> {
        let (new, remove) = match prepared {
            Prepared::Unchanged => {
                self.count_write(&rt.gr(), UNCHANGED);
                return Ok(old);
            }
            Prepared::Write { new, remove } => (new, remove),
        };
        if o.dry_run {
            return Ok(Arc::new(new));
        }
        if is_crd(rt) && scope != Scope::Status {
            self.registry.insert(from_crd(&new)?);
        }
        if remove {
            return Ok(self.remove(rt, new));
        }
        Ok(self.commit_put(&rt.gr(), new))
    }
}
