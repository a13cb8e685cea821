//! The decoding half of restore and verify: decrypt (authenticating each chunk) → SHA-256 →
//! gunzip → untar, synchronously, over any reader of the stored object.
//!
//! A failure deep in the stream surfaces through several layers (the tar crate wraps the
//! error of the reader below it once per layer), so the first error the stream itself
//! returns is recorded as it passes up, and the failure is reported once, from where it
//! happened: the stream (a chunk, a gzip member, the OpenPGP MDC, the tar structure) or the
//! file being written.

use std::fs;
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use crate::Algorithm;
use crate::gzip::GzReader;
use crate::keys::BackupKey;
use crate::openpgp::{PgpError, PgpReader};
use crate::plumbing::{HashReader, Meter};
use crate::restore::RestoreOptions;
use crate::stream::{ChunkCipher, DecryptReader};

/// Why decoding a stored object stopped; the message is complete on its own.
#[derive(Debug, thiserror::Error)]
pub enum UnpackError {
    /// The stored stream is damaged, was made with another key, or is not a backup.
    #[error("{0}")]
    Stream(String),
    /// Writing the restored tree failed.
    #[error("writing {entry:?} into {}: {cause}", dir.display())]
    Write {
        dir: PathBuf,
        entry: String,
        cause: String,
    },
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

/// The first error the decoded stream returned, as one message.
#[derive(Clone, Default)]
struct FirstError(Arc<Mutex<Option<String>>>);

impl FirstError {
    fn record(&self, e: &io::Error, algorithm: Algorithm) {
        let mut slot = match self.0.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        if slot.is_none() {
            *slot = Some(stream_message(e, algorithm));
        }
    }

    fn take(&self) -> Option<String> {
        match self.0.lock() {
            Ok(mut g) => g.take(),
            Err(p) => p.into_inner().take(),
        }
    }
}

/// The message of an error from the decoding layers. OpenPGP authenticates only at the end
/// (the MDC), so damage is often caught earlier by the gzip CRC or the tar parser: say what it
/// means.
fn stream_message(e: &io::Error, algorithm: Algorithm) -> String {
    let from_pgp = e.get_ref().is_some_and(
        <dyn std::error::Error + std::marker::Send + std::marker::Sync + 'static>::is::<PgpError>,
    );
    let text = root_message(e);
    if algorithm == Algorithm::Gpg && !from_pgp && e.kind() == io::ErrorKind::InvalidData {
        format!(
            "the encrypted data was modified or is corrupt (caught before the OpenPGP MDC check): {text}"
        )
    } else {
        text
    }
}

/// An error's own message followed by its causes, each once: layers that repeat the text of
/// the layer below (io::Error around a custom error) are skipped.
pub(crate) fn root_message(e: &(dyn std::error::Error + 'static)) -> String {
    let mut parts: Vec<String> = vec![e.to_string()];
    let mut cur = e.source();
    while let Some(c) = cur {
        let text = c.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        cur = c.source();
    }
    parts.join(": ")
}

/// The innermost cause of an error (for a file that could not be written: the OS error).
fn innermost(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cur = e;
    while let Some(next) = cur.source() {
        cur = next;
    }
    cur.to_string()
}

/// Passes reads through and records the first error.
struct Watch<R> {
    inner: R,
    first: FirstError,
    algorithm: Algorithm,
    /// Bytes read (the tar stream's length once it is read to its end).
    n: u64,
}

impl<R: Read> Read for Watch<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self.inner.read(buf) {
            Ok(n) => {
                self.n += n as u64;
                Ok(n)
            }
            Err(e) => {
                self.first.record(&e, self.algorithm);
                Err(e)
            }
        }
    }
}

/// Decrypts, decompresses and unpacks `stored` into `dest` (or only reads every entry when
/// `dest` is `None`). Synchronous; the digests cover the whole stream. The report's `id` is
/// left empty for the caller to fill.
pub fn unpack_stream<R: Read + Send + 'static>(
    stored: R,
    algorithm: Algorithm,
    key: &BackupKey,
    dest: Option<&Path>,
    opts: &RestoreOptions,
) -> Result<RestoreReport, UnpackError> {
    let stats = &opts.stats;
    let first = FirstError::default();
    let stream_err = |e: io::Error| UnpackError::Stream(stream_message(&e, algorithm));
    let (stored, stored_hash) = HashReader::new(stored, Arc::clone(stats), |s| &s.hash_stored);
    let dec = Meter::new(
        decryptor(stored, algorithm, key).map_err(stream_err)?,
        Arc::clone(stats),
        |s| &s.crypto,
    );
    let (archive, archive_hash) = HashReader::new(dec, Arc::clone(stats), |s| &s.hash);
    let gz = GzReader::with_counter(archive, opts.workers, Arc::clone(&stats.gzip_workers))
        .map_err(stream_err)?;
    let watch = Watch {
        inner: Meter::new(gz, Arc::clone(stats), |s| &s.gzip),
        first: first.clone(),
        algorithm,
        n: 0,
    };
    let mut tar = tar::Archive::new(watch);
    tar.set_preserve_permissions(true);
    tar.set_preserve_mtime(true);
    tar.set_preserve_ownerships(opts.preserve_ownership);
    tar.set_overwrite(true);
    // A failure of the stream below wins: the tar crate only wraps it.
    let stream_failed = |e: io::Error, what: String| {
        UnpackError::Stream(
            first
                .take()
                .unwrap_or_else(|| format!("{what}: {}", root_message(&e))),
        )
    };
    let mut entries = 0u64;
    let mut dir_times = Vec::new();
    let iter = tar
        .entries()
        .map_err(|e| stream_failed(e, "tar archive".into()))?;
    for entry in iter {
        let mut entry =
            entry.map_err(|e| stream_failed(e, format!("tar archive after entry {entries}")))?;
        entries += 1;
        let rel = entry
            .path()
            .map_err(|e| stream_failed(e, format!("tar entry {entries}")))?
            .into_owned();
        match dest {
            Some(dest) => {
                let is_dir = entry.header().entry_type().is_dir();
                let mtime = entry.header().mtime().ok();
                let write_err = |cause: String| UnpackError::Write {
                    dir: dest.to_path_buf(),
                    entry: rel.display().to_string(),
                    cause,
                };
                match entry.unpack_in(dest) {
                    Ok(true) => {}
                    Ok(false) => {
                        return Err(UnpackError::Stream(format!(
                            "archive entry {:?} points outside the target",
                            rel.display().to_string()
                        )));
                    }
                    Err(e) => {
                        return Err(match first.take() {
                            Some(m) => UnpackError::Stream(m),
                            None => write_err(innermost(&e)),
                        });
                    }
                }
                if is_dir && let Some(m) = mtime {
                    dir_times.push((dest.join(&rel), m));
                }
            }
            None => {
                io::copy(&mut entry, &mut io::sink())
                    .map_err(|e| stream_failed(e, format!("tar entry {:?}", rel.display())))?;
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
    let mut watch = tar.into_inner();
    // Read past the tar end marker so every layer reaches its end and checks it.
    io::copy(&mut watch, &mut io::sink())
        .map_err(|e| stream_failed(e, "after the tar end marker".into()))?;
    let tar_bytes = watch.n;
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
