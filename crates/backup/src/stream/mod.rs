//! The `MPBK` chunked authenticated stream used by the `aes256-gcm` and `aes256-cbc`
//! algorithms (layout in docs/backup-format.md). The plaintext is cut into chunks; each chunk
//! is sealed on its own with its index and a final-chunk flag bound in, so truncation,
//! reordering and tampering are detected and the failing chunk is named. A chunk's plaintext is
//! released only after its authentication succeeds.

use std::io::{self, Write};

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

mod decrypt;
pub use decrypt::DecryptReader;

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

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
