//! A Backup resource as BackupService answers it (`AppBackup`): its spec and status field by
//! field, so the proto stays an API of its own rather than a JSON pass-through.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::ResourceExt;
use midplane_api::{Backup, BackupStatus};
use midplane_backup::Algorithm;
use midplane_proto::backup::{AppBackup, AppBackupSpec, AppBackupStatus, Encryption};
use midplane_proto::common as cpb;

fn ts(t: &k8s_openapi::jiff::Timestamp) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: t.as_second(),
        nanos: t.subsec_nanosecond(),
    }
}

/// An RFC 3339 time of the status; None when unset or unreadable.
fn rfc3339(s: Option<&str>) -> Option<prost_types::Timestamp> {
    let t = chrono::DateTime::parse_from_rfc3339(s?).ok()?;
    Some(crate::convert::timestamp(t.with_timezone(&chrono::Utc)))
}

fn condition(c: &Condition) -> cpb::Condition {
    cpb::Condition {
        r#type: c.type_.clone(),
        status: c.status.clone(),
        reason: c.reason.clone(),
        message: c.message.clone(),
        observed_generation: c.observed_generation.unwrap_or_default(),
        last_transition_time: Some(ts(&c.last_transition_time.0)),
    }
}

/// The enum value of an encryption the resource names (UNSPECIFIED: unset or unknown).
fn encryption(name: Option<&str>) -> i32 {
    name.and_then(|n| n.parse::<Algorithm>().ok())
        .map_or(Encryption::Unspecified, crate::convert::encryption) as i32
}

/// The resource's name for a request's encryption: None for UNSPECIFIED (the backup
/// policy's, else aes256-gcm); Err for a value this version does not know.
pub fn encryption_name(value: i32) -> Result<Option<String>, String> {
    match Encryption::try_from(value) {
        Ok(Encryption::Unspecified) => Ok(None),
        Ok(e) => Ok(Some(crate::convert::algorithm(e).as_str().to_string())),
        Err(_) => Err(format!("{value} is not an Encryption value")),
    }
}

fn bytes(v: Option<i64>) -> u64 {
    v.and_then(|v| u64::try_from(v).ok()).unwrap_or_default()
}

fn status(st: &BackupStatus) -> AppBackupStatus {
    let text = |v: &Option<String>| v.clone().unwrap_or_default();
    AppBackupStatus {
        phase: st.phase.clone(),
        backup_id: text(&st.backup_id),
        location: text(&st.location),
        group: text(&st.group),
        instance: text(&st.instance),
        role: text(&st.role),
        replication_offset: st.replication_offset,
        term: st.term,
        snapshot: text(&st.snapshot),
        plugin: text(&st.plugin),
        middleware_version: text(&st.middleware_version),
        encryption: encryption(st.encryption.as_deref()),
        key_secret: text(&st.key_secret),
        credentials_secret: text(&st.credentials_secret),
        job: text(&st.job),
        started_at: rfc3339(st.started_at.as_deref()),
        completed_at: rfc3339(st.completed_at.as_deref()),
        duration: text(&st.duration),
        source_bytes: bytes(st.source_bytes),
        stored_bytes: bytes(st.stored_bytes),
        entries: bytes(st.entries),
        archive_sha256: text(&st.archive_sha256),
        object_sha256: text(&st.object_sha256),
        message: text(&st.message),
        conditions: st.conditions.iter().map(condition).collect(),
        observed_generation: st.observed_generation.unwrap_or_default(),
    }
}

/// The proto view of a Backup resource.
pub fn app_backup(b: &Backup) -> AppBackup {
    let spec = &b.spec;
    AppBackup {
        namespace: b.namespace().unwrap_or_default(),
        name: b.name_any(),
        labels: b.labels().clone().into_iter().collect(),
        spec: Some(AppBackupSpec {
            app: spec.app.clone(),
            component: spec.component.clone(),
            group: spec.group.clone(),
            instance: spec.instance.clone(),
            storage: spec.storage.clone(),
            encryption: encryption(spec.encryption.as_deref()),
            key_secret: spec.key_secret.clone().unwrap_or_default(),
        }),
        status: b.status.as_ref().map(status),
        generation: b.metadata.generation.unwrap_or_default(),
        created_at: b.metadata.creation_timestamp.as_ref().map(|t| ts(&t.0)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use midplane_api::BackupSpec;

    #[test]
    fn status_fields_carry_over_one_to_one() {
        let mut b = Backup::new(
            "nightly",
            BackupSpec {
                app: "shop".into(),
                component: "cache".into(),
                encryption: Some("gpg".into()),
                ..Default::default()
            },
        );
        b.status = Some(BackupStatus {
            phase: "Completed".into(),
            backup_id: Some("20261203T100000Z-abcdef".into()),
            role: Some("replica".into()),
            term: Some(3),
            replication_offset: Some(0),
            encryption: Some("aes256-cbc".into()),
            started_at: Some("2026-12-03T10:00:00Z".into()),
            duration: Some("4.2s".into()),
            stored_bytes: Some(1234),
            ..Default::default()
        });
        let p = app_backup(&b);
        let spec = p.spec.expect("spec");
        assert_eq!(spec.encryption, Encryption::Gpg as i32);
        let st = p.status.expect("status");
        assert_eq!(st.phase, "Completed");
        assert_eq!((st.term, st.replication_offset), (Some(3), Some(0)));
        assert_eq!(st.encryption, Encryption::Aes256Cbc as i32);
        assert_eq!(st.started_at.map(|t| t.seconds), Some(1_796_292_000));
        assert_eq!((st.duration.as_str(), st.stored_bytes), ("4.2s", 1234));
        assert_eq!(
            encryption_name(Encryption::Aes256Gcm as i32),
            Ok(Some("aes256-gcm".into()))
        );
        assert_eq!(encryption_name(0), Ok(None));
        assert!(encryption_name(42).is_err());
    }
}
