//! The `Backup` resource: one backup of one Group, created on demand (a user, the CLI) or by
//! the Component's backup policy on schedule, and run by backup-svc as a Job next to the
//! data. Its status is the only record of the backup's progress, so a restart of backup-svc
//! loses nothing (docs/backups.md).

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// One backup of one Group of an App's component.
#[derive(CustomResource, Deserialize, Serialize, Clone, Debug, PartialEq, JsonSchema, Default)]
#[kube(
    group = "midplane.dev",
    version = "v1alpha1",
    kind = "Backup",
    plural = "backups",
    shortname = "mbak",
    namespaced,
    status = "BackupStatus",
    category = "midplane",
    printcolumn = r#"{"name":"App","type":"string","jsonPath":".spec.app"}"#,
    printcolumn = r#"{"name":"Component","type":"string","jsonPath":".spec.component"}"#,
    printcolumn = r#"{"name":"Phase","type":"string","jsonPath":".status.phase"}"#,
    printcolumn = r#"{"name":"Instance","type":"string","jsonPath":".status.instance"}"#,
    printcolumn = r#"{"name":"Role","type":"string","jsonPath":".status.role"}"#,
    printcolumn = r#"{"name":"Size","type":"integer","jsonPath":".status.storedBytes"}"#,
    printcolumn = r#"{"name":"Duration","type":"string","jsonPath":".status.duration"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct BackupSpec {
    /// The App (same namespace).
    #[schemars(length(min = 1))]
    pub app: String,
    /// The component of the App.
    #[schemars(length(min = 1))]
    pub component: String,
    /// The Group (shard) to back up; empty: the component's only Group.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub group: String,
    /// The instance to take the snapshot on; empty: a healthy replica when there is one,
    /// else the primary.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub instance: String,
    /// A storage name configured in backup-svc, or a storage URI; empty: the component's
    /// backup policy, else backup-svc's default storage.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub storage: String,
    /// aes256-gcm, aes256-cbc or gpg; unset: the component's backup policy, else aes256-gcm.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("enum" = ["aes256-gcm", "aes256-cbc", "gpg"]))]
    pub encryption: Option<String>,
    /// Secret (key `key`) holding the 32-byte key; unset: the component's backup policy,
    /// else backup-svc's default key Secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_secret: Option<String>,
}

/// What asked for a Backup: the value of its `midplane.dev/backup-trigger` label (and of its
/// stored manifest's); a Backup without the label counts as [`trigger::MANUAL`].
pub mod trigger {
    /// The component's backup policy, on schedule.
    pub const SCHEDULE: &str = "schedule";
    /// A user, with kubectl or `midplane backup create`.
    pub const MANUAL: &str = "manual";
    /// The gRPC API (BackupService.RequestAppBackup).
    pub const API: &str = "api";
}

impl Backup {
    /// A Backup asked for on demand (`midplane backup create --app --component`,
    /// BackupService.RequestAppBackup): `spec` in `namespace` as `name`, labelled with its
    /// App, component and `trigger` (see [`trigger`]). It has no owner: a backup outlives its
    /// App, so a new App can start from it.
    pub fn requested(namespace: &str, name: &str, spec: BackupSpec, trigger: &str) -> Self {
        let labels = std::collections::BTreeMap::from([
            (crate::labels::APP.to_string(), spec.app.clone()),
            (
                crate::labels::COMPONENT_NAME.to_string(),
                spec.component.clone(),
            ),
            (
                crate::labels::BACKUP_TRIGGER.to_string(),
                trigger.to_string(),
            ),
        ]);
        let mut backup = Backup::new(name, spec);
        backup.metadata.namespace = Some(namespace.to_string());
        backup.metadata.labels = Some(labels);
        backup
    }
}

/// The name of a Backup asked for without one: `<app>-<component>-<unix seconds>`.
pub fn requested_name(app: &str, component: &str, at: std::time::SystemTime) -> String {
    let secs = at
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default();
    format!("{app}-{component}-{secs}")
}

/// Where a Backup is in its life: Pending (accepted, snapshot not yet taken), Running (its
/// Job runs), Completed or Failed. Completed and Failed are final.
pub mod phase {
    pub const PENDING: &str = "Pending";
    pub const RUNNING: &str = "Running";
    pub const COMPLETED: &str = "Completed";
    pub const FAILED: &str = "Failed";
}

#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, JsonSchema, Default)]
#[serde(rename_all = "camelCase")]
pub struct BackupStatus {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Pending, Running, Completed or Failed.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub phase: String,
    /// The backup's id in the storage (docs/backup-format.md).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backup_id: Option<String>,
    /// The storage URI (never credentials) the backup is written to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
    /// The Group backed up.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    /// The instance the snapshot was taken on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance: Option<String>,
    /// Its role when the snapshot started: primary or replica.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    /// Its replication offset when the snapshot started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replication_offset: Option<i64>,
    /// The role term (epoch) it reported.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub term: Option<i64>,
    /// The snapshot's directory inside the instance's volume; absent: the backup read the
    /// volume's files as they were (no agent could take a snapshot).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snapshot: Option<String>,
    /// The plugin and middleware version of the component when it was backed up: a restore
    /// into another plugin or an older middleware version is refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plugin: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub middleware_version: Option<String>,
    /// aes256-gcm, aes256-cbc or gpg.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encryption: Option<String>,
    /// The Secret holding the key the backup is encrypted with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_secret: Option<String>,
    /// The Secret whose keys gave the Job its storage credentials.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credentials_secret: Option<String>,
    /// The Job that runs (or ran) the backup.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job: Option<String>,
    /// RFC 3339.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<String>,
    /// RFC 3339.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completed_at: Option<String>,
    /// From start to completion, e.g. `4.2s`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration: Option<String>,
    /// Bytes of file content read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_bytes: Option<i64>,
    /// Bytes stored (the encrypted object).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stored_bytes: Option<i64>,
    /// Files, directories and links archived.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entries: Option<i64>,
    /// SHA-256 of the plaintext archive (what a restore checks).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub archive_sha256: Option<String>,
    /// SHA-256 of the stored object.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub object_sha256: Option<String>,
    /// Why the backup failed, naming the step.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// Start a component's instances from a backup (`spec.components[].restoreFrom`): each
/// instance whose volume is empty when its Pod first starts is filled from the backup before
/// the middleware starts; a volume that holds data is never touched.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, JsonSchema, Default)]
#[serde(rename_all = "camelCase")]
pub struct RestoreFrom {
    /// A Completed Backup in the App's namespace. The Component controller fills `storage`,
    /// `id`, `keySecret` and `credentialsSecret` from it; name either this or `storage` and
    /// `id` (a backup with no Backup resource, e.g. from another cluster).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub backup: String,
    /// The storage URI holding the backup.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub storage: String,
    /// The backup id in that storage.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub id: String,
    /// Secret (key `key`) holding the backup's 32-byte key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_secret: Option<String>,
    /// Secret whose keys become the restoring container's environment (storage
    /// credentials such as AWS_ACCESS_KEY_ID).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credentials_secret: Option<String>,
}

/// What a component's `restoreFrom` naming `backup` restores from, or why it cannot (one
/// sentence naming the Backup). A Backup not yet Completed, of another plugin, or of a newer
/// middleware version than the component runs (an older server cannot read a newer one's
/// data) is refused.
pub fn restore_source(
    backup: &Backup,
    middleware: &crate::MiddlewareSpec,
) -> Result<RestoreFrom, RestoreRefused> {
    let name = kube::ResourceExt::name_any(backup);
    let st = backup.status.clone().unwrap_or_default();
    if st.phase != phase::COMPLETED {
        return Err(RestoreRefused::NotCompleted {
            backup: name,
            phase: if st.phase.is_empty() {
                phase::PENDING.into()
            } else {
                st.phase
            },
        });
    }
    if let Some(p) = st.plugin.as_deref()
        && p != middleware.plugin
    {
        return Err(RestoreRefused::Incompatible(format!(
            "Backup {name} is of plugin {p}, the component runs {}",
            middleware.plugin
        )));
    }
    if let Some(v) = st.middleware_version.as_deref()
        && !middleware.version.is_empty()
        && older(&middleware.version, v)
    {
        return Err(RestoreRefused::Incompatible(format!(
            "Backup {name} was taken from version {v}; the component runs the older {}, which cannot read it",
            middleware.version
        )));
    }
    match (st.location, st.backup_id) {
        (Some(storage), Some(id)) => Ok(RestoreFrom {
            backup: name,
            storage,
            id,
            key_secret: st.key_secret,
            credentials_secret: st.credentials_secret,
        }),
        _ => Err(RestoreRefused::Incompatible(format!(
            "Backup {name} is Completed but records no location or backup id"
        ))),
    }
}

/// Why a Backup cannot be restored from (yet).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RestoreRefused {
    /// Worth waiting for: the Backup may still complete.
    #[error("Backup {backup} is {phase}; the component waits until it is Completed")]
    NotCompleted { backup: String, phase: String },
    #[error("{0}")]
    Incompatible(String),
}

/// `a` is an older dotted version than `b` (numeric parts compared in order; a part that is
/// not a number ends the comparison as equal).
fn older(a: &str, b: &str) -> bool {
    for (x, y) in a.split('.').zip(b.split('.')) {
        match (x.parse::<u64>(), y.parse::<u64>()) {
            (Ok(x), Ok(y)) if x != y => return x < y,
            (Ok(_), Ok(_)) => continue,
            _ => return false,
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::MiddlewareSpec;

    fn completed(plugin: &str, version: &str) -> Backup {
        let mut b = Backup::new("nightly", BackupSpec::default());
        b.status = Some(BackupStatus {
            phase: phase::COMPLETED.into(),
            plugin: Some(plugin.into()),
            middleware_version: Some(version.into()),
            location: Some("file:///b".into()),
            backup_id: Some("20261203T100000Z-abcdef".into()),
            key_secret: Some("k".into()),
            ..Default::default()
        });
        b
    }

    fn redis(version: &str) -> MiddlewareSpec {
        MiddlewareSpec {
            plugin: "redis".into(),
            version: version.into(),
            ..Default::default()
        }
    }

    #[test]
    fn a_requested_backup_carries_its_app_component_and_trigger() {
        let at = std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_796_315_995);
        let name = requested_name("shop", "cache", at);
        assert_eq!(name, "shop-cache-1796315995");
        let spec = BackupSpec {
            app: "shop".into(),
            component: "cache".into(),
            instance: "shop-cache-0-1".into(),
            ..Default::default()
        };
        let b = Backup::requested("prod", &name, spec.clone(), trigger::API);
        assert_eq!(b.metadata.namespace.as_deref(), Some("prod"));
        assert_eq!(b.spec, spec);
        let labels = b.metadata.labels.clone().unwrap_or_default();
        assert_eq!(labels[crate::labels::APP], "shop");
        assert_eq!(labels[crate::labels::COMPONENT_NAME], "cache");
        assert_eq!(labels[crate::labels::BACKUP_TRIGGER], "api");
        assert!(b.metadata.owner_references.is_none());
    }

    #[test]
    fn a_completed_backup_of_the_same_plugin_restores() {
        let r = restore_source(&completed("redis", "7.0"), &redis("7.2")).expect("ok");
        assert_eq!(r.storage, "file:///b");
        assert_eq!(r.id, "20261203T100000Z-abcdef");
        assert_eq!(r.key_secret.as_deref(), Some("k"));
        assert_eq!(r.backup, "nightly");
    }

    #[test]
    fn other_plugins_newer_versions_and_unfinished_backups_are_refused() {
        let e = restore_source(&completed("mysql", "8.0"), &redis("7.2")).expect_err("plugin");
        assert!(e.to_string().contains("plugin mysql"), "{e}");
        let e = restore_source(&completed("redis", "7.2"), &redis("7.0")).expect_err("newer");
        assert!(e.to_string().contains("older 7.0"), "{e}");
        let mut running = completed("redis", "7.0");
        running.status.as_mut().expect("status").phase = phase::RUNNING.into();
        let e = restore_source(&running, &redis("7.0")).expect_err("running");
        assert!(matches!(e, RestoreRefused::NotCompleted { .. }), "{e}");
    }
}
