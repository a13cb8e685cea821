//! The pure steps of a Backup resource's reconcile: what the Backup names (App, component,
//! Group, storage, key), the Job that runs it, and its status from the Job and the stored
//! manifest. Nothing here touches the API server.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use kube::ResourceExt;
use midplane_api::backup::phase;
use midplane_api::{App, Backup, BackupStatus, expand, labels};
use midplane_backup::{Algorithm, Manifest};

use crate::config::{BackupSettings, JobSettings};
use crate::job_spec::{DATA_MOUNT, JobInput};
use crate::policy::TargetKey;

/// Why a Backup cannot run as written; it waits for a change of the Backup or the App.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct PlanError {
    pub field: String,
    pub message: String,
}

fn invalid(field: &str, message: impl Into<String>) -> PlanError {
    PlanError {
        field: field.into(),
        message: message.into(),
    }
}

/// What a Backup resolves to against its App and backup-svc's settings.
#[derive(Clone, Debug, PartialEq)]
pub struct Resolved {
    pub namespace: String,
    pub app: String,
    pub component: String,
    pub group: String,
    /// Instances of the Group, in ordinal order.
    pub instances: Vec<String>,
    pub storage_name: String,
    pub storage_uri: String,
    pub algorithm: Algorithm,
    pub key_secret: String,
    pub plugin: String,
    pub middleware_version: String,
}

/// The component template and the Group an App's `component` and `group` name (empty
/// `group`: the component's only Group), or why not, naming `spec.component` or
/// `spec.group`. Shared by Backups and Restores.
pub fn group_of<'a>(
    app: &'a App,
    app_name: &str,
    component_name: &str,
    group_name: &str,
) -> Result<(&'a midplane_api::ComponentTemplate, midplane_api::Group), PlanError> {
    let components = expand::components(app);
    let Some((tpl, component)) = app
        .spec
        .components
        .iter()
        .zip(&components)
        .find(|(t, _)| t.name == component_name)
    else {
        let known: Vec<&str> = app
            .spec
            .components
            .iter()
            .map(|c| c.name.as_str())
            .collect();
        return Err(invalid(
            "spec.component",
            format!(
                "App {} has no component {:?} (it has: {})",
                app_name,
                component_name,
                known.join(", ")
            ),
        ));
    };
    let groups = expand::groups(component);
    let group = if group_name.is_empty() {
        match groups.as_slice() {
            [only] => only.clone(),
            _ => {
                return Err(invalid(
                    "spec.group",
                    format!(
                        "component {} has {} shards; name one of: {}",
                        component_name,
                        groups.len(),
                        groups
                            .iter()
                            .map(ResourceExt::name_any)
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                ));
            }
        }
    } else {
        groups
            .iter()
            .find(|g| g.name_any() == group_name)
            .cloned()
            .ok_or_else(|| {
                invalid(
                    "spec.group",
                    format!(
                        "{:?} is not a Group of component {} (its Groups: {})",
                        group_name,
                        component_name,
                        groups
                            .iter()
                            .map(ResourceExt::name_any)
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                )
            })?
    };
    Ok((tpl, group))
}

/// Resolves `backup` against `app` (None: the App does not exist).
pub fn resolve(
    backup: &Backup,
    app: Option<&App>,
    settings: &BackupSettings,
) -> Result<Resolved, PlanError> {
    let namespace = backup.namespace().unwrap_or_default();
    let spec = &backup.spec;
    let app = app.ok_or_else(|| {
        invalid(
            "spec.app",
            format!("App {namespace}/{} does not exist", spec.app),
        )
    })?;
    let (tpl, group) = group_of(app, &spec.app, &spec.component, &spec.group)?;
    let instances = expand::instances(&group);
    if !spec.instance.is_empty() && !instances.contains(&spec.instance) {
        return Err(invalid(
            "spec.instance",
            format!(
                "{:?} is not an instance of Group {} (its instances: {})",
                spec.instance,
                group.name_any(),
                instances.join(", ")
            ),
        ));
    }
    let policy = tpl.spec.backup.clone().unwrap_or_default();
    let storage_name = [&spec.storage, &policy.storage]
        .into_iter()
        .find(|s| !s.is_empty())
        .cloned()
        .unwrap_or_default();
    let storage_uri = if storage_name.is_empty() {
        settings.default_storage.clone().ok_or_else(|| {
            invalid(
                "spec.storage",
                "is required: the component's backup policy names none and backup-svc has no default_storage",
            )
        })?
    } else if let Some(uri) = settings.storages.get(&storage_name) {
        uri.clone()
    } else if storage_name.contains("://") {
        storage_name.clone()
    } else {
        let known: Vec<&str> = settings.storages.keys().map(String::as_str).collect();
        return Err(invalid(
            "spec.storage",
            format!(
                "{storage_name:?} is neither a storage URI nor a storage configured in backup-svc (configured: {})",
                if known.is_empty() {
                    "none".into()
                } else {
                    known.join(", ")
                }
            ),
        ));
    };
    let algorithm = match spec.encryption.as_deref().or(policy.encryption.as_deref()) {
        None | Some("") => Algorithm::Aes256Gcm,
        Some(s) => s
            .parse::<Algorithm>()
            .map_err(|e| invalid("spec.encryption", e.to_string()))?,
    };
    let key_secret = spec
        .key_secret
        .clone()
        .or(policy.key_secret.clone())
        .filter(|s| !s.is_empty())
        .or_else(|| settings.default_key_secret.clone())
        .ok_or_else(|| {
            invalid(
                "spec.keySecret",
                "is required: the component's backup policy names none and backup-svc has no default_key_secret",
            )
        })?;
    Ok(Resolved {
        namespace,
        app: spec.app.clone(),
        component: spec.component.clone(),
        group: group.name_any(),
        instances,
        storage_name,
        storage_uri,
        algorithm,
        key_secret,
        plugin: tpl.spec.plugin.clone(),
        middleware_version: tpl.spec.version.clone(),
    })
}

/// Where the snapshot was taken and what the instance reported then.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SnapshotTaken {
    pub instance: String,
    /// primary or replica.
    pub role: String,
    pub term: i64,
    pub replication_offset: i64,
    /// Relative to the volume's root; None: no snapshot, the live files are read.
    pub path: Option<String>,
}

/// The id a Backup's snapshot directory carries (lowercase, as agents accept).
pub fn snapshot_id(backup_id: &str) -> String {
    backup_id.to_ascii_lowercase()
}

/// The Job for `backup` (stored as `backup_id`), reading `snap` on its instance's volume.
pub fn job(
    backup: &Backup,
    r: &Resolved,
    backup_id: &str,
    snap: &SnapshotTaken,
    settings: &JobSettings,
) -> k8s_openapi::api::batch::v1::Job {
    let mut manifest_labels = BTreeMap::from([
        (labels::BACKUP_NAMESPACE.to_string(), r.namespace.clone()),
        (labels::BACKUP_APP_NAME.to_string(), r.group.clone()),
        (
            labels::MIDDLEWARE_INSTANCE.to_string(),
            snap.instance.clone(),
        ),
        (labels::APP.to_string(), r.app.clone()),
        (labels::COMPONENT_NAME.to_string(), r.component.clone()),
        (
            labels::BACKUP_TRIGGER.to_string(),
            trigger(backup).to_string(),
        ),
        (RESOURCE_LABEL.to_string(), backup.name_any()),
        (labels::PLUGIN.to_string(), r.plugin.clone()),
    ]);
    if !snap.role.is_empty() {
        manifest_labels.insert(ROLE_LABEL.into(), snap.role.clone());
        manifest_labels.insert(TERM_LABEL.into(), snap.term.to_string());
        manifest_labels.insert(OFFSET_LABEL.into(), snap.replication_offset.to_string());
    }
    let input = JobInput {
        key: TargetKey {
            namespace: r.namespace.clone(),
            app: r.app.clone(),
            component: r.component.clone(),
            instance: snap.instance.clone(),
        },
        pvc: format!("{}-data", snap.instance),
        storage_name: r.storage_name.clone(),
        storage_uri: r.storage_uri.clone(),
        algorithm: r.algorithm,
        key_secret: r.key_secret.clone(),
        owner: expand::owner_reference(backup),
        source_dir: match &snap.path {
            Some(p) => format!("{DATA_MOUNT}/{}", p.trim_start_matches('/')),
            None => DATA_MOUNT.into(),
        },
        source_label: format!("{}/{}/{}", r.namespace, r.group, snap.instance),
        manifest_labels,
        credentials_secret: settings.credentials_secret.clone(),
        snapshot: snap
            .path
            .as_ref()
            .map(|_| midplane_backup::manifest::SnapshotSource {
                instance: snap.instance.clone(),
                role: snap.role.clone(),
                replication_offset: snap.replication_offset.max(0) as u64,
                term: snap.term.max(0) as u64,
                method: "bgsave".into(),
            }),
    };
    crate::job_spec::job_for(&input, backup_id, settings)
}

/// The metric key of `r`'s backup on `instance`.
pub fn target_key(r: &Resolved, instance: &str) -> TargetKey {
    TargetKey {
        namespace: r.namespace.clone(),
        app: r.app.clone(),
        component: r.component.clone(),
        instance: instance.to_string(),
    }
}

/// What `r`'s backup events are about.
pub fn subject(r: &Resolved) -> crate::announce::Subject {
    crate::announce::Subject {
        app: midplane_bus::catalogue::ObjectRef::new(&r.namespace, &r.app),
        component: r.component.clone(),
        group: r.group.clone(),
    }
}

/// Manifest label naming the Backup resource a backup was made for.
pub const RESOURCE_LABEL: &str = "midplane.dev/backup";
/// Manifest labels recording where the snapshot came from.
pub const ROLE_LABEL: &str = "midplane.dev/role";
pub const TERM_LABEL: &str = "midplane.dev/term";
pub const OFFSET_LABEL: &str = "midplane.dev/replication-offset";

/// `schedule` for a Backup the backup policy created, else `manual`.
pub fn trigger(backup: &Backup) -> &str {
    backup
        .labels()
        .get(labels::BACKUP_TRIGGER)
        .map(String::as_str)
        .unwrap_or("manual")
}

/// The status of a Backup whose backup completed with `manifest`.
pub fn completed(mut status: BackupStatus, m: &Manifest, now: DateTime<Utc>) -> BackupStatus {
    status.phase = phase::COMPLETED.into();
    status.completed_at = Some(m.completed_at.to_rfc3339());
    let started = status
        .started_at
        .as_deref()
        .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
        .map(|t| t.with_timezone(&Utc))
        .unwrap_or(m.started_at);
    let end = if m.completed_at > started {
        m.completed_at
    } else {
        now
    };
    status.duration = Some(format_duration(
        (end - started).to_std().unwrap_or_default(),
    ));
    status.source_bytes = Some(m.sizes.source_bytes as i64);
    status.stored_bytes = Some(m.sizes.stored_bytes as i64);
    status.entries = Some(m.sizes.entries as i64);
    status.archive_sha256 = Some(m.sha256.archive.clone());
    status.object_sha256 = Some(m.sha256.stored.clone());
    status.message = None;
    status
}

/// How long a Backup whose Job succeeded waits for the backup's manifest in storage before it
/// fails. The Job writes the manifest last, so one still missing this long after the Job
/// ended will not appear: the Job wrote elsewhere (another location or credentials than
/// backup-svc's) or lost it (docs/backups.md, step 3).
pub const MANIFEST_GRACE: std::time::Duration = std::time::Duration::from_secs(120);

/// When `job` ended: its `completionTime`, else the time of its Complete condition.
pub fn job_finished_at(job: &k8s_openapi::api::batch::v1::Job) -> Option<DateTime<Utc>> {
    let status = job.status.as_ref()?;
    let at = status.completion_time.as_ref().or_else(|| {
        status
            .conditions
            .iter()
            .flatten()
            .find(|c| c.type_ == "Complete" && c.status == "True")
            .and_then(|c| c.last_transition_time.as_ref())
    })?;
    DateTime::from_timestamp(at.0.as_second(), at.0.subsec_nanosecond().max(0) as u32)
}

/// Whether a succeeded Job's missing manifest fails the Backup now: `grace` has passed since
/// the Job ended (`finished`), or, for a Job that records no end, since the backup started.
pub fn manifest_overdue(
    finished: Option<DateTime<Utc>>,
    started: Option<&str>,
    now: DateTime<Utc>,
    grace: std::time::Duration,
) -> bool {
    let since = finished.or_else(|| {
        DateTime::parse_from_rfc3339(started?)
            .ok()
            .map(|t| t.with_timezone(&Utc))
    });
    match (since, chrono::Duration::from_std(grace)) {
        (Some(t), Ok(g)) => now - t >= g,
        // Nothing to measure from: fail rather than retry for ever.
        _ => true,
    }
}

/// `4.2s`, `3m12s`.
pub fn format_duration(d: std::time::Duration) -> String {
    let secs = d.as_secs_f64();
    if secs < 60.0 {
        format!("{secs:.1}s")
    } else {
        let s = d.as_secs();
        format!("{}m{:02}s", s / 60, s % 60)
    }
}

/// Completed Backups of one policy that its retention removes: `(name, completed_at)` of
/// each, and the policy; never the newest.
pub fn retention_victims(
    completed: &[(String, DateTime<Utc>)],
    keep_last: Option<usize>,
    max_age: Option<chrono::Duration>,
    now: DateTime<Utc>,
) -> Vec<String> {
    let mut sorted: Vec<&(String, DateTime<Utc>)> = completed.iter().collect();
    sorted.sort_by(|a, b| b.1.cmp(&a.1).then(b.0.cmp(&a.0)));
    sorted
        .into_iter()
        .enumerate()
        .filter(|(i, (_, at))| {
            *i > 0
                && (keep_last.is_some_and(|k| *i >= k.max(1))
                    || max_age.is_some_and(|age| now - *at > age))
        })
        .map(|(_, (name, _))| name.clone())
        .collect()
}

/// Labels a Backup created by the backup policy carries (and retention selects by).
pub fn policy_labels(app: &str, component: &str, group: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        (labels::APP.to_string(), app.to_string()),
        (labels::COMPONENT_NAME.to_string(), component.to_string()),
        (labels::GROUP.to_string(), group.to_string()),
        (labels::BACKUP_TRIGGER.to_string(), "schedule".to_string()),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_manifest_is_overdue_only_after_the_grace() {
        let end = DateTime::parse_from_rfc3339("2026-12-03T10:00:00Z")
            .expect("time")
            .with_timezone(&Utc);
        let grace = MANIFEST_GRACE;
        let later = |s| end + chrono::Duration::seconds(s);
        assert!(!manifest_overdue(Some(end), None, later(119), grace));
        assert!(manifest_overdue(Some(end), None, later(120), grace));
        // Without the Job's end, from the backup's start.
        let started = Some("2026-12-03T10:00:00Z");
        assert!(!manifest_overdue(None, started, later(60), grace));
        assert!(manifest_overdue(None, started, later(121), grace));
        assert!(manifest_overdue(None, None, end, grace));
    }
}
