//! Backup and restore events, published by backup-svc.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{ObjectRef, event};

/// How a backup archive is encrypted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum Encryption {
    #[serde(rename = "aes256-gcm")]
    Aes256Gcm,
    /// AES-256-CBC with HMAC-SHA256 (encrypt-then-MAC).
    #[serde(rename = "aes256-cbc")]
    Aes256Cbc,
    /// OpenPGP symmetric, readable by stock gpg.
    #[serde(rename = "gpg")]
    Gpg,
    #[serde(rename = "none")]
    None,
}

/// Why a backup was deleted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum DeleteReason {
    Retention,
    Manual,
    AppDeleted,
}

/// A backup of one component began.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct BackupStarted {
    pub backup_id: String,
    pub app: ObjectRef,
    pub component: String,
    /// Group (shard) being backed up.
    pub group: String,
    /// Storage backend: `s3`, `gcs`, `azure`, `minio`, `fs`.
    pub storage: String,
    pub encryption: Encryption,
}

/// A backup archive was written, checksummed and verified.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct BackupCompleted {
    pub backup_id: String,
    pub app: ObjectRef,
    pub component: String,
    pub group: String,
    /// Object URI of the archive, e.g. `s3://bucket/prefix/….tar.gz.enc`.
    pub location: String,
    pub size_bytes: u64,
    /// Hex sha256 of the archive as stored.
    pub sha256: String,
    pub encryption: Encryption,
    pub duration_ms: u64,
}

/// A backup did not complete; nothing usable was stored.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct BackupFailed {
    pub backup_id: String,
    pub app: ObjectRef,
    pub component: String,
    /// Step that failed: `snapshot`, `archive`, `encrypt`, `upload`, `verify`, or `job`
    /// (the Backup Pod of a cluster backup failed).
    pub stage: String,
    pub message: String,
}

/// A stored backup was removed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct BackupDeleted {
    pub backup_id: String,
    pub app: ObjectRef,
    pub location: String,
    pub reason: DeleteReason,
}

/// A backup was restored into a Group and the data verified (by BackupService.Restore, or
/// by a Restore resource once its Group is Ready again: `restoreId` is then its name).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RestoreCompleted {
    pub restore_id: String,
    pub backup_id: String,
    pub app: ObjectRef,
    pub component: String,
    pub group: String,
    pub duration_ms: u64,
}

/// A restore did not complete.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RestoreFailed {
    pub restore_id: String,
    pub backup_id: String,
    pub app: ObjectRef,
    pub component: String,
    /// Step that failed: `download`, `verify`, `decrypt`, `extract`, `load` (a
    /// BackupService.Restore call); `validate`, `hold`, `restore`, `start` (a Restore
    /// resource, whose name is `restoreId`).
    pub stage: String,
    pub message: String,
}

fn app() -> ObjectRef {
    ObjectRef::new("shop", "cache")
}

const BACKUP_ID: &str = "bk-20261127-101500-cache-redis";
const SHA: &str = "5e884898da28047151d0e56f8dc6292773603d0d6aabbdd62a11ef721d1542d8";

event!(BackupStarted, "midplane.backup.started",
producer: "backup-svc", consumers: [],
summary: "A backup of one component began.",
subject: |e| format!("backups/{}/{}", e.app.namespace, e.backup_id),
example: BackupStarted {
    backup_id: BACKUP_ID.into(),
    app: app(),
    component: "redis".into(),
    group: "cache-redis-0".into(),
    storage: "s3".into(),
    encryption: Encryption::Aes256Gcm,
});

event!(BackupCompleted, "midplane.backup.completed",
producer: "backup-svc", consumers: [],
summary: "A backup archive (tar.gz, sha256, encrypted) was stored and verified.",
subject: |e| format!("backups/{}/{}", e.app.namespace, e.backup_id),
example: BackupCompleted {
    backup_id: BACKUP_ID.into(),
    app: app(),
    component: "redis".into(),
    group: "cache-redis-0".into(),
    location: format!("s3://midplane-backups/shop/cache/redis/{BACKUP_ID}.tar.gz.enc"),
    size_bytes: 18_874_368,
    sha256: SHA.into(),
    encryption: Encryption::Aes256Gcm,
    duration_ms: 5120,
});

event!(BackupFailed, "midplane.backup.failed",
producer: "backup-svc", consumers: [],
summary: "A backup did not complete; nothing usable was stored.",
subject: |e| format!("backups/{}/{}", e.app.namespace, e.backup_id),
example: BackupFailed {
    backup_id: BACKUP_ID.into(),
    app: app(),
    component: "redis".into(),
    stage: "upload".into(),
    message: "s3 PutObject midplane-backups/...: 403 SignatureDoesNotMatch".into(),
});

event!(BackupDeleted, "midplane.backup.deleted",
producer: "backup-svc", consumers: [],
summary: "A stored backup was removed (retention, by hand, or with its App).",
subject: |e| format!("backups/{}/{}", e.app.namespace, e.backup_id),
example: BackupDeleted {
    backup_id: BACKUP_ID.into(),
    app: app(),
    location: format!("s3://midplane-backups/shop/cache/redis/{BACKUP_ID}.tar.gz.enc"),
    reason: DeleteReason::Retention,
});

event!(RestoreCompleted, "midplane.restore.completed",
producer: "backup-svc", consumers: [],
summary: "A backup was restored into a Group and the data verified.",
subject: |e| format!("restores/{}/{}", e.app.namespace, e.restore_id),
example: RestoreCompleted {
    restore_id: "rs-20261127-120000-cache-redis".into(),
    backup_id: BACKUP_ID.into(),
    app: app(),
    component: "redis".into(),
    group: "cache-redis-0".into(),
    duration_ms: 9400,
});

event!(RestoreFailed, "midplane.restore.failed",
producer: "backup-svc", consumers: [],
summary: "A restore did not complete.",
subject: |e| format!("restores/{}/{}", e.app.namespace, e.restore_id),
example: RestoreFailed {
    restore_id: "rs-20261127-120000-cache-redis".into(),
    backup_id: BACKUP_ID.into(),
    app: app(),
    component: "redis".into(),
    stage: "verify".into(),
    message: "sha256 mismatch: archive is 5e88…42d8, catalog says 9b74…a3c1".into(),
});
