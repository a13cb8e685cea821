//! Small I/O adapters the pipeline is built from: hashing and metering layers, and the bridge
//! between the synchronous tar/gzip/crypto chain and opendal's async reader and writer.

use std::io::{self, Read, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use bytes::Bytes;
use sha2::{Digest, Sha256};
use tokio::sync::mpsc;

/// Bytes and busy nanoseconds of one stage.
#[derive(Debug, Default)]
pub struct StageCounter {
    pub bytes: AtomicU64,
    pub nanos: AtomicU64,
}

impl StageCounter {
    pub fn add(&self, bytes: u64, since: Instant) {
        self.bytes.fetch_add(bytes, Ordering::Relaxed);
        self.nanos
            .fetch_add(since.elapsed().as_nanos() as u64, Ordering::Relaxed);
    }

    pub fn bytes(&self) -> u64 {
        self.bytes.load(Ordering::Relaxed)
    }

    pub fn seconds(&self) -> f64 {
        self.nanos.load(Ordering::Relaxed) as f64 / 1e9
    }
}

/// How far a backup or restore is, for a progress display: bytes done of the expected total
/// (the tar stream for a backup, the stored object for a restore or verify).
#[derive(Debug, Default)]
pub struct ProgressCounter {
    done: AtomicU64,
    /// 0 while unknown.
    total: AtomicU64,
}

impl ProgressCounter {
    pub fn add(&self, bytes: u64) {
        self.done.fetch_add(bytes, Ordering::Relaxed);
    }

    pub fn set_total(&self, bytes: u64) {
        self.total.store(bytes, Ordering::Relaxed);
    }

    /// (done, total); total is 0 while unknown.
    pub fn get(&self) -> (u64, u64) {
        (
            self.done.load(Ordering::Relaxed),
            self.total.load(Ordering::Relaxed),
        )
    }
}

/// Per-stage counters of one backup or restore, for progress and the benchmark. Times are
/// inclusive of the layers below a stage (the benchmark subtracts them).
#[derive(Debug, Default)]
pub struct Stats {
    pub progress: ProgressCounter,
    /// tar stream produced (backup) or consumed by the unpacker (restore).
    pub tar: StageCounter,
    /// Plaintext archive (tar.gz) bytes through the compression or decompression layer.
    pub gzip: StageCounter,
    /// Busy time summed over the gzip worker threads.
    pub gzip_workers: Arc<AtomicU64>,
    /// SHA-256 of the plaintext archive.
    pub hash: StageCounter,
    /// SHA-256 of the stored object.
    pub hash_stored: StageCounter,
    pub crypto: StageCounter,
    /// Time blocked handing data to, or waiting for data from, object storage.
    pub transfer: StageCounter,
}

/// SHA-256 and byte count of everything written through it.
pub struct HashWriter<W> {
    pub inner: W,
    hash: Sha256,
    len: u64,
    stats: Arc<Stats>,
    pick: fn(&Stats) -> &StageCounter,
}

impl<W: Write> HashWriter<W> {
    pub fn new(inner: W, stats: Arc<Stats>, pick: fn(&Stats) -> &StageCounter) -> Self {
        Self {
            inner,
            hash: Sha256::new(),
            len: 0,
            stats,
            pick,
        }
    }

    pub fn finish(self) -> (W, String, u64) {
        (self.inner, hex::encode(self.hash.finalize()), self.len)
    }
}

impl<W: Write> Write for HashWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        let t = Instant::now();
        self.hash.update(&buf[..n]);
        (self.pick)(&self.stats).add(n as u64, t);
        self.len += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// SHA-256 and byte count of everything read through it. The digest is taken from the
/// [`HashHandle`] once the stream has been read to its end (the layers above own the reader).
pub struct HashReader<R> {
    inner: R,
    state: Arc<std::sync::Mutex<(Sha256, u64)>>,
    stats: Arc<Stats>,
    pick: fn(&Stats) -> &StageCounter,
}

/// The caller's side of a [`HashReader`].
pub struct HashHandle(Arc<std::sync::Mutex<(Sha256, u64)>>);

impl HashHandle {
    pub fn finish(&self) -> (String, u64) {
        match self.0.lock() {
            Ok(g) => (hex::encode(g.0.clone().finalize()), g.1),
            Err(p) => {
                let g = p.into_inner();
                (hex::encode(g.0.clone().finalize()), g.1)
            }
        }
    }
}

impl<R: Read> HashReader<R> {
    pub fn new(
        inner: R,
        stats: Arc<Stats>,
        pick: fn(&Stats) -> &StageCounter,
    ) -> (Self, HashHandle) {
        let state = Arc::new(std::sync::Mutex::new((Sha256::new(), 0)));
        (
            Self {
                inner,
                state: Arc::clone(&state),
                stats,
                pick,
            },
            HashHandle(state),
        )
    }
}

impl<R: Read> Read for HashReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        let t = Instant::now();
        let mut g = self
            .state
            .lock()
            .map_err(|_| io::Error::other("hash state poisoned"))?;
        g.0.update(&buf[..n]);
        g.1 += n as u64;
        (self.pick)(&self.stats).add(n as u64, t);
        Ok(n)
    }
}

/// Records bytes and time spent in the layers below into one stage counter.
pub struct Meter<T> {
    pub inner: T,
    stats: Arc<Stats>,
    pick: fn(&Stats) -> &StageCounter,
}

impl<T> Meter<T> {
    pub fn new(inner: T, stats: Arc<Stats>, pick: fn(&Stats) -> &StageCounter) -> Self {
        Self { inner, stats, pick }
    }
}

impl<W: Write> Write for Meter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let t = Instant::now();
        let n = self.inner.write(buf)?;
        (self.pick)(&self.stats).add(n as u64, t);
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

impl<R: Read> Read for Meter<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let t = Instant::now();
        let n = self.inner.read(buf)?;
        (self.pick)(&self.stats).add(n as u64, t);
        Ok(n)
    }
}

/// Messages from the producing thread to the uploader. The uploader commits the object only
/// on `Done`; if the channel closes without it, the producer failed and the upload is aborted.
pub enum Upload {
    Data(Bytes),
    Done,
}

/// A `Write` that hands fixed-size pieces to the async uploader (bounded, so memory stays flat).
pub struct ChannelWriter {
    tx: mpsc::Sender<Upload>,
    buf: Vec<u8>,
    piece: usize,
    stats: Arc<Stats>,
}

impl ChannelWriter {
    pub fn new(tx: mpsc::Sender<Upload>, piece: usize, stats: Arc<Stats>) -> Self {
        Self {
            tx,
            buf: Vec::with_capacity(piece),
            piece,
            stats,
        }
    }

    fn send(&mut self, msg: Upload) -> io::Result<()> {
        let t = Instant::now();
        let n = match &msg {
            Upload::Data(b) => b.len() as u64,
            Upload::Done => 0,
        };
        self.tx
            .blocking_send(msg)
            .map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "uploader stopped"))?;
        self.stats.transfer.add(n, t);
        Ok(())
    }

    fn send_buf(&mut self) -> io::Result<()> {
        if !self.buf.is_empty() {
            let piece = std::mem::replace(&mut self.buf, Vec::with_capacity(self.piece));
            self.send(Upload::Data(Bytes::from(piece)))?;
        }
        Ok(())
    }

    /// Sends the rest and the end marker.
    pub fn finish(mut self) -> io::Result<()> {
        self.send_buf()?;
        self.send(Upload::Done)
    }
}

impl Write for ChannelWriter {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let n = (self.piece - self.buf.len()).min(data.len());
        self.buf.extend_from_slice(&data[..n]);
        if self.buf.len() == self.piece {
            self.send_buf()?;
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}
