//! The one way Midplane's controllers write objects. Each controller has its
//! own field manager (`midplane/<controller>`, so `managedFields` tells who
//! wrote what); objects, statuses and Pod role labels go through server-side
//! apply, forced (Midplane owns what it renders); finalizers are merge
//! patches carrying the resourceVersion, so a concurrent change fails (409)
//! instead of losing someone else's finalizer. Whether an object needs
//! writing at all is decided here too, once: see [`Applier::apply_stamped`].

use kube::api::{
    ApiResource, DeleteParams, DynamicObject, GroupVersionKind, Patch, PatchParams,
    PropagationPolicy,
};
use kube::{Client, Resource, ResourceExt};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::collections::{BTreeMap, HashMap};
use std::fmt::Debug;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    #[error("object has no {0}")]
    Missing(&'static str),
    #[error("apply {kind} {name}: {source}")]
    Kube {
        kind: String,
        name: String,
        source: kube::Error,
    },
    #[error("serialize {kind} {name}: {source}")]
    Serialize {
        kind: String,
        name: String,
        source: serde_json::Error,
    },
}

impl ApplyError {
    /// Conflicts, timeouts and server errors are worth retrying; a 4xx other
    /// than 409/429 means the object itself is wrong.
    pub fn is_transient(&self) -> bool {
        match self {
            ApplyError::Kube { source, .. } => is_transient(source),
            _ => false,
        }
    }

    pub fn is_conflict(&self) -> bool {
        matches!(self, ApplyError::Kube { source, .. } if is_conflict(source))
    }
}

pub fn is_transient(e: &kube::Error) -> bool {
    match e {
        kube::Error::Api(s) => matches!(s.code, 409 | 429 | 500..=599),
        _ => true,
    }
}

pub fn is_conflict(e: &kube::Error) -> bool {
    matches!(e, kube::Error::Api(s) if s.code == 409)
}

pub fn is_not_found(e: &kube::Error) -> bool {
    matches!(e, kube::Error::Api(s) if s.code == 404)
}

/// sha256 of an object as applied, stamped on it: an unchanged object is not
/// applied again.
pub const APPLIED_HASH: &str = "midplane.dev/applied-hash";

/// How long an apply is trusted over a watch cache that has not shown it yet.
pub const EXPECT_TTL: Duration = Duration::from_secs(5);

/// What [`Applier::apply_stamped`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied {
    /// The object was written.
    Written,
    /// The live object already carries this stamp.
    Current,
    /// This controller wrote this very stamp moments ago and the caller's
    /// cache has not shown it yet: not written again. Look again after
    /// [`EXPECT_TTL`] if the cache still does not show it.
    Expected,
}

/// Writes objects for one controller, under its own field manager.
#[derive(Clone)]
pub struct Applier {
    client: Client,
    manager: &'static str,
    /// Stamps written lately, by object: (hash, when).
    recent: Arc<Mutex<HashMap<String, (String, Instant)>>>,
}

impl Applier {
    /// `manager` is the field manager, `midplane/<controller>`.
    pub fn new(client: Client, manager: &'static str) -> Self {
        Self {
            client,
            manager,
            recent: Arc::default(),
        }
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    pub fn manager(&self) -> &'static str {
        self.manager
    }

    fn params(&self) -> PatchParams {
        PatchParams::apply(self.manager).force()
    }

    /// Applies a typed object and returns it as stored.
    pub async fn apply<K>(&self, obj: &K) -> Result<K, ApplyError>
    where
        K: Resource<DynamicType = ()> + Serialize + DeserializeOwned + Clone + Debug,
    {
        let (name, body) = apply_body(obj)?;
        let ns = obj.meta().namespace.as_deref();
        let req = kube::core::Request::new(K::url_path(&(), ns)).patch(
            &name,
            &self.params(),
            &Patch::Apply(&body),
        );
        let req = req.map_err(|e| kube_error::<K>(&name, kube::Error::BuildRequest(e)))?;
        self.client
            .request::<K>(req)
            .await
            .map_err(|e| kube_error::<K>(&name, e))
    }

    /// Applies a typed object unless `live` already carries what this apply
    /// would write (see [`Applier::apply_stamped`]).
    pub async fn apply_if_changed<K>(
        &self,
        obj: &K,
        live: Option<&K>,
    ) -> Result<Applied, ApplyError>
    where
        K: Resource<DynamicType = ()> + Serialize,
    {
        let (_, mut body) = apply_body(obj)?;
        let hash = stamp_applied_hash(&mut body);
        let live_hash = live
            .filter(|l| l.meta().deletion_timestamp.is_none())
            .and_then(|l| l.annotations().get(APPLIED_HASH))
            .map(String::as_str);
        self.apply_stamped(&body, &hash, live_hash).await
    }

    /// The hash skip, in one place: applies `obj` (already stamped with
    /// [`stamp_applied_hash`], which returned `hash`) unless the live object's
    /// stamp `live_hash` is the same, or this controller wrote the same stamp
    /// less than [`EXPECT_TTL`] ago (the caller's watch cache is only behind:
    /// client-go's expectations). A controller woken by every status change
    /// of its children writes only when its desired state moved.
    pub async fn apply_stamped(
        &self,
        obj: &serde_json::Value,
        hash: &str,
        live_hash: Option<&str>,
    ) -> Result<Applied, ApplyError> {
        if live_hash == Some(hash) {
            return Ok(Applied::Current);
        }
        let key = object_key(obj);
        if self.wrote_lately(&key, hash) {
            return Ok(Applied::Expected);
        }
        self.apply_json(obj).await?;
        self.remember(key, hash);
        Ok(Applied::Written)
    }

    /// Whether this controller wrote `hash` on the object `api_version`,
    /// `kind`, `namespace`, `name` less than [`EXPECT_TTL`] ago: a cache that
    /// does not show it yet is only behind.
    pub fn expecting(
        &self,
        api_version: &str,
        kind: &str,
        namespace: &str,
        name: &str,
        hash: &str,
    ) -> bool {
        self.wrote_lately(&format!("{api_version}/{kind}/{namespace}/{name}"), hash)
    }

    fn wrote_lately(&self, key: &str, hash: &str) -> bool {
        let recent = self
            .recent
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        recent
            .get(key)
            .is_some_and(|(h, at)| h == hash && at.elapsed() < EXPECT_TTL)
    }

    fn remember(&self, key: String, hash: &str) {
        let mut recent = self
            .recent
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if recent.len() > 4096 && recent.len().is_power_of_two() {
            recent.retain(|_, (_, at)| at.elapsed() < EXPECT_TTL);
        }
        recent.insert(key, (hash.to_string(), Instant::now()));
    }

    /// Applies an object given as JSON (`apiVersion`, `kind`, `metadata.name`
    /// set; `metadata.namespace` for namespaced kinds). The answer is not read.
    pub async fn apply_json(&self, obj: &serde_json::Value) -> Result<(), ApplyError> {
        let ar = api_resource(obj).ok_or(ApplyError::Missing("apiVersion/kind"))?;
        let name = str_at(obj, "/metadata/name").ok_or(ApplyError::Missing("name"))?;
        let ns = str_at(obj, "/metadata/namespace");
        let url = DynamicObject::url_path(&ar, ns);
        let req = kube::core::Request::new(url).patch(name, &self.params(), &Patch::Apply(obj));
        send_unread(&self.client, req)
            .await
            .map_err(|source| ApplyError::Kube {
                kind: ar.kind.clone(),
                name: name.to_string(),
                source,
            })
    }

    /// Applies the status subresource: the whole status, owned by this
    /// controller's field manager.
    pub async fn apply_status<K>(&self, obj: &K, status: &impl Serialize) -> Result<(), ApplyError>
    where
        K: Resource<DynamicType = ()>,
    {
        let name = obj.name_any();
        let ns = obj.meta().namespace.as_deref();
        let body = serde_json::json!({
            "apiVersion": K::api_version(&()),
            "kind": K::kind(&()),
            "metadata": { "name": name, "namespace": ns },
            "status": status,
        });
        let req = kube::core::Request::new(K::url_path(&(), ns)).patch_subresource(
            "status",
            &name,
            &self.params(),
            &Patch::Apply(&body),
        );
        send_unread(&self.client, req)
            .await
            .map_err(|e| kube_error::<K>(&name, e))
    }

    /// Applies labels on an object this controller does not otherwise write
    /// (a Pod's runtime role): only these labels are owned by this manager,
    /// the rest of the object is left as it is. A missing object is fine.
    /// The same labels sent less than [`EXPECT_TTL`] ago are not sent again
    /// ([`Applied::Expected`]): the caller's cache is only behind.
    pub async fn apply_labels<K>(
        &self,
        obj: &K,
        labels: &BTreeMap<String, String>,
    ) -> Result<Applied, ApplyError>
    where
        K: Resource<DynamicType = ()>,
    {
        let name = obj.name_any();
        let ns = obj.meta().namespace.as_deref();
        let body = serde_json::json!({
            "apiVersion": K::api_version(&()),
            "kind": K::kind(&()),
            "metadata": { "name": name, "namespace": ns, "labels": labels },
        });
        let (key, hash) = (
            format!("{}#labels", object_key(&body)),
            format!("{labels:?}"),
        );
        if self.wrote_lately(&key, &hash) {
            return Ok(Applied::Expected);
        }
        let req = kube::core::Request::new(K::url_path(&(), ns)).patch(
            &name,
            &self.params(),
            &Patch::Apply(&body),
        );
        match send_unread(&self.client, req).await {
            Err(e) if is_not_found(&e) => Ok(Applied::Current),
            Err(e) => Err(kube_error::<K>(&name, e)),
            Ok(()) => {
                self.remember(key, &hash);
                Ok(Applied::Written)
            }
        }
    }

    /// Adds `finalizer` (if missing) and returns the object as stored.
    pub async fn add_finalizer<K>(&self, obj: &K, finalizer: &str) -> Result<K, ApplyError>
    where
        K: Resource<DynamicType = ()> + DeserializeOwned + Clone + Debug,
    {
        let mut f = obj.finalizers().to_vec();
        f.push(finalizer.to_string());
        let added = self.write_finalizers(obj, f).await?;
        self.remember(finalizer_key(obj), finalizer);
        Ok(added)
    }

    /// Whether this controller added `finalizer` to `obj` less than
    /// [`EXPECT_TTL`] ago: a cache that does not show it yet is only behind,
    /// and adding it again would only fail on the stale resourceVersion.
    pub fn added_finalizer_lately<K: Resource<DynamicType = ()>>(
        &self,
        obj: &K,
        finalizer: &str,
    ) -> bool {
        self.wrote_lately(&finalizer_key(obj), finalizer)
    }

    /// Removes `finalizer`; an object already gone is fine.
    pub async fn remove_finalizer<K>(&self, obj: &K, finalizer: &str) -> Result<(), ApplyError>
    where
        K: Resource<DynamicType = ()> + DeserializeOwned + Clone + Debug,
    {
        let f = obj
            .finalizers()
            .iter()
            .filter(|f| *f != finalizer)
            .cloned()
            .collect();
        match self.write_finalizers(obj, f).await {
            Err(ApplyError::Kube { source, .. }) if is_not_found(&source) => Ok(()),
            other => other.map(drop),
        }
    }

    /// Finalizers are a list other controllers write too: a merge patch with
    /// the resourceVersion we read, so a concurrent change is a 409, not a loss.
    async fn write_finalizers<K>(&self, obj: &K, finalizers: Vec<String>) -> Result<K, ApplyError>
    where
        K: Resource<DynamicType = ()> + DeserializeOwned + Clone + Debug,
    {
        let name = obj.name_any();
        let body = serde_json::json!({
            "metadata": {
                "finalizers": finalizers,
                "resourceVersion": obj.resource_version(),
            }
        });
        let pp = PatchParams {
            field_manager: Some(self.manager.to_string()),
            ..PatchParams::default()
        };
        let req = kube::core::Request::new(K::url_path(&(), obj.meta().namespace.as_deref()))
            .patch(&name, &pp, &Patch::Merge(&body))
            .map_err(|e| kube_error::<K>(&name, kube::Error::BuildRequest(e)))?;
        self.client
            .request::<K>(req)
            .await
            .map_err(|e| kube_error::<K>(&name, e))
    }

    /// Deletes an object in the foreground (its dependents go first); a
    /// missing object counts as deleted.
    pub async fn delete(&self, ar: &ApiResource, ns: &str, name: &str) -> Result<(), ApplyError> {
        let dp = DeleteParams {
            propagation_policy: Some(PropagationPolicy::Foreground),
            ..DeleteParams::default()
        };
        let url = DynamicObject::url_path(ar, Some(ns));
        let req = kube::core::Request::new(url).delete(name, &dp);
        match send_unread(&self.client, req).await {
            Err(e) if is_not_found(&e) => Ok(()),
            other => other.map_err(|source| ApplyError::Kube {
                kind: ar.kind.clone(),
                name: name.to_string(),
                source,
            }),
        }
    }
}

/// `apiVersion/kind/namespace/name` of an object given as JSON.
fn object_key(obj: &serde_json::Value) -> String {
    let at = |p| str_at(obj, p).unwrap_or_default();
    format!(
        "{}/{}/{}/{}",
        at("/apiVersion"),
        at("/kind"),
        at("/metadata/namespace"),
        at("/metadata/name")
    )
}

fn kube_error<K: Resource<DynamicType = ()>>(name: &str, source: kube::Error) -> ApplyError {
    ApplyError::Kube {
        kind: K::kind(&()).into_owned(),
        name: name.to_string(),
        source,
    }
}

/// Stamps the applied-hash annotation (computed without it) and returns it.
pub fn stamp_applied_hash(obj: &mut serde_json::Value) -> String {
    use sha2::Digest;
    // Stamping is idempotent: an old stamp (and the map it alone made) goes first.
    if let Some(meta) = obj.get_mut("metadata").and_then(|m| m.as_object_mut()) {
        let emptied = meta
            .get_mut("annotations")
            .and_then(|a| a.as_object_mut())
            .is_some_and(|a| a.remove(APPLIED_HASH).is_some() && a.is_empty());
        if emptied {
            meta.remove("annotations");
        }
    }
    let hash = hex::encode(sha2::Sha256::digest(obj.to_string().as_bytes()));
    if let Some(meta) = obj.get_mut("metadata").and_then(|m| m.as_object_mut()) {
        let ann = meta
            .entry("annotations")
            .or_insert_with(|| serde_json::Value::Object(Default::default()));
        if let Some(a) = ann.as_object_mut() {
            a.insert(APPLIED_HASH.into(), hash.clone().into());
        }
    }
    hash
}

/// The server-side-apply body of a typed object: apiVersion and kind set,
/// status removed (it belongs to the status subresource).
fn apply_body<K>(obj: &K) -> Result<(String, serde_json::Value), ApplyError>
where
    K: Resource<DynamicType = ()> + Serialize,
{
    let name = obj.meta().name.clone().ok_or(ApplyError::Missing("name"))?;
    let mut body = serde_json::to_value(obj).map_err(|source| ApplyError::Serialize {
        kind: K::kind(&()).into_owned(),
        name: name.clone(),
        source,
    })?;
    if let Some(m) = body.as_object_mut() {
        m.insert("apiVersion".into(), K::api_version(&()).into());
        m.insert("kind".into(), K::kind(&()).into());
        m.remove("status");
    }
    Ok((name, body))
}

/// Sends a write whose answer no caller reads, without decoding it: at
/// thousands of objects, decoding each returned object (managedFields and
/// all) cost the controllers more than building the write.
pub(crate) async fn send_unread(
    client: &kube::Client,
    req: Result<http::Request<Vec<u8>>, kube::core::request::Error>,
) -> Result<(), kube::Error> {
    let req = req.map_err(kube::Error::BuildRequest)?;
    client.request_text(req).await.map(drop)
}

fn str_at<'a>(obj: &'a serde_json::Value, pointer: &str) -> Option<&'a str> {
    obj.pointer(pointer).and_then(|v| v.as_str())
}

/// The API resource for an object's apiVersion and kind.
pub fn api_resource(obj: &serde_json::Value) -> Option<ApiResource> {
    let api_version = str_at(obj, "/apiVersion")?;
    let kind = str_at(obj, "/kind").filter(|k| !k.is_empty())?;
    let (group, version) = match api_version.split_once('/') {
        Some((g, v)) => (g, v),
        None => ("", api_version),
    };
    Some(ApiResource::from_gvk(&GroupVersionKind::gvk(
        group, version, kind,
    )))
}

/// Whether `owner_uid` is the controller owner of `obj`.
pub fn controlled_by(obj: &impl Resource, owner_uid: &str) -> bool {
    obj.meta()
        .owner_references
        .iter()
        .flatten()
        .any(|r| r.controller == Some(true) && r.uid == owner_uid)
}

#[cfg(test)]
#[path = "apply_tests.rs"]
mod tests;

/// Where [`Applier::add_finalizer`] remembers an added finalizer.
fn finalizer_key<K: Resource<DynamicType = ()>>(obj: &K) -> String {
    format!("finalizers/{}", obj.uid().unwrap_or_else(|| obj.name_any()))
}
