//! Conversions between the pipeline's types and the proto's, and the gRPC
//! errors (code, ErrorInfo reason, details) of pipeline failures, as
//! proto/midplane/backup/v1/backup.proto documents them per method.

use midplane_api::labels;
use std::collections::HashMap;

use midplane_backup::catalog::CatalogError;
use midplane_backup::{Algorithm, BackupError, Manifest, RestoreError};
use midplane_proto::backup::{Backup, BackupPhase, Encryption};
use midplane_proto::common::{ErrorDetail, ObjectRef};
use midplane_runtime::status::{ApiError, RETRY_SOON, reason};
use tonic::{Code, Status};

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

pub fn catalog_error(e: CatalogError) -> ApiError {
    match &e {
        CatalogError::NotFound { id, .. } => {
            let id = id.clone();
            ApiError::new(Code::NotFound, reason::BACKUP_NOT_FOUND, e.to_string())
                .resource("Backup", &id)
        }
        CatalogError::BadId(_) => ApiError::new(
            Code::InvalidArgument,
            reason::REQUEST_INVALID,
            e.to_string(),
        )
        .field("id", e.to_string()),
        CatalogError::Manifest(_) => {
            ApiError::new(Code::DataLoss, reason::BACKUP_CORRUPT, e.to_string())
        }
        CatalogError::Storage(_) => ApiError::new(
            Code::InvalidArgument,
            reason::STORAGE_INVALID,
            e.to_string(),
        )
        .field("storage", e.to_string()),
        CatalogError::Io { .. } => {
            ApiError::unavailable(reason::STORAGE_UNAVAILABLE, e.to_string(), RETRY_SOON)
        }
    }
}

pub fn catalog_status(e: CatalogError) -> Status {
    catalog_error(e).into_status()
}

pub fn backup_error(e: BackupError) -> ApiError {
    match e {
        BackupError::Source { .. } | BackupError::NotADirectory(_) => ApiError::new(
            Code::FailedPrecondition,
            reason::PATH_UNUSABLE,
            e.to_string(),
        ),
        BackupError::Catalog(c) => catalog_error(c),
        BackupError::Upload { .. } | BackupError::Manifest { .. } => {
            ApiError::unavailable(reason::STORAGE_UNAVAILABLE, e.to_string(), RETRY_SOON)
        }
        BackupError::Pack { .. } | BackupError::Task { .. } => ApiError::internal(e.to_string()),
    }
}

pub fn restore_error(e: RestoreError) -> ApiError {
    match e {
        RestoreError::Catalog(c) => catalog_error(c),
        RestoreError::WrongKey { .. } => {
            ApiError::new(Code::FailedPrecondition, reason::WRONG_KEY, e.to_string())
        }
        RestoreError::Download { .. } => {
            ApiError::unavailable(reason::STORAGE_UNAVAILABLE, e.to_string(), RETRY_SOON)
        }
        RestoreError::Stream { .. } | RestoreError::Mismatch { .. } => {
            ApiError::new(Code::DataLoss, reason::BACKUP_CORRUPT, e.to_string())
        }
        RestoreError::Target { .. } => ApiError::new(
            Code::FailedPrecondition,
            reason::PATH_UNUSABLE,
            e.to_string(),
        ),
        RestoreError::Task { .. } => ApiError::internal(e.to_string()),
    }
}

pub fn restore_status(e: RestoreError) -> Status {
    restore_error(e).into_status()
}

/// What a verification found wrong with a backup (answered as `ok = false`),
/// or the error that kept it from checking (a failed call).
pub fn verify_outcome(e: RestoreError) -> Result<ErrorDetail, Status> {
    let found = |reason: &str, e: &RestoreError| ErrorDetail {
        reason: reason.into(),
        message: e.to_string(),
        fields: Vec::new(),
        retryable: false,
    };
    match &e {
        RestoreError::WrongKey { .. } => Ok(found(reason::WRONG_KEY, &e)),
        RestoreError::Stream { .. }
        | RestoreError::Mismatch { .. }
        | RestoreError::Catalog(CatalogError::Manifest(_)) => Ok(found(reason::BACKUP_CORRUPT, &e)),
        _ => Err(restore_status(e)),
    }
}

/// A failure of resolving a request's storage, key or directory (a plain
/// status from `resolve`) with the ErrorInfo and field violation it lacks.
/// `fields` maps the first word of the message (the name `resolve` checked)
/// to the request's field.
pub fn resolve_error(s: Status, fields: &[(&str, &str)], otherwise: &'static str) -> Status {
    let message = s.message().to_string();
    let named = message
        .split([' ', ':'])
        .next()
        .unwrap_or_default()
        .to_string();
    let field = fields.iter().find(|(word, _)| *word == named).map_or(
        fields.first().map(|(_, f)| *f).unwrap_or_default(),
        |(_, f)| *f,
    );
    match s.code() {
        Code::InvalidArgument => {
            let reason = if field == "storage" {
                reason::STORAGE_INVALID
            } else {
                reason::REQUEST_INVALID
            };
            ApiError::new(Code::InvalidArgument, reason, &message).field(field, &message)
        }
        code => ApiError::new(code, otherwise, message),
    }
    .into_status()
}
