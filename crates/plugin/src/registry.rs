//! The set of plugins a render or a controller can use, by name.

use crate::{Plugin, PluginError};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

#[derive(Clone, Default, Debug)]
pub struct Registry {
    plugins: BTreeMap<String, Arc<Plugin>>,
}

impl Registry {
    pub fn new() -> Self {
        Self::default()
    }

    /// Loads every plugin directory under `dir` (each holding a plugin.yaml).
    pub fn load_dir(dir: &Path) -> Result<Self, PluginError> {
        let mut reg = Self::new();
        let entries = std::fs::read_dir(dir).map_err(|source| PluginError::Io {
            path: dir.display().to_string(),
            source,
        })?;
        let mut dirs: Vec<_> = entries
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.join(crate::METADATA_FILE).exists())
            .collect();
        dirs.sort();
        for d in dirs {
            reg.insert(Plugin::load_dir(&d)?);
        }
        Ok(reg)
    }

    /// Adds or replaces a plugin; returns the one it replaced.
    pub fn insert(&mut self, plugin: Plugin) -> Option<Arc<Plugin>> {
        self.plugins
            .insert(plugin.metadata.name.clone(), Arc::new(plugin))
    }

    pub fn remove(&mut self, name: &str) -> Option<Arc<Plugin>> {
        self.plugins.remove(name)
    }

    pub fn get(&self, name: &str) -> Option<Arc<Plugin>> {
        self.plugins.get(name).cloned()
    }

    pub fn names(&self) -> Vec<String> {
        self.plugins.keys().cloned().collect()
    }

    pub fn iter(&self) -> impl Iterator<Item = &Arc<Plugin>> {
        self.plugins.values()
    }

    pub fn is_empty(&self) -> bool {
        self.plugins.is_empty()
    }
}

mod bundled {
    include!(concat!(env!("OUT_DIR"), "/bundled.rs"));
}

/// The plugins shipped with this build (the repo's `plugins/` directory).
pub fn bundled() -> Result<Registry, crate::PluginError> {
    let mut reg = Registry::new();
    for (name, files) in bundled::BUNDLED {
        let files = files
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        reg.insert(Plugin::from_files(files, format!("bundled plugin {name}"))?);
    }
    Ok(reg)
}
