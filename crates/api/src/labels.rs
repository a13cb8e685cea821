//! Label and annotation keys Midplane writes. Tools and users select on these,
//! so they are part of the public contract.

pub const NAME: &str = "app.kubernetes.io/name";
pub const INSTANCE: &str = "app.kubernetes.io/instance";
pub const COMPONENT: &str = "app.kubernetes.io/component";
pub const VERSION: &str = "app.kubernetes.io/version";
pub const MANAGED_BY: &str = "app.kubernetes.io/managed-by";
pub const MANAGED_BY_VALUE: &str = "midplane";

pub const APP: &str = "midplane.dev/app";
pub const COMPONENT_NAME: &str = "midplane.dev/component";
pub const GROUP: &str = "midplane.dev/group";
pub const SHARD: &str = "midplane.dev/shard";
/// One instance (one Deployment + one PVC + its Pod).
pub const MIDDLEWARE_INSTANCE: &str = "midplane.dev/instance";
/// The role an instance holds: primary or replica.
pub const ROLE: &str = "midplane.dev/role";
/// Marks a plugin ConfigMap; the value is the plugin name.
pub const PLUGIN: &str = "midplane.dev/plugin";

/// sha256 of everything rendered for an instance: changes exactly when the
/// instance's objects or config change.
pub const CONTENT_HASH: &str = "midplane.dev/content-hash";
/// sha256 of what needs a restart to take effect (pod template + restart-required
/// parameters); lives on the pod template so only such a change rolls the Pod.
pub const RESTART_HASH: &str = "midplane.dev/restart-hash";
/// sha256 of the rendered config file, passed to the agent's ReloadConfig.
/// On an instance's workload, and on its Pod once group-svc asked the kubelet
/// to sync the new file (a Pod change makes the kubelet sync its volumes).
pub const CONFIG_HASH: &str = "midplane.dev/config-hash";
/// sha256 of an instance workload's pod template, on the workload: it
/// changes exactly when applying the workload restarts the instance's Pod,
/// so the Group controller knows which changes roll and which are live.
pub const TEMPLATE_HASH: &str = "midplane.dev/template-hash";

/// On a plugin ConfigMap: the plugin's own version (plugin.yaml `version`).
pub const PLUGIN_VERSION_ANNOTATION: &str = "midplane.dev/plugin-version";
/// On a plugin ConfigMap: sha256 of the plugin's files.
pub const PLUGIN_HASH_ANNOTATION: &str = "midplane.dev/plugin-hash";

/// Backups: the backup id a Backup Job produces (label and annotation).
pub const BACKUP_ID: &str = "midplane.dev/backup-id";
/// On a Backup Pod: the instance whose data it reads. Deliberately not
/// [`MIDDLEWARE_INSTANCE`], so nothing that selects an instance's Pods picks
/// up a Backup Pod.
pub const BACKUP_OF: &str = "midplane.dev/backup-of";
/// On a Backup Job: the storage it writes to.
pub const BACKUP_STORAGE: &str = "midplane.dev/backup-storage";
/// What started a backup (`schedule`, `manual` or `api`, see `backup::trigger`): a label of
/// its Backup resource and of its stored manifest.
pub const BACKUP_TRIGGER: &str = "midplane.dev/backup-trigger";
/// Backup manifest label: the namespace of the App the backup came from.
pub const BACKUP_NAMESPACE: &str = "midplane.dev/namespace";
/// Backup manifest label: the App the backup came from.
pub const BACKUP_APP_NAME: &str = "midplane.dev/name";

/// On a Group: the Restore (`restore/<name>`) holding it. group-svc keeps every instance
/// of a held Group stopped (its workloads scaled to zero) and applies nothing else until
/// the annotation goes (docs/backups.md, "Restore into a running Group").
pub const HOLD: &str = "midplane.dev/hold";
/// The Restore's Jobs and their Pods: the instance whose volume they replace (not
/// [`MIDDLEWARE_INSTANCE`], so nothing that selects an instance's Pods picks them up).
pub const RESTORE_OF: &str = "midplane.dev/restore-of";
/// The Restore's Jobs: the Restore they belong to.
pub const RESTORE: &str = "midplane.dev/restore";
