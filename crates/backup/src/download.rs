//! Downloading a stored object for restore and verify: ranged reads of `part_size` bytes, up
//! to `concurrency` of them in flight at once, handed to the decoder in order. At most
//! `(concurrency + 1) × part_size` bytes of parts exist at any time (those downloading and the
//! one the decoder reads), whatever the object's size, and the wait for each GET's first byte
//! overlaps with the other parts' transfers.

use std::io::{self, Read};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use opendal::Operator;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};

use crate::plumbing::Stats;

/// Part size of the ranged reads (see [`DownloadOptions`]).
pub const DEFAULT_PART_SIZE: usize = 8 << 20;
/// Ranged reads in flight at once: with the default part size, 32 MiB of parts at most.
pub const DEFAULT_CONCURRENCY: usize = 3;

/// How a stored object is downloaded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DownloadOptions {
    /// Bytes per ranged read (at least 64 KiB).
    pub part_size: usize,
    /// Ranged reads in flight at once (at least 1).
    pub concurrency: usize,
    // A `file://` store is read 1 MiB at a time, one read at once, whatever these say.
}

impl Default for DownloadOptions {
    fn default() -> Self {
        Self {
            part_size: DEFAULT_PART_SIZE,
            concurrency: DEFAULT_CONCURRENCY,
        }
    }
}

/// A downloaded part, with the permit that counts it against the memory bound.
type Part = (Vec<u8>, OwnedSemaphorePermit);

/// Part buffers that have been read, for the next parts: reusing them spares an allocation,
/// its page faults and its release for every part.
type Pool = Arc<Mutex<Vec<Vec<u8>>>>;

/// A `Read` over the downloaded parts, in order, for the decoder's blocking thread.
pub(crate) struct PartReader {
    rx: mpsc::Receiver<io::Result<Part>>,
    cur: Vec<u8>,
    pos: usize,
    /// Released (letting the next part start) once `cur` has been read.
    _permit: Option<OwnedSemaphorePermit>,
    pool: Pool,
    stats: Arc<Stats>,
}

impl Read for PartReader {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        while self.pos == self.cur.len() {
            let t = Instant::now();
            let used = std::mem::take(&mut self.cur);
            if used.capacity() > 0
                && let Ok(mut pool) = self.pool.lock()
            {
                pool.push(used);
            }
            self.pos = 0;
            self._permit = None;
            match self.rx.blocking_recv() {
                Some(Ok((b, permit))) => {
                    self.stats.transfer.add(b.len() as u64, t);
                    self.stats.progress.add(b.len() as u64);
                    self.cur = b;
                    self._permit = Some(permit);
                }
                Some(Err(e)) => return Err(e),
                None => return Ok(0),
            }
        }
        let n = out.len().min(self.cur.len() - self.pos);
        out[..n].copy_from_slice(&self.cur[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

/// A running download; the decoder reads the [`PartReader`] that came with it.
pub(crate) struct Download {
    failure: Arc<Mutex<Option<opendal::Error>>>,
    task: tokio::task::JoinHandle<()>,
}

/// A part's download task, aborted when dropped (when the restore stops early).
struct PartTask(tokio::task::JoinHandle<Result<Vec<u8>, opendal::Error>>);

impl Drop for PartTask {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Reads bytes `range` of `path` into a buffer of its own (from `pool` when one is free). The
/// response's body frames are copied out as they arrive, so they do not keep the HTTP
/// client's read buffers alive.
async fn read_part(
    op: Operator,
    path: String,
    range: std::ops::Range<u64>,
    pool: Pool,
) -> Result<Vec<u8>, opendal::Error> {
    use futures::TryStreamExt;
    let mut frames = op.reader(&path).await?.into_stream(range.clone()).await?;
    let mut part = pool
        .lock()
        .ok()
        .and_then(|mut p| p.pop())
        .unwrap_or_default();
    part.clear();
    part.reserve((range.end - range.start) as usize);
    while let Some(frame) = frames.try_next().await? {
        for piece in frame {
            part.extend_from_slice(&piece);
        }
    }
    Ok(part)
}

impl Download {
    /// Starts downloading bytes `0..size` of `path`.
    pub(crate) fn start(
        op: &Operator,
        path: &str,
        size: u64,
        opts: DownloadOptions,
        stats: Arc<Stats>,
    ) -> (PartReader, Self) {
        let part = opts.part_size.max(64 << 10) as u64;
        let concurrency = opts.concurrency.max(1);
        // A part exists from the start of its download until the decoder has read it: at most
        // `concurrency` downloading while the decoder reads one.
        let parts = Arc::new(Semaphore::new(concurrency + 1));
        let (tx, rx) = mpsc::channel::<io::Result<Part>>(1);
        let failure = Arc::new(Mutex::new(None));
        let slot = Arc::clone(&failure);
        let (op, path) = (op.clone(), path.to_string());
        let pool = Pool::default();
        let pool2 = Arc::clone(&pool);
        let task = tokio::spawn(async move {
            let mut next = 0u64;
            let mut in_flight = std::collections::VecDeque::new();
            loop {
                while in_flight.len() < concurrency && next < size {
                    let Ok(permit) = Arc::clone(&parts).try_acquire_owned() else {
                        break;
                    };
                    let range = next..(next + part).min(size);
                    next = range.end;
                    let read = read_part(op.clone(), path.clone(), range, Arc::clone(&pool2));
                    in_flight.push_back((PartTask(tokio::spawn(read)), permit));
                }
                let Some((mut head, permit)) = in_flight.pop_front() else {
                    if next < size {
                        // Every permit is with the decoder or the queue: wait for one.
                        match Arc::clone(&parts).acquire_owned().await {
                            Ok(p) => drop(p),
                            Err(_) => return,
                        }
                        continue;
                    }
                    return;
                };
                let result = match (&mut head.0).await {
                    Ok(r) => r,
                    Err(e) => Err(opendal::Error::new(
                        opendal::ErrorKind::Unexpected,
                        format!("download task failed: {e}"),
                    )),
                };
                match result {
                    Ok(buffer) => {
                        if tx.send(Ok((buffer, permit))).await.is_err() {
                            return;
                        }
                    }
                    Err(e) => {
                        let msg = e.to_string();
                        if let Ok(mut g) = slot.lock() {
                            *g = Some(e);
                        }
                        let _ = tx.send(Err(io::Error::other(msg))).await;
                        return;
                    }
                }
            }
        });
        let reader = PartReader {
            rx,
            cur: Vec::new(),
            pos: 0,
            _permit: None,
            pool,
            stats,
        };
        (reader, Self { failure, task })
    }

    /// Why the download failed, if it did; stops it either way.
    pub(crate) fn finish(self) -> Option<opendal::Error> {
        self.task.abort();
        match self.failure.lock() {
            Ok(mut g) => g.take(),
            Err(p) => p.into_inner().take(),
        }
    }
}
