//! Reading OpenPGP password-encrypted messages, as stock `gpg --symmetric` writes them.

use std::io::{self, Read};
use std::sync::{Arc, Mutex};

use sha1::Sha1;
use sha2::Digest;

use super::*;
use crate::gzip::read_full;
use crate::keys::BackupKey;

enum Len {
    Fixed(u64),
    Partial(u64),
    Indeterminate,
}

fn read_byte<R: Read + ?Sized>(r: &mut R) -> io::Result<Option<u8>> {
    let mut b = [0u8; 1];
    Ok((read_full(r, &mut b)? == 1).then_some(b[0]))
}

fn need_byte<R: Read + ?Sized>(r: &mut R) -> io::Result<u8> {
    read_byte(r)?.ok_or_else(|| PgpError::Truncated.into())
}

fn new_format_len<R: Read + ?Sized>(r: &mut R, first: u8) -> io::Result<Len> {
    Ok(match first {
        0..=191 => Len::Fixed(first as u64),
        192..=223 => Len::Fixed((((first as u64) - 192) << 8) + need_byte(r)? as u64 + 192),
        224..=254 => Len::Partial(1u64 << (first & 0x1f)),
        255 => {
            let mut b = [0u8; 4];
            if read_full(r, &mut b)? != 4 {
                return Err(PgpError::Truncated.into());
            }
            Len::Fixed(u32::from_be_bytes(b) as u64)
        }
    })
}

/// Reads a packet header; `None` at a clean end of stream.
fn read_header<R: Read + ?Sized>(r: &mut R) -> io::Result<Option<(u8, Len)>> {
    let Some(b) = read_byte(r)? else {
        return Ok(None);
    };
    if b & 0x80 == 0 {
        return Err(PgpError::NotOpenPgp(b).into());
    }
    if b & 0x40 != 0 {
        let first = need_byte(r)?;
        return Ok(Some((b & 0x3f, new_format_len(r, first)?)));
    }
    let tag = (b >> 2) & 0x0f;
    let len = match b & 3 {
        0 => Len::Fixed(need_byte(r)? as u64),
        1 => Len::Fixed(((need_byte(r)? as u64) << 8) | need_byte(r)? as u64),
        2 => {
            let mut v = [0u8; 4];
            if read_full(r, &mut v)? != 4 {
                return Err(PgpError::Truncated.into());
            }
            Len::Fixed(u32::from_be_bytes(v) as u64)
        }
        _ => Len::Indeterminate,
    };
    Ok(Some((tag, len)))
}

/// The body of one packet, following partial-length chunks as they come.
struct Body<R: Read> {
    inner: R,
    left: u64,
    partial: bool,
    indeterminate: bool,
}

impl<R: Read> Body<R> {
    fn new(inner: R, len: Len) -> Self {
        let (left, partial, indeterminate) = match len {
            Len::Fixed(n) => (n, false, false),
            Len::Partial(n) => (n, true, false),
            Len::Indeterminate => (0, false, true),
        };
        Self {
            inner,
            left,
            partial,
            indeterminate,
        }
    }
}

impl<R: Read> Read for Body<R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if self.indeterminate {
            return self.inner.read(out);
        }
        while self.left == 0 {
            if !self.partial {
                return Ok(0);
            }
            let first = need_byte(&mut self.inner)?;
            match new_format_len(&mut self.inner, first)? {
                Len::Fixed(n) => {
                    self.left = n;
                    self.partial = false;
                }
                Len::Partial(n) => self.left = n,
                Len::Indeterminate => unreachable!("new-format lengths are never indeterminate"),
            }
        }
        let want = out.len().min(self.left as usize);
        let n = self.inner.read(&mut out[..want])?;
        if n == 0 {
            return Err(PgpError::Truncated.into());
        }
        self.left -= n as u64;
        Ok(n)
    }
}

struct CfbReader<R: Read> {
    inner: R,
    cfb: Cfb,
}

impl<R: Read> Read for CfbReader<R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(out)?;
        self.cfb.apply(&mut out[..n], true);
        Ok(n)
    }
}

/// Yields the SEIPD plaintext minus the trailing MDC packet, which it checks at end of stream.
struct MdcReader<R: Read> {
    inner: R,
    hash: Sha1,
    buf: Vec<u8>,
    start: usize,
    end: usize,
    verified: bool,
}

impl<R: Read> Read for MdcReader<R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        loop {
            let avail = self.end - self.start;
            if avail > MDC_LEN {
                let n = out.len().min(avail - MDC_LEN);
                out[..n].copy_from_slice(&self.buf[self.start..self.start + n]);
                self.hash.update(&out[..n]);
                self.start += n;
                return Ok(n);
            }
            if self.verified {
                return Ok(0);
            }
            self.buf.copy_within(self.start..self.end, 0);
            self.end = avail;
            self.start = 0;
            let got = self.inner.read(&mut self.buf[self.end..])?;
            if got == 0 {
                let tail = &self.buf[..self.end];
                if tail.len() != MDC_LEN || tail[0] != 0xd3 || tail[1] != 0x14 {
                    return Err(PgpError::Truncated.into());
                }
                self.hash.update([0xd3, 0x14]);
                let digest = std::mem::take(&mut self.hash).finalize();
                if digest[..] != tail[2..] {
                    return Err(PgpError::MdcMismatch.into());
                }
                self.verified = true;
                self.start = self.end;
                return Ok(0);
            }
            self.end += got;
        }
    }
}

/// Lets the top-level reader drain the MDC layer after the literal data ends.
struct Shared<R>(Arc<Mutex<R>>);

impl<R> Clone for Shared<R> {
    fn clone(&self) -> Self {
        Self(Arc::clone(&self.0))
    }
}

impl<R: Read> Read for Shared<R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        self.0
            .lock()
            .map_err(|_| io::Error::other("OpenPGP reader poisoned"))?
            .read(out)
    }
}

type Dyn = Box<dyn Read + Send>;

/// Decrypts an OpenPGP password-encrypted message and yields the literal data.
pub struct PgpReader<R: Read + Send + 'static> {
    literal: Body<Dyn>,
    mdc: Shared<MdcReader<CfbReader<Body<R>>>>,
    done: bool,
}

impl<R: Read + Send + 'static> PgpReader<R> {
    pub fn new(mut inner: R, key: &BackupKey) -> io::Result<Self> {
        let pass = key.gpg_passphrase();
        let mut candidates: Vec<[u8; 32]> = Vec::new();
        let seipd_len = loop {
            let Some((tag, len)) = read_header(&mut inner)? else {
                return Err(PgpError::Truncated.into());
            };
            match tag {
                TAG_SKESK | TAG_MARKER => {
                    let mut body = Vec::new();
                    Body::new(&mut inner, len)
                        .take(1024)
                        .read_to_end(&mut body)?;
                    if tag == TAG_SKESK {
                        candidates.push(session_from_skesk(&body, pass.as_bytes())?);
                    }
                }
                TAG_SEIPD => break len,
                TAG_SED => return Err(PgpError::Unprotected.into()),
                TAG_AEAD => {
                    return Err(PgpError::Unsupported(
                        "AEAD encrypted data packet (tag 20); use gpg --force-mdc / rfc4880 mode"
                            .into(),
                    )
                    .into());
                }
                other => {
                    return Err(PgpError::Unsupported(format!(
                        "packet tag {other} before encrypted data"
                    ))
                    .into());
                }
            }
        };
        if candidates.is_empty() {
            return Err(PgpError::NoSkesk.into());
        }
        let mut body = Body::new(inner, seipd_len);
        let version = need_byte(&mut body)?;
        if version != 1 {
            return Err(PgpError::Unsupported(format!("SEIPD version {version}")).into());
        }
        // gpg writes one SKESK per passphrase given; ours is the first.
        let session = candidates[0];
        let mdc = Shared(Arc::new(Mutex::new(MdcReader {
            inner: CfbReader {
                inner: body,
                cfb: Cfb::new(&session),
            },
            hash: Sha1::new(),
            buf: vec![0u8; (1 << 16) + MDC_LEN],
            start: 0,
            end: 0,
            verified: false,
        })));
        let mut plain: Dyn = Box::new(mdc.clone());
        let mut prefix = [0u8; 18];
        if read_full(&mut plain, &mut prefix)? != 18 {
            return Err(PgpError::Truncated.into());
        }
        if prefix[14..16] != prefix[16..18] {
            return Err(PgpError::WrongKey.into());
        }
        let literal = loop {
            let Some((tag, len)) = read_header(&mut plain)? else {
                return Err(PgpError::Truncated.into());
            };
            match tag {
                TAG_COMPRESSED => {
                    let mut body = Body::new(plain, len);
                    let algo = need_byte(&mut body)?;
                    plain = match algo {
                        0 => Box::new(body),
                        1 => Box::new(flate2::read::DeflateDecoder::new(body)),
                        2 => Box::new(flate2::read::ZlibDecoder::new(body)),
                        other => {
                            return Err(PgpError::Unsupported(format!(
                                "compression algorithm {other} (BZip2 is not read; use --compress-algo zlib)"
                            ))
                            .into());
                        }
                    };
                }
                TAG_LITERAL => {
                    let mut body = Body::new(plain, len);
                    let _format = need_byte(&mut body)?;
                    let name_len = need_byte(&mut body)? as usize;
                    let mut skip = vec![0u8; name_len + 4];
                    if read_full(&mut body, &mut skip)? != skip.len() {
                        return Err(PgpError::Truncated.into());
                    }
                    break body;
                }
                TAG_MARKER => {
                    io::copy(&mut Body::new(&mut plain, len), &mut io::sink())?;
                }
                other => {
                    return Err(PgpError::Unsupported(format!(
                        "packet tag {other} inside encrypted data"
                    ))
                    .into());
                }
            }
        };
        Ok(Self {
            literal,
            mdc,
            done: false,
        })
    }
}

fn session_from_skesk(body: &[u8], pass: &[u8]) -> Result<[u8; 32], PgpError> {
    if body.len() < 4 || body[0] != 4 {
        return Err(PgpError::Unsupported(format!(
            "symmetric-key session packet version {}",
            body.first().copied().unwrap_or(0)
        )));
    }
    if body[1] != CIPHER_AES256 {
        return Err(PgpError::Unsupported(format!(
            "cipher algorithm {} (only AES-256, id 9; use --cipher-algo AES256)",
            body[1]
        )));
    }
    let (s2k_type, hash) = (body[2], body[3]);
    let salt_of = |b: &[u8]| -> Result<[u8; 8], PgpError> {
        b.get(4..12)
            .and_then(|s| s.try_into().ok())
            .ok_or_else(|| PgpError::BadPacket("S2K salt cut short".into()))
    };
    let (key, rest) = match s2k_type {
        0 => (derive(hash, pass, None, None)?, &body[4..]),
        1 => (
            derive(hash, pass, Some(&salt_of(body)?), None)?,
            &body[12..],
        ),
        3 => {
            let count = *body
                .get(12)
                .ok_or_else(|| PgpError::BadPacket("S2K count missing".into()))?;
            (
                derive(hash, pass, Some(&salt_of(body)?), Some(s2k_count(count)))?,
                &body[13..],
            )
        }
        other => return Err(PgpError::Unsupported(format!("S2K type {other}"))),
    };
    if rest.is_empty() {
        return Ok(key);
    }
    // An encrypted session key: CFB with a zero IV under the S2K key, "algo || key".
    let mut esk = rest.to_vec();
    Cfb::new(&key).apply(&mut esk, true);
    if esk.len() != 33 || esk[0] != CIPHER_AES256 {
        return Err(PgpError::WrongKey);
    }
    let mut session = [0u8; 32];
    session.copy_from_slice(&esk[1..]);
    Ok(session)
}

impl<R: Read + Send + 'static> Read for PgpReader<R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if self.done {
            return Ok(0);
        }
        let n = self.literal.read(out)?;
        if n == 0 && !out.is_empty() {
            // The literal data ended: run the rest of the SEIPD body through the MDC check.
            io::copy(&mut self.mdc, &mut io::sink())?;
            self.done = true;
        }
        Ok(n)
    }
}
