//! A backup location (`Store`) and the catalogue operations on it: list, get, delete.

use opendal::{ErrorKind, Operator};

use crate::manifest::{MANIFEST_NAME, Manifest, ManifestError, valid_backup_id};
use crate::storage::{Credentials, StorageConfig, StorageError};

#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error("invalid backup id {0:?}: use letters, digits, '-', '_' and '.'")]
    BadId(String),
    #[error("backup {id} not found in {store} (no manifest: it does not exist or never completed)")]
    NotFound { id: String, store: String },
    #[error(transparent)]
    Manifest(#[from] ManifestError),
    #[error("{store}: {op} {path}: {error}")]
    Io {
        store: String,
        op: &'static str,
        path: String,
        error: Box<opendal::Error>,
    },
}

/// One configured backup location.
#[derive(Clone, Debug)]
pub struct Store {
    op: Operator,
    config: StorageConfig,
}

/// What a location holds: complete backups (manifest present) oldest first, and folders
/// without a manifest (interrupted or in-progress uploads).
#[derive(Clone, Debug, Default)]
pub struct Listing {
    pub complete: Vec<Manifest>,
    pub incomplete: Vec<String>,
}

impl Store {
    pub fn new(config: StorageConfig, creds: &Credentials) -> Result<Self, StorageError> {
        Ok(Self {
            op: config.operator(creds)?,
            config,
        })
    }

    /// Parses a URI and takes credentials from the environment.
    pub fn from_uri(uri: &str) -> Result<Self, StorageError> {
        let config = StorageConfig::from_uri(uri)?;
        let creds = Credentials::from_env(&config);
        Self::new(config, &creds)
    }

    pub fn operator(&self) -> &Operator {
        &self.op
    }

    pub fn config(&self) -> &StorageConfig {
        &self.config
    }

    pub fn describe(&self) -> String {
        self.config.describe()
    }

    pub(crate) fn io_err(
        &self,
        op: &'static str,
        path: &str,
        source: opendal::Error,
    ) -> CatalogError {
        CatalogError::Io {
            store: self.describe(),
            op,
            path: path.to_string(),
            error: Box::new(source),
        }
    }

    pub fn manifest_path(id: &str) -> String {
        format!("{id}/{MANIFEST_NAME}")
    }

    /// Reads a backup's manifest; a missing manifest means the backup does not exist.
    pub async fn manifest(&self, id: &str) -> Result<Manifest, CatalogError> {
        if !valid_backup_id(id) {
            return Err(CatalogError::BadId(id.to_string()));
        }
        let path = Self::manifest_path(id);
        match self.op.read(&path).await {
            Ok(buf) => Ok(Manifest::parse(id, &buf.to_vec())?),
            Err(e) if e.kind() == ErrorKind::NotFound => Err(CatalogError::NotFound {
                id: id.to_string(),
                store: self.describe(),
            }),
            Err(e) => Err(self.io_err("read", &path, e)),
        }
    }

    pub async fn list(&self) -> Result<Listing, CatalogError> {
        let entries = self
            .op
            .list("/")
            .await
            .map_err(|e| self.io_err("list", "/", e))?;
        let mut listing = Listing::default();
        for entry in entries {
            let id = entry.path().trim_end_matches('/');
            if !entry.metadata().is_dir() || id.is_empty() || !valid_backup_id(id) {
                continue;
            }
            match self.manifest(id).await {
                Ok(m) => listing.complete.push(m),
                Err(CatalogError::NotFound { .. }) => listing.incomplete.push(id.to_string()),
                Err(e) => return Err(e),
            }
        }
        listing
            .complete
            .sort_by(|a, b| a.started_at.cmp(&b.started_at).then(a.id.cmp(&b.id)));
        listing.incomplete.sort();
        Ok(listing)
    }

    /// Deletes a backup: the manifest first, so a half-deleted backup never looks complete.
    pub async fn delete(&self, id: &str) -> Result<(), CatalogError> {
        if !valid_backup_id(id) {
            return Err(CatalogError::BadId(id.to_string()));
        }
        let objects = [
            Self::manifest_path(id),
            format!("{id}/{}", crate::Algorithm::Aes256Gcm.object_name()),
            format!("{id}/{}", crate::Algorithm::Gpg.object_name()),
        ];
        for path in objects {
            match self.op.delete(&path).await {
                Ok(()) => {}
                Err(e) if e.kind() == ErrorKind::NotFound => {}
                Err(e) => return Err(self.io_err("delete", &path, e)),
            }
        }
        // Filesystem-like backends keep an empty folder; object stores have none.
        let dir = format!("{id}/");
        match self.op.delete(&dir).await {
            Ok(()) => Ok(()),
            Err(e) if matches!(e.kind(), ErrorKind::NotFound | ErrorKind::Unsupported) => Ok(()),
            Err(e) => Err(self.io_err("delete", &dir, e)),
        }
    }
}
