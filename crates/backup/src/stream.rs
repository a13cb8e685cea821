//! The `MPBK` chunked authenticated stream used by the `aes256-gcm` and `aes256-cbc`
//! algorithms (layout in docs/backup-format.md). The plaintext is cut into chunks; each chunk
//! is sealed on its own with its index and a final-chunk flag bound in, so truncation,
//! reordering and tampering are detected and the failing chunk is named. A chunk's plaintext is
//! released only after its authentication succeeds.

use std::io::{self, Read, Write};

use aes_gcm::aead::{AeadInPlace, KeyInit};
use aes_gcm::{Aes256Gcm, Nonce, Tag};
use cbc::cipher::block_padding::Pkcs7;
use cbc::cipher::{BlockDecryptMut, BlockEncryptMut, KeyIvInit};
use hkdf::Hkdf;
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::Sha256;

use crate::gzip::read_full;
use crate::keys::BackupKey;

pub const MAGIC: &[u8; 4] = b"MPBK";
pub const VERSION: u8 = 1;
pub const HEADER_LEN: usize = 64;
/// Default plaintext bytes per chunk.
pub const DEFAULT_CHUNK: usize = 1 << 20;
const MIN_CHUNK: usize = 4096;
const MAX_CHUNK: usize = 16 << 20;
const GCM_TAG: usize = 16;
const CBC_IV: usize = 16;
const CBC_MAC: usize = 32;

pub const INFO_GCM: &[u8] = b"midplane-backup v1 aes256-gcm key";
pub const INFO_CBC_ENC: &[u8] = b"midplane-backup v1 aes256-cbc key";
pub const INFO_CBC_MAC: &[u8] = b"midplane-backup v1 hmac-sha256 key";

/// Which chunk cipher a stream uses (header byte 5).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChunkCipher {
    Aes256Gcm = 1,
    Aes256CbcHmacSha256 = 2,
}

#[derive(Debug, thiserror::Error)]
pub enum StreamError {
    #[error("not a midplane encrypted stream (bad magic {found:02x?}, expected \"MPBK\")")]
    BadMagic { found: [u8; 4] },
    #[error("stream header: {0}")]
    BadHeader(String),
    #[error("stream is {found:?} but the backup says {expected:?}")]
    CipherMismatch {
        found: ChunkCipher,
        expected: ChunkCipher,
    },
    #[error("stream truncated: it ends before the first chunk")]
    Empty,
    #[error(
        "stream truncated after chunk {chunk}: the final chunk is missing (object cut short or a part lost)"
    )]
    Truncated { chunk: u64 },
    #[error("chunk {chunk} (stored bytes {offset}..{end}) failed authentication: {hint}")]
    Auth {
        chunk: u64,
        offset: u64,
        end: u64,
        hint: &'static str,
    },
    #[error("stream too long: chunk counter exhausted")]
    CounterExhausted,
}

impl From<StreamError> for io::Error {
    fn from(e: StreamError) -> Self {
        io::Error::new(io::ErrorKind::InvalidData, e)
    }
}

fn hkdf32(key: &BackupKey, salt: &[u8], info: &[u8]) -> [u8; 32] {
    let mut out = [0u8; 32];
    // A 32-byte output is far below HKDF-SHA256's 255×32 limit, so expand cannot fail.
    if Hkdf::<Sha256>::new(Some(salt), key.as_bytes())
        .expand(info, &mut out)
        .is_err()
    {
        unreachable!("HKDF-SHA256 expand of 32 bytes");
    }
    out
}

enum Sealer {
    Gcm(Box<Aes256Gcm>, [u8; 7]),
    Cbc { enc: [u8; 32], mac: [u8; 32] },
}

impl Sealer {
    fn new(cipher: ChunkCipher, key: &BackupKey, header: &[u8; HEADER_LEN]) -> Self {
        let salt = &header[12..44];
        match cipher {
            ChunkCipher::Aes256Gcm => {
                let k = hkdf32(key, salt, INFO_GCM);
                let mut prefix = [0u8; 7];
                prefix.copy_from_slice(&header[44..51]);
                Sealer::Gcm(Box::new(Aes256Gcm::new(&k.into())), prefix)
            }
            ChunkCipher::Aes256CbcHmacSha256 => Sealer::Cbc {
                enc: hkdf32(key, salt, INFO_CBC_ENC),
                mac: hkdf32(key, salt, INFO_CBC_MAC),
            },
        }
    }

    fn stored_len(&self, chunk: usize) -> usize {
        match self {
            Sealer::Gcm(..) => chunk + GCM_TAG,
            // A full chunk (a multiple of 16) gains a whole block of PKCS#7 padding.
            Sealer::Cbc { .. } => CBC_IV + chunk + 16 + CBC_MAC,
        }
    }
}

fn gcm_nonce(prefix: &[u8; 7], index: u64, last: bool) -> Result<[u8; 12], StreamError> {
    let idx = u32::try_from(index).map_err(|_| StreamError::CounterExhausted)?;
    let mut n = [0u8; 12];
    n[..7].copy_from_slice(prefix);
    n[7..11].copy_from_slice(&idx.to_be_bytes());
    n[11] = u8::from(last);
    Ok(n)
}

fn cbc_mac(
    mac_key: &[u8; 32],
    header: &[u8; HEADER_LEN],
    index: u64,
    last: bool,
    iv_and_ct: &[u8],
) -> Hmac<Sha256> {
    let mut m = <Hmac<Sha256> as Mac>::new_from_slice(mac_key)
        .unwrap_or_else(|_| unreachable!("HMAC accepts any key length"));
    m.update(header);
    m.update(&index.to_be_bytes());
    m.update(&[u8::from(last)]);
    m.update(iv_and_ct);
    m
}

/// Encrypts everything written to it into an `MPBK` stream on `inner`.
pub struct EncryptWriter<W: Write> {
    inner: W,
    header: [u8; HEADER_LEN],
    sealer: Sealer,
    chunk: usize,
    buf: Vec<u8>,
    index: u64,
    out: Vec<u8>,
}

impl<W: Write> EncryptWriter<W> {
    pub fn new(
        mut inner: W,
        cipher: ChunkCipher,
        key: &BackupKey,
        chunk: usize,
    ) -> io::Result<Self> {
        let chunk = (chunk.clamp(MIN_CHUNK, MAX_CHUNK) / 16) * 16;
        let mut header = [0u8; HEADER_LEN];
        header[..4].copy_from_slice(MAGIC);
        header[4] = VERSION;
        header[5] = cipher as u8;
        header[8..12].copy_from_slice(&(chunk as u32).to_be_bytes());
        rand::rng().fill_bytes(&mut header[12..51]);
        inner.write_all(&header)?;
        let sealer = Sealer::new(cipher, key, &header);
        Ok(Self {
            out: Vec::with_capacity(sealer.stored_len(chunk)),
            inner,
            header,
            sealer,
            chunk,
            buf: Vec::with_capacity(chunk),
            index: 0,
        })
    }

    fn seal(&mut self, last: bool) -> io::Result<()> {
        self.out.clear();
        match &self.sealer {
            Sealer::Gcm(aead, prefix) => {
                let nonce = gcm_nonce(prefix, self.index, last)?;
                let tag = aead
                    .encrypt_in_place_detached(
                        Nonce::from_slice(&nonce),
                        &self.header,
                        &mut self.buf,
                    )
                    .map_err(|_| io::Error::other("AES-GCM encryption failed"))?;
                self.inner.write_all(&self.buf)?;
                self.inner.write_all(&tag)?;
            }
            Sealer::Cbc { enc, mac } => {
                let mut iv = [0u8; CBC_IV];
                rand::rng().fill_bytes(&mut iv);
                let n = self.buf.len();
                self.out.extend_from_slice(&iv);
                self.out.extend_from_slice(&self.buf);
                self.out.resize(CBC_IV + (n / 16 + 1) * 16, 0);
                let ct_len = cbc::Encryptor::<aes::Aes256>::new(enc.into(), &iv.into())
                    .encrypt_padded_mut::<Pkcs7>(&mut self.out[CBC_IV..], n)
                    .map_err(|_| io::Error::other("AES-CBC padding buffer too small"))?
                    .len();
                debug_assert_eq!(ct_len, self.out.len() - CBC_IV);
                let tag = cbc_mac(mac, &self.header, self.index, last, &self.out)
                    .finalize()
                    .into_bytes();
                self.out.extend_from_slice(&tag);
                self.inner.write_all(&self.out)?;
            }
        }
        self.buf.clear();
        self.index += 1;
        Ok(())
    }

    /// Seals the final chunk and returns the inner writer.
    pub fn finish(mut self) -> io::Result<W> {
        self.seal(true)?;
        self.inner.flush()?;
        Ok(self.inner)
    }
}

impl<W: Write> Write for EncryptWriter<W> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        if data.is_empty() {
            return Ok(0);
        }
        // A full chunk is sealed as non-final only once more data arrives, so the final chunk
        // is never empty unless the whole plaintext is.
        if self.buf.len() == self.chunk {
            self.seal(false)?;
        }
        let n = (self.chunk - self.buf.len()).min(data.len());
        self.buf.extend_from_slice(&data[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Reads an `MPBK` stream and yields authenticated plaintext.
pub struct DecryptReader<R: Read> {
    inner: R,
    header: [u8; HEADER_LEN],
    sealer: Sealer,
    full: usize,
    buf: Vec<u8>,
    /// A byte read ahead to learn whether the current chunk is the last.
    peek: Option<u8>,
    pos: usize,
    plain_len: usize,
    index: u64,
    offset: u64,
    done: bool,
}

impl<R: Read> DecryptReader<R> {
    pub fn new(mut inner: R, expected: ChunkCipher, key: &BackupKey) -> Result<Self, io::Error> {
        let mut header = [0u8; HEADER_LEN];
        let got = read_full(&mut inner, &mut header)?;
        if got >= 4 && &header[..4] != MAGIC {
            let mut found = [0u8; 4];
            found.copy_from_slice(&header[..4]);
            return Err(StreamError::BadMagic { found }.into());
        }
        if got < HEADER_LEN {
            return Err(
                StreamError::BadHeader(format!("only {got} of {HEADER_LEN} header bytes")).into(),
            );
        }
        if header[4] != VERSION {
            return Err(
                StreamError::BadHeader(format!("unsupported version {}", header[4])).into(),
            );
        }
        let cipher = match header[5] {
            1 => ChunkCipher::Aes256Gcm,
            2 => ChunkCipher::Aes256CbcHmacSha256,
            other => {
                return Err(
                    StreamError::BadHeader(format!("unknown algorithm byte {other}")).into(),
                );
            }
        };
        if cipher != expected {
            return Err(StreamError::CipherMismatch {
                found: cipher,
                expected,
            }
            .into());
        }
        let chunk = u32::from_be_bytes([header[8], header[9], header[10], header[11]]) as usize;
        if !(MIN_CHUNK..=MAX_CHUNK).contains(&chunk) || !chunk.is_multiple_of(16) {
            return Err(StreamError::BadHeader(format!("chunk size {chunk} out of range")).into());
        }
        let sealer = Sealer::new(cipher, key, &header);
        let full = sealer.stored_len(chunk);
        Ok(Self {
            inner,
            header,
            sealer,
            full,
            buf: Vec::with_capacity(full),
            peek: None,
            pos: 0,
            plain_len: 0,
            index: 0,
            offset: HEADER_LEN as u64,
            done: false,
        })
    }

    fn next_chunk(&mut self) -> io::Result<()> {
        self.buf.clear();
        self.buf.resize(self.full, 0);
        let mut start = 0;
        if let Some(b) = self.peek.take() {
            self.buf[0] = b;
            start = 1;
        }
        let got = start + read_full(&mut self.inner, &mut self.buf[start..])?;
        let mut last = got < self.full;
        if !last {
            let mut one = [0u8; 1];
            if read_full(&mut self.inner, &mut one)? == 1 {
                self.peek = Some(one[0]);
            } else {
                last = true;
            }
        }
        if got == 0 {
            return Err(if self.index == 0 {
                StreamError::Empty
            } else {
                StreamError::Truncated {
                    chunk: self.index - 1,
                }
            }
            .into());
        }
        self.buf.truncate(got);
        let (offset, end) = (self.offset, self.offset + got as u64);
        let auth_err = |chunk: u64| StreamError::Auth {
            chunk,
            offset,
            end,
            hint: if chunk == 0 && !last {
                "wrong key, or the object was tampered with"
            } else if last {
                "the last chunk is damaged: the object was truncated or tampered with"
            } else {
                "the object was tampered with, reordered or parts are missing"
            },
        };
        self.plain_len = match self.open(last) {
            Some(n) => n,
            None if last && self.open(false).is_some() => {
                return Err(StreamError::Truncated { chunk: self.index }.into());
            }
            None => return Err(auth_err(self.index).into()),
        };
        self.pos = 0;
        self.offset = end;
        self.index += 1;
        self.done = last;
        Ok(())
    }

    /// Authenticates and decrypts `buf` in place as chunk `index`; returns the plaintext
    /// length (plaintext then sits at the start of `buf`, or after the IV for CBC).
    fn open(&mut self, last: bool) -> Option<usize> {
        match &self.sealer {
            Sealer::Gcm(aead, prefix) => {
                if self.buf.len() < GCM_TAG {
                    return None;
                }
                let nonce = gcm_nonce(prefix, self.index, last).ok()?;
                let split = self.buf.len() - GCM_TAG;
                let tag = *Tag::from_slice(&self.buf[split..]);
                // Decrypt a copy-free view; on failure aes-gcm leaves the buffer untouched, so a
                // second attempt (to tell truncation from tampering) still sees ciphertext.
                aead.decrypt_in_place_detached(
                    Nonce::from_slice(&nonce),
                    &self.header,
                    &mut self.buf[..split],
                    &tag,
                )
                .ok()?;
                self.buf.truncate(split);
                Some(split)
            }
            Sealer::Cbc { enc, mac } => {
                let n = self.buf.len();
                if n < CBC_IV + 16 + CBC_MAC || !(n - CBC_IV - CBC_MAC).is_multiple_of(16) {
                    return None;
                }
                let (body, tag) = self.buf.split_at(n - CBC_MAC);
                cbc_mac(mac, &self.header, self.index, last, body)
                    .verify_slice(tag)
                    .ok()?;
                let mut iv = [0u8; CBC_IV];
                iv.copy_from_slice(&self.buf[..CBC_IV]);
                let plain = cbc::Decryptor::<aes::Aes256>::new(enc.into(), &iv.into())
                    .decrypt_padded_mut::<Pkcs7>(&mut self.buf[CBC_IV..n - CBC_MAC])
                    .ok()?
                    .len();
                self.buf.copy_within(CBC_IV..CBC_IV + plain, 0);
                self.buf.truncate(plain);
                Some(plain)
            }
        }
    }
}

impl<R: Read> Read for DecryptReader<R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        while self.pos == self.plain_len {
            if self.done {
                return Ok(0);
            }
            self.next_chunk()?;
        }
        let n = out.len().min(self.plain_len - self.pos);
        out[..n].copy_from_slice(&self.buf[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(b: u8) -> BackupKey {
        BackupKey::from_array([b; 32])
    }

    fn seal(cipher: ChunkCipher, data: &[u8]) -> Vec<u8> {
        let mut w = EncryptWriter::new(Vec::new(), cipher, &key(1), 4096).expect("new");
        for part in data.chunks(1000) {
            w.write_all(part).expect("write");
        }
        w.finish().expect("finish")
    }

    fn open(cipher: ChunkCipher, k: u8, data: &[u8]) -> io::Result<Vec<u8>> {
        let mut out = Vec::new();
        DecryptReader::new(data, cipher, &key(k))?.read_to_end(&mut out)?;
        Ok(out)
    }

    const BOTH: [ChunkCipher; 2] = [ChunkCipher::Aes256Gcm, ChunkCipher::Aes256CbcHmacSha256];

    #[test]
    fn round_trip_sizes() {
        for c in BOTH {
            for len in [0, 1, 4095, 4096, 4097, 3 * 4096, 3 * 4096 + 5] {
                let data: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
                assert_eq!(
                    open(c, 1, &seal(c, &data)).expect("open"),
                    data,
                    "{c:?} {len}"
                );
            }
        }
    }

    #[test]
    fn tamper_truncate_reorder_wrong_key() {
        let data: Vec<u8> = (0..5 * 4096 + 100).map(|i| (i % 253) as u8).collect();
        for c in BOTH {
            let sealed = seal(c, &data);
            let full = Sealer::new(c, &key(1), &[0; HEADER_LEN]).stored_len(4096);

            let mut flipped = sealed.clone();
            flipped[HEADER_LEN + 2 * full + 10] ^= 1;
            let e = open(c, 1, &flipped).unwrap_err().to_string();
            assert!(e.contains("chunk 2") && e.contains("authentication"), "{e}");

            let cut = &sealed[..HEADER_LEN + 3 * full];
            let e = open(c, 1, cut).unwrap_err().to_string();
            assert!(e.contains("truncated after chunk 2"), "{e}");

            let cut_mid = &sealed[..HEADER_LEN + 3 * full - 7];
            assert!(open(c, 1, cut_mid).is_err());

            let mut swapped = sealed.clone();
            let (a, b) = (HEADER_LEN, HEADER_LEN + full);
            let first: Vec<u8> = swapped[a..b].to_vec();
            swapped.copy_within(b..b + full, a);
            swapped[b..b + full].copy_from_slice(&first);
            let e = open(c, 1, &swapped).unwrap_err().to_string();
            assert!(e.contains("chunk 0"), "{e}");

            let e = open(c, 2, &sealed).unwrap_err().to_string();
            assert!(e.contains("chunk 0") && e.contains("wrong key"), "{e}");

            let e = open(c, 1, &sealed[..10]).unwrap_err().to_string();
            assert!(e.contains("header"), "{e}");
        }
    }
}
