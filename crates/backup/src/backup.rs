//! Creating a backup: read dir → tar → parallel gzip → SHA-256 → encrypt → multipart upload,
//! all streaming in bounded memory, then the manifest, last.

use std::collections::BTreeMap;
use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use chrono::Utc;
use tokio::sync::mpsc;

use crate::catalog::{CatalogError, Store};
use crate::gzip::{DEFAULT_BLOCK, ParallelGzWriter, default_workers};
use crate::keys::BackupKey;
use crate::manifest::{self, Digests, Manifest, Sizes, SnapshotSource, Tool};
use crate::openpgp::PgpWriter;
use crate::plumbing::{ChannelWriter, HashWriter, Meter, Stats, Upload};
use crate::storage::StorageConfig;
use crate::stream::{ChunkCipher, DEFAULT_CHUNK, EncryptWriter};
use crate::{Algorithm, TOOL_VERSION};

/// Size of each multipart part sent to object storage (S3's minimum part size is 5 MiB; a
/// multiple of 256 KiB as GCS resumable uploads require).
pub const PART_SIZE: usize = 5 << 20;
/// Parts uploaded concurrently.
pub const UPLOAD_CONCURRENCY: usize = 2;
/// Default gzip level (see [`BackupOptions::level`]).
pub const DEFAULT_LEVEL: u32 = 5;
/// Pieces handed from the producing thread to the uploader.
const PIECE: usize = 1 << 20;

#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error("backup source {}: {error}", path.display())]
    Source { path: PathBuf, error: io::Error },
    #[error("backup source {0} is not a directory")]
    NotADirectory(PathBuf),
    #[error("backup {id}: packing {path}: {error}")]
    Pack {
        id: String,
        path: String,
        error: io::Error,
    },
    #[error("backup {id}: upload of {object} to {store} failed: {error}")]
    Upload {
        id: String,
        object: String,
        store: String,
        error: Box<opendal::Error>,
    },
    #[error("backup {id}: writing manifest to {store} failed: {error}")]
    Manifest {
        id: String,
        store: String,
        error: Box<opendal::Error>,
    },
    #[error(transparent)]
    Catalog(#[from] CatalogError),
    #[error("backup {id}: worker task failed: {reason}")]
    Task { id: String, reason: String },
}

#[derive(Clone, Debug)]
pub struct BackupOptions {
    pub algorithm: Algorithm,
    /// gzip level 0..=9. Default 5: on mixed data it compresses about 4× faster than level 6
    /// for an archive about 2 % larger (see the benchmark, `examples/backup_bench.rs`).
    pub level: u32,
    /// Compression threads.
    pub workers: usize,
    /// What the manifest records as the source; the directory path when `None`.
    pub source_label: Option<String>,
    pub labels: BTreeMap<String, String>,
    /// A fixed id (tests, or a caller that allocated one); a fresh time-based id when `None`.
    pub id: Option<String>,
    /// Recorded in the manifest when `source` is a snapshot the database wrote.
    pub snapshot: Option<SnapshotSource>,
    pub stats: Arc<Stats>,
}

impl Default for BackupOptions {
    fn default() -> Self {
        Self {
            algorithm: Algorithm::default(),
            level: DEFAULT_LEVEL,
            workers: default_workers(),
            source_label: None,
            labels: BTreeMap::new(),
            id: None,
            snapshot: None,
            stats: Arc::default(),
        }
    }
}

/// Counts gathered while packing.
struct Packed {
    source_bytes: u64,
    entries: u64,
    tar_bytes: u64,
    archive: (String, u64),
    stored: (String, u64),
}

enum Encryptor<W: Write> {
    Stream(Box<EncryptWriter<W>>),
    Pgp(Box<PgpWriter<W>>),
}

impl<W: Write> Encryptor<W> {
    fn new(inner: W, algorithm: Algorithm, key: &BackupKey) -> io::Result<Self> {
        Ok(match algorithm {
            Algorithm::Aes256Gcm => Encryptor::Stream(Box::new(EncryptWriter::new(
                inner,
                ChunkCipher::Aes256Gcm,
                key,
                DEFAULT_CHUNK,
            )?)),
            Algorithm::Aes256Cbc => Encryptor::Stream(Box::new(EncryptWriter::new(
                inner,
                ChunkCipher::Aes256CbcHmacSha256,
                key,
                DEFAULT_CHUNK,
            )?)),
            Algorithm::Gpg => Encryptor::Pgp(Box::new(PgpWriter::new(inner, key)?)),
        })
    }

    fn finish(self) -> io::Result<W> {
        match self {
            Encryptor::Stream(w) => w.finish(),
            Encryptor::Pgp(w) => w.finish(),
        }
    }
}

impl<W: Write> Write for Encryptor<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Encryptor::Stream(w) => w.write(buf),
            Encryptor::Pgp(w) => w.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Counts bytes of the tar stream (and reports them as progress).
struct Counting<W> {
    inner: W,
    n: u64,
    stats: Arc<Stats>,
}

impl<W: Write> Write for Counting<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.n += n as u64;
        self.stats.progress.add(n as u64);
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Packs `source` and streams the encrypted archive to `tx`. Runs on a blocking thread.
fn pack(
    source: &Path,
    key: &BackupKey,
    opts: &BackupOptions,
    tx: mpsc::Sender<Upload>,
) -> Result<Packed, (String, io::Error)> {
    let stats = &opts.stats;
    let at = |what: &str| {
        let what = what.to_string();
        move |e| (what, e)
    };
    let sink = ChannelWriter::new(tx, PIECE, Arc::clone(stats));
    let stored = HashWriter::new(sink, Arc::clone(stats), |s| &s.hash_stored);
    let enc = Encryptor::new(stored, opts.algorithm, key).map_err(at("encryption header"))?;
    let archive = HashWriter::new(
        Meter::new(enc, Arc::clone(stats), |s| &s.crypto),
        Arc::clone(stats),
        |s| &s.hash,
    );
    let gz = ParallelGzWriter::with_counter(
        archive,
        opts.level,
        opts.workers,
        DEFAULT_BLOCK,
        Arc::clone(&stats.gzip_workers),
    );
    let counting = Counting {
        inner: Meter::new(gz, Arc::clone(stats), |s| &s.gzip),
        n: 0,
        stats: Arc::clone(stats),
    };
    let mut tar = tar::Builder::new(counting);
    tar.follow_symlinks(false);
    tar.mode(tar::HeaderMode::Complete);
    let (mut source_bytes, mut entries) = (0u64, 0u64);
    walk(source, &mut |path, rel, meta| {
        let name = if rel.as_os_str().is_empty() {
            Path::new(".")
        } else {
            rel
        };
        match special_entry(meta) {
            // The tar crate would name a special file by its absolute path: build its header.
            Some(kind) => {
                let mut h = tar::Header::new_gnu();
                h.set_metadata_in_mode(meta, tar::HeaderMode::Complete);
                h.set_entry_type(kind);
                h.set_size(0);
                let (major, minor) = device_numbers(meta);
                h.set_device_major(major)
                    .and_then(|()| h.set_device_minor(minor))
                    .and_then(|()| tar.append_data(&mut h, name, io::empty()))
                    .map_err(at(&path.display().to_string()))?;
            }
            None => tar
                .append_path_with_name(path, name)
                .map_err(at(&path.display().to_string()))?,
        }
        entries += 1;
        if meta.is_file() {
            source_bytes += meta.len();
        }
        Ok(())
    })?;
    let counting = tar.into_inner().map_err(at("tar trailer"))?;
    let tar_bytes = counting.n;
    let archive = counting.inner.inner.finish().map_err(at("gzip"))?;
    let (enc, archive_sha, archive_len) = archive.finish();
    let stored = enc.inner.finish().map_err(at("encryption"))?;
    let (sink, stored_sha, stored_len) = stored.finish();
    sink.finish().map_err(at("upload"))?;
    Ok(Packed {
        source_bytes,
        entries,
        tar_bytes,
        archive: (archive_sha, archive_len),
        stored: (stored_sha, stored_len),
    })
}

/// The tar entry type of a FIFO or device file; `None` for everything else.
fn special_entry(meta: &fs::Metadata) -> Option<tar::EntryType> {
    use std::os::unix::fs::FileTypeExt;
    let t = meta.file_type();
    if t.is_fifo() {
        Some(tar::EntryType::Fifo)
    } else if t.is_char_device() {
        Some(tar::EntryType::Char)
    } else if t.is_block_device() {
        Some(tar::EntryType::Block)
    } else {
        None
    }
}

/// Major and minor number of a device file, as glibc's `major()` / `minor()` split `st_rdev`.
fn device_numbers(meta: &fs::Metadata) -> (u32, u32) {
    use std::os::unix::fs::MetadataExt;
    let dev = meta.rdev();
    let major = ((dev >> 32) & 0xffff_f000) | ((dev >> 8) & 0x0000_0fff);
    let minor = ((dev >> 12) & 0xffff_ff00) | (dev & 0x0000_00ff);
    (major as u32, minor as u32)
}

/// Called for each entry: absolute path, path relative to the root, metadata.
type Visit<'a> = dyn FnMut(&Path, &Path, &fs::Metadata) -> Result<(), (String, io::Error)> + 'a;

/// Walks `root` depth-first, siblings in byte order of their names, each directory right
/// before its contents (the order docs/backup-format.md specifies), calling `visit` with the
/// absolute path, the path relative to `root`, and the entry's own (not followed) metadata.
/// Sockets are skipped: they hold no data and a restore could not recreate them.
fn walk(root: &Path, visit: &mut Visit<'_>) -> Result<(), (String, io::Error)> {
    use std::os::unix::fs::FileTypeExt;
    let mut stack = vec![root.to_path_buf()];
    while let Some(path) = stack.pop() {
        let meta = fs::symlink_metadata(&path).map_err(|e| (path.display().to_string(), e))?;
        if meta.file_type().is_socket() {
            continue;
        }
        let rel = path.strip_prefix(root).unwrap_or(Path::new(""));
        visit(&path, rel, &meta)?;
        if meta.is_dir() {
            let mut children = fs::read_dir(&path)
                .and_then(|rd| {
                    rd.map(|e| e.map(|e| e.path()))
                        .collect::<Result<Vec<_>, _>>()
                })
                .map_err(|e| (path.display().to_string(), e))?;
            children.sort();
            stack.extend(children.into_iter().rev());
        }
    }
    Ok(())
}

/// The size of the tar stream a backup of `source` writes, from the entries' metadata: a
/// 512-byte header per entry, GNU long-name entries for names over 100 bytes, contents padded
/// to 512 bytes, and the 1024-byte end marker. Exact unless files change meanwhile; used for
/// the time left in progress displays.
pub fn tar_size_estimate(source: &Path) -> io::Result<u64> {
    let blocks = |n: u64| n.div_ceil(512) * 512;
    let mut total = 1024;
    walk(source, &mut |path, rel, meta| {
        let name_len = if rel.as_os_str().is_empty() {
            2
        } else {
            rel.as_os_str().len() as u64 + u64::from(meta.is_dir())
        };
        total += 512;
        if name_len > 100 {
            total += 512 + blocks(name_len + 1);
        }
        if meta.file_type().is_symlink() {
            let target_len = fs::read_link(path).map_or(0, |t| t.as_os_str().len() as u64);
            if target_len > 100 {
                total += 512 + blocks(target_len + 1);
            }
        } else if meta.is_file() {
            total += blocks(meta.len());
        }
        Ok(())
    })
    .map_err(|(_, e)| e)?;
    Ok(total)
}

/// Backs up directory `source` into `store`; returns the manifest once it is written.
pub async fn create_backup(
    store: &Store,
    source: &Path,
    key: &BackupKey,
    opts: &BackupOptions,
) -> Result<Manifest, BackupError> {
    let meta = fs::metadata(source).map_err(|e| BackupError::Source {
        path: source.to_path_buf(),
        error: e,
    })?;
    if !meta.is_dir() {
        return Err(BackupError::NotADirectory(source.to_path_buf()));
    }
    let started_at = Utc::now();
    let id = match &opts.id {
        Some(id) if manifest::valid_backup_id(id) => id.clone(),
        Some(id) => return Err(CatalogError::BadId(id.clone()).into()),
        None => manifest::new_backup_id(started_at),
    };
    let object_name = opts.algorithm.object_name();
    let object = format!("{id}/{object_name}");
    let upload_err = |source: opendal::Error| BackupError::Upload {
        id: id.clone(),
        object: object.clone(),
        store: store.describe(),
        error: Box::new(source),
    };
    let mut write = store
        .operator()
        .writer_with(&object)
        .chunk(PART_SIZE)
        .concurrent(UPLOAD_CONCURRENCY);
    if matches!(store.config(), StorageConfig::Gcs { .. }) {
        // On GCS this selects the JSON API's resumable upload (opendal's default multipart
        // path is the XML API); never overwriting an object is right for a backup anyway.
        write = write.if_not_exists(true);
    }
    let mut writer = write.await.map_err(upload_err)?;
    let (tx, mut rx) = mpsc::channel::<Upload>(2);
    let uploader = tokio::spawn(async move {
        loop {
            match rx.recv().await {
                Some(Upload::Data(b)) => {
                    if let Err(e) = writer.write(b).await {
                        let _ = writer.abort().await;
                        return Err(e);
                    }
                }
                Some(Upload::Done) => return writer.close().await.map(|_| true),
                None => {
                    // The producer failed: never leave a half object that could look whole.
                    let _ = writer.abort().await;
                    return Ok(false);
                }
            }
        }
    });
    let t0 = Instant::now();
    let (src, key2, opts2) = (source.to_path_buf(), key.clone(), opts.clone());
    let producer = tokio::task::spawn_blocking(move || pack(&src, &key2, &opts2, tx));
    let (produced, uploaded) = tokio::join!(producer, uploader);
    let task_err = |e: tokio::task::JoinError| BackupError::Task {
        id: id.clone(),
        reason: e.to_string(),
    };
    let uploaded = uploaded.map_err(task_err)?;
    let packed = match (produced.map_err(task_err)?, uploaded) {
        (Ok(p), Ok(true)) => p,
        // An upload failure also stops the producer; report the cause, not the symptom.
        (_, Err(e)) => return Err(upload_err(e)),
        (Err((path, source)), _) => {
            return Err(BackupError::Pack {
                id: id.clone(),
                path,
                error: source,
            });
        }
        (Ok(_), Ok(false)) => {
            return Err(BackupError::Task {
                id: id.clone(),
                reason: "uploader stopped before the end of the stream".into(),
            });
        }
    };
    tracing::debug!(%id, secs = t0.elapsed().as_secs_f64(), "archive uploaded");
    let manifest = Manifest {
        format: manifest::FORMAT.to_string(),
        id: id.clone(),
        source: opts
            .source_label
            .clone()
            .unwrap_or_else(|| source.display().to_string()),
        started_at,
        completed_at: Utc::now(),
        algorithm: opts.algorithm,
        key_id: key.key_id(),
        compression: "gzip".into(),
        object: object_name.to_string(),
        sizes: Sizes {
            source_bytes: packed.source_bytes,
            entries: packed.entries,
            tar_bytes: packed.tar_bytes,
            archive_bytes: packed.archive.1,
            stored_bytes: packed.stored.1,
        },
        sha256: Digests {
            archive: packed.archive.0,
            stored: packed.stored.0,
        },
        tool: Tool {
            name: "midplane-backup".into(),
            version: TOOL_VERSION.into(),
        },
        labels: opts.labels.clone(),
        snapshot: opts.snapshot.clone(),
    };
    let manifest_path = Store::manifest_path(&id);
    let mut write = store
        .operator()
        .write_with(&manifest_path, manifest.to_json());
    if matches!(store.config(), StorageConfig::Gcs { .. }) {
        write = write.if_not_exists(true);
    }
    write.await.map_err(|source| BackupError::Manifest {
        id: id.clone(),
        store: store.describe(),
        error: Box::new(source),
    })?;
    Ok(manifest)
}
