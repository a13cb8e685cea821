//! Parallel gzip in the manner of pigz: the input is cut into fixed-size blocks, each block is
//! deflated on a worker thread into an independent gzip member, and members are written in
//! order. Concatenated members are one valid `.gz` stream (RFC 1952 §2.2) that stock gzip reads.
//!
//! Each member carries an extra header subfield `MP` with the member's total size (like BGZF's
//! `BC`), so restore can cut the stream into members without inflating it and inflate them in
//! parallel too. Streams without that subfield (e.g. from `tar czf`) are read sequentially.

use std::io::{self, Read};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Instant;

mod read;
mod write;

pub use read::GzReader;
pub use write::ParallelGzWriter;

/// Default uncompressed block size of one gzip member.
pub const DEFAULT_BLOCK: usize = 1 << 20;
/// Largest member the parallel reader accepts, so a corrupt size field cannot make it allocate
/// without bound.
pub(crate) const MAX_MEMBER: usize = 64 << 20;
pub(crate) const HEADER_LEN: usize = 20;
pub(crate) const SUBFIELD_ID: [u8; 2] = *b"MP";

#[derive(Debug, thiserror::Error)]
pub enum GzipError {
    #[error("gzip member {member}: {reason}")]
    Corrupt { member: u64, reason: String },
    #[error("gzip worker thread stopped unexpectedly")]
    WorkerGone,
}

impl From<GzipError> for io::Error {
    fn from(e: GzipError) -> Self {
        io::Error::new(io::ErrorKind::InvalidData, e)
    }
}

type Job = (Vec<u8>, SyncSender<io::Result<Vec<u8>>>);

/// Buffers of finished blocks and members, for the next ones: reusing them spares an
/// allocation, its page faults and its release per MiB (see src/memory.rs).
#[derive(Clone, Default)]
pub(crate) struct Buffers(Arc<Mutex<Vec<Vec<u8>>>>);

/// Spare buffers kept at most; the pipeline has fewer in flight.
const SPARE_BUFFERS: usize = 16;

impl Buffers {
    pub(crate) fn take(&self) -> Vec<u8> {
        let mut v = self
            .0
            .lock()
            .ok()
            .and_then(|mut p| p.pop())
            .unwrap_or_default();
        v.clear();
        v
    }

    pub(crate) fn give(&self, v: Vec<u8>) {
        if let Ok(mut p) = self.0.lock()
            && p.len() < SPARE_BUFFERS
        {
            p.push(v);
        }
    }
}
type Work = Arc<dyn Fn(Vec<u8>) -> io::Result<Vec<u8>> + Send + Sync>;

/// A small pool of threads running `work` on jobs taken from one shared queue.
pub(crate) struct Pool {
    jobs: Option<SyncSender<Job>>,
    threads: Vec<JoinHandle<()>>,
}

impl Pool {
    pub(crate) fn new(workers: usize, work: Work, busy: Arc<AtomicU64>) -> Self {
        let (tx, rx) = sync_channel::<Job>(workers);
        let rx = Arc::new(Mutex::new(rx));
        let threads = (0..workers.max(1))
            .map(|_| {
                let rx: Arc<Mutex<Receiver<Job>>> = Arc::clone(&rx);
                let work = Arc::clone(&work);
                let busy = Arc::clone(&busy);
                std::thread::spawn(move || {
                    loop {
                        let job = match rx.lock() {
                            Ok(guard) => guard.recv(),
                            Err(_) => return,
                        };
                        let Ok((input, reply)) = job else { return };
                        let started = Instant::now();
                        let out = work(input);
                        busy.fetch_add(started.elapsed().as_nanos() as u64, Ordering::Relaxed);
                        // The receiver may be gone if the pipeline failed; nothing to do then.
                        let _ = reply.send(out);
                    }
                })
            })
            .collect();
        Self {
            jobs: Some(tx),
            threads,
        }
    }

    pub(crate) fn submit(&self, input: Vec<u8>) -> io::Result<Receiver<io::Result<Vec<u8>>>> {
        let (tx, rx) = sync_channel(1);
        self.jobs
            .as_ref()
            .ok_or(GzipError::WorkerGone)?
            .send((input, tx))
            .map_err(|_| GzipError::WorkerGone)?;
        Ok(rx)
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        self.jobs = None;
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

pub(crate) fn wait(rx: Receiver<io::Result<Vec<u8>>>) -> io::Result<Vec<u8>> {
    rx.recv().map_err(|_| GzipError::WorkerGone)?
}

/// Number of worker threads to use: every available core.
pub fn default_workers() -> usize {
    std::thread::available_parallelism().map_or(1, std::num::NonZero::get)
}

pub(crate) fn is_mp_header(h: &[u8; HEADER_LEN]) -> bool {
    h[0] == 0x1f
        && h[1] == 0x8b
        && h[2] == 8
        && h[3] == 0x04
        && h[10..12] == 8u16.to_le_bytes()
        && h[12..14] == SUBFIELD_ID
        && h[14..16] == 4u16.to_le_bytes()
}

/// Reads until `buf` is full or EOF; returns how many bytes were read.
pub(crate) fn read_full<R: Read + ?Sized>(r: &mut R, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::read::decompress_member;
    use super::write::{compress_member, looks_incompressible};
    use super::*;
    use flate2::Compression;
    use std::io::Write;

    fn sample(n: usize) -> Vec<u8> {
        (0..n).map(|i| ((i * 31) ^ (i >> 7)) as u8 % 61).collect()
    }

    #[test]
    fn parallel_output_is_standard_gzip_and_reads_back_in_parallel() {
        let data = sample(3 * 4096 * 10 + 17);
        let mut w = ParallelGzWriter::new(Vec::new(), 6, 2, 4096);
        w.write_all(&data).expect("write");
        let gz = w.finish().expect("finish");
        let mut plain = Vec::new();
        flate2::read::MultiGzDecoder::new(&gz[..])
            .read_to_end(&mut plain)
            .expect("stock multi-member decoder");
        assert_eq!(plain, data);
        let mut back = Vec::new();
        let mut r = GzReader::new(io::Cursor::new(gz.clone()), 2).expect("reader");
        assert!(r.is_parallel());
        r.read_to_end(&mut back).expect("parallel read");
        assert_eq!(back, data);
    }

    #[test]
    fn empty_input_and_foreign_streams() {
        let gz = ParallelGzWriter::new(Vec::new(), 6, 2, 4096)
            .finish()
            .expect("finish");
        let mut back = Vec::new();
        GzReader::new(io::Cursor::new(gz.clone()), 2)
            .expect("r")
            .read_to_end(&mut back)
            .expect("read");
        assert!(back.is_empty());

        let mut e = flate2::write::GzEncoder::new(Vec::new(), Compression::default());
        e.write_all(b"hello foreign gzip").expect("w");
        let foreign = e.finish().expect("f");
        let mut back = Vec::new();
        GzReader::new(io::Cursor::new(foreign), 2)
            .expect("r")
            .read_to_end(&mut back)
            .expect("read");
        assert_eq!(back, b"hello foreign gzip");
    }

    #[test]
    fn incompressible_blocks_are_stored_and_text_is_compressed() {
        let mut x = 0x1234_5678_u64;
        let random: Vec<u8> = (0..DEFAULT_BLOCK)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect();
        assert!(looks_incompressible(&random));
        let member = compress_member(&random, 6, Vec::new()).expect("compress");
        // Stored deflate blocks cost 5 bytes per 64 KiB, nothing like a failed compression.
        assert!(member.len() < random.len() + 200, "{}", member.len());
        let text = sample(DEFAULT_BLOCK);
        assert!(!looks_incompressible(&text));
        assert!(
            compress_member(&text, 6, Vec::new())
                .expect("compress")
                .len()
                < text.len() / 4
        );
        assert_eq!(
            decompress_member(&member, Vec::new()).expect("inflate"),
            random
        );
    }

    #[test]
    fn corrupt_member_is_named() {
        let data = sample(50_000);
        let mut w = ParallelGzWriter::new(Vec::new(), 6, 2, 4096);
        w.write_all(&data).expect("write");
        let mut gz = w.finish().expect("finish");
        let n = gz.len();
        gz[n - 30] ^= 0x55;
        let err = GzReader::new(io::Cursor::new(gz.clone()), 2)
            .expect("r")
            .read_to_end(&mut Vec::new())
            .unwrap_err();
        assert!(err.to_string().contains("gzip member"), "{err}");
    }
}
