//! Midplane backups: a directory is packed as tar, compressed with parallel gzip, hashed
//! (SHA-256 of the plaintext archive), encrypted (aes256-gcm, aes256-cbc with HMAC-SHA-256, or
//! OpenPGP) and uploaded in parts through opendal, with a manifest written last. Restore is the
//! reverse and verifies everything before it swaps the restored tree into place.
//! The byte formats are specified in docs/backup-format.md.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

pub mod backup;
pub mod catalog;
pub mod cli;
pub mod download;
pub mod gzip;
pub mod keys;
pub mod manifest;
pub mod memory;
pub mod metrics;
pub mod openpgp;
pub mod plumbing;
pub mod restore;
pub mod retention;
mod staging;
pub mod storage;
pub mod stream;
mod unpack;

pub use backup::{BackupError, BackupOptions, create_backup};
pub use catalog::{CatalogError, Listing, Store};
pub use keys::{BackupKey, KeyError};
pub use manifest::Manifest;
pub use restore::{RestoreError, RestoreOptions, RestoreReport, restore_backup, verify_backup};
pub use staging::{TargetProblem, check_restore_target};
pub use storage::{Credentials, StorageConfig};

/// Version recorded in every manifest.
pub const TOOL_VERSION: &str = env!("CARGO_PKG_VERSION");

/// Encryption algorithms of seed §9.1.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Algorithm {
    /// MPBK chunked AES-256-GCM stream (recommended).
    #[default]
    #[serde(rename = "aes256-gcm")]
    Aes256Gcm,
    /// MPBK chunked AES-256-CBC stream, each chunk authenticated with HMAC-SHA-256.
    #[serde(rename = "aes256-cbc")]
    Aes256Cbc,
    /// OpenPGP symmetric encryption (AES-256, SEIPD with MDC), readable by `gpg --decrypt`.
    #[serde(rename = "gpg")]
    Gpg,
}

impl Algorithm {
    pub const ALL: [Algorithm; 3] = [Algorithm::Aes256Gcm, Algorithm::Aes256Cbc, Algorithm::Gpg];

    pub fn as_str(self) -> &'static str {
        match self {
            Algorithm::Aes256Gcm => "aes256-gcm",
            Algorithm::Aes256Cbc => "aes256-cbc",
            Algorithm::Gpg => "gpg",
        }
    }

    /// Name of the encrypted archive object inside a backup's folder.
    pub fn object_name(self) -> &'static str {
        match self {
            Algorithm::Aes256Gcm | Algorithm::Aes256Cbc => "archive.tar.gz.mpbk",
            Algorithm::Gpg => "archive.tar.gz.gpg",
        }
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, thiserror::Error)]
#[error("unknown encryption algorithm {0:?} (expected aes256-gcm, aes256-cbc or gpg)")]
pub struct UnknownAlgorithm(pub String);

impl FromStr for Algorithm {
    type Err = UnknownAlgorithm;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Algorithm::ALL
            .into_iter()
            .find(|a| a.as_str().eq_ignore_ascii_case(s))
            .ok_or_else(|| UnknownAlgorithm(s.to_string()))
    }
}
