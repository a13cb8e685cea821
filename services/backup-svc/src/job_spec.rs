//! The Backup Pod: a pure function from a backup target to the batch/v1 Job that runs
//! `midplane backup create` against the instance's PVC, mounted read-only.

use std::collections::BTreeMap;

use k8s_openapi::api::batch::v1::{Job, JobSpec};
use k8s_openapi::api::core::v1::{
    Affinity, Container, EnvFromSource, EnvVar, KeyToPath, PersistentVolumeClaimVolumeSource,
    PodAffinity, PodAffinityTerm, PodSecurityContext, PodSpec, PodTemplateSpec, SecretEnvSource,
    SecretVolumeSource, Volume, VolumeMount,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use midplane_api::labels;
use midplane_backup::cli::{
    ENV_BACKUP_ID, ENV_BACKUP_LABELS, ENV_BACKUP_SNAPSHOT, ENV_BACKUP_SOURCE,
};

use crate::config::JobSettings;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use midplane_backup::Algorithm;

use crate::policy::{Target, TargetKey};

/// Labels every Backup Job carries; backup-svc watches Jobs by this selector.
pub const JOB_COMPONENT: &str = "backup";
pub const JOB_SELECTOR: &str =
    "app.kubernetes.io/managed-by=midplane,app.kubernetes.io/component=backup";

pub const DATA_MOUNT: &str = "/data";
pub const KEY_MOUNT: &str = "/keys";
pub const KEY_FILE: &str = "/keys/key";

/// A DNS-1123 label (≤ 63) naming one backup of one instance.
pub fn job_name(instance: &str, backup_id: &str) -> String {
    // A SHA-256-derived digest of the (unique) id: lowercase hex, unlike the id itself.
    let suffix: String = midplane_api::expand::offline_uid("Backup", "", backup_id)
        .chars()
        .take(8)
        .collect();
    let prefix = "backup-";
    let room = 63 - prefix.len() - 1 - suffix.len();
    let mut inst: String = instance.chars().take(room).collect();
    while inst.ends_with('-') {
        inst.pop();
    }
    format!("{prefix}{inst}-{suffix}")
}

/// What a Backup Job needs to know: the instance and its volume, where the backup goes, the
/// key, who owns the Job, and which directory of the volume to archive.
#[derive(Clone, Debug)]
pub struct JobInput {
    pub key: TargetKey,
    /// The instance's PersistentVolumeClaim.
    pub pvc: String,
    pub storage_name: String,
    pub storage_uri: String,
    pub algorithm: Algorithm,
    /// Secret holding the 32-byte key under `key`.
    pub key_secret: String,
    /// Controller reference of the Job (the App for a scheduled run, the Backup resource for
    /// one run from a resource).
    pub owner: OwnerReference,
    /// Directory to archive, inside the mounted volume: [`DATA_MOUNT`] or a snapshot below it.
    pub source_dir: String,
    /// What the manifest records as the source.
    pub source_label: String,
    /// Written into the manifest.
    pub manifest_labels: BTreeMap<String, String>,
    /// Secret whose keys become the Pod's environment (storage credentials).
    pub credentials_secret: Option<String>,
    /// The snapshot the source directory holds, recorded in the manifest.
    pub snapshot: Option<midplane_backup::manifest::SnapshotSource>,
}

impl JobInput {
    /// A scheduled backup of `target`'s live volume (`scheduler.mode: job`).
    pub fn scheduled(target: &Target, settings: &JobSettings) -> Self {
        Self {
            key: target.key.clone(),
            pvc: target.pvc.clone(),
            storage_name: target.storage_name.clone(),
            storage_uri: target.storage_uri.clone(),
            algorithm: target.algorithm,
            key_secret: target.key_secret.clone(),
            owner: target.owner.clone(),
            source_dir: DATA_MOUNT.into(),
            source_label: target.source_label(),
            manifest_labels: target.manifest_labels("schedule"),
            credentials_secret: settings.credentials_secret.clone(),
            snapshot: None,
        }
    }
}

/// The Job for one backup of `target`, to be stored as `backup_id` at `target.storage_uri`.
pub fn backup_job(target: &Target, backup_id: &str, settings: &JobSettings) -> Job {
    job_for(&JobInput::scheduled(target, settings), backup_id, settings)
}

/// The Job for one backup described by `input`, stored as `backup_id`.
pub fn job_for(input: &JobInput, backup_id: &str, settings: &JobSettings) -> Job {
    let target = input;
    let name = job_name(&target.key.instance, backup_id);
    let job_labels = BTreeMap::from([
        (
            labels::MANAGED_BY.to_string(),
            labels::MANAGED_BY_VALUE.to_string(),
        ),
        (labels::COMPONENT.to_string(), JOB_COMPONENT.to_string()),
        (labels::APP.to_string(), target.key.app.clone()),
        (
            labels::COMPONENT_NAME.to_string(),
            target.key.component.clone(),
        ),
        (
            labels::MIDDLEWARE_INSTANCE.to_string(),
            target.key.instance.clone(),
        ),
        (labels::BACKUP_ID.to_string(), backup_id.to_string()),
    ]);
    let pod_labels = BTreeMap::from([
        (
            labels::MANAGED_BY.to_string(),
            labels::MANAGED_BY_VALUE.to_string(),
        ),
        (labels::COMPONENT.to_string(), JOB_COMPONENT.to_string()),
        (labels::BACKUP_OF.to_string(), target.key.instance.clone()),
        (labels::BACKUP_ID.to_string(), backup_id.to_string()),
    ]);
    let manifest_labels =
        serde_json::to_string(&input.manifest_labels).unwrap_or_else(|_| "{}".into());
    let mut env = vec![
        env_var(ENV_BACKUP_ID, backup_id),
        env_var(ENV_BACKUP_LABELS, &manifest_labels),
        env_var(ENV_BACKUP_SOURCE, &target.source_label),
    ];
    if let Some(snap) = &input.snapshot {
        env.push(env_var(
            ENV_BACKUP_SNAPSHOT,
            &serde_json::to_string(snap).unwrap_or_default(),
        ));
    }
    let container = Container {
        name: "backup".into(),
        image: Some(settings.image.clone()),
        image_pull_policy: settings.image_pull_policy.clone(),
        command: Some(
            [
                "midplane",
                "backup",
                "create",
                "--source",
                &input.source_dir,
                "--to",
                &target.storage_uri,
                "--encryption",
                target.algorithm.as_str(),
                "--key-file",
                KEY_FILE,
            ]
            .map(String::from)
            .to_vec(),
        ),
        env: Some(env),
        env_from: input.credentials_secret.as_ref().map(|s| {
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
                read_only: Some(true),
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
                claim_name: target.pvc.clone(),
                read_only: Some(true),
            }),
            ..Default::default()
        },
        key_volume(&target.key_secret),
    ];
    // A ReadWriteOnce volume can be mounted by a second Pod only on the node that has it.
    let affinity = settings.colocate.then(|| Affinity {
        pod_affinity: Some(PodAffinity {
            required_during_scheduling_ignored_during_execution: Some(vec![PodAffinityTerm {
                label_selector: Some(LabelSelector {
                    match_labels: Some(BTreeMap::from([(
                        labels::MIDDLEWARE_INSTANCE.to_string(),
                        target.key.instance.clone(),
                    )])),
                    ..Default::default()
                }),
                topology_key: "kubernetes.io/hostname".into(),
                ..Default::default()
            }]),
            ..Default::default()
        }),
        ..Default::default()
    });
    pod_job(
        ObjectMeta {
            name: Some(name),
            namespace: Some(target.key.namespace.clone()),
            labels: Some(job_labels),
            annotations: Some(BTreeMap::from([
                (labels::BACKUP_ID.to_string(), backup_id.to_string()),
                (
                    labels::BACKUP_STORAGE.to_string(),
                    target.storage_name.clone(),
                ),
            ])),
            owner_references: Some(vec![input.owner.clone()]),
            ..Default::default()
        },
        pod_labels,
        PodSpec {
            containers: vec![container],
            volumes: Some(volumes),
            affinity,
            ..Default::default()
        },
        settings,
    )
}

/// The Secret volume holding a 32-byte key under `key`, readable by its owner only.
pub fn key_volume(secret: &str) -> Volume {
    Volume {
        name: "key".into(),
        secret: Some(SecretVolumeSource {
            secret_name: Some(secret.to_string()),
            items: Some(vec![KeyToPath {
                key: "key".into(),
                path: "key".into(),
                mode: Some(0o400),
            }]),
            default_mode: Some(0o400),
            optional: Some(false),
        }),
        ..Default::default()
    }
}

/// A run-once Job around `pod` (its containers, volumes and affinity), with the
/// settings every Backup and Restore Job shares: retries, deadline, TTL, service
/// account, no API token, the user to run as.
pub fn pod_job(
    metadata: ObjectMeta,
    pod_labels: BTreeMap<String, String>,
    pod: PodSpec,
    settings: &JobSettings,
) -> Job {
    Job {
        metadata,
        spec: Some(JobSpec {
            backoff_limit: Some(settings.backoff_limit),
            active_deadline_seconds: Some(settings.active_deadline_seconds),
            ttl_seconds_after_finished: Some(settings.ttl_seconds_after_finished),
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(pod_labels),
                    ..Default::default()
                }),
                spec: Some(PodSpec {
                    restart_policy: Some("Never".into()),
                    service_account_name: settings.service_account.clone(),
                    automount_service_account_token: Some(false),
                    security_context: settings.run_as_user.map(|uid| PodSecurityContext {
                        run_as_user: Some(uid),
                        run_as_non_root: Some(uid != 0),
                        ..Default::default()
                    }),
                    ..pod
                }),
            },
            ..Default::default()
        }),
        status: None,
    }
}

fn env_var(name: &str, value: &str) -> EnvVar {
    EnvVar {
        name: name.into(),
        value: Some(value.into()),
        value_from: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::BackupSettings;
    use midplane_api::{App, AppSpec, BackupPolicy, ComponentTemplate, MiddlewareSpec};

    pub(crate) fn target() -> Target {
        let mut app = App::new(
            "cache",
            AppSpec {
                components: vec![ComponentTemplate {
                    name: "redis".into(),
                    spec: MiddlewareSpec {
                        plugin: "redis".into(),
                        replicas: 1,
                        shards: 1,
                        backup: Some(BackupPolicy {
                            enabled: true,
                            schedule: "0 3 * * *".into(),
                            encryption: Some("aes256-cbc".into()),
                            storage: "nightly".into(),
                            key_secret: Some("cache-key".into()),
                            retention: None,
                        }),
                        ..Default::default()
                    },
                }],
            },
        );
        app.metadata.namespace = Some("shop".into());
        app.metadata.uid = Some("uid-7".into());
        let settings = BackupSettings {
            storages: BTreeMap::from([(
                "nightly".into(),
                "s3://bk/prefix?region=eu-west-1".into(),
            )]),
            ..Default::default()
        };
        let (mut ts, errs) = crate::policy::targets(&app, &settings);
        assert!(errs.is_empty(), "{errs:?}");
        ts.remove(0)
    }

    #[test]
    fn job_mounts_the_pvc_read_only_and_runs_the_cli() {
        let t = target();
        let settings = JobSettings {
            image: "reg.example/midplane:9".into(),
            credentials_secret: Some("s3-creds".into()),
            run_as_user: Some(999),
            ..Default::default()
        };
        let job = backup_job(&t, "20261127T030000Z-abcdef", &settings);
        let meta = &job.metadata;
        let name = meta.name.as_deref().expect("name");
        assert!(
            name.starts_with("backup-cache-redis-0-0-") && name.len() <= 63,
            "{name}"
        );
        assert_eq!(meta.namespace.as_deref(), Some("shop"));
        let l = meta.labels.as_ref().expect("labels");
        assert_eq!(l[labels::APP], "cache");
        assert_eq!(l[labels::COMPONENT_NAME], "redis");
        assert_eq!(l[labels::MIDDLEWARE_INSTANCE], "cache-redis-0-0");
        assert_eq!(l[labels::BACKUP_ID], "20261127T030000Z-abcdef");
        assert_eq!(l[labels::COMPONENT], "backup");
        let owner = &meta.owner_references.as_ref().expect("owner")[0];
        assert_eq!(
            (owner.kind.as_str(), owner.name.as_str(), owner.uid.as_str()),
            ("App", "cache", "uid-7")
        );
        assert_eq!(owner.controller, Some(true));

        let spec = job.spec.as_ref().expect("spec");
        assert_eq!(spec.backoff_limit, Some(1));
        assert_eq!(spec.active_deadline_seconds, Some(21600));
        assert_eq!(spec.ttl_seconds_after_finished, Some(86400));
        let tpl = &spec.template;
        let pod_labels = tpl
            .metadata
            .as_ref()
            .and_then(|m| m.labels.as_ref())
            .expect("l");
        assert!(!pod_labels.contains_key(labels::MIDDLEWARE_INSTANCE));
        assert_eq!(pod_labels[labels::BACKUP_OF], "cache-redis-0-0");
        let pod = tpl.spec.as_ref().expect("pod");
        assert_eq!(pod.restart_policy.as_deref(), Some("Never"));
        let vols = pod.volumes.as_ref().expect("volumes");
        let pvc = vols[0].persistent_volume_claim.as_ref().expect("pvc");
        assert_eq!(pvc.claim_name, "cache-redis-0-0-data");
        assert_eq!(pvc.read_only, Some(true));
        let secret = vols[1].secret.as_ref().expect("secret");
        assert_eq!(secret.secret_name.as_deref(), Some("cache-key"));
        let c = &pod.containers[0];
        assert_eq!(c.image.as_deref(), Some("reg.example/midplane:9"));
        assert_eq!(
            c.command.as_ref().expect("command").join(" "),
            "midplane backup create --source /data --to s3://bk/prefix?region=eu-west-1 \
             --encryption aes256-cbc --key-file /keys/key"
        );
        let mounts = c.volume_mounts.as_ref().expect("mounts");
        assert!(mounts.iter().all(|m| m.read_only == Some(true)));
        let env = c.env.as_ref().expect("env");
        let get = |n: &str| {
            env.iter()
                .find(|e| e.name == n)
                .and_then(|e| e.value.clone())
        };
        assert_eq!(
            get(ENV_BACKUP_ID).as_deref(),
            Some("20261127T030000Z-abcdef")
        );
        let labels_json: BTreeMap<String, String> =
            serde_json::from_str(&get(ENV_BACKUP_LABELS).expect("labels")).expect("json");
        assert_eq!(labels_json["midplane.dev/instance"], "cache-redis-0-0");
        assert_eq!(labels_json[labels::COMPONENT_NAME], "redis");
        let env_from = c.env_from.as_ref().expect("envFrom");
        assert_eq!(
            env_from[0].secret_ref.as_ref().map(|s| s.name.as_str()),
            Some("s3-creds")
        );
        let aff = pod
            .affinity
            .as_ref()
            .and_then(|a| a.pod_affinity.as_ref())
            .expect("aff");
        let term = &aff
            .required_during_scheduling_ignored_during_execution
            .as_ref()
            .expect("terms")[0];
        assert_eq!(term.topology_key, "kubernetes.io/hostname");
        assert_eq!(
            pod.security_context.as_ref().and_then(|s| s.run_as_user),
            Some(999)
        );
    }

    #[test]
    fn job_names_are_short_distinct_labels() {
        let long = "a-very-long-application-name-with-a-long-component-name-0-12";
        let a = job_name(long, "20261127T030000Z-000001");
        let b = job_name(long, "20261127T030000Z-000002");
        assert_ne!(a, b);
        for n in [&a, &b] {
            assert!(n.len() <= 63, "{n}");
            assert!(!n.contains("--"), "{n}");
            assert!(
                n.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'),
                "{n}"
            );
        }
        assert_eq!(a, job_name(long, "20261127T030000Z-000001"));
    }
}
