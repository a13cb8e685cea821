//! Restore and verify: download (parallel ranged reads) → decrypt (authenticating each chunk)
//! → SHA-256 → gunzip → untar into a staging directory; only when the stored object's and the
//! archive's digests and sizes match the manifest is the staging directory swapped into place.
//! A target that is not empty is refused unless the caller asks to replace it; any failure
//! removes the staging directory and leaves the target as it was.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::Algorithm;
use crate::catalog::{CatalogError, Store};
use crate::download::{Download, DownloadOptions, PartReader};
use crate::gzip::default_workers;
use crate::keys::BackupKey;
use crate::manifest::Manifest;
use crate::plumbing::Stats;
use crate::staging::{Staging, TargetProblem};
use crate::storage::StorageConfig;
pub use crate::unpack::{RestoreReport, UnpackError, unpack_stream};

/// Every message is complete on its own (it names the backup, the chunk or the file), so no
/// error here has a `source()`: printing the chain would repeat it.
#[derive(Debug, thiserror::Error)]
pub enum RestoreError {
    #[error(transparent)]
    Catalog(#[from] CatalogError),
    #[error(
        "wrong key for backup {id}: it was encrypted with key id {expected}, the given key has id {given}"
    )]
    WrongKey {
        id: String,
        expected: String,
        given: String,
    },
    #[error("backup {id}: downloading {object}: {cause}")]
    Download {
        id: String,
        object: String,
        cause: String,
    },
    #[error("backup {id}: {cause}")]
    Stream { id: String, cause: String },
    #[error("backup {id}: {what} mismatch: manifest says {expected}, found {found}{hint}")]
    Mismatch {
        id: String,
        what: &'static str,
        expected: String,
        found: String,
        /// What the mismatch means, with a leading separator; often empty.
        hint: &'static str,
    },
    #[error("restore target {}: {problem}", path.display())]
    Target {
        path: PathBuf,
        problem: TargetProblem,
    },
    #[error("backup {id}: worker task failed: {reason}")]
    Task { id: String, reason: String },
}

#[derive(Clone, Debug)]
pub struct RestoreOptions {
    pub workers: usize,
    /// Restore file owners (uid/gid) as archived; sensible when running as root.
    pub preserve_ownership: bool,
    /// Replace a target that is not empty (`--force`). Without it such a target is refused
    /// before anything is downloaded; a missing or empty directory is always fine.
    pub replace: bool,
    pub download: DownloadOptions,
    pub stats: Arc<Stats>,
}

impl Default for RestoreOptions {
    fn default() -> Self {
        Self {
            workers: default_workers(),
            preserve_ownership: false,
            replace: false,
            download: DownloadOptions::default(),
            stats: Arc::default(),
        }
    }
}

/// Compares what was read with the manifest.
fn check(report: &RestoreReport, m: &Manifest) -> Result<(), RestoreError> {
    let mismatch = |what, expected: String, found: String| RestoreError::Mismatch {
        id: m.id.clone(),
        what,
        expected,
        found,
        hint: "",
    };
    if report.stored_bytes != m.sizes.stored_bytes {
        return Err(mismatch(
            "stored object size",
            m.sizes.stored_bytes.to_string(),
            report.stored_bytes.to_string(),
        ));
    }
    if report.stored_sha256 != m.sha256.stored {
        return Err(mismatch(
            "stored object SHA-256",
            m.sha256.stored.clone(),
            report.stored_sha256.clone(),
        ));
    }
    if report.archive_sha256 != m.sha256.archive || report.archive_bytes != m.sizes.archive_bytes {
        return Err(mismatch(
            "plaintext archive SHA-256",
            m.sha256.archive.clone(),
            report.archive_sha256.clone(),
        ));
    }
    if report.entries != m.sizes.entries {
        return Err(mismatch(
            "archive entry count",
            m.sizes.entries.to_string(),
            report.entries.to_string(),
        ));
    }
    Ok(())
}

/// Downloads a backup's object and decodes it on a blocking thread with `consume`; a failure
/// is reported once, from where it happened (download, stream, or the file being written).
async fn decode_download(
    store: &Store,
    m: &Manifest,
    opts: &RestoreOptions,
    consume: impl FnOnce(PartReader) -> Result<RestoreReport, UnpackError> + Send + 'static,
) -> Result<RestoreReport, RestoreError> {
    let object = format!("{}/{}", m.id, m.object);
    let download_err = |e: opendal::Error| RestoreError::Download {
        id: m.id.clone(),
        object: object.clone(),
        cause: e.to_string(),
    };
    // The size first: a cut or replaced object is refused before anything is downloaded.
    let size = store
        .operator()
        .stat(&object)
        .await
        .map_err(download_err)?
        .content_length();
    if size != m.sizes.stored_bytes {
        return Err(RestoreError::Mismatch {
            id: m.id.clone(),
            what: "stored object size",
            expected: m.sizes.stored_bytes.to_string(),
            found: size.to_string(),
            hint: ": the object was truncated or replaced",
        });
    }
    opts.stats.progress.set_total(size);
    let (reader, download) = Download::start(
        store.operator(),
        &object,
        size,
        download_options(store, opts.download),
        Arc::clone(&opts.stats),
    );
    let result = tokio::task::spawn_blocking(move || consume(reader)).await;
    if let Some(e) = download.finish() {
        return Err(download_err(e));
    }
    let mut report = result
        .map_err(|e| RestoreError::Task {
            id: m.id.clone(),
            reason: e.to_string(),
        })?
        .map_err(|e| unpack_error(&m.id, e))?;
    report.id = m.id.clone();
    check(&report, m)?;
    Ok(report)
}

/// Reads from a local directory have no first-byte latency to hide: one 1 MiB read at a
/// time is as fast and keeps memory down.
fn download_options(store: &Store, opts: DownloadOptions) -> DownloadOptions {
    match store.config() {
        StorageConfig::Fs { .. } => DownloadOptions {
            part_size: opts.part_size.min(1 << 20),
            concurrency: 1,
        },
        _ => opts,
    }
}

fn unpack_error(id: &str, e: UnpackError) -> RestoreError {
    match e {
        UnpackError::Stream(cause) => RestoreError::Stream {
            id: id.to_string(),
            cause,
        },
        UnpackError::Write { dir, entry, cause } => RestoreError::Target {
            path: dir,
            problem: TargetProblem::Write { entry, cause },
        },
    }
}

async fn manifest_for(store: &Store, id: &str, key: &BackupKey) -> Result<Manifest, RestoreError> {
    let m = store.manifest(id).await?;
    let given = key.key_id();
    if m.key_id != given {
        return Err(RestoreError::WrongKey {
            id: id.to_string(),
            expected: m.key_id,
            given,
        });
    }
    Ok(m)
}

/// Swaps the staged tree into place if `outcome` is a success, else removes it. Errors
/// name the target, not the staging directory (an implementation detail).
fn settle(
    staging: Staging,
    target: &Path,
    outcome: Result<RestoreReport, RestoreError>,
) -> Result<RestoreReport, RestoreError> {
    let target_err = target_error(target);
    match outcome {
        Ok(report) => {
            staging.commit(target).map_err(&target_err)?;
            Ok(report)
        }
        Err(e) => {
            staging.discard();
            Err(match e {
                RestoreError::Target { problem, .. } => target_err(problem),
                other => other,
            })
        }
    }
}

fn target_error(target: &Path) -> impl Fn(TargetProblem) -> RestoreError + '_ {
    move |problem| RestoreError::Target {
        path: target.to_path_buf(),
        problem,
    }
}

/// Restores backup `id` from `store` into directory `target`. The target must be missing or
/// empty unless `opts.replace`; it is replaced only after everything has been verified.
pub async fn restore_backup(
    store: &Store,
    id: &str,
    key: &BackupKey,
    target: &Path,
    opts: &RestoreOptions,
) -> Result<RestoreReport, RestoreError> {
    // Refuse a non-empty target before the manifest is even read.
    Staging::check_target(target, opts.replace).map_err(target_error(target))?;
    let m = manifest_for(store, id, key).await?;
    let staging = Staging::prepare(target, opts.replace).map_err(target_error(target))?;
    let (dir, alg, key2, opts2) = (staging.dir.clone(), m.algorithm, key.clone(), opts.clone());
    let outcome = decode_download(store, &m, opts, move |r| {
        unpack_stream(r, alg, &key2, Some(&dir), &opts2)
    })
    .await;
    settle(staging, target, outcome)
}

/// Reads backup `id` end to end (download, authenticate, decompress, walk every tar entry)
/// and checks it against its manifest, writing nothing.
pub async fn verify_backup(
    store: &Store,
    id: &str,
    key: &BackupKey,
    opts: &RestoreOptions,
) -> Result<RestoreReport, RestoreError> {
    let m = manifest_for(store, id, key).await?;
    let (alg, key2, opts2) = (m.algorithm, key.clone(), opts.clone());
    decode_download(store, &m, opts, move |r| {
        unpack_stream(r, alg, &key2, None, &opts2)
    })
    .await
}

/// Restores from an encrypted archive read from `stored` (for example a local file, or an
/// archive made by `tar czf - DIR | gpg --symmetric --cipher-algo AES256`), into `target`
/// with the same checks, staging and swap. With a manifest, digests and sizes are checked
/// too; without one, integrity rests on the cipher's authentication (GCM tags, HMAC, OpenPGP
/// MDC). Blocking.
pub fn restore_from_reader<R: Read + Send + 'static>(
    stored: R,
    algorithm: Algorithm,
    key: &BackupKey,
    target: &Path,
    expected: Option<&Manifest>,
    opts: &RestoreOptions,
) -> Result<RestoreReport, RestoreError> {
    let id = expected.map_or_else(|| "(file)".to_string(), |m| m.id.clone());
    let staging = Staging::prepare(target, opts.replace).map_err(target_error(target))?;
    let outcome = unpack_stream(stored, algorithm, key, Some(&staging.dir), opts)
        .map_err(|e| unpack_error(&id, e))
        .and_then(|mut report| {
            report.id = id.clone();
            if let Some(m) = expected {
                check(&report, m)?;
            }
            Ok(report)
        });
    settle(staging, target, outcome)
}
