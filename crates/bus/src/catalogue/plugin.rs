//! Plugin events, published by plugin-svc when a plugin ConfigMap changes.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{ObjectRef, event};

/// A changed plugin passed validation and is now the version served.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PluginUpdated {
    /// Plugin name, e.g. `redis`.
    pub plugin: String,
    /// The plugin's own version (`version` in its plugin.yaml).
    pub plugin_version: String,
    /// `sha256:<hex>` over the plugin's metadata, defaults and templates.
    pub plugin_hash: String,
    /// `pluginHash` of the version served before, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_plugin_hash: Option<String>,
    /// The ConfigMap holding the plugin.
    pub config_map: ObjectRef,
}

/// A changed plugin failed validation; the last good version keeps serving.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PluginRejected {
    pub plugin: String,
    /// Plugin version the broken change declared.
    pub plugin_version: String,
    /// `sha256:<hex>` of the rejected content.
    pub plugin_hash: String,
    pub config_map: ObjectRef,
    /// Template file that failed, e.g. `templates/statefulset.yaml`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template: Option<String>,
    /// 1-based line in that template.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub line: Option<u32>,
    pub message: String,
    /// `pluginHash` of the version still served (the last good one), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub serving_plugin_hash: Option<String>,
}

event!(PluginUpdated, "midplane.plugin.updated",
producer: "plugin-svc", consumers: ["group-svc"],
summary: "A plugin ConfigMap changed and the new version validated; every Group using it is re-rendered.",
subject: |e| format!("plugins/{}", e.plugin),
example: PluginUpdated {
    plugin: "redis".into(),
    plugin_version: "0.1.1".into(),
    plugin_hash: "sha256:9f2c1e0b7d4a6c3e8b5f1a2d3c4b5a69788796a5b4c3d2e1f0a9b8c7d6e5f4a3".into(),
    previous_plugin_hash: Some("sha256:1b2c3d4e5f60718293a4b5c6d7e8f90112233445566778899aabbccddeeff00".into()),
    config_map: ObjectRef::new("midplane-system", "plugin-redis"),
});

event!(PluginRejected, "midplane.plugin.rejected",
producer: "plugin-svc", consumers: [],
summary: "A plugin ConfigMap changed but failed validation; nothing is re-rendered and the last good version keeps serving.",
subject: |e| format!("plugins/{}", e.plugin),
example: PluginRejected {
    plugin: "redis".into(),
    plugin_version: "0.1.2".into(),
    plugin_hash: "sha256:77aa0c5e1d2f3a4b5c6d7e8f9a0b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e6f7a8b".into(),
    config_map: ObjectRef::new("midplane-system", "plugin-redis"),
    template: Some("templates/deployment.yaml".into()),
    line: Some(42),
    message: "function \"nindnet\" not defined".into(),
    serving_plugin_hash: Some("sha256:9f2c1e0b7d4a6c3e8b5f1a2d3c4b5a69788796a5b4c3d2e1f0a9b8c7d6e5f4a3".into()),
});
