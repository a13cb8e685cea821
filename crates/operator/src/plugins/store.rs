//! The plugins a controller renders with: the bundled set, overridden by
//! plugin ConfigMaps (label `midplane.dev/plugin`). A ConfigMap that fails to
//! load never replaces the last good version of its plugin.

use k8s_openapi::api::core::v1::ConfigMap;
use kube::ResourceExt;
use midplane_plugin::{Plugin, PluginError, Registry};
use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};
use tokio::sync::broadcast;

/// What a ConfigMap change did to the store.
#[derive(Debug)]
pub enum Update {
    /// A new or changed plugin now serves.
    Accepted(Arc<Plugin>),
    /// Same content as the serving version.
    Unchanged,
    /// Refused: the last good version (if any) keeps serving.
    Rejected {
        plugin: String,
        error: PluginError,
        /// The version the broken change declared, when plugin.yaml says.
        version: Option<String>,
        /// sha256 of the refused content.
        content_hash: String,
        /// Hash of the version still served, if any.
        serving_hash: Option<String>,
    },
}

/// The plugins in effect, shared by every controller of a process. Each
/// change of the version a plugin name serves is announced to
/// [`PluginStore::changes`] subscribers, which is how controllers learn to
/// re-reconcile the objects using it (no writes to wake themselves).
#[derive(Clone)]
pub struct PluginStore {
    inner: Arc<RwLock<State>>,
    changed: broadcast::Sender<String>,
}

struct State {
    bundled: Registry,
    /// Plugins loaded from ConfigMaps, by plugin name.
    from_cluster: BTreeMap<String, Arc<Plugin>>,
    /// The last error per plugin, cleared by a good version.
    rejected: BTreeMap<String, String>,
}

impl PluginStore {
    pub fn new(bundled: Registry) -> Self {
        Self {
            inner: Arc::new(RwLock::new(State {
                bundled,
                from_cluster: BTreeMap::new(),
                rejected: BTreeMap::new(),
            })),
            changed: broadcast::channel(CHANGES).0,
        }
    }

    /// The names of plugins whose serving version changed, from now on. A
    /// receiver that falls behind gets `Lagged` and should treat every
    /// plugin as changed.
    pub fn changes(&self) -> broadcast::Receiver<String> {
        self.changed.subscribe()
    }

    fn announce(&self, name: &str) {
        // No receiver is fine: nothing renders with this store yet.
        let _ = self.changed.send(name.to_string());
    }

    /// The plugin a label value names, from the cluster first, then bundled.
    pub fn get(&self, name: &str) -> Option<Arc<Plugin>> {
        let s = self.inner.read().ok()?;
        s.from_cluster
            .get(name)
            .cloned()
            .or_else(|| s.bundled.get(name))
    }

    /// A snapshot of every plugin in effect.
    pub fn registry(&self) -> Registry {
        let Ok(s) = self.inner.read() else {
            return Registry::new();
        };
        let mut reg = s.bundled.clone();
        for p in s.from_cluster.values() {
            reg.insert((**p).clone());
        }
        reg
    }

    pub fn rejected(&self, name: &str) -> Option<String> {
        self.inner.read().ok()?.rejected.get(name).cloned()
    }

    /// Takes a plugin ConfigMap as created or changed.
    pub fn apply_config_map(&self, cm: &ConfigMap) -> Update {
        let label = cm
            .labels()
            .get(midplane_api::labels::PLUGIN)
            .cloned()
            .unwrap_or_else(|| cm.name_any());
        match Plugin::from_config_map(cm) {
            Ok(plugin) => {
                let Ok(mut s) = self.inner.write() else {
                    return Update::Unchanged;
                };
                s.rejected.remove(&label);
                let name = plugin.metadata.name.clone();
                let current = s
                    .from_cluster
                    .get(&name)
                    .cloned()
                    .or_else(|| s.bundled.get(&name));
                if current.is_some_and(|c| c.content_hash == plugin.content_hash) {
                    s.from_cluster
                        .entry(name)
                        .or_insert_with(|| Arc::new(plugin));
                    return Update::Unchanged;
                }
                let plugin = Arc::new(plugin);
                s.from_cluster.insert(name.clone(), plugin.clone());
                drop(s);
                self.announce(&name);
                Update::Accepted(plugin)
            }
            Err(error) => {
                let files: midplane_plugin::Files = cm
                    .data
                    .iter()
                    .flatten()
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect();
                let version = declared_version(cm);
                let serving_hash = self.get(&label).map(|p| p.content_hash.clone());
                if let Ok(mut s) = self.inner.write() {
                    s.rejected.insert(label.clone(), error.to_string());
                }
                Update::Rejected {
                    plugin: label,
                    error,
                    version,
                    content_hash: midplane_plugin::hash_files(&files),
                    serving_hash,
                }
            }
        }
    }

    /// A plugin ConfigMap was deleted: fall back to the bundled version.
    pub fn remove_config_map(&self, cm: &ConfigMap) {
        let Some(label) = cm.labels().get(midplane_api::labels::PLUGIN).cloned() else {
            return;
        };
        let removed = match self.inner.write() {
            Ok(mut s) => {
                let gone = s.from_cluster.remove(&label);
                let fallback = s.bundled.get(&label).map(|p| p.content_hash.clone());
                gone.is_some_and(|g| Some(&g.content_hash) != fallback.as_ref())
            }
            Err(_) => false,
        };
        if removed {
            self.announce(&label);
        }
    }
}

/// Changes a slow receiver may fall behind by before it is told it lagged.
const CHANGES: usize = 256;

/// The `version:` a plugin.yaml declares, read leniently (the file may be broken).
fn declared_version(cm: &ConfigMap) -> Option<String> {
    let meta = cm.data.as_ref()?.get(midplane_plugin::METADATA_FILE)?;
    meta.lines()
        .find_map(|l| l.strip_prefix("version:"))
        .map(|v| v.trim().trim_matches('"').to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_broken_configmap_keeps_the_last_good_plugin() {
        let bundled = midplane_plugin::registry::bundled().expect("bundled");
        let good = bundled.get("redis").expect("redis");
        let store = PluginStore::new(bundled);
        let mut changes = store.changes();

        let mut cm = good.to_config_map("midplane-system");
        assert!(matches!(store.apply_config_map(&cm), Update::Unchanged));
        assert!(changes.try_recv().is_err(), "the same content is no change");

        let data = cm.data.get_or_insert_with(Default::default);
        let values = data.get("values.yaml").cloned().unwrap_or_default();
        data.insert(
            "values.yaml".into(),
            values.replace("tag: \"0.1.0\"", "tag: \"0.2.0\""),
        );
        let changed = match store.apply_config_map(&cm) {
            Update::Accepted(p) => p,
            other => panic!("expected Accepted, got {other:?}"),
        };
        assert_ne!(changed.content_hash, good.content_hash);
        assert_eq!(changes.try_recv().ok().as_deref(), Some("redis"));

        let mut broken = cm.clone();
        broken.data.get_or_insert_with(Default::default).insert(
            "templates.service.yaml".into(),
            "{{ .Group.Name | nosuch }}".into(),
        );
        match store.apply_config_map(&broken) {
            Update::Rejected { plugin, error, .. } => {
                assert_eq!(plugin, "redis");
                assert!(
                    error.to_string().contains("redis/templates/service.yaml:1"),
                    "{error}"
                );
            }
            other => panic!("expected Rejected, got {other:?}"),
        }
        assert_eq!(
            store.get("redis").expect("still served").content_hash,
            changed.content_hash,
            "last good version keeps serving"
        );
        assert!(store.rejected("redis").is_some());
        assert!(
            changes.try_recv().is_err(),
            "a refused version changes nothing"
        );

        store.remove_config_map(&cm);
        assert_eq!(
            store.get("redis").expect("bundled").content_hash,
            good.content_hash
        );
        assert_eq!(
            changes.try_recv().ok().as_deref(),
            Some("redis"),
            "falling back to the bundled version is a change"
        );
    }
}
