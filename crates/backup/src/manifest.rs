//! The manifest stored beside each backup as `<id>/manifest.json`. It is written last, so a
//! backup counts as complete only once its manifest exists.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::Algorithm;

pub const FORMAT: &str = "midplane-backup/v1";
pub const MANIFEST_NAME: &str = "manifest.json";

#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    #[error("manifest of backup {id}: invalid JSON: {error}")]
    Parse {
        id: String,
        error: serde_json::Error,
    },
    #[error("manifest of backup {id}: unsupported format {format:?} (this tool reads {FORMAT})")]
    Format { id: String, format: String },
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sizes {
    /// Bytes of regular-file content read from the source.
    pub source_bytes: u64,
    /// Entries (files, directories, links) in the archive.
    pub entries: u64,
    /// Bytes of the uncompressed tar stream.
    pub tar_bytes: u64,
    /// Bytes of the plaintext archive (tar.gz).
    pub archive_bytes: u64,
    /// Bytes of the stored (encrypted) object.
    pub stored_bytes: u64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Digests {
    /// SHA-256 of the plaintext archive (tar.gz), lowercase hex.
    pub archive: String,
    /// SHA-256 of the stored object as uploaded, lowercase hex.
    pub stored: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tool {
    pub name: String,
    pub version: String,
}

/// Where a consistent snapshot came from, when the backup read one that the database wrote
/// (BGSAVE, or an AOF rewrite) rather than its live files. Set by the caller that asked for
/// the snapshot (through [`crate::BackupOptions::snapshot`]); restore into a Group reads it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotSource {
    /// The instance (Pod) that wrote the snapshot.
    pub instance: String,
    /// Its role then: `primary` or `replica`.
    pub role: String,
    /// The replication offset the snapshot covers.
    pub replication_offset: u64,
    /// The Group's term (failover epoch) when the snapshot was taken.
    pub term: u64,
    /// How it was written: `bgsave` or `aof-rewrite`.
    pub method: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    pub format: String,
    pub id: String,
    /// What was backed up: the source directory, or a label such as `app/component/instance`.
    pub source: String,
    pub started_at: DateTime<Utc>,
    pub completed_at: DateTime<Utc>,
    pub algorithm: Algorithm,
    /// Fingerprint of the key (see `BackupKey::key_id`), never the key.
    pub key_id: String,
    pub compression: String,
    /// Object name of the encrypted archive, relative to the backup's folder.
    pub object: String,
    pub sizes: Sizes,
    pub sha256: Digests,
    pub tool: Tool,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snapshot: Option<SnapshotSource>,
}

impl Manifest {
    pub fn parse(id: &str, bytes: &[u8]) -> Result<Self, ManifestError> {
        let m: Manifest = serde_json::from_slice(bytes).map_err(|error| ManifestError::Parse {
            id: id.to_string(),
            error,
        })?;
        if m.format != FORMAT {
            return Err(ManifestError::Format {
                id: id.to_string(),
                format: m.format,
            });
        }
        Ok(m)
    }

    pub fn to_json(&self) -> Vec<u8> {
        // Serializing plain data with string keys cannot fail.
        serde_json::to_vec_pretty(self).unwrap_or_default()
    }
}

/// A new backup id: UTC time (sortable) plus random bits, e.g. `20261127T140512Z-3f9a1c`.
pub fn new_backup_id(now: DateTime<Utc>) -> String {
    let r: u32 = rand::random();
    format!("{}-{:06x}", now.format("%Y%m%dT%H%M%SZ"), r & 0x00ff_ffff)
}

/// Backup ids become object paths, so only a safe alphabet is accepted.
pub fn valid_backup_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 128
        && !id.starts_with('.')
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}
