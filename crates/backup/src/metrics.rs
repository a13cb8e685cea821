//! The backup metrics alert rules need, per App component: how long the last backup took, how
//! big it was, when one last succeeded, and how many failed.
//!
//! They are derived from the manifest, not measured inside the pipeline, because a backup
//! often runs in a Backup Pod (the CLI, which nobody scrapes) while backup-svc, which is
//! scraped, learns the outcome by reading the manifest. So backup-svc records them, in every
//! mode, when it sees a backup complete ([`record_completed`]) or fail ([`record_failed`]).
//! Recording goes through the `metrics` facade: without an installed recorder (the CLI) it
//! does nothing.

use std::collections::BTreeMap;

use crate::manifest::Manifest;

/// Gauge: seconds the last successful backup took (`completed_at - started_at`).
pub const DURATION_SECONDS: &str = "midplane_backup_last_duration_seconds";
/// Gauge: stored (encrypted) bytes of the last successful backup.
pub const SIZE_BYTES: &str = "midplane_backup_last_size_bytes";
/// Gauge: Unix time the last successful backup completed. Alert on `time() - this`.
pub const LAST_SUCCESS_TIMESTAMP: &str = "midplane_backup_last_success_timestamp_seconds";
/// Counter: backups that failed, by stage (`snapshot`, `archive`, `upload`, `job`).
pub const FAILURES_TOTAL: &str = "midplane_backup_failures_total";

/// Manifest labels that name what was backed up (see docs/backup-scheduling.md).
const LABEL_NAMESPACE: &str = "midplane.dev/namespace";
const LABEL_APP: &str = "midplane.dev/app";
const LABEL_COMPONENT: &str = "midplane.dev/component";

/// The metric labels for a backup's manifest labels: `namespace`, `app`, `component` (empty
/// when the manifest does not say, e.g. a backup of a plain directory).
pub fn metric_labels(labels: &BTreeMap<String, String>) -> [(&'static str, String); 3] {
    let get = |k: &str| labels.get(k).cloned().unwrap_or_default();
    [
        ("namespace", get(LABEL_NAMESPACE)),
        ("app", get(LABEL_APP)),
        ("component", get(LABEL_COMPONENT)),
    ]
}

/// What a completed backup sets: (duration seconds, stored bytes, completion Unix time).
pub fn completed_values(m: &Manifest) -> (f64, f64, f64) {
    let duration = (m.completed_at - m.started_at)
        .to_std()
        .map_or(0.0, |d| d.as_secs_f64());
    let completed = m.completed_at.timestamp_millis() as f64 / 1000.0;
    (duration, m.sizes.stored_bytes as f64, completed)
}

/// Records a completed backup from its manifest.
pub fn record_completed(m: &Manifest) {
    let labels = metric_labels(&m.labels);
    let (duration, size, completed) = completed_values(m);
    metrics::gauge!(DURATION_SECONDS, &labels).set(duration);
    metrics::gauge!(SIZE_BYTES, &labels).set(size);
    metrics::gauge!(LAST_SUCCESS_TIMESTAMP, &labels).set(completed);
}

/// The stages a backup fails at (`record_failed`).
pub const STAGES: [&str; 4] = ["snapshot", "archive", "upload", "job"];

/// Puts the failure counters of a target at zero when one of its backups starts, so that
/// its first failure is an increase an alert sees (a series appearing at 1 increased by
/// nothing).
pub fn record_started(labels: &BTreeMap<String, String>) {
    let [ns, app, component] = metric_labels(labels);
    for stage in STAGES {
        let labels = [
            ns.clone(),
            app.clone(),
            component.clone(),
            ("stage", stage.to_string()),
        ];
        metrics::counter!(FAILURES_TOTAL, &labels).increment(0);
    }
}

/// Records a failed backup of the target with these manifest labels.
pub fn record_failed(labels: &BTreeMap<String, String>, stage: &'static str) {
    let [ns, app, component] = metric_labels(labels);
    let labels = [ns, app, component, ("stage", stage.to_string())];
    metrics::counter!(FAILURES_TOTAL, &labels).increment(1);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_and_labels_come_from_the_manifest() {
        let started = chrono::DateTime::parse_from_rfc3339("2026-11-27T14:05:12Z")
            .expect("time")
            .to_utc();
        let json = serde_json::json!({
            "format": "midplane-backup/v1", "id": "x", "source": "s",
            "started_at": started, "completed_at": started + chrono::Duration::milliseconds(2500),
            "algorithm": "aes256-gcm", "key_id": "k", "compression": "gzip",
            "object": "archive.tar.gz.mpbk",
            "sizes": {"source_bytes": 1, "entries": 1, "tar_bytes": 1, "archive_bytes": 1,
                      "stored_bytes": 4096},
            "sha256": {"archive": "a", "stored": "b"},
            "tool": {"name": "midplane-backup", "version": "0"},
            "labels": {"midplane.dev/namespace": "shop", "midplane.dev/app": "cache",
                       "midplane.dev/component": "redis"}
        });
        let m: Manifest = serde_json::from_value(json).expect("manifest");
        let (duration, size, completed) = completed_values(&m);
        assert_eq!(duration, 2.5);
        assert_eq!(size, 4096.0);
        assert_eq!(completed, started.timestamp() as f64 + 2.5);
        assert_eq!(
            metric_labels(&m.labels),
            [
                ("namespace", "shop".to_string()),
                ("app", "cache".to_string()),
                ("component", "redis".to_string())
            ]
        );
        assert_eq!(metric_labels(&BTreeMap::new())[1], ("app", String::new()));
    }
}
