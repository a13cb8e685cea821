//! The `Restore` resource: put a backup back into a running Group in place
//! (docs/backups.md, "Restore into a running Group"). backup-svc's Restore
//! controller holds the Group (every instance stopped, through the
//! [`crate::labels::HOLD`] annotation that group-svc obeys), replaces each
//! instance's volume with the backup by a Job next to the data, then releases
//! the Group; Redis starts on the restored data and the replicas resync from
//! the primary. Its status is the only record of the restore's progress.

use crate::backup::RestoreFrom;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Restore one Group of an App's component from a backup, in place.
#[derive(CustomResource, Deserialize, Serialize, Clone, Debug, PartialEq, JsonSchema, Default)]
#[kube(
    group = "midplane.dev",
    version = "v1alpha1",
    kind = "Restore",
    plural = "restores",
    shortname = "mrst",
    namespaced,
    status = "RestoreStatus",
    category = "midplane",
    printcolumn = r#"{"name":"App","type":"string","jsonPath":".spec.app"}"#,
    printcolumn = r#"{"name":"Component","type":"string","jsonPath":".spec.component"}"#,
    printcolumn = r#"{"name":"Group","type":"string","jsonPath":".status.group"}"#,
    printcolumn = r#"{"name":"Backup","type":"string","jsonPath":".status.backupId"}"#,
    printcolumn = r#"{"name":"Phase","type":"string","jsonPath":".status.phase"}"#,
    printcolumn = r#"{"name":"Duration","type":"string","jsonPath":".status.duration"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct RestoreSpec {
    /// The App (same namespace).
    #[schemars(length(min = 1))]
    pub app: String,
    /// The component of the App.
    #[schemars(length(min = 1))]
    pub component: String,
    /// The Group (shard) to restore; empty: the component's only Group.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub group: String,
    /// The backup: a Completed Backup in the namespace (`backup`), or a storage and id
    /// with the key Secret (as a component's `restoreFrom`).
    pub from: RestoreFrom,
}

/// Where a Restore is in its life: Pending (accepted), Stopping (the Group's instances
/// stop), Restoring (a Job per instance replaces its volume), Starting (the Group runs
/// again on the restored data), Completed or Failed. Completed and Failed are final.
pub mod phase {
    pub const PENDING: &str = "Pending";
    pub const STOPPING: &str = "Stopping";
    pub const RESTORING: &str = "Restoring";
    pub const STARTING: &str = "Starting";
    pub const COMPLETED: &str = "Completed";
    pub const FAILED: &str = "Failed";

    /// Completed or Failed.
    pub fn is_final(phase: &str) -> bool {
        phase == COMPLETED || phase == FAILED
    }
}

#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, JsonSchema, Default)]
#[serde(rename_all = "camelCase")]
pub struct RestoreStatus {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Pending, Stopping, Restoring, Starting, Completed or Failed.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub phase: String,
    /// The Group restored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    /// The backup restored: its id and storage URI (never credentials), and the key and
    /// credentials Secrets the Jobs read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backup_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_secret: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credentials_secret: Option<String>,
    /// The instances whose volumes were replaced.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub instances: Vec<String>,
    /// The Jobs that replace the volumes, one per instance.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub jobs: Vec<String>,
    /// RFC 3339.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<String>,
    /// RFC 3339.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completed_at: Option<String>,
    /// From start until the Group was Ready again, e.g. `12.4s`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration: Option<String>,
    /// Why the restore failed, naming the step; or what it waits for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}
