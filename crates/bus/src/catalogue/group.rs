//! Group events, published by group-svc as it renders, rolls, switches over and reloads a
//! replication group.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{ObjectRef, event};

/// Why a rollout started.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum RolloutReason {
    /// The plugin the Group uses was updated.
    PluginUpdated,
    /// The Group's spec (version, resources, parameters needing a restart) changed.
    SpecChanged,
    /// Replicas were added or removed.
    Scaled,
}

/// A rendered object, `Kind/name`.
pub type ObjectKey = String;

/// The Group's plugin templates were rendered and applied.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct GroupRendered {
    pub group: ObjectRef,
    pub component: String,
    pub plugin: String,
    /// The plugin's own version (`version` in its plugin.yaml).
    pub plugin_version: String,
    /// `sha256:<hex>` of the plugin content rendered.
    pub plugin_hash: String,
    /// `sha256:<hex>` over every rendered object.
    pub content_hash: String,
    /// Objects whose content changed and were applied (`Kind/name`).
    pub changed: Vec<ObjectKey>,
    /// Number of rendered objects left untouched.
    pub unchanged: u32,
}

/// A rolling update of the Group's instances began.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct GroupRolloutStarted {
    pub group: ObjectRef,
    pub reason: RolloutReason,
    pub content_hash: String,
    /// Instances in the order they will be rolled: replicas first, the primary last.
    pub order: Vec<String>,
}

/// Every instance runs the new content and the Group is Ready.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct GroupRolloutCompleted {
    pub group: ObjectRef,
    pub content_hash: String,
    pub rolled: Vec<String>,
    /// Primary instance after the rollout.
    pub primary: String,
    pub duration_ms: u64,
}

/// The rollout stopped; instances not yet rolled keep the old content.
/// Published once per rollout: the rollout stays stopped until its target
/// changes or it is resumed (docs/design.md, "Rollouts").
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct GroupRolloutFailed {
    pub group: ObjectRef,
    pub content_hash: String,
    /// Instance that did not become ready, if the failure is tied to one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance: Option<String>,
    pub reason: String,
    pub message: String,
}

/// A planned primary change through the agents (e.g. during a rollout).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct GroupSwitchover {
    pub group: ObjectRef,
    pub from: String,
    pub to: String,
    pub reason: String,
    pub duration_ms: u64,
}

/// An unplanned primary change after the primary failed.
///
/// Published by the Group controller when the primary its agents reported
/// was lost for the failover threshold (1 s) and the agent gateway promoted a
/// replica (docs/design.md, "Roles and agents"). Once per failover.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct GroupFailover {
    pub group: ObjectRef,
    pub failed_primary: String,
    pub new_primary: String,
    /// What detected the failure (agent, health probe).
    pub detected_by: String,
    /// Replication offset lag of the promoted replica at promotion, if known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lag_bytes: Option<u64>,
}

/// One configuration parameter change.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ParameterChange {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub old: Option<String>,
    pub new: String,
}

/// Live-reloadable parameters were applied to running instances without a restart.
///
/// Published by the Group controller once every instance verified a config
/// change that needed no restart (docs/design.md, "Config changes"), naming
/// the parameters that changed. Once per change.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct GroupConfigReloaded {
    pub group: ObjectRef,
    pub parameters: Vec<ParameterChange>,
    pub instances: Vec<String>,
}

fn group() -> ObjectRef {
    ObjectRef::new("shop", "cache-redis-0")
}

const HASH: &str = "sha256:3d5e8f1a2b4c6d7e9f0a1b2c3d4e5f60718293a4b5c6d7e8f9a0b1c2d3e4f5a6";

event!(GroupRendered, "midplane.group.rendered",
producer: "group-svc", consumers: [],
summary: "The Group's plugin templates were rendered and the changed objects applied.",
subject: |e| format!("groups/{}/{}", e.group.namespace, e.group.name),
example: GroupRendered {
    group: group(),
    component: "cache-redis".into(),
    plugin: "redis".into(),
    plugin_version: "0.1.1".into(),
    plugin_hash: "sha256:9f2c1e0b7d4a6c3e8b5f1a2d3c4b5a69788796a5b4c3d2e1f0a9b8c7d6e5f4a3".into(),
    content_hash: HASH.into(),
    changed: vec!["ConfigMap/cache-redis-0-config".into()],
    unchanged: 7,
});

event!(GroupRolloutStarted, "midplane.group.rollout.started",
producer: "group-svc", consumers: ["app-svc"],
summary: "A rolling update of the Group began (replicas first, then a switchover, then the old primary).",
subject: |e| format!("groups/{}/{}", e.group.namespace, e.group.name),
example: GroupRolloutStarted {
    group: group(),
    reason: RolloutReason::PluginUpdated,
    content_hash: HASH.into(),
    order: vec!["cache-redis-0-1".into(), "cache-redis-0-2".into(), "cache-redis-0-0".into()],
});

event!(GroupRolloutCompleted, "midplane.group.rollout.completed",
producer: "group-svc", consumers: ["app-svc"],
summary: "Every instance of the Group runs the new content and the Group is Ready.",
subject: |e| format!("groups/{}/{}", e.group.namespace, e.group.name),
example: GroupRolloutCompleted {
    group: group(),
    content_hash: HASH.into(),
    rolled: vec!["cache-redis-0-1".into(), "cache-redis-0-2".into(), "cache-redis-0-0".into()],
    primary: "cache-redis-0-1".into(),
    duration_ms: 48210,
});

event!(GroupRolloutFailed, "midplane.group.rollout.failed",
producer: "group-svc", consumers: ["app-svc"],
summary: "The rollout stopped; instances not yet rolled keep the old content.",
subject: |e| format!("groups/{}/{}", e.group.namespace, e.group.name),
example: GroupRolloutFailed {
    group: group(),
    content_hash: HASH.into(),
    instance: Some("cache-redis-0-2".into()),
    reason: "InstanceNotReady".into(),
    message: "cache-redis-0-2 not ready after 300s: readiness probe failed".into(),
});

event!(GroupSwitchover, "midplane.group.switchover",
producer: "group-svc", consumers: ["app-svc"],
summary: "A planned primary change was carried out through the agents.",
subject: |e| format!("groups/{}/{}", e.group.namespace, e.group.name),
example: GroupSwitchover {
    group: group(),
    from: "cache-redis-0-0".into(),
    to: "cache-redis-0-1".into(),
    reason: "RollingUpgrade".into(),
    duration_ms: 830,
});

event!(GroupFailover, "midplane.group.failover",
producer: "group-svc", consumers: ["app-svc"],
summary: "The primary failed and a replica was promoted.",
subject: |e| format!("groups/{}/{}", e.group.namespace, e.group.name),
example: GroupFailover {
    group: group(),
    failed_primary: "cache-redis-0-0".into(),
    new_primary: "cache-redis-0-2".into(),
    detected_by: "agent cache-redis-0-2:50052".into(),
    lag_bytes: Some(0),
});

event!(GroupConfigReloaded, "midplane.group.config.reloaded",
producer: "group-svc", consumers: [],
summary: "Live-reloadable parameters were applied to the running instances without a restart.",
subject: |e| format!("groups/{}/{}", e.group.namespace, e.group.name),
example: GroupConfigReloaded {
    group: group(),
    parameters: vec![ParameterChange {
        name: "maxmemory-policy".into(),
        old: Some("noeviction".into()),
        new: "allkeys-lru".into(),
    }],
    instances: vec!["cache-redis-0-0".into(), "cache-redis-0-1".into(), "cache-redis-0-2".into()],
});
