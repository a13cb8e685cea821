//! backup-svc configuration: the runtime's `server:` section plus `backup:`, `scheduler:`,
//! `job:` and `bus:` (docs/backup-scheduling.md lists every key).

use std::collections::BTreeMap;
use std::path::PathBuf;

use midplane_runtime::ServerConfig;
use serde::Deserialize;

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub server: ServerConfig,
    pub backup: BackupSettings,
    pub scheduler: SchedulerSettings,
    pub job: JobSettings,
    pub bus: BusSettings,
    pub controller: ControllerSettings,
}

/// The Backup controller (`Backup` resources, docs/backups.md).
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct ControllerSettings {
    /// Reconcile Backup resources: snapshot, Job, status, retention, object cleanup.
    pub enabled: bool,
    /// The agent gateway that takes snapshots, e.g.
    /// `http://agent-gateway.midplane-system:7000`; unset: Jobs read the volume's live files
    /// (and each Backup says so).
    pub gateway_addr: Option<String>,
    /// Bearer token file for the gateway (mounted from a Secret).
    pub gateway_token_file: Option<PathBuf>,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct BackupSettings {
    /// Storage URI used when a request names none (credentials from the environment).
    pub default_storage: Option<String>,
    /// Key reference used when a request names none.
    pub default_key_ref: Option<String>,
    /// Where instance data is mounted: `<data_root>/<namespace>/<name>/<instance>`.
    pub data_root: PathBuf,
    /// Where Secrets holding backup keys are mounted: `<secrets_dir>/<namespace>/<name>/<key>`.
    pub secrets_dir: PathBuf,
    /// gzip level for new backups (default 5, see `midplane_backup::backup::DEFAULT_LEVEL`).
    pub compression_level: u32,
    /// Named storages (name → URI). An App's `backup.storage` names one; a gRPC request's
    /// `storage` may name one too.
    pub storages: BTreeMap<String, String>,
    /// Secret (in the App's namespace, key `key`) used when a backup policy names no keySecret.
    pub default_key_secret: Option<String>,
    /// CreateBackup answers this long before the caller's gRPC deadline, with phase RUNNING,
    /// when the backup has not finished by then (it goes on; poll GetBackup).
    pub deadline_margin_ms: u64,
}

impl Default for BackupSettings {
    fn default() -> Self {
        Self {
            default_storage: None,
            default_key_ref: None,
            data_root: PathBuf::from("/data"),
            secrets_dir: PathBuf::from("/etc/midplane/secrets"),
            compression_level: midplane_backup::backup::DEFAULT_LEVEL,
            storages: BTreeMap::new(),
            default_key_secret: None,
            deadline_margin_ms: 500,
        }
    }
}

/// How a scheduled backup runs.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// In this process, from `<data_root>/<namespace>/<group>/<instance>` (the embedded default).
    #[default]
    Inline,
    /// As a Kubernetes Job (the Backup Pod) mounting the instance's PVC.
    Job,
    /// As a `Backup` resource per Group and slot, which the Backup controller runs (a
    /// snapshot, then a Job); its retention deletes older Backups with their objects.
    Resources,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SchedulerSettings {
    /// Watch Apps and run their backup policies.
    pub enabled: bool,
    pub mode: Mode,
    /// Kubeconfig file; unset: `$KUBECONFIG`, `~/.kube/config` or the in-cluster account.
    pub kubeconfig: Option<PathBuf>,
    /// Watch Apps of this namespace only; unset: every namespace.
    pub namespace: Option<String>,
    /// Scheduled backups running at once.
    pub max_concurrent: usize,
    /// Only the replica holding the Lease schedules (so two replicas never back up twice).
    pub leader_election: midplane_operator::leader::LeaderElectionConfig,
}

impl Default for SchedulerSettings {
    fn default() -> Self {
        Self {
            enabled: false,
            mode: Mode::Inline,
            kubeconfig: None,
            namespace: None,
            max_concurrent: 2,
            leader_election: Default::default(),
        }
    }
}

/// The Backup Pod (`scheduler.mode: job`).
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct JobSettings {
    /// Image holding the `midplane` CLI.
    pub image: String,
    pub image_pull_policy: Option<String>,
    /// Pod retries before the Job counts as failed.
    pub backoff_limit: i32,
    /// The Job fails once it has run this long.
    pub active_deadline_seconds: i64,
    /// Finished Jobs are garbage-collected after this long.
    pub ttl_seconds_after_finished: i32,
    /// Secret (in the App's namespace) whose keys become the Pod's environment: storage
    /// credentials such as AWS_ACCESS_KEY_ID.
    pub credentials_secret: Option<String>,
    pub service_account: Option<String>,
    /// User the Pod runs as, so it can read the middleware's files.
    pub run_as_user: Option<i64>,
    /// Schedule the Pod on the node of the instance's Pod (needed for ReadWriteOnce volumes).
    pub colocate: bool,
}

impl Default for JobSettings {
    fn default() -> Self {
        Self {
            image: format!("midplane/midplane:{}", env!("CARGO_PKG_VERSION")),
            image_pull_policy: None,
            backoff_limit: 1,
            active_deadline_seconds: 6 * 3600,
            ttl_seconds_after_finished: 24 * 3600,
            credentials_secret: None,
            service_account: None,
            run_as_user: None,
            colocate: true,
        }
    }
}

#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct BusSettings {
    /// AMQP URL of RabbitMQ; unset: no backup events are published.
    pub url: Option<String>,
    /// Topic exchange; unset: the platform's (`midplane.events`).
    pub exchange: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn yaml_sections_parse_with_defaults() {
        let cfg: Config = serde_yaml::from_str(
            "scheduler: {enabled: true, mode: job}\n\
             job: {image: 'reg/midplane:1', backoff_limit: 3}\n\
             backup: {storages: {nightly: 'file:///b'}}\n",
        )
        .expect("parse");
        assert!(cfg.scheduler.enabled);
        assert_eq!(cfg.scheduler.mode, Mode::Job);
        assert_eq!(cfg.job.image, "reg/midplane:1");
        assert_eq!(cfg.job.backoff_limit, 3);
        assert_eq!(cfg.job.ttl_seconds_after_finished, 86400);
        assert_eq!(cfg.backup.storages["nightly"], "file:///b");
        assert_eq!(cfg.bus.url, None);
        assert!(cfg.scheduler.leader_election.enabled);
        let bad = serde_yaml::from_str::<Config>("scheduler: {mode: cron}").expect_err("mode");
        assert!(bad.to_string().contains("cron"), "{bad}");
    }
}
