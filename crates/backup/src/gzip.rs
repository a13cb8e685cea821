//! Parallel gzip in the manner of pigz: the input is cut into fixed-size blocks, each block is
//! deflated on a worker thread into an independent gzip member, and members are written in
//! order. Concatenated members are one valid `.gz` stream (RFC 1952 §2.2) that stock gzip reads.
//!
//! Each member carries an extra header subfield `MP` with the member's total size (like BGZF's
//! `BC`), so restore can cut the stream into members without inflating it and inflate them in
//! parallel too. Streams without that subfield (e.g. from `tar czf`) are read sequentially.

use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Instant;

use flate2::{Compression, Crc};

/// Default uncompressed block size of one gzip member.
pub const DEFAULT_BLOCK: usize = 1 << 20;
/// Largest member the parallel reader accepts, so a corrupt size field cannot make it allocate
/// without bound.
const MAX_MEMBER: usize = 64 << 20;
const HEADER_LEN: usize = 20;
const SUBFIELD_ID: [u8; 2] = *b"MP";

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
struct Buffers(Arc<Mutex<Vec<Vec<u8>>>>);

/// Spare buffers kept at most; the pipeline has fewer in flight.
const SPARE_BUFFERS: usize = 16;

impl Buffers {
    fn take(&self) -> Vec<u8> {
        let mut v = self
            .0
            .lock()
            .ok()
            .and_then(|mut p| p.pop())
            .unwrap_or_default();
        v.clear();
        v
    }

    fn give(&self, v: Vec<u8>) {
        if let Ok(mut p) = self.0.lock()
            && p.len() < SPARE_BUFFERS
        {
            p.push(v);
        }
    }
}
type Work = Arc<dyn Fn(Vec<u8>) -> io::Result<Vec<u8>> + Send + Sync>;

/// A small pool of threads running `work` on jobs taken from one shared queue.
struct Pool {
    jobs: Option<SyncSender<Job>>,
    threads: Vec<JoinHandle<()>>,
}

impl Pool {
    fn new(workers: usize, work: Work, busy: Arc<AtomicU64>) -> Self {
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

    fn submit(&self, input: Vec<u8>) -> io::Result<Receiver<io::Result<Vec<u8>>>> {
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

fn wait(rx: Receiver<io::Result<Vec<u8>>>) -> io::Result<Vec<u8>> {
    rx.recv().map_err(|_| GzipError::WorkerGone)?
}

/// Number of worker threads to use: every available core.
pub fn default_workers() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// Writes a gzip stream, compressing blocks in parallel. Memory is bounded by
/// `2 × workers` blocks in flight plus one block being filled.
pub struct ParallelGzWriter<W: Write> {
    inner: Option<W>,
    pool: Pool,
    block: Vec<u8>,
    block_size: usize,
    in_flight: VecDeque<Receiver<io::Result<Vec<u8>>>>,
    max_in_flight: usize,
    buffers: Buffers,
    wrote_any: bool,
}

impl<W: Write> ParallelGzWriter<W> {
    /// `level` is the zlib level 0..=9 (6 is gzip's default).
    pub fn new(inner: W, level: u32, workers: usize, block_size: usize) -> Self {
        Self::with_counter(inner, level, workers, block_size, Arc::default())
    }

    /// Like [`ParallelGzWriter::new`], adding the workers' busy nanoseconds to `busy`.
    pub fn with_counter(
        inner: W,
        level: u32,
        workers: usize,
        block_size: usize,
        busy: Arc<AtomicU64>,
    ) -> Self {
        let level = level.min(9);
        let buffers = Buffers::default();
        let spare = buffers.clone();
        let work = move |block: Vec<u8>| {
            let member = compress_member(&block, level, spare.take());
            spare.give(block);
            member
        };
        let pool = Pool::new(workers, Arc::new(work), busy);
        Self {
            inner: Some(inner),
            pool,
            block: Vec::with_capacity(block_size),
            buffers,
            block_size: block_size.max(4096),
            in_flight: VecDeque::new(),
            max_in_flight: 2 * workers.max(1),
            wrote_any: false,
        }
    }

    fn inner(&mut self) -> io::Result<&mut W> {
        self.inner
            .as_mut()
            .ok_or_else(|| io::Error::other("gzip writer already finished"))
    }

    fn dispatch(&mut self) -> io::Result<()> {
        let mut next = self.buffers.take();
        next.reserve(self.block_size);
        let block = std::mem::replace(&mut self.block, next);
        self.in_flight.push_back(self.pool.submit(block)?);
        self.wrote_any = true;
        while self.in_flight.len() >= self.max_in_flight {
            self.drain_one()?;
        }
        Ok(())
    }

    fn drain_one(&mut self) -> io::Result<()> {
        if let Some(rx) = self.in_flight.pop_front() {
            let member = wait(rx)?;
            self.inner()?.write_all(&member)?;
            self.buffers.give(member);
        }
        Ok(())
    }

    /// Compresses what is left, writes every member and returns the inner writer.
    pub fn finish(mut self) -> io::Result<W> {
        // An empty input still yields one (empty) member so the output is a valid gzip file.
        if !self.block.is_empty() || !self.wrote_any {
            self.dispatch()?;
        }
        while !self.in_flight.is_empty() {
            self.drain_one()?;
        }
        let mut inner = self
            .inner
            .take()
            .ok_or_else(|| io::Error::other("gzip writer already finished"))?;
        inner.flush()?;
        Ok(inner)
    }
}

impl<W: Write> Write for ParallelGzWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let room = self.block_size - self.block.len();
        let n = room.min(buf.len());
        self.block.extend_from_slice(&buf[..n]);
        if self.block.len() == self.block_size {
            self.dispatch()?;
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Deflates one block into a complete gzip member with the `MP` size subfield.
fn compress_member(data: &[u8], level: u32, mut out: Vec<u8>) -> io::Result<Vec<u8>> {
    out.clear();
    out.reserve(data.len() / 2 + 64);
    out.extend_from_slice(&[0x1f, 0x8b, 8, 0x04, 0, 0, 0, 0, 0, 255]);
    out.extend_from_slice(&8u16.to_le_bytes()); // XLEN
    out.extend_from_slice(&SUBFIELD_ID);
    out.extend_from_slice(&4u16.to_le_bytes());
    out.extend_from_slice(&[0u8; 4]); // member size, patched below
    // Already-compressed data (media, archives, encrypted files) gains nothing from deflate
    // but costs as much CPU as text: store such blocks (deflate level 0) instead.
    let level = if level > 0 && looks_incompressible(data) {
        0
    } else {
        level
    };
    let mut enc = flate2::write::DeflateEncoder::new(out, Compression::new(level));
    enc.write_all(data)?;
    let mut out = enc.finish()?;
    let mut crc = Crc::new();
    crc.update(data);
    out.extend_from_slice(&crc.sum().to_le_bytes());
    out.extend_from_slice(&(data.len() as u32).to_le_bytes());
    let size = u32::try_from(out.len()).map_err(io::Error::other)?;
    out[16..20].copy_from_slice(&size.to_le_bytes());
    Ok(out)
}

/// Size of each probe taken to judge compressibility.
const PROBE: usize = 16 << 10;

/// True when probes at the start, middle and end of `data` all fail to shrink by 2 % at the
/// fastest level.
fn looks_incompressible(data: &[u8]) -> bool {
    if data.len() < 4 * PROBE {
        return false;
    }
    let starts = [0, data.len() / 2 - PROBE / 2, data.len() - PROBE];
    let mut out = Vec::with_capacity(PROBE + 1024);
    starts.iter().all(|&at| {
        out.clear();
        let mut c = flate2::Compress::new(Compression::fast(), false);
        match c.compress_vec(
            &data[at..at + PROBE],
            &mut out,
            flate2::FlushCompress::Finish,
        ) {
            Ok(_) => out.len() * 100 >= PROBE * 98,
            Err(_) => false,
        }
    })
}

/// Inflates one member written by [`compress_member`] and checks its CRC and length.
fn decompress_member(member: &[u8], mut out: Vec<u8>) -> io::Result<Vec<u8>> {
    let body = &member[HEADER_LEN..member.len() - 8];
    let trailer = &member[member.len() - 8..];
    let crc_expected = u32::from_le_bytes([trailer[0], trailer[1], trailer[2], trailer[3]]);
    let isize = u32::from_le_bytes([trailer[4], trailer[5], trailer[6], trailer[7]]) as usize;
    if isize > MAX_MEMBER * 64 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "the member declares an implausible size",
        ));
    }
    out.clear();
    out.reserve(isize);
    flate2::read::DeflateDecoder::new(body).read_to_end(&mut out)?;
    let mut crc = Crc::new();
    crc.update(&out);
    if crc.sum() != crc_expected || out.len() != isize {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "CRC-32 or length mismatch",
        ));
    }
    Ok(out)
}

/// Reads a gzip stream. Streams of `MP` members are inflated in parallel: a reader thread
/// cuts the input into members (pulling it through the layers below, such as decryption and
/// hashing, on its own core) and a worker pool inflates them. Any other gzip stream (one or
/// many members) is inflated sequentially.
pub struct GzReader<R: Read> {
    mode: Mode<R>,
}

type MemberResult = io::Result<(u64, Receiver<io::Result<Vec<u8>>>)>;

enum Mode<R: Read> {
    Parallel(Box<ParallelState>),
    Sequential(Box<flate2::read::MultiGzDecoder<io::Chain<io::Cursor<Vec<u8>>, R>>>),
}

struct ParallelState {
    buffers: Buffers,
    members: Receiver<MemberResult>,
    out: Vec<u8>,
    pos: usize,
    eof: bool,
}

impl<R: Read + Send + 'static> GzReader<R> {
    pub fn new(inner: R, workers: usize) -> io::Result<Self> {
        Self::with_counter(inner, workers, Arc::default())
    }

    /// Like [`GzReader::new`], adding the workers' busy nanoseconds to `busy`.
    pub fn with_counter(mut inner: R, workers: usize, busy: Arc<AtomicU64>) -> io::Result<Self> {
        let mut head = [0u8; HEADER_LEN];
        let got = read_full(&mut inner, &mut head)?;
        if got == HEADER_LEN && is_mp_header(&head) {
            let buffers = Buffers::default();
            let spare = buffers.clone();
            let work = move |member: Vec<u8>| {
                let out = decompress_member(&member, spare.take());
                spare.give(member);
                out
            };
            let pool = Pool::new(workers, Arc::new(work), busy);
            let (tx, rx) = sync_channel(2 * workers.max(1));
            std::thread::Builder::new()
                .name("gunzip-reader".into())
                .spawn({
                    let buffers = buffers.clone();
                    move || split_members(inner, head, pool, &buffers, tx)
                })?;
            return Ok(Self {
                mode: Mode::Parallel(Box::new(ParallelState {
                    buffers,
                    members: rx,
                    out: Vec::new(),
                    pos: 0,
                    eof: false,
                })),
            });
        }
        let prefix = io::Cursor::new(head[..got].to_vec());
        Ok(Self {
            mode: Mode::Sequential(Box::new(flate2::read::MultiGzDecoder::new(
                prefix.chain(inner),
            ))),
        })
    }
}

fn is_mp_header(h: &[u8; HEADER_LEN]) -> bool {
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

/// The reader thread: reads whole members, hands each to the pool and passes the pending
/// results on in order. Stops at end of input, on error, or when the consumer goes away.
fn split_members<R: Read>(
    mut inner: R,
    first: [u8; HEADER_LEN],
    pool: Pool,
    buffers: &Buffers,
    tx: SyncSender<MemberResult>,
) {
    let mut head = Some(first);
    let mut member = 0u64;
    loop {
        let next = read_member(&mut inner, head.take(), member, buffers.take())
            .and_then(|m| m.map(|m| pool.submit(m)).transpose());
        let msg = match next {
            Ok(None) => return,
            Ok(Some(rx)) => Ok((member, rx)),
            Err(e) => Err(e),
        };
        let stop = msg.is_err();
        if tx.send(msg).is_err() || stop {
            return;
        }
        member += 1;
    }
}

/// Reads one whole member; `None` at a clean end of input.
fn read_member<R: Read>(
    inner: &mut R,
    head: Option<[u8; HEADER_LEN]>,
    member: u64,
    mut buf: Vec<u8>,
) -> io::Result<Option<Vec<u8>>> {
    let corrupt = |reason: String| -> io::Error { GzipError::Corrupt { member, reason }.into() };
    let head = match head {
        Some(h) => h,
        None => {
            let mut h = [0u8; HEADER_LEN];
            let got = read_full(inner, &mut h)?;
            if got == 0 {
                return Ok(None);
            }
            if got < HEADER_LEN || !is_mp_header(&h) {
                return Err(corrupt("truncated or foreign gzip member header".into()));
            }
            h
        }
    };
    let size = u32::from_le_bytes([head[16], head[17], head[18], head[19]]) as usize;
    if !(HEADER_LEN + 8..=MAX_MEMBER).contains(&size) {
        return Err(corrupt(format!("member size {size} out of range")));
    }
    buf.clear();
    buf.resize(size, 0);
    buf[..HEADER_LEN].copy_from_slice(&head);
    if read_full(inner, &mut buf[HEADER_LEN..])? != size - HEADER_LEN {
        return Err(corrupt("stream ends inside the member".into()));
    }
    Ok(Some(buf))
}

impl ParallelState {
    fn fill(&mut self) -> io::Result<()> {
        match self.members.recv() {
            Err(_) => self.eof = true,
            Ok(Err(e)) => return Err(e),
            Ok(Ok((member, rx))) => {
                let out = wait(rx).map_err(|e| GzipError::Corrupt {
                    member,
                    reason: e.to_string(),
                })?;
                self.buffers.give(std::mem::replace(&mut self.out, out));
                self.pos = 0;
            }
        }
        Ok(())
    }
}

impl<R: Read> Read for GzReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match &mut self.mode {
            Mode::Sequential(d) => d.read(buf),
            Mode::Parallel(s) => {
                while s.pos == s.out.len() {
                    if s.eof {
                        return Ok(0);
                    }
                    s.fill()?;
                }
                let n = buf.len().min(s.out.len() - s.pos);
                buf[..n].copy_from_slice(&s.out[s.pos..s.pos + n]);
                s.pos += n;
                Ok(n)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        assert!(matches!(r.mode, Mode::Parallel(_)));
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
