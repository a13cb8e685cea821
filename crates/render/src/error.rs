use midplane_api::ValidationErrors;

/// Why a render failed. Each variant names the template or field at fault.
#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    #[error("{0}")]
    Invalid(#[from] ValidationErrors),
    #[error("unknown plugin {0:?}")]
    UnknownPlugin(String),
    /// A template failed to execute; the message carries `name:line:col` (Go's format).
    #[error("{message}")]
    Template { template: String, message: String },
    #[error("{template}: rendered YAML does not parse: {message}")]
    Yaml { template: String, message: String },
    #[error("{template}: {kind} {name}: {message}")]
    Object {
        template: String,
        kind: String,
        name: String,
        message: String,
    },
}

impl RenderError {
    /// A short category, used as Event reason and metric label.
    pub fn reason(&self) -> &'static str {
        match self {
            RenderError::Invalid(_) => "Invalid",
            RenderError::UnknownPlugin(_) => "UnknownPlugin",
            RenderError::Template { .. } => "TemplateError",
            RenderError::Yaml { .. } => "RenderedYamlInvalid",
            RenderError::Object { .. } => "RenderedObjectInvalid",
        }
    }
}
