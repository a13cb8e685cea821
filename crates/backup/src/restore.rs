//! Restore and verify: download → decrypt (authenticating each chunk) → SHA-256 → gunzip →
//! untar into a staging directory; only when the stored object's and the archive's digests and
//! sizes match the manifest is the staging directory swapped into place. Any failure removes
//! the staging directory and leaves the target as it was.

use std::fs;
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use futures::StreamExt;
use tokio::sync::mpsc;

use crate::Algorithm;
use crate::catalog::{CatalogError, Store};
use crate::gzip::{GzReader, default_workers};
use crate::keys::BackupKey;
use crate::manifest::Manifest;
use crate::openpgp::PgpReader;
use crate::plumbing::{ChannelReader, HashReader, Meter, Stats};
use crate::staging::Staging;
use crate::stream::{ChunkCipher, DecryptReader};

/// Download piece size.
const READ_CHUNK: usize = 1 << 20;

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
    #[error("backup {id}: download of {object} failed: {source}")]
    Download {
        id: String,
        object: String,
        #[source]
        source: Box<opendal::Error>,
    },
    #[error("backup {id}: {source}")]
    Stream {
        id: String,
        #[source]
        source: io::Error,
    },
    #[error("backup {id}: {what} mismatch: manifest says {expected}, found {found}")]
    Mismatch {
        id: String,
        what: &'static str,
        expected: String,
        found: String,
    },
    #[error("restore target {path}: {source}")]
    Target {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("backup {id}: worker task failed: {reason}")]
    Task { id: String, reason: String },
}

#[derive(Clone, Debug)]
pub struct RestoreOptions {
    pub workers: usize,
    /// Restore file owners (uid/gid) as archived; sensible when running as root.
    pub preserve_ownership: bool,
    pub stats: Arc<Stats>,
}

impl Default for RestoreOptions {
    fn default() -> Self {
        Self {
            workers: default_workers(),
            preserve_ownership: false,
            stats: Arc::default(),
        }
    }
}

/// What a restore or verify read and checked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RestoreReport {
    pub id: String,
    pub entries: u64,
    pub tar_bytes: u64,
    pub archive_sha256: String,
    pub archive_bytes: u64,
    pub stored_sha256: String,
    pub stored_bytes: u64,
}

enum Decryptor<R: Read + Send + 'static> {
    Stream(DecryptReader<R>),
    Pgp(Box<PgpReader<R>>),
}

impl<R: Read + Send + 'static> Read for Decryptor<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Decryptor::Stream(r) => r.read(buf),
            Decryptor::Pgp(r) => r.read(buf),
        }
    }
}

fn decryptor<R: Read + Send + 'static>(
    inner: R,
    algorithm: Algorithm,
    key: &BackupKey,
) -> io::Result<Decryptor<R>> {
    Ok(match algorithm {
        Algorithm::Aes256Gcm => {
            Decryptor::Stream(DecryptReader::new(inner, ChunkCipher::Aes256Gcm, key)?)
        }
        Algorithm::Aes256Cbc => Decryptor::Stream(DecryptReader::new(
            inner,
            ChunkCipher::Aes256CbcHmacSha256,
            key,
        )?),
        Algorithm::Gpg => Decryptor::Pgp(Box::new(PgpReader::new(inner, key)?)),
    })
}

/// Counts tar bytes consumed.
struct Counting<R> {
    inner: R,
    n: u64,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.n += n as u64;
        Ok(n)
    }
}

/// Decrypts, decompresses and unpacks `stored` into `dest` (or only reads every entry when
/// `dest` is `None`). Synchronous; the digests cover the whole stream.
pub fn unpack_stream<R: Read + Send + 'static>(
    stored: R,
    algorithm: Algorithm,
    key: &BackupKey,
    dest: Option<&Path>,
    opts: &RestoreOptions,
) -> io::Result<RestoreReport> {
    unpack_inner(stored, algorithm, key, dest, opts).map_err(|e| {
        let pgp = std::error::Error::source(&e)
            .or(e.get_ref().map(|r| r as &(dyn std::error::Error + 'static)))
            .is_some_and(|r| r.is::<crate::openpgp::PgpError>());
        if algorithm == Algorithm::Gpg && !pgp && e.kind() == io::ErrorKind::InvalidData {
            // OpenPGP authenticates only at the end (MDC); damage is often caught earlier by
            // the gzip CRC or the tar parser. Say what it means.
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "encrypted data modified or corrupt (caught before the OpenPGP MDC check): {e}"
                ),
            )
        } else {
            e
        }
    })
}

fn unpack_inner<R: Read + Send + 'static>(
    stored: R,
    algorithm: Algorithm,
    key: &BackupKey,
    dest: Option<&Path>,
    opts: &RestoreOptions,
) -> io::Result<RestoreReport> {
    let stats = &opts.stats;
    let (stored, stored_hash) = HashReader::new(stored, Arc::clone(stats), |s| &s.hash_stored);
    let dec = Meter::new(decryptor(stored, algorithm, key)?, Arc::clone(stats), |s| {
        &s.crypto
    });
    let (archive, archive_hash) = HashReader::new(dec, Arc::clone(stats), |s| &s.hash);
    let gz = GzReader::with_counter(archive, opts.workers, Arc::clone(&stats.gzip_workers))?;
    let counting = Counting {
        inner: Meter::new(gz, Arc::clone(stats), |s| &s.gzip),
        n: 0,
    };
    let mut tar = tar::Archive::new(counting);
    tar.set_preserve_permissions(true);
    tar.set_preserve_mtime(true);
    tar.set_preserve_ownerships(opts.preserve_ownership);
    tar.set_overwrite(true);
    let mut entries = 0u64;
    let mut dir_times = Vec::new();
    for entry in tar.entries()? {
        let mut entry = entry?;
        entries += 1;
        match dest {
            Some(dest) => {
                let is_dir = entry.header().entry_type().is_dir();
                let mtime = entry.header().mtime().ok();
                let rel = entry.path()?.into_owned();
                if !entry.unpack_in(dest)? {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!("archive entry {} points outside the target", rel.display()),
                    ));
                }
                if is_dir && let Some(m) = mtime {
                    dir_times.push((dest.join(rel), m));
                }
            }
            None => {
                io::copy(&mut entry, &mut io::sink())?;
            }
        }
    }
    // Files written into a directory bump its mtime: set directories' times last.
    for (dir, mtime) in dir_times.into_iter().rev() {
        let t = std::time::UNIX_EPOCH + std::time::Duration::from_secs(mtime);
        if let Ok(f) = fs::File::open(&dir) {
            let _ = f.set_modified(t);
        }
    }
    let mut counting = tar.into_inner();
    // Read past the tar end marker so every layer reaches its end and checks it.
    io::copy(&mut counting, &mut io::sink())?;
    let tar_bytes = counting.n;
    let (archive_sha256, archive_bytes) = archive_hash.finish();
    let (stored_sha256, stored_bytes) = stored_hash.finish();
    Ok(RestoreReport {
        id: String::new(),
        entries,
        tar_bytes,
        archive_sha256,
        archive_bytes,
        stored_sha256,
        stored_bytes,
    })
}

/// Compares what was read with the manifest.
fn check(report: &RestoreReport, m: &Manifest) -> Result<(), RestoreError> {
    let mismatch = |what, expected: String, found: String| RestoreError::Mismatch {
        id: m.id.clone(),
        what,
        expected,
        found,
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

/// Streams a backup's object from storage into a synchronous reader and runs `consume` on it
/// on a blocking thread.
async fn with_download<T: Send + 'static>(
    store: &Store,
    m: &Manifest,
    stats: Arc<Stats>,
    consume: impl FnOnce(ChannelReader) -> io::Result<T> + Send + 'static,
) -> Result<T, RestoreError> {
    let object = format!("{}/{}", m.id, m.object);
    let download_err = |source: opendal::Error| RestoreError::Download {
        id: m.id.clone(),
        object: object.clone(),
        source: Box::new(source),
    };
    let reader = store
        .operator()
        .reader_with(&object)
        .chunk(READ_CHUNK)
        .await
        .map_err(download_err)?;
    let mut bytes = reader.into_bytes_stream(..).await.map_err(download_err)?;
    let (tx, rx) = mpsc::channel::<io::Result<bytes::Bytes>>(2);
    let downloader = tokio::spawn(async move {
        while let Some(item) = bytes.next().await {
            let failed = item.is_err();
            if tx.send(item).await.is_err() || failed {
                break;
            }
        }
    });
    let reader = ChannelReader::new(rx, stats);
    let result = tokio::task::spawn_blocking(move || consume(reader)).await;
    downloader.abort();
    result
        .map_err(|e| RestoreError::Task {
            id: m.id.clone(),
            reason: e.to_string(),
        })?
        .map_err(|source| RestoreError::Stream {
            id: m.id.clone(),
            source,
        })
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

/// Restores backup `id` from `store` into directory `target`, replacing its content only after
/// everything has been verified.
pub async fn restore_backup(
    store: &Store,
    id: &str,
    key: &BackupKey,
    target: &Path,
    opts: &RestoreOptions,
) -> Result<RestoreReport, RestoreError> {
    let m = manifest_for(store, id, key).await?;
    let target_err = |source| RestoreError::Target {
        path: target.to_path_buf(),
        source,
    };
    let staging = Staging::prepare(target).map_err(target_err)?;
    let (dir, alg, key2, opts2) = (staging.dir.clone(), m.algorithm, key.clone(), opts.clone());
    let outcome = with_download(store, &m, Arc::clone(&opts.stats), move |r| {
        unpack_stream(r, alg, &key2, Some(&dir), &opts2)
    })
    .await
    .and_then(|mut report| {
        report.id = m.id.clone();
        check(&report, &m)?;
        Ok(report)
    });
    match outcome {
        Ok(report) => {
            staging.commit(target).map_err(target_err)?;
            Ok(report)
        }
        Err(e) => {
            staging.discard();
            Err(e)
        }
    }
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
    let mut report = with_download(store, &m, Arc::clone(&opts.stats), move |r| {
        unpack_stream(r, alg, &key2, None, &opts2)
    })
    .await?;
    report.id = m.id.clone();
    check(&report, &m)?;
    Ok(report)
}

/// Restores from an encrypted archive read from `stored` (for example a local file, or an
/// archive made by `tar czf - DIR | gpg --symmetric --cipher-algo AES256`), into `target`
/// with the same staging and swap. With a manifest, digests and sizes are checked too;
/// without one, integrity rests on the cipher's authentication (GCM tags, HMAC, OpenPGP MDC).
pub fn restore_from_reader<R: Read + Send + 'static>(
    stored: R,
    algorithm: Algorithm,
    key: &BackupKey,
    target: &Path,
    expected: Option<&Manifest>,
    opts: &RestoreOptions,
) -> Result<RestoreReport, RestoreError> {
    let id = expected.map_or_else(|| "(file)".to_string(), |m| m.id.clone());
    let target_err = |source| RestoreError::Target {
        path: target.to_path_buf(),
        source,
    };
    let staging = Staging::prepare(target).map_err(target_err)?;
    let outcome = unpack_stream(stored, algorithm, key, Some(&staging.dir), opts)
        .map_err(|source| RestoreError::Stream {
            id: id.clone(),
            source,
        })
        .and_then(|mut report| {
            report.id = id.clone();
            if let Some(m) = expected {
                check(&report, m)?;
            }
            Ok(report)
        });
    match outcome {
        Ok(report) => {
            staging.commit(target).map_err(target_err)?;
            Ok(report)
        }
        Err(e) => {
            staging.discard();
            Err(e)
        }
    }
}
