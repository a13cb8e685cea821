//! The Restore's pure steps: what a Restore resolves to against its App, Group and
//! Backup, and the Job that replaces one instance's volume.

use std::collections::BTreeMap;

use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{
    Container, EnvFromSource, PersistentVolumeClaimVolumeSource, PodSpec, SecretEnvSource, Volume,
    VolumeMount,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use kube::{Resource, ResourceExt};
use midplane_api::backup::{RestoreRefused, restore_source};
use midplane_api::{App, Backup, Restore, RestoreFrom, expand, labels};

use crate::config::JobSettings;
use crate::job_spec::{DATA_MOUNT, KEY_FILE, KEY_MOUNT, key_volume, pod_job};
use crate::resources::plan::{PlanError, group_of};

/// Labels every Restore Job carries; the Restore controller watches Jobs by this selector.
pub const JOB_COMPONENT: &str = "restore";
pub const JOB_SELECTOR: &str =
    "app.kubernetes.io/managed-by=midplane,app.kubernetes.io/component=restore";

/// What a Restore resolves to.
#[derive(Clone, Debug, PartialEq)]
pub struct Resolved {
    pub group: String,
    /// Instances of the Group, in ordinal order: each gets its volume replaced.
    pub instances: Vec<String>,
    /// Storage, id and Secrets of the backup.
    pub source: RestoreFrom,
}

/// Why a Restore does not resolve (yet).
#[derive(Clone, Debug, PartialEq)]
pub enum Unresolved {
    /// Wrong as written, or the backup cannot go into this Group: the Restore fails.
    Invalid(PlanError),
    /// The Backup is not Completed yet: the Restore waits.
    Waiting(String),
}

fn invalid(field: &str, message: impl Into<String>) -> Unresolved {
    Unresolved::Invalid(PlanError {
        field: field.into(),
        message: message.into(),
    })
}

/// Resolves `restore` against its App (None: missing) and, when it names one, its Backup
/// (None: missing). A Backup of another plugin or a newer middleware version than the
/// Group runs is refused, as a component's `restoreFrom` is.
pub fn resolve(
    restore: &Restore,
    app: Option<&App>,
    backup: Option<&Backup>,
) -> Result<Resolved, Unresolved> {
    let ns = restore.namespace().unwrap_or_default();
    let spec = &restore.spec;
    let app =
        app.ok_or_else(|| invalid("spec.app", format!("App {ns}/{} does not exist", spec.app)))?;
    let (_, group) =
        group_of(app, &spec.app, &spec.component, &spec.group).map_err(Unresolved::Invalid)?;
    let from = &spec.from;
    let source = if !from.backup.is_empty() {
        let backup = backup.ok_or_else(|| {
            invalid(
                "spec.from.backup",
                format!("Backup {ns}/{} does not exist", from.backup),
            )
        })?;
        match restore_source(backup, &group.spec.middleware) {
            Ok(source) => source,
            Err(e @ RestoreRefused::NotCompleted { .. }) => {
                return Err(Unresolved::Waiting(format!("spec.from.backup: {e}")));
            }
            Err(e) => return Err(invalid("spec.from.backup", e.to_string())),
        }
    } else {
        if from.storage.is_empty() || from.id.is_empty() {
            return Err(invalid(
                "spec.from",
                "name a Backup (backup), or the storage and id of a backup",
            ));
        }
        if from.key_secret.as_deref().unwrap_or_default().is_empty() {
            return Err(invalid(
                "spec.from.keySecret",
                "is required with storage and id",
            ));
        }
        from.clone()
    };
    Ok(Resolved {
        group: group.name_any(),
        instances: expand::instances(&group),
        source,
    })
}

/// The Job name for `instance` of `restore` (a DNS-1123 label, ≤ 63).
pub fn job_name(restore: &Restore, instance: &str) -> String {
    let uid = restore.uid().unwrap_or_else(|| restore.name_any());
    let suffix: String = expand::offline_uid("Restore", "", &uid)
        .chars()
        .take(8)
        .collect();
    let prefix = "restore-";
    let room = 63 - prefix.len() - 1 - suffix.len();
    let mut inst: String = instance.chars().take(room).collect();
    while inst.ends_with('-') {
        inst.pop();
    }
    format!("{prefix}{inst}-{suffix}")
}

/// The Job that replaces `instance`'s volume with the backup: `midplane backup restore
/// --force`, which stages, verifies and only then swaps (the volume is untouched when it
/// fails). The instance is stopped, so nothing else mounts the volume.
pub fn job(restore: &Restore, resolved: &Resolved, instance: &str, settings: &JobSettings) -> Job {
    let ns = restore.namespace().unwrap_or_default();
    let source = &resolved.source;
    let common = [
        (labels::MANAGED_BY, labels::MANAGED_BY_VALUE),
        (labels::COMPONENT, JOB_COMPONENT),
        (labels::RESTORE_OF, instance),
        (labels::RESTORE, &restore.name_any()),
    ];
    let job_labels: BTreeMap<String, String> = common
        .iter()
        .chain(&[
            (labels::APP, restore.spec.app.as_str()),
            (labels::COMPONENT_NAME, restore.spec.component.as_str()),
        ])
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let pod_labels = common
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let command = [
        "midplane",
        "backup",
        "restore",
        "--from",
        &source.storage,
        "--id",
        &source.id,
        "--key-file",
        KEY_FILE,
        "--target",
        DATA_MOUNT,
        "--force",
    ];
    let container = Container {
        name: "restore".into(),
        image: Some(settings.image.clone()),
        image_pull_policy: settings.image_pull_policy.clone(),
        command: Some(command.map(String::from).to_vec()),
        env_from: source.credentials_secret.as_ref().map(|s| {
            vec![EnvFromSource {
                secret_ref: Some(SecretEnvSource {
                    name: s.clone(),
                    optional: Some(false),
                }),
                ..Default::default()
            }]
        }),
        volume_mounts: Some(vec![
            VolumeMount {
                name: "data".into(),
                mount_path: DATA_MOUNT.into(),
                ..Default::default()
            },
            VolumeMount {
                name: "key".into(),
                mount_path: KEY_MOUNT.into(),
                read_only: Some(true),
                ..Default::default()
            },
        ]),
        ..Default::default()
    };
    let volumes = vec![
        Volume {
            name: "data".into(),
            persistent_volume_claim: Some(PersistentVolumeClaimVolumeSource {
                claim_name: format!("{instance}-data"),
                read_only: Some(false),
            }),
            ..Default::default()
        },
        key_volume(source.key_secret.as_deref().unwrap_or_default()),
    ];
    let owner = OwnerReference {
        api_version: Restore::api_version(&()).into(),
        kind: Restore::kind(&()).into(),
        name: restore.name_any(),
        uid: restore.uid().unwrap_or_default(),
        controller: Some(true),
        block_owner_deletion: Some(true),
    };
    pod_job(
        ObjectMeta {
            name: Some(job_name(restore, instance)),
            namespace: Some(ns),
            labels: Some(job_labels),
            owner_references: Some(vec![owner]),
            ..Default::default()
        },
        pod_labels,
        PodSpec {
            containers: vec![container],
            volumes: Some(volumes),
            ..Default::default()
        },
        settings,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use midplane_api::backup::{BackupSpec, BackupStatus, phase};
    use midplane_api::{AppSpec, ComponentTemplate, MiddlewareSpec, RestoreSpec};

    fn app(shards: i32) -> App {
        let mut a = App::new(
            "shop",
            AppSpec {
                components: vec![ComponentTemplate {
                    name: "cache".into(),
                    spec: MiddlewareSpec {
                        plugin: "redis".into(),
                        version: "7.2".into(),
                        replicas: 2,
                        shards,
                        ..Default::default()
                    },
                }],
            },
        );
        a.metadata.namespace = Some("ns".into());
        a
    }

    fn restore(from: RestoreFrom) -> Restore {
        let mut r = Restore::new(
            "r1",
            RestoreSpec {
                app: "shop".into(),
                component: "cache".into(),
                group: String::new(),
                from,
            },
        );
        r.metadata.namespace = Some("ns".into());
        r.metadata.uid = Some("uid-1".into());
        r
    }

    fn backup(plugin: &str, phase_: &str) -> Backup {
        let mut b = Backup::new("nightly", BackupSpec::default());
        b.status = Some(BackupStatus {
            phase: phase_.into(),
            plugin: Some(plugin.into()),
            middleware_version: Some("7.2".into()),
            location: Some("file:///b".into()),
            backup_id: Some("20261203T100000Z-abcdef".into()),
            key_secret: Some("k".into()),
            ..Default::default()
        });
        b
    }

    fn named(backup: &str) -> RestoreFrom {
        RestoreFrom {
            backup: backup.into(),
            ..Default::default()
        }
    }

    #[test]
    fn a_completed_backup_resolves_to_every_instance_of_the_only_group() {
        let r = resolve(
            &restore(named("nightly")),
            Some(&app(1)),
            Some(&backup("redis", phase::COMPLETED)),
        )
        .expect("resolves");
        assert_eq!(r.group, "shop-cache-0");
        assert_eq!(r.instances, ["shop-cache-0-0", "shop-cache-0-1"]);
        assert_eq!(r.source.id, "20261203T100000Z-abcdef");
        assert_eq!(r.source.key_secret.as_deref(), Some("k"));
    }

    #[test]
    fn bad_restores_name_the_field_and_unfinished_backups_wait() {
        let r = restore(named("nightly"));
        let done = backup("redis", phase::COMPLETED);
        let field = |e: Unresolved| match e {
            Unresolved::Invalid(p) => p.field,
            Unresolved::Waiting(m) => format!("waiting: {m}"),
        };
        let e = resolve(&r, None, Some(&done)).expect_err("no App");
        assert_eq!(field(e), "spec.app");
        let e = resolve(&r, Some(&app(2)), Some(&done)).expect_err("two shards");
        assert_eq!(field(e), "spec.group");
        let e = resolve(&r, Some(&app(1)), None).expect_err("no Backup");
        assert_eq!(field(e), "spec.from.backup");
        let e = resolve(&r, Some(&app(1)), Some(&backup("mysql", phase::COMPLETED)))
            .expect_err("other plugin");
        assert_eq!(field(e.clone()), "spec.from.backup");
        assert!(format!("{e:?}").contains("plugin mysql"), "{e:?}");
        let e = resolve(&r, Some(&app(1)), Some(&backup("redis", phase::RUNNING)))
            .expect_err("running");
        assert!(matches!(e, Unresolved::Waiting(_)), "{e:?}");
        let bare = restore(RestoreFrom {
            storage: "file:///b".into(),
            id: "x".into(),
            ..Default::default()
        });
        let e = resolve(&bare, Some(&app(1)), None).expect_err("no key");
        assert_eq!(field(e), "spec.from.keySecret");
    }

    #[test]
    fn the_job_replaces_the_instance_volume_and_is_owned_by_the_restore() {
        let r = restore(named("nightly"));
        let resolved =
            resolve(&r, Some(&app(1)), Some(&backup("redis", phase::COMPLETED))).expect("resolves");
        let settings = JobSettings::default();
        let j = job(&r, &resolved, "shop-cache-0-1", &settings);
        let name = j.metadata.name.clone().expect("name");
        assert!(
            name.starts_with("restore-shop-cache-0-1-") && name.len() <= 63,
            "{name}"
        );
        let pod = j.spec.expect("spec").template.spec.expect("pod");
        let args = pod.containers[0].command.clone().expect("command");
        assert!(args.ends_with(&["--target".into(), "/data".into(), "--force".into()]));
        assert!(args.contains(&"20261203T100000Z-abcdef".to_string()));
        let vols = pod.volumes.expect("volumes");
        let pvc = vols[0].persistent_volume_claim.as_ref().expect("pvc");
        assert_eq!(pvc.claim_name, "shop-cache-0-1-data");
        assert_eq!(pvc.read_only, Some(false));
        let owner = &j.metadata.owner_references.expect("owner")[0];
        assert_eq!(
            (owner.kind.as_str(), owner.uid.as_str()),
            ("Restore", "uid-1")
        );
        let labels = pod_labels_of(&j.metadata.labels);
        assert!(!labels.contains_key(midplane_api::labels::MIDDLEWARE_INSTANCE));
    }

    fn pod_labels_of(l: &Option<BTreeMap<String, String>>) -> BTreeMap<String, String> {
        l.clone().unwrap_or_default()
    }
}
