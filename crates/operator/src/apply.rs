//! The one way Midplane writes objects: server-side apply under one field
//! manager, forced (Midplane owns what it renders), with deletes that only
//! touch what the caller controls.

use kube::api::{
    Api, ApiResource, DeleteParams, DynamicObject, GroupVersionKind, Patch, PatchParams,
    PostParams, PropagationPolicy,
};
use kube::{Client, Resource, ResourceExt};
use midplane_api::FIELD_MANAGER;
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::fmt::Debug;

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

#[derive(Clone)]
pub struct Applier {
    client: Client,
}

impl Applier {
    pub fn new(client: Client) -> Self {
        Self { client }
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    fn params() -> PatchParams {
        PatchParams::apply(FIELD_MANAGER).force()
    }

    /// Applies a typed namespaced object.
    pub async fn apply<K>(&self, obj: &K) -> Result<K, ApplyError>
    where
        K: Resource<DynamicType = ()> + Serialize + DeserializeOwned + Clone + Debug,
        K: Resource<Scope = kube::core::NamespaceResourceScope>,
    {
        let (name, body) = apply_body(obj)?;
        self.patch_typed(obj, name, &body).await
    }

    /// Applies a typed object unless `live` already carries what this apply
    /// would write: the body is stamped with [`APPLIED_HASH`] (its sha256
    /// without the stamp) and the apply is skipped when `live` has the same
    /// stamp. Returns whether it applied. A controller woken by every status
    /// change of its children writes only when its desired state moved.
    pub async fn apply_if_changed<K>(&self, obj: &K, live: Option<&K>) -> Result<bool, ApplyError>
    where
        K: Resource<DynamicType = ()> + Serialize + DeserializeOwned + Clone + Debug,
        K: Resource<Scope = kube::core::NamespaceResourceScope>,
    {
        let (name, mut body) = apply_body(obj)?;
        let hash = stamp_applied_hash(&mut body);
        let current = live
            .filter(|l| l.meta().deletion_timestamp.is_none())
            .and_then(|l| l.meta().annotations.as_ref()?.get(APPLIED_HASH))
            .is_some_and(|h| *h == hash);
        if current {
            return Ok(false);
        }
        self.patch_typed(obj, name, &body).await?;
        Ok(true)
    }

    async fn patch_typed<K>(
        &self,
        obj: &K,
        name: String,
        body: &serde_json::Value,
    ) -> Result<K, ApplyError>
    where
        K: Resource<DynamicType = ()> + DeserializeOwned + Clone + Debug,
        K: Resource<Scope = kube::core::NamespaceResourceScope>,
    {
        let ns = obj
            .meta()
            .namespace
            .clone()
            .ok_or(ApplyError::Missing("namespace"))?;
        let api: Api<K> = Api::namespaced(self.client.clone(), &ns);
        api.patch(&name, &Self::params(), &Patch::Apply(body))
            .await
            .map_err(|source| ApplyError::Kube {
                kind: K::kind(&()).into_owned(),
                name,
                source,
            })
    }

    /// Applies a rendered object given as JSON (`apiVersion`, `kind`, `metadata.namespace` set).
    pub async fn apply_json(&self, obj: &serde_json::Value) -> Result<(), ApplyError> {
        let ar = api_resource(obj).ok_or(ApplyError::Missing("apiVersion/kind"))?;
        let (name, ns) = name_and_namespace(obj)?;
        let url = DynamicObject::url_path(&ar, Some(ns));
        let req = kube::core::Request::new(url).patch(name, &Self::params(), &Patch::Apply(obj));
        send_unread(&self.client, req)
            .await
            .map_err(|source| ApplyError::Kube {
                kind: kind_of(obj).to_string(),
                name: name.to_string(),
                source,
            })
    }

    /// Patches the status subresource (merge patch: no resourceVersion, so no
    /// conflict with spec writers).
    pub async fn patch_status<K>(&self, obj: &K, status: &impl Serialize) -> Result<(), ApplyError>
    where
        K: Resource<DynamicType = ()>,
        K: Resource<Scope = kube::core::NamespaceResourceScope>,
    {
        let name = obj.name_any();
        let ns = obj.namespace().ok_or(ApplyError::Missing("namespace"))?;
        let body = serde_json::json!({ "status": status });
        let req = kube::core::Request::new(K::url_path(&(), Some(&ns))).patch_subresource(
            "status",
            &name,
            &PatchParams::default(),
            &Patch::Merge(&body),
        );
        send_unread(&self.client, req)
            .await
            .map_err(|source| ApplyError::Kube {
                kind: K::kind(&()).into_owned(),
                name,
                source,
            })
    }

    /// Deletes an object in the foreground (its dependents go first); a
    /// missing object counts as deleted.
    pub async fn delete_dynamic(
        &self,
        ar: &ApiResource,
        ns: &str,
        name: &str,
    ) -> Result<(), ApplyError> {
        let api: Api<DynamicObject> = Api::namespaced_with(self.client.clone(), ns, ar);
        let dp = DeleteParams {
            propagation_policy: Some(PropagationPolicy::Foreground),
            ..DeleteParams::default()
        };
        match api.delete(name, &dp).await {
            Ok(_) => Ok(()),
            Err(e) if is_not_found(&e) => Ok(()),
            Err(source) => Err(ApplyError::Kube {
                kind: ar.kind.clone(),
                name: name.to_string(),
                source,
            }),
        }
    }

    /// Creates an object, retrying on a 409 from a concurrent writer.
    pub async fn create_or_get<K>(&self, api: &Api<K>, obj: &K) -> Result<K, kube::Error>
    where
        K: Resource + Serialize + DeserializeOwned + Clone + Debug,
    {
        match api.create(&PostParams::default(), obj).await {
            Err(kube::Error::Api(s)) if s.code == 409 => api.get(&obj.name_any()).await,
            other => other,
        }
    }
}

/// sha256 of an object as applied, stamped on it: an unchanged object is not
/// applied again.
pub const APPLIED_HASH: &str = "midplane.dev/applied-hash";

/// Stamps the applied-hash annotation (computed without it) and returns it.
pub fn stamp_applied_hash(obj: &mut serde_json::Value) -> String {
    use sha2::Digest;
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

/// A rendered object's name and namespace.
fn name_and_namespace(obj: &serde_json::Value) -> Result<(&str, &str), ApplyError> {
    let name = obj
        .pointer("/metadata/name")
        .and_then(|v| v.as_str())
        .ok_or(ApplyError::Missing("name"))?;
    let ns = obj
        .pointer("/metadata/namespace")
        .and_then(|v| v.as_str())
        .ok_or(ApplyError::Missing("namespace"))?;
    Ok((name, ns))
}

fn kind_of(obj: &serde_json::Value) -> &str {
    obj.get("kind").and_then(|v| v.as_str()).unwrap_or_default()
}

/// The API resource for an object's apiVersion and kind.
pub fn api_resource(obj: &serde_json::Value) -> Option<ApiResource> {
    let api_version = obj.get("apiVersion")?.as_str()?;
    let kind = kind_of(obj);
    if kind.is_empty() {
        return None;
    }
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
