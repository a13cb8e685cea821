//! Reading an `MPBK` stream: chunk by chunk, each authenticated before its
//! plaintext is released (see the parent module).

use std::io::{self, Read};

use super::*;

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
