/// Why a plugin cannot be loaded. Every variant names the file.
#[derive(Debug, thiserror::Error)]
pub enum PluginError {
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("{file}: {message}")]
    Invalid { file: String, message: String },
    /// A template does not parse; the message carries its line (Go's format).
    #[error("{message}")]
    Template { template: String, message: String },
    #[error("configmap {name}: {message}")]
    ConfigMap { name: String, message: String },
}

impl PluginError {
    /// A short category, used as Event reason and metric label.
    pub fn reason(&self) -> &'static str {
        match self {
            PluginError::Io { .. } => "PluginUnreadable",
            PluginError::Invalid { .. } => "PluginInvalid",
            PluginError::Template { .. } => "PluginTemplateError",
            PluginError::ConfigMap { .. } => "PluginConfigMapInvalid",
        }
    }
}
