//! The reading half: `MP` members cut apart without inflating and inflated on a worker pool;
//! any other gzip stream inflated sequentially.

use std::io::{self, Read};
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};

use flate2::Crc;

use super::{Buffers, GzipError, HEADER_LEN, MAX_MEMBER, Pool, is_mp_header, read_full, wait};

/// Inflates one member written by [`compress_member`] and checks its CRC and length.
pub(super) fn decompress_member(member: &[u8], mut out: Vec<u8>) -> io::Result<Vec<u8>> {
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

impl<R: Read> GzReader<R> {
    /// Whether the stream is inflated in parallel (a stream of `MP` members).
    #[cfg(test)]
    pub(super) fn is_parallel(&self) -> bool {
        matches!(self.mode, Mode::Parallel(_))
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
