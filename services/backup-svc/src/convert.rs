//! Conversions between the pipeline's types and the proto's, and gRPC status codes for
//! pipeline errors.

use midplane_api::labels;
use std::collections::HashMap;

use midplane_backup::catalog::CatalogError;
use midplane_backup::{Algorithm, BackupError, Manifest, RestoreError};
use midplane_proto::backup::{Backup, BackupPhase, Encryption};
use midplane_proto::common::ObjectRef;
use tonic::Status;

/// A path segment taken from a request: a Kubernetes-style name, nothing that walks paths.
pub fn check_segment(field: &str, v: &str) -> Result<(), Status> {
    let ok = !v.is_empty()
        && v.len() <= 253
        && !v.starts_with('.')
        && v.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_'));
    if ok {
        Ok(())
    } else {
        Err(Status::invalid_argument(format!(
            "{field} {v:?} is not a valid name"
        )))
    }
}

pub fn algorithm(e: Encryption) -> Algorithm {
    match e {
        Encryption::Unspecified | Encryption::Aes256Gcm => Algorithm::Aes256Gcm,
        Encryption::Aes256Cbc => Algorithm::Aes256Cbc,
        Encryption::Gpg => Algorithm::Gpg,
    }
}

pub fn encryption(a: Algorithm) -> Encryption {
    match a {
        Algorithm::Aes256Gcm => Encryption::Aes256Gcm,
        Algorithm::Aes256Cbc => Encryption::Aes256Cbc,
        Algorithm::Gpg => Encryption::Gpg,
    }
}

pub fn timestamp(t: chrono::DateTime<chrono::Utc>) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: t.timestamp(),
        nanos: t.timestamp_subsec_nanos() as i32,
    }
}

/// The proto view of a manifest.
pub fn to_proto(m: &Manifest, storage: &str) -> Backup {
    let label = |k: &str| m.labels.get(k).cloned().unwrap_or_default();
    let source = (m.labels.contains_key(labels::BACKUP_APP_NAME)).then(|| ObjectRef {
        namespace: label(labels::BACKUP_NAMESPACE),
        name: label(labels::BACKUP_APP_NAME),
    });
    Backup {
        id: m.id.clone(),
        source,
        instance: label(labels::MIDDLEWARE_INSTANCE),
        storage: storage.to_string(),
        encryption: encryption(m.algorithm) as i32,
        key_id: m.key_id.clone(),
        phase: BackupPhase::Completed as i32,
        started_at: Some(timestamp(m.started_at)),
        completed_at: Some(timestamp(m.completed_at)),
        plaintext_bytes: m.sizes.archive_bytes,
        stored_bytes: m.sizes.stored_bytes,
        archive_sha256: m.sha256.archive.clone(),
        object_sha256: m.sha256.stored.clone(),
        tool_version: m.tool.version.clone(),
        error: None,
        source_bytes: m.sizes.source_bytes,
        entries: m.sizes.entries,
        labels: m.labels.clone().into_iter().collect::<HashMap<_, _>>(),
    }
}

pub fn matches_source(m: &Manifest, source: Option<&ObjectRef>) -> bool {
    source.is_none_or(|s| {
        m.labels.get(labels::BACKUP_NAMESPACE).map(String::as_str) == Some(s.namespace.as_str())
            && m.labels.get(labels::BACKUP_APP_NAME).map(String::as_str) == Some(s.name.as_str())
    })
}

pub fn catalog_status(e: CatalogError) -> Status {
    match e {
        CatalogError::NotFound { .. } => Status::not_found(e.to_string()),
        CatalogError::BadId(_) => Status::invalid_argument(e.to_string()),
        CatalogError::Manifest(_) => Status::data_loss(e.to_string()),
        CatalogError::Storage(_) => Status::invalid_argument(e.to_string()),
        CatalogError::Io { .. } => Status::unavailable(e.to_string()),
    }
}

pub fn backup_status(e: BackupError) -> Status {
    match e {
        BackupError::Source { .. } | BackupError::NotADirectory(_) => {
            Status::failed_precondition(e.to_string())
        }
        BackupError::Catalog(c) => catalog_status(c),
        BackupError::Upload { .. } | BackupError::Manifest { .. } => {
            Status::unavailable(e.to_string())
        }
        BackupError::Pack { .. } | BackupError::Task { .. } => Status::internal(e.to_string()),
    }
}

pub fn restore_status(e: RestoreError) -> Status {
    match e {
        RestoreError::Catalog(c) => catalog_status(c),
        RestoreError::WrongKey { .. } => Status::permission_denied(e.to_string()),
        RestoreError::Download { .. } => Status::unavailable(e.to_string()),
        RestoreError::Stream { .. } | RestoreError::Mismatch { .. } => {
            Status::data_loss(e.to_string())
        }
        RestoreError::Target { .. } => Status::failed_precondition(e.to_string()),
        RestoreError::Task { .. } => Status::internal(e.to_string()),
    }
}
