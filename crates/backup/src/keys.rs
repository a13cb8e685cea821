//! 32-byte backup keys: loading from a file, an environment variable or a Kubernetes Secret's
//! data, and the key id (a fingerprint) that manifests record instead of the key.

use std::fmt;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use sha2::{Digest, Sha256};

/// Length of every backup key in bytes (seed §9.1).
pub const KEY_LEN: usize = 32;

/// Domain-separation prefix of the key id hash, so a key id is never the hash of the bare key.
const KEY_ID_DOMAIN: &[u8] = b"midplane-backup key-id v1\0";

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("key file {}: {error}", path.display())]
    ReadFile {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("environment variable {name} is not set")]
    MissingEnv { name: String },
    #[error("Kubernetes Secret has no data key {key:?} (available: {available})")]
    MissingSecretKey { key: String, available: String },
    #[error(
        "{origin}: a backup key must be 32 bytes (raw), 64 hex characters or 44 base64 characters; got {len} bytes"
    )]
    WrongLength { origin: String, len: usize },
}

/// A 32-byte symmetric backup key. Never printed: `Debug` shows only the key id.
#[derive(Clone, PartialEq, Eq)]
pub struct BackupKey([u8; KEY_LEN]);

impl BackupKey {
    pub fn from_array(bytes: [u8; KEY_LEN]) -> Self {
        Self(bytes)
    }

    /// Parses key material: exactly 32 raw bytes, or 64 hex characters, or standard base64 of
    /// 32 bytes (surrounding whitespace, such as a trailing newline from `echo`, is ignored for
    /// the text forms). `origin` names where the bytes came from, for the error message.
    pub fn from_bytes(bytes: &[u8], origin: &str) -> Result<Self, KeyError> {
        if bytes.len() == KEY_LEN {
            let mut k = [0u8; KEY_LEN];
            k.copy_from_slice(bytes);
            return Ok(Self(k));
        }
        let text = trim_ascii(bytes);
        if text.len() == 2 * KEY_LEN
            && let Ok(v) = hex::decode(text)
        {
            return Self::from_bytes(&v, origin);
        }
        if let Ok(v) = base64::engine::general_purpose::STANDARD.decode(text)
            && v.len() == KEY_LEN
        {
            return Self::from_bytes(&v, origin);
        }
        Err(KeyError::WrongLength {
            origin: origin.to_string(),
            len: text.len(),
        })
    }

    /// Reads the key from a file (raw, hex or base64; see [`BackupKey::from_bytes`]).
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self, KeyError> {
        let path = path.as_ref();
        let bytes = std::fs::read(path).map_err(|error| KeyError::ReadFile {
            path: path.to_path_buf(),
            error,
        })?;
        Self::from_bytes(&bytes, &format!("key file {}", path.display()))
    }

    /// Reads the key from an environment variable holding hex or base64 text.
    pub fn from_env(name: &str) -> Result<Self, KeyError> {
        let value = std::env::var_os(name).ok_or_else(|| KeyError::MissingEnv {
            name: name.to_string(),
        })?;
        Self::from_bytes(
            value.as_encoded_bytes(),
            &format!("environment variable {name}"),
        )
    }

    /// Reads the key from a Kubernetes Secret's `data` map as the API returns it once decoded
    /// (the values are the secret's raw bytes), looking up `key`.
    pub fn from_secret_data<'a, I>(data: I, key: &str) -> Result<Self, KeyError>
    where
        I: IntoIterator<Item = (&'a str, &'a [u8])>,
    {
        let mut names = Vec::new();
        for (name, value) in data {
            if name == key {
                return Self::from_bytes(value, &format!("Secret data key {key:?}"));
            }
            names.push(name.to_string());
        }
        Err(KeyError::MissingSecretKey {
            key: key.to_string(),
            available: if names.is_empty() {
                "none".into()
            } else {
                names.join(", ")
            },
        })
    }

    pub fn as_bytes(&self) -> &[u8; KEY_LEN] {
        &self.0
    }

    /// The key id recorded in manifests: the first 16 bytes of
    /// SHA-256("midplane-backup key-id v1\0" || key), as 32 lowercase hex characters.
    pub fn key_id(&self) -> String {
        let mut h = Sha256::new();
        h.update(KEY_ID_DOMAIN);
        h.update(self.0);
        hex::encode(&h.finalize()[..16])
    }

    /// The OpenPGP passphrase form of the key: 64 lowercase hex characters, no newline.
    pub fn gpg_passphrase(&self) -> String {
        hex::encode(self.0)
    }
}

impl fmt::Debug for BackupKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "BackupKey(id={})", self.key_id())
    }
}

fn trim_ascii(b: &[u8]) -> &[u8] {
    let start = b
        .iter()
        .position(|c| !c.is_ascii_whitespace())
        .unwrap_or(b.len());
    let end = b
        .iter()
        .rposition(|c| !c.is_ascii_whitespace())
        .map_or(start, |e| e + 1);
    &b[start..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_hex_and_base64_forms_give_the_same_key() {
        let raw = [7u8; 32];
        let a = BackupKey::from_bytes(&raw, "raw").expect("raw");
        let b = BackupKey::from_bytes(format!("{}\n", hex::encode(raw)).as_bytes(), "hex")
            .expect("hex");
        let c = BackupKey::from_bytes(
            base64::engine::general_purpose::STANDARD
                .encode(raw)
                .as_bytes(),
            "b64",
        )
        .expect("b64");
        assert_eq!(a, b);
        assert_eq!(a, c);
        assert_eq!(a.key_id().len(), 32);
        assert!(!format!("{a:?}").contains(&hex::encode(raw)));
    }

    #[test]
    fn wrong_lengths_are_rejected_naming_the_origin() {
        let err = BackupKey::from_bytes(&[1u8; 31], "key file /k").unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains("key file /k") && msg.contains("31 bytes"),
            "{msg}"
        );
        assert!(BackupKey::from_bytes(&[1u8; 33], "x").is_err());
        assert!(BackupKey::from_bytes(b"abcd", "x").is_err());
    }

    #[test]
    fn secret_data_lookup_names_missing_key() {
        let v = [9u8; 32];
        let data = [("other", &b"x"[..]), ("backup-key", &v[..])];
        let k = BackupKey::from_secret_data(data.iter().copied(), "backup-key").expect("present");
        assert_eq!(k.as_bytes(), &v);
        let err = BackupKey::from_secret_data(data.iter().copied(), "nope").unwrap_err();
        assert!(err.to_string().contains("other, backup-key"), "{err}");
    }

    #[test]
    fn key_file_and_env() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("k");
        std::fs::write(&p, hex::encode([3u8; 32])).expect("write");
        assert_eq!(
            BackupKey::from_file(&p).expect("file").as_bytes(),
            &[3u8; 32]
        );
        let missing = BackupKey::from_file(dir.path().join("none")).unwrap_err();
        assert!(missing.to_string().contains("none"));
        assert!(matches!(
            BackupKey::from_env("MIDPLANE_TEST_SURELY_UNSET_KEY"),
            Err(KeyError::MissingEnv { .. })
        ));
    }
}
