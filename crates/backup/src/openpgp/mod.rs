//! OpenPGP symmetric encryption (RFC 4880) for the `gpg` algorithm: exactly the packets a
//! password-encrypted message needs. We write SKESK v4 (iterated+salted S2K, SHA-256, AES-256)
//! followed by a SEIPD v1 packet (CFB, with MDC) holding one literal data packet, which stock
//! `gpg --decrypt` reads. We read what `gpg --symmetric --cipher-algo AES256` writes, including
//! its compressed data packets (ZIP, ZLIB) and old-format packet headers. The passphrase is the
//! 32-byte key as 64 lowercase hex characters.

mod read;
mod write;

use std::io;

use aes::Aes256;
use aes::cipher::{BlockEncrypt, KeyInit};
use sha1::Sha1;
use sha2::{Digest, Sha224, Sha256, Sha384, Sha512};

pub use read::PgpReader;
pub use write::PgpWriter;

pub(crate) const TAG_SKESK: u8 = 3;
pub(crate) const TAG_COMPRESSED: u8 = 8;
pub(crate) const TAG_SED: u8 = 9;
pub(crate) const TAG_MARKER: u8 = 10;
pub(crate) const TAG_LITERAL: u8 = 11;
pub(crate) const TAG_SEIPD: u8 = 18;
pub(crate) const TAG_AEAD: u8 = 20;
pub(crate) const CIPHER_AES256: u8 = 9;
pub(crate) const HASH_SHA256: u8 = 8;
/// S2K iteration count byte: 16 << 18 = 4 MiB hashed. The passphrase is a random 256-bit key,
/// so stretching adds nothing; this keeps stock gpg happy without slowing small restores.
pub(crate) const S2K_COUNT: u8 = 0xC0;
/// Partial body chunk written: 2^16 bytes.
pub(crate) const PARTIAL_LOG2: u8 = 16;
pub(crate) const MDC_LEN: usize = 22;

#[derive(Debug, thiserror::Error)]
pub enum PgpError {
    #[error("OpenPGP: not an OpenPGP message (first byte {0:#04x})")]
    NotOpenPgp(u8),
    #[error("OpenPGP: packet header: {0}")]
    BadPacket(String),
    #[error("OpenPGP: unsupported {0}")]
    Unsupported(String),
    #[error(
        "OpenPGP: the message has no symmetric-key session packet (is it public-key encrypted?)"
    )]
    NoSkesk,
    #[error(
        "OpenPGP: wrong key: the session key check failed (the passphrase is not this backup key)"
    )]
    WrongKey,
    #[error("OpenPGP: modification detected: the MDC (SHA-1) does not match, the data was altered")]
    MdcMismatch,
    #[error("OpenPGP: the encrypted data ends early (truncated object or missing part)")]
    Truncated,
    #[error("OpenPGP: refusing a packet without integrity protection (SED, tag 9)")]
    Unprotected,
}

impl From<PgpError> for io::Error {
    fn from(e: PgpError) -> Self {
        let kind = match e {
            PgpError::Truncated => io::ErrorKind::UnexpectedEof,
            _ => io::ErrorKind::InvalidData,
        };
        io::Error::new(kind, e)
    }
}

pub(crate) fn s2k_count(c: u8) -> usize {
    (16 + (c as usize & 15)) << ((c as usize >> 4) + 6)
}

/// RFC 4880 §3.7.1: derives a 32-byte key from `pass`, concatenating hash contexts preloaded
/// with 0, 1, … zero bytes when one digest is shorter than the key.
pub(crate) fn s2k<D: Digest>(
    pass: &[u8],
    salt: Option<&[u8; 8]>,
    count: Option<usize>,
) -> [u8; 32] {
    let mut data = Vec::with_capacity(8 + pass.len());
    if let Some(s) = salt {
        data.extend_from_slice(s);
    }
    data.extend_from_slice(pass);
    let total = count.map_or(data.len(), |c| c.max(data.len()));
    let mut key = Vec::with_capacity(64);
    let mut preload = 0;
    while key.len() < 32 {
        let mut h = D::new();
        h.update(vec![0u8; preload]);
        // Hash the repeated salt||passphrase in large slabs: far fewer calls than one per copy.
        let reps = (65536 / data.len()).max(1);
        let slab = data.repeat(reps);
        let mut left = total;
        while left >= slab.len() {
            h.update(&slab);
            left -= slab.len();
        }
        while left >= data.len() {
            h.update(&data);
            left -= data.len();
        }
        h.update(&data[..left]);
        key.extend_from_slice(&h.finalize());
        preload += 1;
    }
    let mut out = [0u8; 32];
    out.copy_from_slice(&key[..32]);
    out
}

pub(crate) fn derive(
    hash: u8,
    pass: &[u8],
    salt: Option<&[u8; 8]>,
    count: Option<usize>,
) -> Result<[u8; 32], PgpError> {
    Ok(match hash {
        2 => s2k::<Sha1>(pass, salt, count),
        8 => s2k::<Sha256>(pass, salt, count),
        9 => s2k::<Sha384>(pass, salt, count),
        10 => s2k::<Sha512>(pass, salt, count),
        11 => s2k::<Sha224>(pass, salt, count),
        other => return Err(PgpError::Unsupported(format!("S2K hash algorithm {other}"))),
    })
}

/// OpenPGP CFB mode without resynchronisation (as SEIPD uses), IV all zero.
pub(crate) struct Cfb {
    aes: Aes256,
    register: [u8; 16],
    keystream: [u8; 16],
    pos: usize,
}

impl Cfb {
    pub(crate) fn new(key: &[u8; 32]) -> Self {
        let aes = Aes256::new(key.into());
        let mut c = Self {
            aes,
            register: [0; 16],
            keystream: [0; 16],
            pos: 0,
        };
        c.next_block();
        c
    }

    fn next_block(&mut self) {
        let mut b = self.register.into();
        self.aes.encrypt_block(&mut b);
        self.keystream = b.into();
        self.pos = 0;
    }

    pub(crate) fn apply(&mut self, data: &mut [u8], decrypt: bool) {
        for byte in data {
            if self.pos == 16 {
                self.next_block();
            }
            let c_in = *byte;
            *byte ^= self.keystream[self.pos];
            // The register collects ciphertext: the input when decrypting, the output otherwise.
            self.register[self.pos] = if decrypt { c_in } else { *byte };
            self.pos += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::BackupKey;
    use std::io::{Read, Write};

    fn seal(data: &[u8], key: &BackupKey) -> Vec<u8> {
        let mut w = PgpWriter::new(Vec::new(), key).expect("new");
        w.write_all(data).expect("write");
        w.finish().expect("finish")
    }

    fn open(data: Vec<u8>, key: &BackupKey) -> io::Result<Vec<u8>> {
        let mut out = Vec::new();
        PgpReader::new(io::Cursor::new(data), key)?.read_to_end(&mut out)?;
        Ok(out)
    }

    #[test]
    fn round_trip_and_failures() {
        let key = BackupKey::from_array([5; 32]);
        for len in [0usize, 10, 65536, 65537, 300_000] {
            let data: Vec<u8> = (0..len).map(|i| (i * 7 % 256) as u8).collect();
            assert_eq!(open(seal(&data, &key), &key).expect("open"), data, "{len}");
        }
        let data = vec![42u8; 200_000];
        let sealed = seal(&data, &key);
        let wrong = BackupKey::from_array([6; 32]);
        let e = open(sealed.clone(), &wrong).unwrap_err().to_string();
        assert!(e.contains("wrong key") || e.contains("MDC"), "{e}");
        let mut flipped = sealed.clone();
        flipped[100_000] ^= 1;
        let e = open(flipped, &key).unwrap_err().to_string();
        assert!(e.contains("MDC") || e.contains("ends early"), "{e}");
        let e = open(sealed[..150_000].to_vec(), &key)
            .unwrap_err()
            .to_string();
        assert!(e.contains("ends early"), "{e}");
    }

    #[test]
    fn s2k_count_decoding() {
        assert_eq!(s2k_count(0x60), 65536);
        assert_eq!(s2k_count(0xff), 65_011_712);
    }
}
