//! Writing OpenPGP password-encrypted messages (SKESK v4 + SEIPD v1 with MDC).

use std::io::{self, Write};

use rand::RngCore;
use sha1::Sha1;
use sha2::{Digest, Sha256};

use super::*;
use crate::keys::BackupKey;

fn write_len(out: &mut Vec<u8>, len: usize) {
    if len < 192 {
        out.push(len as u8);
    } else if len < 8384 {
        let l = len - 192;
        out.push(((l >> 8) + 192) as u8);
        out.push((l & 0xff) as u8);
    } else {
        out.push(0xff);
        out.extend_from_slice(&(len as u32).to_be_bytes());
    }
}

/// Writes one new-format packet whose body is streamed as partial body chunks of 2^16 bytes.
struct PartialPacketWriter<W: Write> {
    inner: W,
    buf: Vec<u8>,
}

impl<W: Write> PartialPacketWriter<W> {
    fn new(mut inner: W, tag: u8) -> io::Result<Self> {
        inner.write_all(&[0xc0 | tag])?;
        Ok(Self {
            inner,
            buf: Vec::with_capacity(1 << PARTIAL_LOG2),
        })
    }

    fn finish(mut self) -> io::Result<W> {
        let mut len = Vec::new();
        write_len(&mut len, self.buf.len());
        self.inner.write_all(&len)?;
        self.inner.write_all(&self.buf)?;
        Ok(self.inner)
    }
}

impl<W: Write> Write for PartialPacketWriter<W> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        if data.is_empty() {
            return Ok(0);
        }
        // A full chunk goes out as partial only once more data follows: the last piece must
        // carry a definite length.
        if self.buf.len() == 1 << PARTIAL_LOG2 {
            self.inner.write_all(&[0xe0 + PARTIAL_LOG2])?;
            self.inner.write_all(&self.buf)?;
            self.buf.clear();
        }
        let n = ((1 << PARTIAL_LOG2) - self.buf.len()).min(data.len());
        self.buf.extend_from_slice(&data[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// SEIPD v1 body: hashes for the MDC, CFB-encrypts, streams out as partial chunks.
struct SeipdWriter<W: Write> {
    packet: PartialPacketWriter<W>,
    cfb: Cfb,
    mdc: Sha1,
    scratch: Vec<u8>,
}

impl<W: Write> SeipdWriter<W> {
    fn encrypt_out(&mut self, data: &[u8]) -> io::Result<()> {
        self.scratch.clear();
        self.scratch.extend_from_slice(data);
        self.cfb.apply(&mut self.scratch, false);
        self.packet.write_all(&self.scratch)
    }
}

impl<W: Write> Write for SeipdWriter<W> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let n = data.len().min(1 << 16);
        self.mdc.update(&data[..n]);
        self.encrypt_out(&data[..n])?;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Encrypts everything written to it as an OpenPGP message readable by `gpg --decrypt`.
pub struct PgpWriter<W: Write> {
    literal: PartialPacketWriter<SeipdWriter<W>>,
}

impl<W: Write> PgpWriter<W> {
    pub fn new(mut inner: W, key: &BackupKey) -> io::Result<Self> {
        let mut salt = [0u8; 8];
        rand::rng().fill_bytes(&mut salt);
        let pass = key.gpg_passphrase();
        let session = s2k::<Sha256>(pass.as_bytes(), Some(&salt), Some(s2k_count(S2K_COUNT)));
        let mut skesk = vec![0xc0 | TAG_SKESK, 13, 4, CIPHER_AES256, 3, HASH_SHA256];
        skesk.extend_from_slice(&salt);
        skesk.push(S2K_COUNT);
        inner.write_all(&skesk)?;

        let mut packet = PartialPacketWriter::new(inner, TAG_SEIPD)?;
        packet.write_all(&[1])?; // SEIPD version 1
        let mut seipd = SeipdWriter {
            packet,
            cfb: Cfb::new(&session),
            mdc: Sha1::new(),
            scratch: Vec::with_capacity(1 << 16),
        };
        let mut prefix = [0u8; 18];
        rand::rng().fill_bytes(&mut prefix[..16]);
        prefix[16] = prefix[14];
        prefix[17] = prefix[15];
        seipd.write_all(&prefix)?;
        let mut literal = PartialPacketWriter::new(seipd, TAG_LITERAL)?;
        // Binary data, no file name, date 0: the manifest carries the real metadata.
        literal.write_all(&[b'b', 0, 0, 0, 0, 0])?;
        Ok(Self { literal })
    }

    pub fn finish(self) -> io::Result<W> {
        let mut seipd = self.literal.finish()?;
        seipd.mdc.update([0xd3, 0x14]);
        let digest = std::mem::take(&mut seipd.mdc).finalize();
        let mut mdc = vec![0xd3, 0x14];
        mdc.extend_from_slice(&digest);
        seipd.encrypt_out(&mdc)?;
        let mut inner = seipd.packet.finish()?;
        inner.flush()?;
        Ok(inner)
    }
}

impl<W: Write> Write for PgpWriter<W> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.literal.write(data)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}
