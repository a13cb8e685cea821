//! The custom resources. Field names follow the Kubernetes API conventions
//! (camelCase, optional fields omitted when empty).

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A user's request: the middleware components of one application.
#[derive(CustomResource, Deserialize, Serialize, Clone, Debug, PartialEq, JsonSchema, Default)]
#[kube(
    group = "midplane.dev",
    version = "v1alpha1",
    kind = "App",
    plural = "apps",
    shortname = "mapp",
    namespaced,
    status = "AppStatus",
    category = "midplane",
    printcolumn = r#"{"name":"Components","type":"integer","jsonPath":".status.componentCount"}"#,
    printcolumn = r#"{"name":"Ready","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].status"}"#,
    printcolumn = r#"{"name":"Reason","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].reason"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct AppSpec {
    /// The middleware this App runs; names are unique within the App.
    #[schemars(length(min = 1))]
    pub components: Vec<ComponentTemplate>,
}

/// One middleware of an App, as the user writes it.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, JsonSchema, Default)]
#[serde(rename_all = "camelCase")]
pub struct ComponentTemplate {
    /// DNS label, unique within the App.
    #[schemars(
        length(min = 1, max = 63),
        regex(pattern = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
    )]
    pub name: String,
    #[serde(flatten)]
    pub spec: MiddlewareSpec,
}

/// What a Component and each of its Groups run: shared by App, Component and Group.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, JsonSchema, Default)]
#[serde(rename_all = "camelCase")]
pub struct MiddlewareSpec {
    /// Plugin name, e.g. `redis`.
    #[schemars(length(min = 1))]
    pub plugin: String,
    /// Middleware version the plugin deploys, e.g. `"7.2"`; empty: the plugin's default.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub version: String,
    /// Instances per shard: one primary plus replicas.
    #[serde(default = "one")]
    #[schemars(range(min = 1, max = crate::validate::MAX_REPLICAS))]
    pub replicas: i32,
    /// Replication groups; 1 for a plain primary/replica set.
    #[serde(default = "one")]
    #[schemars(range(min = 1, max = crate::validate::MAX_SHARDS))]
    pub shards: i32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<Resources>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage: Option<Storage>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<ServiceSpec>,
    /// Middleware configuration parameters, e.g. `maxmemory: 256mb`.
    #[serde(
        default,
        skip_serializing_if = "BTreeMap::is_empty",
        deserialize_with = "crate::scalar::map"
    )]
    #[schemars(schema_with = "crate::scalar::scalar_map_schema")]
    pub parameters: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backup: Option<BackupPolicy>,
    /// Start the instances from a backup (only volumes that are empty are filled).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restore_from: Option<crate::backup::RestoreFrom>,
}

fn one() -> i32 {
    1
}

/// Compute resources per middleware container (Kubernetes quantities).
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, JsonSchema, Default)]
#[serde(rename_all = "camelCase")]
pub struct Resources {
    #[serde(
        default,
        skip_serializing_if = "BTreeMap::is_empty",
        deserialize_with = "crate::scalar::map"
    )]
    #[schemars(schema_with = "crate::scalar::quantity_map_schema")]
    pub requests: BTreeMap<String, String>,
    #[serde(
        default,
        skip_serializing_if = "BTreeMap::is_empty",
        deserialize_with = "crate::scalar::map"
    )]
    #[schemars(schema_with = "crate::scalar::quantity_map_schema")]
    pub limits: BTreeMap<String, String>,
}

/// One PersistentVolumeClaim per instance.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, JsonSchema, Default)]
#[serde(rename_all = "camelCase")]
pub struct Storage {
    /// A Kubernetes quantity, e.g. `10Gi`.
    #[serde(deserialize_with = "crate::scalar::string")]
    #[schemars(schema_with = "crate::scalar::int_or_string_schema")]
    pub size: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage_class_name: Option<String>,
}

/// The client Service.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, JsonSchema, Default)]
#[serde(rename_all = "camelCase")]
pub struct ServiceSpec {
    /// ClusterIP (default), NodePort, LoadBalancer or ExternalName.
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    #[schemars(extend("enum" = ["ClusterIP", "NodePort", "LoadBalancer", "ExternalName"]))]
    pub type_: Option<String>,
    /// Required for ExternalName.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_name: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

/// The service types Midplane renders (seed §7.2).
pub const SERVICE_TYPES: [&str; 4] = ["ClusterIP", "NodePort", "LoadBalancer", "ExternalName"];

impl ServiceSpec {
    pub fn type_or_default(&self) -> &str {
        self.type_.as_deref().unwrap_or("ClusterIP")
    }
}

/// Scheduled encrypted backups of the Component (backup-svc).
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, JsonSchema, Default)]
#[serde(rename_all = "camelCase")]
pub struct BackupPolicy {
    #[serde(default)]
    pub enabled: bool,
    /// Cron expression (5 fields), e.g. `0 3 * * *`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub schedule: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retention: Option<Retention>,
    /// aes256-gcm (default), aes256-cbc or gpg.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("enum" = ["aes256-gcm", "aes256-cbc", "gpg"]))]
    pub encryption: Option<String>,
    /// Name of a storage configured in backup-svc.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub storage: String,
    /// Secret holding the 32-byte key (key `key`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_secret: Option<String>,
}

#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, JsonSchema, Default)]
#[serde(rename_all = "camelCase")]
pub struct Retention {
    /// Keep at most this many backups.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub count: Option<i32>,
    /// Delete backups older than this duration, e.g. `168h`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_age: Option<String>,
}

#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, JsonSchema, Default)]
#[serde(rename_all = "camelCase")]
pub struct AppStatus {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub component_count: Option<i32>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub components: Vec<ComponentSummary>,
}

#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, JsonSchema, Default)]
#[serde(rename_all = "camelCase")]
pub struct ComponentSummary {
    pub name: String,
    pub ready_replicas: i32,
    pub replicas: i32,
    pub ready: bool,
}

/// One middleware of an App, owned by it. Created by the App controller.
#[derive(CustomResource, Deserialize, Serialize, Clone, Debug, PartialEq, JsonSchema, Default)]
#[kube(
    group = "midplane.dev",
    version = "v1alpha1",
    kind = "Component",
    plural = "components",
    shortname = "mcomp",
    namespaced,
    status = "ComponentStatus",
    category = "midplane",
    printcolumn = r#"{"name":"App","type":"string","jsonPath":".spec.app"}"#,
    printcolumn = r#"{"name":"Plugin","type":"string","jsonPath":".spec.plugin"}"#,
    printcolumn = r#"{"name":"Replicas","type":"integer","jsonPath":".spec.replicas"}"#,
    printcolumn = r#"{"name":"Shards","type":"integer","jsonPath":".spec.shards"}"#,
    printcolumn = r#"{"name":"Ready","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].status"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct ComponentSpec {
    /// The owning App.
    pub app: String,
    /// The component's name within the App.
    pub component: String,
    #[serde(flatten)]
    pub middleware: MiddlewareSpec,
}

#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, JsonSchema, Default)]
#[serde(rename_all = "camelCase")]
pub struct ComponentStatus {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    #[serde(default)]
    pub replicas: i32,
    #[serde(default)]
    pub ready_replicas: i32,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<String>,
    /// Parameters in effect, to refuse a change of an immutable one.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub applied_parameters: BTreeMap<String, String>,
}

/// One replication group (a primary and its replicas), owned by a Component.
/// Its controller renders the plugin and owns the workloads.
#[derive(CustomResource, Deserialize, Serialize, Clone, Debug, PartialEq, JsonSchema, Default)]
#[kube(
    group = "midplane.dev",
    version = "v1alpha1",
    kind = "Group",
    plural = "groups",
    shortname = "mgrp",
    namespaced,
    status = "GroupStatus",
    category = "midplane",
    printcolumn = r#"{"name":"Plugin","type":"string","jsonPath":".spec.plugin"}"#,
    printcolumn = r#"{"name":"Replicas","type":"integer","jsonPath":".spec.replicas"}"#,
    printcolumn = r#"{"name":"Ready","type":"integer","jsonPath":".status.readyReplicas"}"#,
    printcolumn = r#"{"name":"Primary","type":"string","jsonPath":".status.primary"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct GroupSpec {
    pub app: String,
    pub component: String,
    /// Shard ordinal within the Component.
    pub shard: i32,
    #[serde(flatten)]
    pub middleware: MiddlewareSpec,
    /// Rollouts wait while true (no instance restarts, no planned
    /// switchover); set it back to false to resume, which also retries a
    /// failed rollout. Failovers, config reloads and drift repair go on.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub paused: bool,
}

#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, JsonSchema, Default)]
#[serde(rename_all = "camelCase")]
pub struct GroupStatus {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    #[serde(default)]
    pub replicas: i32,
    #[serde(default)]
    pub ready_replicas: i32,
    /// The instance holding the primary role.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub primary: Option<String>,
    /// The role term (epoch) last observed; only grows.
    #[serde(default)]
    pub term: i64,
    /// The plugin's own version the children were rendered from, e.g. `0.1.0`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plugin_version: Option<String>,
    /// `sha256:<hex>` of the plugin content the children were rendered from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plugin_hash: Option<String>,
    /// The middleware version the children were rendered for, e.g. `7.2`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub middleware_version: Option<String>,
    /// `sha256:<hex>` of the config file every instance runs, once the agents
    /// verified it (after a live reload or a rollout).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config_hash: Option<String>,
    /// The last rolling restart of the instances.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollout: Option<RolloutStatus>,
    /// Objects the API server refused (e.g. a change of an immutable field);
    /// the rest of the Group was applied. Retried when their content changes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rejected: Vec<RejectedObject>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub instances: Vec<InstanceStatus>,
    /// What holds the Group stopped (`restore/<name>`, from its `midplane.dev/hold`
    /// annotation); absent when it runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub held: Option<String>,
}

/// A rolling restart of a Group's instances (docs/design.md, "Rollouts").
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, JsonSchema, Default)]
#[serde(rename_all = "camelCase")]
pub struct RolloutStatus {
    /// Progressing, Paused, Failed or Complete.
    pub state: String,
    /// `sha256:<hex>` over every instance's desired pod template: what the
    /// rollout rolls to.
    pub target_hash: String,
    /// The instance the rollout is at, or the one that failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance: Option<String>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub message: String,
    /// Instances restarted so far, in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rolled: Vec<String>,
    /// Planned switchovers the rollout made.
    #[serde(default)]
    pub switchovers: i32,
}

/// An object of the Group the API server refused.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, JsonSchema, Default)]
#[serde(rename_all = "camelCase")]
pub struct RejectedObject {
    /// `Kind/name`.
    pub object: String,
    /// The API server's message.
    pub message: String,
}

/// Lifecycle of one instance's Pod (seed §4.2).
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, JsonSchema, Default)]
#[serde(rename_all = "camelCase")]
pub struct InstanceStatus {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod: Option<String>,
    /// Pending, Started, Ready, Stopping, Stopped or Failed.
    pub phase: String,
    /// What agent 1 reports on its lifecycle stream: Started, Ready,
    /// NotReady, Stopping, Stopped, or Unreachable; absent without agents.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent: Option<String>,
    /// Agent 1's message with it (why not ready, say).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_message: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    /// The rendered content hash the instance runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_hash: Option<String>,
    #[serde(default)]
    pub restarts: i32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_transition_time: Option<String>,
}
