//! Resolving what a request names: a storage (URI or configured name), a key reference, and
//! an instance's data directory.

use std::path::PathBuf;

use midplane_backup::{BackupKey, Store};
use midplane_proto::common::ObjectRef;
use tonic::Status;

use crate::config::BackupSettings;
use crate::convert::check_segment;

/// A storage URI, or the name of one in `backup.storages`; empty: `default_storage`.
pub fn store(settings: &BackupSettings, uri: &str) -> Result<Store, Status> {
    let uri = if uri.is_empty() {
        settings.default_storage.as_deref().ok_or_else(|| {
            Status::invalid_argument("storage: empty and no default_storage configured")
        })?
    } else if let Some(named) = settings.storages.get(uri) {
        named.as_str()
    } else {
        uri
    };
    Store::from_uri(uri).map_err(|e| Status::invalid_argument(format!("storage: {e}")))
}

/// Resolves "file:/path", "env:VAR" or "secret:namespace/name#key"; empty: `default_key_ref`.
pub fn key(settings: &BackupSettings, key_ref: &str) -> Result<BackupKey, Status> {
    let key_ref = if key_ref.is_empty() {
        settings.default_key_ref.as_deref().ok_or_else(|| {
            Status::invalid_argument("key_ref: empty and no default_key_ref configured")
        })?
    } else {
        key_ref
    };
    let bad = |e: midplane_backup::KeyError| {
        Status::failed_precondition(format!("key_ref {key_ref:?}: {e}"))
    };
    if let Some(path) = key_ref.strip_prefix("file:") {
        BackupKey::from_file(path).map_err(bad)
    } else if let Some(var) = key_ref.strip_prefix("env:") {
        BackupKey::from_env(var).map_err(bad)
    } else if let Some(rest) = key_ref.strip_prefix("secret:") {
        let malformed = || {
            Status::invalid_argument(format!(
                "key_ref {key_ref:?}: expected secret:namespace/name#key"
            ))
        };
        let (obj, data_key) = rest.split_once('#').ok_or_else(malformed)?;
        let (ns, name) = obj.split_once('/').ok_or_else(malformed)?;
        secret_key(settings, ns, name, data_key)
            .map_err(|s| Status::new(s.code(), format!("key_ref {key_ref:?}: {}", s.message())))
    } else {
        Err(Status::invalid_argument(format!(
            "key_ref {key_ref:?}: expected file:/path, env:VAR or secret:namespace/name#key"
        )))
    }
}

/// The key in Secret `ns/name` under `data_key`, as mounted under `secrets_dir`.
pub fn secret_key(
    settings: &BackupSettings,
    ns: &str,
    name: &str,
    data_key: &str,
) -> Result<BackupKey, Status> {
    for part in [ns, name, data_key] {
        check_segment("key_ref", part)?;
    }
    let path = settings.secrets_dir.join(ns).join(name).join(data_key);
    let bytes = std::fs::read(&path).map_err(|e| {
        Status::failed_precondition(format!(
            "Secret {ns}/{name} key {data_key} not mounted at {}: {e}",
            path.display()
        ))
    })?;
    BackupKey::from_secret_data([(data_key, bytes.as_slice())], data_key)
        .map_err(|e| Status::failed_precondition(format!("Secret {ns}/{name}: {e}")))
}

/// `explicit` if given, else `<data_root>/<namespace>/<name>/<instance>`.
pub fn instance_dir(
    settings: &BackupSettings,
    field: &str,
    explicit: &str,
    object: Option<&ObjectRef>,
    instance: &str,
) -> Result<PathBuf, Status> {
    if !explicit.is_empty() {
        return Ok(PathBuf::from(explicit));
    }
    let obj = object.ok_or_else(|| {
        Status::invalid_argument(format!("{field}: give a path or an object and instance"))
    })?;
    for (f, v) in [
        ("namespace", obj.namespace.as_str()),
        ("name", obj.name.as_str()),
        ("instance", instance),
    ] {
        check_segment(f, v)?;
    }
    Ok(default_instance_dir(
        settings,
        &obj.namespace,
        &obj.name,
        instance,
    ))
}

/// Where an instance's data is mounted: `<data_root>/<namespace>/<group>/<instance>` (the
/// request path, the scheduler and the Backup Pod all read it there).
pub fn default_instance_dir(
    settings: &BackupSettings,
    ns: &str,
    name: &str,
    instance: &str,
) -> PathBuf {
    settings.data_root.join(ns).join(name).join(instance)
}
