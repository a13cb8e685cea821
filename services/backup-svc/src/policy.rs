//! An App's backup policies (`spec.components[].backup`) turned into one backup target per
//! instance of each Group, with every bad field named the way the App spells it.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::ResourceExt;
use midplane_api::{App, BackupPolicy, expand, labels};
use midplane_backup::Algorithm;
use midplane_backup::retention::RetentionPolicy;

use crate::config::BackupSettings;
use crate::cron::Schedule;

/// One instance whose data a policy backs up.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TargetKey {
    pub namespace: String,
    pub app: String,
    pub component: String,
    pub instance: String,
}

impl std::fmt::Display for TargetKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}/{}/{}/{}",
            self.namespace, self.app, self.component, self.instance
        )
    }
}

impl TargetKey {
    /// The manifest labels backup metrics are keyed by (`midplane_backup::metrics`), for a
    /// failure that left no manifest.
    pub fn metric_labels(&self) -> std::collections::BTreeMap<String, String> {
        use midplane_api::labels;
        [
            (labels::BACKUP_NAMESPACE, &self.namespace),
            (labels::APP, &self.app),
            (labels::COMPONENT_NAME, &self.component),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect()
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Target {
    pub key: TargetKey,
    /// The Group (shard) the instance belongs to.
    pub group: String,
    /// The instance's PersistentVolumeClaim (`<instance>-data`, see plugins/redis/templates/pvc.yaml).
    pub pvc: String,
    /// Controller reference to the App, for the Backup Job.
    pub owner: OwnerReference,
    pub schedule: Schedule,
    pub retention: RetentionPolicy,
    pub algorithm: Algorithm,
    pub storage_name: String,
    pub storage_uri: String,
    /// Secret in the App's namespace holding the 32-byte key under `key`.
    pub key_secret: String,
}

impl Target {
    /// Labels written into the manifest of each backup of this target.
    pub fn manifest_labels(&self, trigger: &str) -> BTreeMap<String, String> {
        BTreeMap::from([
            (labels::BACKUP_NAMESPACE.into(), self.key.namespace.clone()),
            (labels::BACKUP_APP_NAME.into(), self.group.clone()),
            (
                labels::MIDDLEWARE_INSTANCE.into(),
                self.key.instance.clone(),
            ),
            (labels::APP.into(), self.key.app.clone()),
            (labels::COMPONENT_NAME.into(), self.key.component.clone()),
            (labels::BACKUP_TRIGGER.into(), trigger.into()),
        ])
    }

    /// What the manifest records as the source.
    pub fn source_label(&self) -> String {
        format!(
            "{}/{}/{}",
            self.key.namespace, self.group, self.key.instance
        )
    }
}

/// A field of a backup policy that cannot be used.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct PolicyError {
    pub field: String,
    pub message: String,
}

/// Targets of every enabled policy of `app`, and the errors of the policies that cannot run
/// (a component with a bad policy gets no targets; the others still do).
pub fn targets(app: &App, settings: &BackupSettings) -> (Vec<Target>, Vec<PolicyError>) {
    let mut out = Vec::new();
    let mut errors = Vec::new();
    let owner = expand::owner_reference(app);
    let ns = app.namespace().unwrap_or_default();
    let components = expand::components(app);
    for (i, (tpl, component)) in app.spec.components.iter().zip(&components).enumerate() {
        let Some(policy) = tpl.spec.backup.as_ref().filter(|b| b.enabled) else {
            continue;
        };
        let path = format!("spec.components[{i}].backup");
        let parsed = match parse_policy(policy, &path, settings) {
            Ok(p) => p,
            Err(mut e) => {
                errors.append(&mut e);
                continue;
            }
        };
        for group in expand::groups(component) {
            let group_name = group.name_any();
            for instance in expand::instances(&group) {
                out.push(Target {
                    key: TargetKey {
                        namespace: ns.clone(),
                        app: app.name_any(),
                        component: tpl.name.clone(),
                        instance: instance.clone(),
                    },
                    group: group_name.clone(),
                    pvc: format!("{instance}-data"),
                    owner: owner.clone(),
                    schedule: parsed.schedule.clone(),
                    retention: parsed.retention,
                    algorithm: parsed.algorithm,
                    storage_name: policy.storage.clone(),
                    storage_uri: parsed.storage_uri.clone(),
                    key_secret: parsed.key_secret.clone(),
                });
            }
        }
    }
    (out, errors)
}

struct Parsed {
    schedule: Schedule,
    retention: RetentionPolicy,
    algorithm: Algorithm,
    storage_uri: String,
    key_secret: String,
}

fn parse_policy(
    p: &BackupPolicy,
    path: &str,
    settings: &BackupSettings,
) -> Result<Parsed, Vec<PolicyError>> {
    let mut errors = Vec::new();
    let schedule = match Schedule::parse(&p.schedule, &format!("{path}.schedule")) {
        Ok(s) => Some(s),
        Err(e) => {
            errors.push(PolicyError {
                message: e.message(),
                field: e.field,
            });
            None
        }
    };
    let mut err = |field: &str, message: String| {
        errors.push(PolicyError {
            field: format!("{path}.{field}"),
            message,
        });
    };
    let algorithm = match p.encryption.as_deref() {
        None | Some("") => Some(Algorithm::Aes256Gcm),
        Some(s) => match s.parse::<Algorithm>() {
            Ok(a) => Some(a),
            Err(e) => {
                err("encryption", e.to_string());
                None
            }
        },
    };
    let mut retention = RetentionPolicy::default();
    if let Some(r) = &p.retention {
        match r.count {
            Some(c) if c < 1 => err("retention.count", format!("{c} must be at least 1")),
            Some(c) => retention.keep_last = Some(c as usize),
            None => {}
        }
        if let Some(age) = &r.max_age {
            match midplane_api::validate::parse_duration_secs(age)
                .and_then(|s| i64::try_from(s).ok())
                .filter(|s| *s > 0)
            {
                Some(secs) => retention.max_age = Some(chrono::Duration::seconds(secs)),
                None => err(
                    "retention.maxAge",
                    format!("{age:?} is not a duration such as 168h or 30m"),
                ),
            }
        }
    }
    let storage_uri = if p.storage.is_empty() {
        err("storage", "is required when backup is enabled".into());
        None
    } else if let Some(uri) = settings.storages.get(&p.storage) {
        Some(uri.clone())
    } else {
        let known: Vec<&str> = settings.storages.keys().map(String::as_str).collect();
        err(
            "storage",
            format!(
                "no storage named {:?} is configured in backup-svc (configured: {})",
                p.storage,
                if known.is_empty() {
                    "none".to_string()
                } else {
                    known.join(", ")
                }
            ),
        );
        None
    };
    let key_secret = match p
        .key_secret
        .clone()
        .filter(|s| !s.is_empty())
        .or_else(|| settings.default_key_secret.clone())
    {
        Some(s) => Some(s),
        None => {
            err(
                "keySecret",
                "is required (no default_key_secret configured in backup-svc)".into(),
            );
            None
        }
    };
    match (schedule, algorithm, storage_uri, key_secret) {
        (Some(schedule), Some(algorithm), Some(storage_uri), Some(key_secret))
            if errors.is_empty() =>
        {
            Ok(Parsed {
                schedule,
                retention,
                algorithm,
                storage_uri,
                key_secret,
            })
        }
        _ => Err(errors),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use midplane_api::{AppSpec, ComponentTemplate, MiddlewareSpec, Retention};

    pub(crate) fn app(policy: BackupPolicy) -> App {
        let mut app = App::new(
            "cache",
            AppSpec {
                components: vec![
                    ComponentTemplate {
                        name: "plain".into(),
                        spec: MiddlewareSpec {
                            plugin: "redis".into(),
                            replicas: 1,
                            shards: 1,
                            ..Default::default()
                        },
                    },
                    ComponentTemplate {
                        name: "redis".into(),
                        spec: MiddlewareSpec {
                            plugin: "redis".into(),
                            replicas: 2,
                            shards: 2,
                            backup: Some(policy),
                            ..Default::default()
                        },
                    },
                ],
            },
        );
        app.metadata.namespace = Some("shop".into());
        app.metadata.uid = Some("app-uid-1".into());
        app
    }

    fn settings() -> BackupSettings {
        BackupSettings {
            storages: BTreeMap::from([("nightly".into(), "file:///backups".into())]),
            ..Default::default()
        }
    }

    fn policy() -> BackupPolicy {
        BackupPolicy {
            enabled: true,
            schedule: "0 3 * * *".into(),
            retention: Some(Retention {
                count: Some(7),
                max_age: Some("168h".into()),
            }),
            encryption: Some("gpg".into()),
            storage: "nightly".into(),
            key_secret: Some("cache-backup-key".into()),
        }
    }

    #[test]
    fn one_target_per_instance_of_each_group() {
        let (ts, errs) = targets(&app(policy()), &settings());
        assert!(errs.is_empty(), "{errs:?}");
        let names: Vec<_> = ts.iter().map(|t| t.key.instance.as_str()).collect();
        assert_eq!(
            names,
            [
                "cache-redis-0-0",
                "cache-redis-0-1",
                "cache-redis-1-0",
                "cache-redis-1-1"
            ]
        );
        let t = &ts[2];
        assert_eq!(t.group, "cache-redis-1");
        assert_eq!(t.pvc, "cache-redis-1-0-data");
        assert_eq!(t.key.component, "redis");
        assert_eq!(t.algorithm, Algorithm::Gpg);
        assert_eq!(t.storage_uri, "file:///backups");
        assert_eq!(t.retention.keep_last, Some(7));
        assert_eq!(t.retention.max_age, Some(chrono::Duration::hours(168)));
        assert_eq!(
            (t.owner.kind.as_str(), t.owner.uid.as_str()),
            ("App", "app-uid-1")
        );
        assert_eq!(t.owner.controller, Some(true));
        let labels = t.manifest_labels("schedule");
        assert_eq!(labels[labels::BACKUP_APP_NAME], "cache-redis-1");
        assert_eq!(labels[labels::APP], "cache");
    }

    #[test]
    fn disabled_policies_have_no_targets() {
        let mut p = policy();
        p.enabled = false;
        let (ts, errs) = targets(&app(p), &settings());
        assert!(ts.is_empty() && errs.is_empty());
    }

    #[test]
    fn every_bad_field_is_named() {
        let p = BackupPolicy {
            enabled: true,
            schedule: "0 3 * *".into(),
            retention: Some(Retention {
                count: Some(0),
                max_age: Some("a week".into()),
            }),
            encryption: Some("rot13".into()),
            storage: "weekly".into(),
            key_secret: None,
        };
        let (ts, errs) = targets(&app(p), &settings());
        assert!(ts.is_empty());
        let fields: Vec<_> = errs.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "spec.components[1].backup.schedule",
                "spec.components[1].backup.encryption",
                "spec.components[1].backup.retention.count",
                "spec.components[1].backup.retention.maxAge",
                "spec.components[1].backup.storage",
                "spec.components[1].backup.keySecret",
            ]
        );
        let schedule = errs[0].to_string();
        assert!(
            schedule.starts_with("spec.components[1].backup.schedule: \"0 3 * *\""),
            "{schedule}"
        );
        assert!(errs[4].message.contains("nightly"), "{}", errs[4].message);
    }

    #[test]
    fn default_key_secret_fills_in() {
        let mut p = policy();
        p.key_secret = None;
        let s = BackupSettings {
            default_key_secret: Some("backup-key".into()),
            ..settings()
        };
        let (ts, errs) = targets(&app(p), &s);
        assert!(errs.is_empty());
        assert_eq!(ts[0].key_secret, "backup-key");
    }
}
