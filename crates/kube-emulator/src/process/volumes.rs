//! A Pod's volumes as directories on this machine: ConfigMap, Secret, downwardAPI and
//! projected volumes written the way the kubelet's AtomicWriter does (files in a
//! timestamped `..<time>` directory, an atomically swapped `..data` symlink to it, and
//! top-level symlinks through `..data`), emptyDir, hostPath, and PVCs as directories under
//! the state dir that outlive their Pods.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use serde_json::Value;

use super::env::{field_ref, resource_ref};
use crate::kubelet::gr;
use crate::store::Store;

/// File path inside the volume → (bytes, mode).
pub type Payload = BTreeMap<String, (Vec<u8>, u32)>;

/// What the volumes of a Pod need to know.
pub struct Ctx<'a> {
    pub store: &'a Store,
    pub pod: &'a Value,
    /// `<state>/pods/<uid>/volumes`.
    pub pod_volumes: PathBuf,
    /// `<state>/pv`: one directory per bound PVC's volume.
    pub pv_root: PathBuf,
    pub fs_group: Option<u32>,
}

fn ns(pod: &Value) -> &str {
    pod["metadata"]["namespace"].as_str().unwrap_or_default()
}

fn mode_of(v: &Value, default: u32) -> u32 {
    v.as_u64().map_or(default, |m| m as u32)
}

/// The files of a ConfigMap or Secret volume source (`None`: optional and missing).
fn object_payload(
    store: &Store,
    namespace: &str,
    src: &Value,
    secret: bool,
    default_mode: u32,
) -> Result<Option<Payload>, String> {
    let (res, what, name_field) = if secret {
        ("secrets", "secret", "secretName")
    } else {
        ("configmaps", "configmap", "name")
    };
    let name = src[name_field].as_str().unwrap_or_default();
    let optional = src["optional"] == Value::Bool(true);
    let obj = store.lock().get(&gr("", res), namespace, name);
    let Some(obj) = obj else {
        return if optional {
            Ok(None)
        } else {
            Err(format!("{what} \"{name}\" not found"))
        };
    };
    let b64 = |s: &str| {
        base64::engine::general_purpose::STANDARD
            .decode(s)
            .unwrap_or_default()
    };
    let mut all: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    for (k, v) in obj["data"].as_object().into_iter().flatten() {
        let s = v.as_str().unwrap_or_default();
        all.insert(
            k.clone(),
            if secret {
                b64(s)
            } else {
                s.as_bytes().to_vec()
            },
        );
    }
    for (k, v) in obj["binaryData"].as_object().into_iter().flatten() {
        all.insert(k.clone(), b64(v.as_str().unwrap_or_default()));
    }
    let mut out = Payload::new();
    match src["items"].as_array() {
        Some(items) if !items.is_empty() => {
            for it in items {
                let key = it["key"].as_str().unwrap_or_default();
                let Some(bytes) = all.get(key) else {
                    if optional {
                        continue;
                    }
                    return Err(format!("{what} references non-existent config key: {key}"));
                };
                let path = it["path"].as_str().unwrap_or(key).to_string();
                out.insert(path, (bytes.clone(), mode_of(&it["mode"], default_mode)));
            }
        }
        _ => {
            for (k, b) in all {
                out.insert(k, (b, default_mode));
            }
        }
    }
    Ok(Some(out))
}

fn downward_payload(pod: &Value, items: &Value, default_mode: u32) -> Result<Payload, String> {
    let mut out = Payload::new();
    for it in items.as_array().into_iter().flatten() {
        let path = it["path"].as_str().unwrap_or_default().to_string();
        let value = if it["fieldRef"].is_object() {
            field_ref(
                pod,
                it["fieldRef"]["fieldPath"].as_str().unwrap_or_default(),
            )
        } else {
            resource_ref(pod, &Value::Null, &it["resourceFieldRef"])
        }
        .map_err(|e| e.to_string())?;
        out.insert(
            path,
            (value.into_bytes(), mode_of(&it["mode"], default_mode)),
        );
    }
    Ok(out)
}

/// The files a projected-style volume holds now; `Ok(None)` for the other volume types.
fn payload(ctx: &Ctx<'_>, vol: &Value) -> Result<Option<Payload>, String> {
    let namespace = ns(ctx.pod);
    if vol["configMap"].is_object() || vol["secret"].is_object() {
        let secret = vol["secret"].is_object();
        let src = if secret {
            &vol["secret"]
        } else {
            &vol["configMap"]
        };
        let m = mode_of(&src["defaultMode"], 0o644);
        return Ok(Some(
            object_payload(ctx.store, namespace, src, secret, m)?.unwrap_or_default(),
        ));
    }
    if vol["downwardAPI"].is_object() {
        let m = mode_of(&vol["downwardAPI"]["defaultMode"], 0o644);
        return downward_payload(ctx.pod, &vol["downwardAPI"]["items"], m).map(Some);
    }
    if vol["projected"].is_object() {
        let m = mode_of(&vol["projected"]["defaultMode"], 0o644);
        let mut out = Payload::new();
        for s in vol["projected"]["sources"].as_array().into_iter().flatten() {
            if s["configMap"].is_object() || s["secret"].is_object() {
                let secret = s["secret"].is_object();
                let mut src = if secret {
                    s["secret"].clone()
                } else {
                    s["configMap"].clone()
                };
                if secret {
                    // Projected secret sources name the secret `name`.
                    src["secretName"] = src["name"].clone();
                }
                out.extend(
                    object_payload(ctx.store, namespace, &src, secret, m)?.unwrap_or_default(),
                );
            } else if s["downwardAPI"].is_object() {
                out.extend(downward_payload(ctx.pod, &s["downwardAPI"]["items"], m)?);
            } else {
                return Err(format!(
                    "projected source {} is not supported by the emulator's process pods",
                    s.as_object()
                        .and_then(|o| o.keys().next())
                        .map_or("?", |k| k.as_str())
                ));
            }
        }
        return Ok(Some(out));
    }
    Ok(None)
}

fn chgrp(p: &Path, gid: u32) -> std::io::Result<()> {
    std::os::unix::fs::lchown(p, None, Some(gid))
}

/// fsGroup on a writable volume: group-owned by it, group-writable, setgid directories (as
/// the kubelet's recursive ownership change does).
fn apply_fs_group(dir: &Path, gid: u32) -> std::io::Result<()> {
    chgrp(dir, gid)?;
    let meta = std::fs::symlink_metadata(dir)?;
    if meta.is_dir() {
        std::fs::set_permissions(
            dir,
            std::fs::Permissions::from_mode(meta.permissions().mode() | 0o2070),
        )?;
        for e in std::fs::read_dir(dir)? {
            apply_fs_group(&e?.path(), gid)?;
        }
    } else if meta.is_file() {
        std::fs::set_permissions(
            dir,
            std::fs::Permissions::from_mode(meta.permissions().mode() | 0o060),
        )?;
    }
    Ok(())
}

fn payload_matches(dir: &Path, payload: &Payload) -> bool {
    let mut count = 0usize;
    fn walk(d: &Path, n: &mut usize) {
        for e in std::fs::read_dir(d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                walk(&p, n);
            } else {
                *n += 1;
            }
        }
    }
    walk(dir, &mut count);
    count == payload.len()
        && payload.iter().all(|(rel, (bytes, mode))| {
            let p = dir.join(rel);
            std::fs::read(&p).is_ok_and(|b| &b == bytes)
                && std::fs::metadata(&p).is_ok_and(|m| m.permissions().mode() & 0o7777 == *mode)
        })
}

/// Write `payload` into `dir` as the kubelet's AtomicWriter does; `false` when it was
/// already there (no swap).
pub fn write_atomic(dir: &Path, payload: &Payload, fs_group: Option<u32>) -> std::io::Result<bool> {
    std::fs::create_dir_all(dir)?;
    let data = dir.join("..data");
    let current = std::fs::read_link(&data).ok();
    if let Some(cur) = &current
        && payload_matches(&dir.join(cur), payload)
    {
        return Ok(false);
    }
    let stamp = chrono::Utc::now()
        .format("..%Y_%m_%d_%H_%M_%S.%f")
        .to_string();
    let ts = dir.join(&stamp);
    std::fs::create_dir(&ts)?;
    for (rel, (bytes, mode)) in payload {
        let p = ts.join(rel);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(&p, bytes)?;
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(*mode))?;
        if let Some(g) = fs_group {
            chgrp(&p, g)?;
        }
    }
    let tmp = dir.join("..data_tmp");
    let _ = std::fs::remove_file(&tmp);
    std::os::unix::fs::symlink(&stamp, &tmp)?;
    std::fs::rename(&tmp, &data)?;
    let tops: BTreeSet<String> = payload
        .keys()
        .filter_map(|k| k.split('/').next().map(String::from))
        .collect();
    for t in &tops {
        let link = dir.join(t);
        if std::fs::symlink_metadata(&link).is_err() {
            std::os::unix::fs::symlink(Path::new("..data").join(t), &link)?;
        }
    }
    for e in std::fs::read_dir(dir)? {
        let e = e?;
        let name = e.file_name().to_string_lossy().into_owned();
        if !name.starts_with("..") && !tops.contains(&name) {
            std::fs::remove_file(e.path())?;
        }
    }
    if let Some(cur) = current {
        let old = dir.join(cur);
        if old != ts {
            std::fs::remove_dir_all(old)?;
        }
    }
    Ok(true)
}

/// Every volume of the Pod as a path on this machine. `Err` is the kubelet's FailedMount
/// message (the Pod waits in ContainerCreating and tries again).
pub fn prepare(ctx: &Ctx<'_>) -> Result<HashMap<String, PathBuf>, String> {
    let mut out = HashMap::new();
    for vol in ctx.pod["spec"]["volumes"].as_array().into_iter().flatten() {
        let name = vol["name"].as_str().unwrap_or_default().to_string();
        let fail = |m: String| format!("MountVolume.SetUp failed for volume \"{name}\" : {m}");
        let dir = ctx.pod_volumes.join(&name);
        let path = if let Some(files) = payload(ctx, vol).map_err(fail)? {
            write_atomic(&dir, &files, ctx.fs_group).map_err(|e| fail(e.to_string()))?;
            dir
        } else if vol["emptyDir"].is_object() {
            std::fs::create_dir_all(&dir).map_err(|e| fail(e.to_string()))?;
            if let Some(g) = ctx.fs_group {
                apply_fs_group(&dir, g).map_err(|e| fail(e.to_string()))?;
            }
            dir
        } else if vol["persistentVolumeClaim"].is_object() {
            let claim = vol["persistentVolumeClaim"]["claimName"]
                .as_str()
                .unwrap_or_default();
            let pvc = ctx
                .store
                .lock()
                .get(&gr("", "persistentvolumeclaims"), ns(ctx.pod), claim);
            let pvc =
                pvc.ok_or_else(|| fail(format!("persistentvolumeclaim \"{claim}\" not found")))?;
            let volume = pvc["spec"]["volumeName"].as_str().unwrap_or_default();
            if pvc["status"]["phase"] != "Bound" || volume.is_empty() {
                return Err(fail(format!(
                    "persistentvolumeclaim \"{claim}\" is not bound"
                )));
            }
            let dir = ctx.pv_root.join(volume);
            std::fs::create_dir_all(&dir).map_err(|e| fail(e.to_string()))?;
            if let Some(g) = ctx.fs_group {
                apply_fs_group(&dir, g).map_err(|e| fail(e.to_string()))?;
            }
            dir
        } else if vol["hostPath"].is_object() {
            let p = PathBuf::from(vol["hostPath"]["path"].as_str().unwrap_or_default());
            match vol["hostPath"]["type"].as_str().unwrap_or_default() {
                "DirectoryOrCreate" => {
                    std::fs::create_dir_all(&p).map_err(|e| fail(e.to_string()))?;
                }
                "FileOrCreate" if !p.exists() => {
                    std::fs::File::create(&p).map_err(|e| fail(e.to_string()))?;
                }
                "" | "FileOrCreate" => {}
                _ if !p.exists() => {
                    return Err(fail(format!("hostPath {} does not exist", p.display())));
                }
                _ => {}
            }
            p
        } else {
            let kind = vol
                .as_object()
                .and_then(|o| o.keys().find(|k| *k != "name"))
                .map_or("unknown", |k| k.as_str());
            return Err(fail(format!(
                "volume type {kind} is not supported by the emulator's process pods"
            )));
        };
        out.insert(name, path);
    }
    if let Some(files) = service_account_payload(ctx) {
        let dir = ctx.pod_volumes.join(SERVICE_ACCOUNT_VOLUME);
        write_atomic(&dir, &files, ctx.fs_group).map_err(|e| {
            format!("MountVolume.SetUp failed for volume \"{SERVICE_ACCOUNT_VOLUME}\" : {e}")
        })?;
        out.insert(SERVICE_ACCOUNT_VOLUME.to_string(), dir);
    }
    Ok(out)
}

/// The volume holding the Pod's ServiceAccount token, CA and namespace, mounted at
/// [`SERVICE_ACCOUNT_DIR`] in every container (upstream's admission adds it to the Pod as
/// a projected `kube-api-access-<suffix>` volume; here the kubelet adds it, and the Pod
/// object is left as written).
pub const SERVICE_ACCOUNT_VOLUME: &str = "kube-api-access-emulator";
pub const SERVICE_ACCOUNT_DIR: &str = "/var/run/secrets/kubernetes.io/serviceaccount";

/// `token`, `ca.crt` and `namespace` when the emulator serves HTTPS, the Pod's
/// ServiceAccount exists and neither turns `automountServiceAccountToken` off.
fn service_account_payload(ctx: &Ctx<'_>) -> Option<Payload> {
    let secure = ctx.store.access.secure()?;
    let spec = &ctx.pod["spec"];
    if spec["automountServiceAccountToken"] == Value::Bool(false) {
        return None;
    }
    let namespace = ns(ctx.pod);
    let name = spec["serviceAccountName"]
        .as_str()
        .filter(|n| !n.is_empty())
        .unwrap_or("default");
    let sa = ctx
        .store
        .lock()
        .get(&gr("", "serviceaccounts"), namespace, name)?;
    if sa["automountServiceAccountToken"] == Value::Bool(false)
        && spec["automountServiceAccountToken"] != Value::Bool(true)
    {
        return None;
    }
    let uid = sa["metadata"]["uid"].as_str().unwrap_or_default();
    let token = ctx.store.access.issue(namespace, name, uid);
    let mut files = Payload::new();
    files.insert("token".into(), (token.into_bytes(), 0o644));
    files.insert("ca.crt".into(), (secure.ca_pem.clone().into_bytes(), 0o644));
    files.insert("namespace".into(), (namespace.as_bytes().to_vec(), 0o644));
    Some(files)
}

/// The periodic sync: ConfigMap, Secret, downwardAPI and projected volumes take the current
/// objects (an atomic swap when something changed). Returns the volumes that changed.
pub fn resync(ctx: &Ctx<'_>) -> Vec<String> {
    let mut changed = Vec::new();
    for vol in ctx.pod["spec"]["volumes"].as_array().into_iter().flatten() {
        let name = vol["name"].as_str().unwrap_or_default();
        match payload(ctx, vol) {
            Ok(Some(files)) => {
                match write_atomic(&ctx.pod_volumes.join(name), &files, ctx.fs_group) {
                    Ok(true) => changed.push(name.to_string()),
                    Ok(false) => {}
                    Err(e) => tracing::warn!(volume = name, error = %e, "volume sync"),
                }
            }
            Ok(None) => {}
            // A source gone meanwhile keeps the last files, as the kubelet does.
            Err(e) => tracing::debug!(volume = name, error = %e, "volume sync"),
        }
    }
    changed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atomic_writes_swap_data_and_keep_top_level_links() {
        let dir = std::env::temp_dir().join(format!("kubelet-aw-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let mut p = Payload::new();
        p.insert("redis.conf".into(), (b"port 1\n".to_vec(), 0o644));
        p.insert("a".into(), (b"x".to_vec(), 0o600));
        assert!(write_atomic(&dir, &p, None).expect("write"));
        assert!(
            !write_atomic(&dir, &p, None).expect("same"),
            "no swap when nothing changed"
        );
        let first = std::fs::read_link(dir.join("..data")).expect("..data");
        assert_eq!(
            std::fs::read_link(dir.join("redis.conf")).expect("link"),
            Path::new("..data/redis.conf")
        );
        p.remove("a");
        p.insert("redis.conf".into(), (b"port 2\n".to_vec(), 0o644));
        assert!(write_atomic(&dir, &p, None).expect("write"));
        assert_eq!(
            std::fs::read_to_string(dir.join("redis.conf")).expect("read"),
            "port 2\n"
        );
        assert!(
            !dir.join("a").exists(),
            "a key gone from the source is unlinked"
        );
        assert!(
            !dir.join(first).exists(),
            "the old timestamped directory is removed"
        );
        std::fs::remove_dir_all(&dir).expect("cleanup");
    }
}
