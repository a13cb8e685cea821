//! The BackupService implementation.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use midplane_backup::catalog::CatalogError;
use midplane_backup::retention::{self, RetentionPolicy};
use midplane_backup::{
    Algorithm, BackupError, BackupKey, BackupOptions, Manifest, RestoreError, RestoreOptions,
    Store, create_backup, restore_backup, verify_backup,
};
use midplane_proto::backup::backup_service_server::BackupService;
use midplane_proto::backup::{
    ApplyRetentionRequest, ApplyRetentionResponse, Backup, BackupPhase, CreateBackupRequest,
    DeleteBackupRequest, DeleteBackupResponse, Encryption, GetBackupRequest, ListBackupsRequest,
    ListBackupsResponse, RestoreRequest, RestoreResponse, VerifyRequest, VerifyResponse,
};
use midplane_proto::common::ObjectRef;
use tonic::{Request, Response, Status};

use crate::config::BackupSettings;

/// Manifest labels that record which App object and instance a backup came from.
pub const LABEL_NAMESPACE: &str = "midplane.dev/namespace";
pub const LABEL_NAME: &str = "midplane.dev/name";
pub const LABEL_INSTANCE: &str = "midplane.dev/instance";

#[derive(Clone)]
pub struct BackupSvc {
    settings: Arc<BackupSettings>,
}

impl BackupSvc {
    pub fn new(settings: BackupSettings) -> Self {
        Self {
            settings: Arc::new(settings),
        }
    }

    fn store(&self, uri: &str) -> Result<Store, Status> {
        let uri = if uri.is_empty() {
            self.settings.default_storage.as_deref().ok_or_else(|| {
                Status::invalid_argument("storage: empty and no default_storage configured")
            })?
        } else {
            uri
        };
        Store::from_uri(uri).map_err(|e| Status::invalid_argument(format!("storage: {e}")))
    }

    /// Resolves "file:/path", "env:VAR" or "secret:namespace/name#key".
    fn key(&self, key_ref: &str) -> Result<BackupKey, Status> {
        let key_ref = if key_ref.is_empty() {
            self.settings.default_key_ref.as_deref().ok_or_else(|| {
                Status::invalid_argument("key_ref: empty and no default_key_ref configured")
            })?
        } else {
            key_ref
        };
        let bad = |e: midplane_backup::KeyError| {
            Status::failed_precondition(format!("key_ref {key_ref:?}: {e}"))
        };
        if let Some(path) = key_ref.strip_prefix("file:") {
            BackupKey::from_file(path).map_err(bad)
        } else if let Some(var) = key_ref.strip_prefix("env:") {
            BackupKey::from_env(var).map_err(bad)
        } else if let Some(rest) = key_ref.strip_prefix("secret:") {
            let (obj, data_key) = rest.split_once('#').ok_or_else(|| {
                Status::invalid_argument(format!(
                    "key_ref {key_ref:?}: expected secret:namespace/name#key"
                ))
            })?;
            let (ns, name) = obj.split_once('/').ok_or_else(|| {
                Status::invalid_argument(format!(
                    "key_ref {key_ref:?}: expected secret:namespace/name#key"
                ))
            })?;
            for part in [ns, name, data_key] {
                check_segment("key_ref", part)?;
            }
            let path = self.settings.secrets_dir.join(ns).join(name).join(data_key);
            let bytes = std::fs::read(&path).map_err(|e| {
                Status::failed_precondition(format!(
                    "key_ref {key_ref:?}: Secret {ns}/{name} key {data_key} not mounted at {}: {e}",
                    path.display()
                ))
            })?;
            BackupKey::from_secret_data([(data_key, bytes.as_slice())], data_key).map_err(bad)
        } else {
            Err(Status::invalid_argument(format!(
                "key_ref {key_ref:?}: expected file:/path, env:VAR or secret:namespace/name#key"
            )))
        }
    }

    fn instance_dir(
        &self,
        field: &str,
        explicit: &str,
        object: Option<&ObjectRef>,
        instance: &str,
    ) -> Result<PathBuf, Status> {
        if !explicit.is_empty() {
            return Ok(PathBuf::from(explicit));
        }
        let obj = object.ok_or_else(|| {
            Status::invalid_argument(format!("{field}: give a path or an object and instance"))
        })?;
        for (f, v) in [
            ("namespace", &obj.namespace),
            ("name", &obj.name),
            ("instance", &instance.to_string()),
        ] {
            check_segment(f, v)?;
        }
        Ok(self
            .settings
            .data_root
            .join(&obj.namespace)
            .join(&obj.name)
            .join(instance))
    }
}

/// A path segment taken from a request: a Kubernetes-style name, nothing that walks paths.
fn check_segment(field: &str, v: &str) -> Result<(), Status> {
    let ok = !v.is_empty()
        && v.len() <= 253
        && !v.starts_with('.')
        && v.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_'));
    if ok {
        Ok(())
    } else {
        Err(Status::invalid_argument(format!(
            "{field} {v:?} is not a valid name"
        )))
    }
}

fn algorithm(e: Encryption) -> Algorithm {
    match e {
        Encryption::Unspecified | Encryption::Aes256Gcm => Algorithm::Aes256Gcm,
        Encryption::Aes256Cbc => Algorithm::Aes256Cbc,
        Encryption::Gpg => Algorithm::Gpg,
    }
}

fn encryption(a: Algorithm) -> Encryption {
    match a {
        Algorithm::Aes256Gcm => Encryption::Aes256Gcm,
        Algorithm::Aes256Cbc => Encryption::Aes256Cbc,
        Algorithm::Gpg => Encryption::Gpg,
    }
}

fn timestamp(t: chrono::DateTime<chrono::Utc>) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: t.timestamp(),
        nanos: t.timestamp_subsec_nanos() as i32,
    }
}

/// The proto view of a manifest.
pub fn to_proto(m: &Manifest, storage: &str) -> Backup {
    let label = |k: &str| m.labels.get(k).cloned().unwrap_or_default();
    let source = (m.labels.contains_key(LABEL_NAME)).then(|| ObjectRef {
        namespace: label(LABEL_NAMESPACE),
        name: label(LABEL_NAME),
    });
    Backup {
        id: m.id.clone(),
        source,
        instance: label(LABEL_INSTANCE),
        storage: storage.to_string(),
        encryption: encryption(m.algorithm) as i32,
        key_id: m.key_id.clone(),
        phase: BackupPhase::Completed as i32,
        started_at: Some(timestamp(m.started_at)),
        completed_at: Some(timestamp(m.completed_at)),
        plaintext_bytes: m.sizes.archive_bytes,
        stored_bytes: m.sizes.stored_bytes,
        archive_sha256: m.sha256.archive.clone(),
        object_sha256: m.sha256.stored.clone(),
        tool_version: m.tool.version.clone(),
        error: None,
        source_bytes: m.sizes.source_bytes,
        entries: m.sizes.entries,
        labels: m.labels.clone().into_iter().collect::<HashMap<_, _>>(),
    }
}

fn matches_source(m: &Manifest, source: Option<&ObjectRef>) -> bool {
    source.is_none_or(|s| {
        m.labels.get(LABEL_NAMESPACE).map(String::as_str) == Some(s.namespace.as_str())
            && m.labels.get(LABEL_NAME).map(String::as_str) == Some(s.name.as_str())
    })
}

fn catalog_status(e: CatalogError) -> Status {
    match e {
        CatalogError::NotFound { .. } => Status::not_found(e.to_string()),
        CatalogError::BadId(_) => Status::invalid_argument(e.to_string()),
        CatalogError::Manifest(_) => Status::data_loss(e.to_string()),
        CatalogError::Storage(_) => Status::invalid_argument(e.to_string()),
        CatalogError::Io { .. } => Status::unavailable(e.to_string()),
    }
}

fn backup_status(e: BackupError) -> Status {
    match e {
        BackupError::Source { .. } | BackupError::NotADirectory(_) => {
            Status::failed_precondition(e.to_string())
        }
        BackupError::Catalog(c) => catalog_status(c),
        BackupError::Upload { .. } | BackupError::Manifest { .. } => {
            Status::unavailable(e.to_string())
        }
        BackupError::Pack { .. } | BackupError::Task { .. } => Status::internal(e.to_string()),
    }
}

fn restore_status(e: RestoreError) -> Status {
    match e {
        RestoreError::Catalog(c) => catalog_status(c),
        RestoreError::WrongKey { .. } => Status::permission_denied(e.to_string()),
        RestoreError::Download { .. } => Status::unavailable(e.to_string()),
        RestoreError::Stream { .. } | RestoreError::Mismatch { .. } => {
            Status::data_loss(e.to_string())
        }
        RestoreError::Target { .. } => Status::failed_precondition(e.to_string()),
        RestoreError::Task { .. } => Status::internal(e.to_string()),
    }
}

#[tonic::async_trait]
impl BackupService for BackupSvc {
    async fn create_backup(
        &self,
        request: Request<CreateBackupRequest>,
    ) -> Result<Response<Backup>, Status> {
        let req = request.into_inner();
        let store = self.store(&req.storage)?;
        let key = self.key(&req.key_ref)?;
        let dir = self.instance_dir(
            "source_path",
            &req.source_path,
            req.source.as_ref(),
            &req.instance,
        )?;
        let mut labels: BTreeMap<String, String> = req.labels.clone().into_iter().collect();
        let mut source_label = dir.display().to_string();
        if let Some(obj) = &req.source {
            labels.insert(LABEL_NAMESPACE.into(), obj.namespace.clone());
            labels.insert(LABEL_NAME.into(), obj.name.clone());
            labels.insert(LABEL_INSTANCE.into(), req.instance.clone());
            source_label = format!("{}/{}/{}", obj.namespace, obj.name, req.instance);
        }
        let opts = BackupOptions {
            algorithm: algorithm(req.encryption()),
            level: self.settings.compression_level,
            source_label: Some(source_label),
            labels,
            ..Default::default()
        };
        match create_backup(&store, &dir, &key, &opts).await {
            Ok(m) => {
                metrics::counter!("midplane_backups_created_total").increment(1);
                metrics::counter!("midplane_backup_stored_bytes_total")
                    .increment(m.sizes.stored_bytes);
                tracing::info!(id = %m.id, storage = %store.describe(), bytes = m.sizes.stored_bytes, "backup completed");
                Ok(Response::new(to_proto(&m, &store.describe())))
            }
            Err(e) => {
                metrics::counter!("midplane_backups_failed_total").increment(1);
                tracing::warn!(error = %e, "backup failed");
                Err(backup_status(e))
            }
        }
    }

    async fn list_backups(
        &self,
        request: Request<ListBackupsRequest>,
    ) -> Result<Response<ListBackupsResponse>, Status> {
        let req = request.into_inner();
        let store = self.store(&req.storage)?;
        let listing = store.list().await.map_err(catalog_status)?;
        let backups = listing
            .complete
            .iter()
            .filter(|m| matches_source(m, req.source.as_ref()))
            .map(|m| to_proto(m, &store.describe()))
            .collect();
        Ok(Response::new(ListBackupsResponse {
            backups,
            incomplete_ids: listing.incomplete,
        }))
    }

    async fn get_backup(
        &self,
        request: Request<GetBackupRequest>,
    ) -> Result<Response<Backup>, Status> {
        let req = request.into_inner();
        let store = self.store(&req.storage)?;
        let m = store.manifest(&req.id).await.map_err(catalog_status)?;
        Ok(Response::new(to_proto(&m, &store.describe())))
    }

    async fn delete_backup(
        &self,
        request: Request<DeleteBackupRequest>,
    ) -> Result<Response<DeleteBackupResponse>, Status> {
        let req = request.into_inner();
        let store = self.store(&req.storage)?;
        // Deleting what does not exist is an error the caller should see.
        store.manifest(&req.id).await.map_err(catalog_status)?;
        store.delete(&req.id).await.map_err(catalog_status)?;
        metrics::counter!("midplane_backups_deleted_total").increment(1);
        Ok(Response::new(DeleteBackupResponse {}))
    }

    async fn restore(
        &self,
        request: Request<RestoreRequest>,
    ) -> Result<Response<RestoreResponse>, Status> {
        let req = request.into_inner();
        let store = self.store(&req.storage)?;
        let key = self.key(&req.key_ref)?;
        let dir = self.instance_dir(
            "target_path",
            &req.target_path,
            req.target.as_ref(),
            &req.target_instance,
        )?;
        let report = restore_backup(&store, &req.id, &key, &dir, &RestoreOptions::default())
            .await
            .map_err(|e| {
                metrics::counter!("midplane_restores_failed_total").increment(1);
                tracing::warn!(id = %req.id, error = %e, "restore failed; target left untouched");
                restore_status(e)
            })?;
        metrics::counter!("midplane_restores_total").increment(1);
        Ok(Response::new(RestoreResponse {
            success: true,
            restored_bytes: report.tar_bytes,
            error: None,
            archive_sha256: report.archive_sha256,
            entries: report.entries,
        }))
    }

    async fn verify(
        &self,
        request: Request<VerifyRequest>,
    ) -> Result<Response<VerifyResponse>, Status> {
        let req = request.into_inner();
        let store = self.store(&req.storage)?;
        let key = self.key(&req.key_ref)?;
        let report = verify_backup(&store, &req.id, &key, &RestoreOptions::default())
            .await
            .map_err(restore_status)?;
        Ok(Response::new(VerifyResponse {
            ok: true,
            archive_sha256: report.archive_sha256,
            error: None,
            object_sha256: report.stored_sha256,
            entries: report.entries,
        }))
    }

    async fn apply_retention(
        &self,
        request: Request<ApplyRetentionRequest>,
    ) -> Result<Response<ApplyRetentionResponse>, Status> {
        let req = request.into_inner();
        let store = self.store(&req.storage)?;
        let listing = store.list().await.map_err(catalog_status)?;
        let mine: Vec<Manifest> = listing
            .complete
            .into_iter()
            .filter(|m| matches_source(m, req.source.as_ref()))
            .collect();
        let policy = RetentionPolicy {
            keep_last: (req.keep_last > 0).then_some(req.keep_last as usize),
            max_age: (req.max_age_seconds > 0).then(|| {
                chrono::Duration::seconds(i64::try_from(req.max_age_seconds).unwrap_or(i64::MAX))
            }),
        };
        let plan = retention::plan(&mine, policy, chrono::Utc::now());
        if !req.dry_run {
            for id in &plan.delete {
                store.delete(id).await.map_err(catalog_status)?;
                metrics::counter!("midplane_backups_deleted_total").increment(1);
                tracing::info!(%id, "backup removed by retention");
            }
        }
        Ok(Response::new(ApplyRetentionResponse {
            deleted_ids: plan.delete,
            kept_ids: plan.keep,
        }))
    }
}

/// Exposed for tests and the Backup Pod: the directory a request would use.
pub fn default_instance_dir(
    settings: &BackupSettings,
    ns: &str,
    name: &str,
    instance: &str,
) -> PathBuf {
    Path::new(&settings.data_root)
        .join(ns)
        .join(name)
        .join(instance)
}
