//! What a write decides without the store: the object a create, PUT or PATCH leads to,
//! checked, defaulted and with its field ownership recorded. These are pure functions of
//! the request and the stored version, so they run outside the store's lock
//! ([`crate::guaranteed`]); [`crate::ops`] commits their results.

use rand::Rng as _;
use serde_json::{Value, json};

use crate::apply::{ApplyRequest, apply, track_update};
use crate::compare::{same_but_bookkeeping, spec_differs};
use crate::crd::{crd_established_status, from_crd};
use crate::error::{ApiError, ApiResult, Cause};
use crate::fields::Scope;
use crate::kinds;
use crate::ops::{CRD_CLEANUP_FINALIZER, PatchKind, WriteOpts, finalizers, now, present};
use crate::patch::{json_patch, merge_patch, strategic_merge_patch};
use crate::registry::ResourceType;
use crate::schema;
use crate::store::meta_str;

pub(crate) fn check_kind(rt: &ResourceType, obj: &Value, version: &str) -> ApiResult<()> {
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

/// Prune and validate against the kind's schema (`strict`: unknown fields are an error).
fn schema_check(rt: &ResourceType, obj: &mut Value, strict: bool) -> ApiResult<()> {
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

/// What an update comes to, worked out from one version of the object.
pub enum Prepared {
    /// Nothing but bookkeeping would change: the stored object is the answer.
    Unchanged,
    /// Store `new`; `remove`: the object was being deleted and lost its last finalizer.
    Write { new: Value, remove: bool },
}

pub(crate) fn is_crd(rt: &ResourceType) -> bool {
    rt.group == "apiextensions.k8s.io" && rt.kind == "CustomResourceDefinition"
}

/// Everything an update decides, from the stored version `old` alone: subresource rules,
/// immutable metadata, finalizer rules, validation, defaults (`alloc` seeds allocated
/// addresses), generation, field management and no-op detection. It needs no store, so it
/// runs outside the lock (see [`crate::guaranteed`]).
pub fn prepare_update(
    rt: &ResourceType,
    old: &Value,
    mut new: Value,
    scope: Scope,
    o: &WriteOpts,
    track: bool,
    alloc: crate::store::Alloc,
) -> ApiResult<Prepared> {
    let name = meta_str(old, "name").to_string();
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
    let old_fin = finalizers(old);
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
    if same_but_bookkeeping(old, &new) {
        return Ok(Prepared::Unchanged);
    }
    if scope != Scope::Status {
        schema_check(rt, &mut new, o.strict)?;
    }
    kinds::apply_defaults(rt, &mut new, Some(old), alloc);
    let causes = kinds::validate(rt, &new, Some(old));
    if !causes.is_empty() {
        return Err(ApiError::invalid(&rt.group, &rt.kind, &name, causes));
    }
    if rt.tracks_generation && spec_differs(rt, old, &new) {
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
            Some(old),
            &mut new,
            &o.manager,
            fm_scope,
            &rt.api_version(&o.version),
            &now,
        );
    }
    if is_crd(rt) && scope != Scope::Status {
        // Checked here; registered when committed.
        from_crd(&new)?;
    }
    if same_but_bookkeeping(old, &new) {
        return Ok(Prepared::Unchanged);
    }
    Ok(Prepared::Write {
        remove: deleting && new_fin.is_empty(),
        new,
    })
}

/// A new object with its namespace and name settled (a generateName made concrete).
pub fn named(rt: &ResourceType, ns: &str, mut obj: Value, o: &WriteOpts) -> ApiResult<Value> {
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
    Ok(obj)
}

/// Everything a create decides about a [`named`] object without the store: schema,
/// defaults (`alloc` seeds allocated addresses), validation, metadata, field management.
/// Runs outside the lock (see [`crate::guaranteed`]).
pub fn prepare_create(
    rt: &ResourceType,
    mut obj: Value,
    o: &WriteOpts,
    track: bool,
    alloc: crate::store::Alloc,
) -> ApiResult<Value> {
    let name = meta_str(&obj, "name").to_string();
    if rt.status_subresource
        && let Some(m) = obj.as_object_mut()
    {
        m.remove("status");
    }
    schema_check(rt, &mut obj, o.strict)?;
    // The uid first: defaulting may name it (a Job's controller-uid selector).
    obj["metadata"]["uid"] = json!(uuid::Uuid::new_v4().to_string());
    kinds::apply_defaults(rt, &mut obj, None, alloc);
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
    if is_crd(rt) {
        // Checked here; registered when committed.
        from_crd(&obj)?;
        obj["status"] = crd_established_status(&obj, &now);
        let mut f = finalizers(&obj);
        if !f.iter().any(|x| x == CRD_CLEANUP_FINALIZER) {
            f.push(CRD_CLEANUP_FINALIZER.into());
        }
        obj["metadata"]["finalizers"] = json!(f);
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
    Ok(obj)
}

/// The object `old` becomes under a PATCH (in storage form), before the update rules.
#[allow(clippy::too_many_arguments)]
pub fn patched(
    rt: &ResourceType,
    old: &Value,
    name: &str,
    kind: PatchKind,
    body: &Value,
    scope: Scope,
    o: &WriteOpts,
    now: &str,
) -> ApiResult<Value> {
    let mut cur = present(rt, &o.version, old);
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
                now,
            };
            cur = apply(rt, Some(&cur), body, &req)?;
        }
    }
    let cur = crate::events::to_storage(rt, cur);
    let rv = meta_str(&cur, "resourceVersion");
    if !rv.is_empty() && rv != meta_str(old, "resourceVersion") {
        return Err(ApiError::stale(&rt.group, &rt.plural, name));
    }
    Ok(cur)
}

/// A PUT body, checked against the URL and in storage form.
pub fn put_body(
    rt: &ResourceType,
    ns: &str,
    name: &str,
    obj: Value,
    o: &WriteOpts,
) -> ApiResult<Value> {
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
    Ok(obj)
}

/// A PUT's resourceVersion must name the stored version (custom resources must give one).
pub fn put_precondition(rt: &ResourceType, name: &str, obj: &Value, old: &Value) -> ApiResult<()> {
    let rv = meta_str(obj, "resourceVersion");
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
    } else if rv != meta_str(old, "resourceVersion") {
        return Err(ApiError::stale(&rt.group, &rt.plural, name));
    }
    Ok(())
}

/// What server-side apply creates when the object does not exist yet (before [`named`]).
pub fn applied_new(
    rt: &ResourceType,
    name: &str,
    body: &Value,
    o: &WriteOpts,
    now: &str,
) -> ApiResult<Value> {
    check_kind(rt, body, &o.version)?;
    let req = ApplyRequest {
        manager: &o.manager,
        force: o.force,
        scope: Scope::All,
        api_version: &rt.api_version(&o.version),
        now,
    };
    let mut created = apply(rt, None, body, &req)?;
    created["metadata"]["name"] = json!(name);
    Ok(created)
}
