//! The writing half: blocks compressed into `MP` members on a worker pool, written in order.

use std::collections::VecDeque;
use std::io::{self, Write};
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::sync::mpsc::Receiver;

use flate2::{Compression, Crc};

use super::{Buffers, Pool, SUBFIELD_ID, wait};

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
pub(super) fn compress_member(data: &[u8], level: u32, mut out: Vec<u8>) -> io::Result<Vec<u8>> {
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
pub(super) fn looks_incompressible(data: &[u8]) -> bool {
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
