//! Plugins: how Midplane knows a middleware. A plugin is a directory
//! (`plugin.yaml`, `values.yaml`, `templates/`) or the same files packed into a
//! ConfigMap labelled `midplane.dev/plugin`. Loading validates everything and
//! parses every template once, so a plugin that loads renders without parse
//! errors, and a broken one is refused with the file and line.

pub mod configmap;
pub mod error;
pub mod metadata;
pub mod parameter;
pub mod registry;
pub mod validate_app;

pub use error::PluginError;
pub use metadata::{Parameter, ParameterClass, PluginMetadata, Port};
pub use parameter::ParameterType;
pub use registry::Registry;

use midplane_template::{Options, Templates, Value};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

/// Files a plugin is made of, keyed by their path inside the plugin directory.
pub type Files = BTreeMap<String, String>;

pub const METADATA_FILE: &str = "plugin.yaml";
pub const VALUES_FILE: &str = "values.yaml";
pub const TEMPLATES_DIR: &str = "templates";

/// A loaded, validated plugin with its templates parsed.
#[derive(Clone)]
pub struct Plugin {
    pub metadata: PluginMetadata,
    /// `values.yaml` as Helm reads it.
    pub values: Value,
    /// Every file, for packing and hashing.
    pub files: Files,
    /// sha256 over every file: changes on any template or default change.
    pub content_hash: String,
    /// Template file names (relative to `templates/`), in file-name order.
    pub template_files: Vec<String>,
    /// Parsed templates, shared by every render of this plugin version.
    pub templates: Arc<Templates>,
    /// Where it was loaded from, for messages.
    pub source: String,
}

impl std::fmt::Debug for Plugin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Plugin")
            .field("name", &self.metadata.name)
            .field("version", &self.metadata.version)
            .field("content_hash", &self.content_hash)
            .field("source", &self.source)
            .finish()
    }
}

impl Plugin {
    /// Loads a plugin directory.
    pub fn load_dir(dir: &Path) -> Result<Self, PluginError> {
        let mut files = Files::new();
        for name in [METADATA_FILE, VALUES_FILE] {
            let path = dir.join(name);
            if path.exists() {
                files.insert(name.to_string(), read(&path)?);
            }
        }
        let tdir = dir.join(TEMPLATES_DIR);
        let entries = std::fs::read_dir(&tdir).map_err(|source| PluginError::Io {
            path: tdir.display().to_string(),
            source,
        })?;
        for entry in entries {
            let entry = entry.map_err(|source| PluginError::Io {
                path: tdir.display().to_string(),
                source,
            })?;
            let path = entry.path();
            let name = entry.file_name().to_string_lossy().to_string();
            if path.is_dir() {
                return Err(PluginError::Invalid {
                    file: format!("{TEMPLATES_DIR}/{name}"),
                    message:
                        "templates/ must be flat: sub-directories cannot be packed into a ConfigMap"
                            .into(),
                });
            }
            files.insert(format!("{TEMPLATES_DIR}/{name}"), read(&path)?);
        }
        Self::from_files(files, dir.display().to_string())
    }

    /// Builds and validates a plugin from its files.
    pub fn from_files(files: Files, source: String) -> Result<Self, PluginError> {
        let meta_src = files
            .get(METADATA_FILE)
            .ok_or_else(|| PluginError::Invalid {
                file: METADATA_FILE.into(),
                message: "is missing".into(),
            })?;
        let metadata = PluginMetadata::parse(meta_src)?;
        let values = match files.get(VALUES_FILE) {
            Some(src) if !src.trim().is_empty() => {
                Value::from_yaml_str(src).map_err(|e| PluginError::Invalid {
                    file: VALUES_FILE.into(),
                    message: e.to_string(),
                })?
            }
            _ => Value::empty_map(),
        };
        if !matches!(values, Value::Map(_)) {
            return Err(PluginError::Invalid {
                file: VALUES_FILE.into(),
                message: "must be a mapping".into(),
            });
        }

        let prefix = format!("{TEMPLATES_DIR}/");
        let template_files: Vec<String> = files
            .keys()
            .filter_map(|k| k.strip_prefix(&prefix).map(str::to_string))
            .collect();
        if !template_files.iter().any(|f| !f.starts_with('_')) {
            return Err(PluginError::Invalid {
                file: TEMPLATES_DIR.into(),
                message: "holds no template (only helpers or nothing)".into(),
            });
        }
        for t in &metadata.instance_templates {
            if !template_files.contains(t) {
                return Err(PluginError::Invalid {
                    file: METADATA_FILE.into(),
                    message: format!("instanceTemplates names {t:?}, which is not in templates/"),
                });
            }
        }

        let mut templates = Templates::new(Options::default());
        templates
            .add(BUILTIN_HELPERS_NAME, BUILTIN_HELPERS)
            .map_err(|e| PluginError::Template {
                template: BUILTIN_HELPERS_NAME.into(),
                message: e.to_string(),
            })?;
        for f in &template_files {
            let name = template_name(&metadata.name, f);
            let src = &files[&format!("{prefix}{f}")];
            templates
                .add(&name, src)
                .map_err(|e| PluginError::Template {
                    template: name.clone(),
                    message: e.to_string(),
                })?;
        }

        let content_hash = hash_files(&files);
        Ok(Self {
            metadata,
            values,
            files,
            content_hash,
            template_files,
            templates: Arc::new(templates),
            source,
        })
    }

    /// `name@version`.
    pub fn id(&self) -> String {
        format!("{}@{}", self.metadata.name, self.metadata.version)
    }

    /// Templates rendered once per Group (not helpers, not per-instance).
    pub fn group_templates(&self) -> impl Iterator<Item = &str> {
        self.template_files
            .iter()
            .filter(|f| !f.starts_with('_') && !self.metadata.instance_templates.contains(f))
            .map(String::as_str)
    }

    /// Templates rendered once per instance, in the order plugin.yaml lists them.
    pub fn instance_templates(&self) -> impl Iterator<Item = &str> {
        self.metadata.instance_templates.iter().map(String::as_str)
    }
}

/// The name a template file is registered (and reported) under, as Helm does:
/// `redis/templates/deployment.yaml`.
pub fn template_name(plugin: &str, file: &str) -> String {
    format!("{plugin}/{TEMPLATES_DIR}/{file}")
}

pub const BUILTIN_HELPERS_NAME: &str = "midplane/builtin/_helpers.tpl";

/// Helpers every plugin gets (docs/design.md, "Plugins"). Labels follow the Kubernetes
/// recommended labels plus Midplane's own selectors.
pub const BUILTIN_HELPERS: &str = r#"{{- define "middleware.labels" -}}
app.kubernetes.io/name: {{ .Plugin.Name }}
app.kubernetes.io/instance: {{ .App.Name }}
app.kubernetes.io/component: {{ .Component.Name }}
app.kubernetes.io/version: {{ .Group.Version | quote }}
app.kubernetes.io/managed-by: midplane
midplane.dev/app: {{ .App.Name }}
midplane.dev/component: {{ .Component.Name }}
midplane.dev/group: {{ .Group.Name }}
{{- with .Instance }}
midplane.dev/instance: {{ .Name }}
{{- end }}
{{- end -}}
{{- define "middleware.selectorLabels" -}}
app.kubernetes.io/name: {{ .Plugin.Name }}
app.kubernetes.io/instance: {{ .App.Name }}
midplane.dev/group: {{ .Group.Name }}
{{- with .Instance }}
midplane.dev/instance: {{ .Name }}
{{- end }}
{{- end -}}
"#;

fn read(path: &Path) -> Result<String, PluginError> {
    std::fs::read_to_string(path).map_err(|source| PluginError::Io {
        path: path.display().to_string(),
        source,
    })
}

/// sha256 over every file of a plugin (length-prefixed, in path order).
pub fn hash_files(files: &Files) -> String {
    let mut h = Sha256::new();
    for (k, v) in files {
        // Length-prefixed so no two file sets hash alike by concatenation.
        h.update((k.len() as u64).to_be_bytes());
        h.update(k.as_bytes());
        h.update((v.len() as u64).to_be_bytes());
        h.update(v.as_bytes());
    }
    hex::encode(h.finalize())
}
