//! Backup events on the bus (typed payloads from `midplane_bus::catalogue`). Publishing is
//! optional and never on a request's path: events go, in order, through one background task.

use midplane_api::labels;
use std::collections::BTreeMap;

use midplane_backup::{Algorithm, Manifest, Store};
use midplane_bus::catalogue::{
    BackupCompleted, BackupDeleted, BackupFailed, BackupStarted, DeleteReason, Encryption,
    ObjectRef,
};

pub use midplane_bus::EventSink;

/// What an event says a backup belongs to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Subject {
    pub app: ObjectRef,
    pub component: String,
    pub group: String,
}

impl Subject {
    /// From manifest (or request) labels: `midplane.dev/app` and `midplane.dev/component` when
    /// given, else the source object's name stands for the App and the component is empty.
    pub fn from_labels(labels: &BTreeMap<String, String>) -> Self {
        let get = |k: &str| labels.get(k).cloned().unwrap_or_default();
        let name = get(labels::BACKUP_APP_NAME);
        let app = labels
            .get(midplane_api::labels::APP)
            .cloned()
            .unwrap_or_else(|| name.clone());
        Self {
            app: ObjectRef {
                namespace: get(labels::BACKUP_NAMESPACE),
                name: app,
            },
            component: get(midplane_api::labels::COMPONENT_NAME),
            group: name,
        }
    }

    pub fn instance(labels: &BTreeMap<String, String>) -> String {
        labels
            .get(labels::MIDDLEWARE_INSTANCE)
            .cloned()
            .unwrap_or_default()
    }
}

pub fn encryption(a: Algorithm) -> Encryption {
    match a {
        Algorithm::Aes256Gcm => Encryption::Aes256Gcm,
        Algorithm::Aes256Cbc => Encryption::Aes256Cbc,
        Algorithm::Gpg => Encryption::Gpg,
    }
}

/// URI of a backup's encrypted object, without credentials.
pub fn location(store: &Store, m: &Manifest) -> String {
    format!(
        "{}/{}/{}",
        store.describe().trim_end_matches('/'),
        m.id,
        m.object
    )
}

pub fn started(s: &Subject, id: &str, store: &Store, a: Algorithm) -> BackupStarted {
    BackupStarted {
        backup_id: id.to_string(),
        app: s.app.clone(),
        component: s.component.clone(),
        group: s.group.clone(),
        storage: store.config().provider().to_string(),
        encryption: encryption(a),
    }
}

pub fn completed(s: &Subject, m: &Manifest, store: &Store) -> BackupCompleted {
    BackupCompleted {
        backup_id: m.id.clone(),
        app: s.app.clone(),
        component: s.component.clone(),
        group: s.group.clone(),
        location: location(store, m),
        size_bytes: m.sizes.stored_bytes,
        sha256: m.sha256.stored.clone(),
        encryption: encryption(m.algorithm),
        duration_ms: (m.completed_at - m.started_at)
            .num_milliseconds()
            .max(0)
            .unsigned_abs(),
    }
}

pub fn failed(s: &Subject, id: &str, stage: &str, message: String) -> BackupFailed {
    BackupFailed {
        backup_id: id.to_string(),
        app: s.app.clone(),
        component: s.component.clone(),
        stage: stage.to_string(),
        message,
    }
}

pub fn deleted(m: &Manifest, store: &Store, reason: DeleteReason) -> BackupDeleted {
    BackupDeleted {
        backup_id: m.id.clone(),
        app: Subject::from_labels(&m.labels).app,
        location: location(store, m),
        reason,
    }
}

/// A backup retention removed, counted, logged and announced alike wherever retention runs
/// (the ApplyRetention RPC and scheduled backups).
pub fn retention_deleted(sink: &EventSink, store: &Store, m: &Manifest) {
    metrics::counter!("midplane_backups_deleted_total").increment(1);
    tracing::info!(id = %m.id, "backup removed by retention");
    sink.publish(&deleted(m, store, DeleteReason::Retention));
}

/// Puts backup-svc's counters at zero at start-up, so that the first backup, failure or
/// restore is an increase alerts and dashboards see.
pub fn init_metrics() {
    for trigger in ["api", "schedule", "manual"] {
        metrics::counter!("midplane_backups_created_total", "trigger" => trigger).increment(0);
        metrics::counter!("midplane_backups_failed_total", "trigger" => trigger).increment(0);
    }
    for name in [
        "midplane_backups_deleted_total",
        "midplane_backup_stored_bytes_total",
        "midplane_restores_total",
        "midplane_restores_failed_total",
    ] {
        metrics::counter!(name).increment(0);
    }
}

/// The catalogue's stage of a pipeline failure.
pub fn backup_stage(e: &midplane_backup::BackupError) -> &'static str {
    use midplane_backup::BackupError as E;
    match e {
        E::Source { .. } | E::NotADirectory(_) => "snapshot",
        E::Pack { .. } | E::Task { .. } => "archive",
        E::Upload { .. } | E::Manifest { .. } | E::Catalog(_) => "upload",
    }
}

/// The catalogue's stage of a restore failure.
pub fn restore_stage(e: &midplane_backup::RestoreError) -> &'static str {
    use midplane_backup::RestoreError as E;
    match e {
        E::Catalog(_) | E::Download { .. } => "download",
        E::WrongKey { .. } | E::Stream { .. } => "decrypt",
        E::Mismatch { .. } => "verify",
        E::Target { .. } | E::Task { .. } => "extract",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subject_from_labels() {
        let full = BTreeMap::from([
            (labels::BACKUP_NAMESPACE.to_string(), "shop".to_string()),
            (
                labels::BACKUP_APP_NAME.to_string(),
                "cache-redis-0".to_string(),
            ),
            (
                labels::MIDDLEWARE_INSTANCE.to_string(),
                "cache-redis-0-1".to_string(),
            ),
            ("midplane.dev/app".to_string(), "cache".to_string()),
            ("midplane.dev/component".to_string(), "redis".to_string()),
        ]);
        let s = Subject::from_labels(&full);
        assert_eq!(s.app, ObjectRef::new("shop", "cache"));
        assert_eq!(
            (s.component.as_str(), s.group.as_str()),
            ("redis", "cache-redis-0")
        );
        assert_eq!(Subject::instance(&full), "cache-redis-0-1");
        // Without app/component labels the source object stands for the App.
        let bare = BTreeMap::from([
            (labels::BACKUP_NAMESPACE.to_string(), "shop".to_string()),
            (labels::BACKUP_APP_NAME.to_string(), "db".to_string()),
        ]);
        let s = Subject::from_labels(&bare);
        assert_eq!(s.app, ObjectRef::new("shop", "db"));
        assert_eq!(s.component, "");
    }

    #[test]
    fn disabled_sink_drops_quietly() {
        let sink = EventSink::disabled();
        assert!(!sink.enabled());
        sink.publish(&<BackupStarted as midplane_bus::Event>::example());
    }
}
