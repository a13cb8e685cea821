//! The ConfigMap form of a plugin (docs/design.md, "Plugins"): the same files, keys flattened
//! (`templates/deployment.yaml` → `templates.deployment.yaml`, since ConfigMap
//! keys cannot hold '/'), labelled `midplane.dev/plugin: <name>`.

use crate::{Files, Plugin, PluginError, TEMPLATES_DIR};
use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use midplane_api::labels;
use std::collections::BTreeMap;

/// The ConfigMap name a plugin is packed under.
pub fn configmap_name(plugin: &str) -> String {
    format!("midplane-plugin-{plugin}")
}

fn key_of(path: &str) -> String {
    match path.strip_prefix(&format!("{TEMPLATES_DIR}/")) {
        Some(file) => format!("{TEMPLATES_DIR}.{file}"),
        None => path.to_string(),
    }
}

fn path_of(key: &str) -> String {
    match key.strip_prefix(&format!("{TEMPLATES_DIR}.")) {
        Some(file) => format!("{TEMPLATES_DIR}/{file}"),
        None => key.to_string(),
    }
}

impl Plugin {
    /// Packs the plugin into a ConfigMap in `namespace`.
    pub fn to_config_map(&self, namespace: &str) -> ConfigMap {
        let data: BTreeMap<String, String> = self
            .files
            .iter()
            .map(|(path, content)| (key_of(path), content.clone()))
            .collect();
        ConfigMap {
            metadata: ObjectMeta {
                name: Some(configmap_name(&self.metadata.name)),
                namespace: Some(namespace.to_string()),
                labels: Some(BTreeMap::from([
                    (labels::PLUGIN.to_string(), self.metadata.name.clone()),
                    (
                        labels::MANAGED_BY.to_string(),
                        labels::MANAGED_BY_VALUE.to_string(),
                    ),
                ])),
                annotations: Some(BTreeMap::from([
                    (
                        labels::PLUGIN_VERSION_ANNOTATION.to_string(),
                        self.metadata.version.clone(),
                    ),
                    (
                        labels::PLUGIN_HASH_ANNOTATION.to_string(),
                        self.content_hash.clone(),
                    ),
                ])),
                ..ObjectMeta::default()
            },
            data: Some(data),
            ..ConfigMap::default()
        }
    }

    /// Loads a plugin back from its ConfigMap, validating it like a directory.
    pub fn from_config_map(cm: &ConfigMap) -> Result<Self, PluginError> {
        let name = cm.metadata.name.clone().unwrap_or_default();
        let ns = cm.metadata.namespace.clone().unwrap_or_default();
        let label = cm
            .metadata
            .labels
            .as_ref()
            .and_then(|l| l.get(labels::PLUGIN))
            .cloned();
        let Some(label) = label else {
            return Err(PluginError::ConfigMap {
                name,
                message: format!("lacks the {} label", labels::PLUGIN),
            });
        };
        let files: Files = cm
            .data
            .iter()
            .flatten()
            .map(|(k, v)| (path_of(k), v.clone()))
            .collect();
        let plugin = Plugin::from_files(files, format!("configmap {ns}/{name}"))?;
        if plugin.metadata.name != label {
            return Err(PluginError::ConfigMap {
                name,
                message: format!(
                    "label {}={label} disagrees with plugin.yaml name {:?}",
                    labels::PLUGIN,
                    plugin.metadata.name
                ),
            });
        }
        Ok(plugin)
    }
}
