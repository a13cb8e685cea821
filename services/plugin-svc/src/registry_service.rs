//! The PluginRegistry gRPC service over a shared, swappable registry.

use midplane_operator::plugins::PluginStore;
use midplane_plugin::{Files, Parameter, ParameterClass, Plugin, Registry};
use midplane_proto::common::{ErrorDetail, FieldError};
use midplane_proto::plugin as pb;
use midplane_proto::plugin::plugin_registry_server::PluginRegistry;
use midplane_runtime::status::{ApiError, reason};
use tonic::{Code, Request, Response, Status};

/// Serves what the plugin store holds; the watcher writes new versions into it.
#[derive(Clone)]
pub struct PluginRegistryService {
    store: PluginStore,
}

impl PluginRegistryService {
    pub fn new(store: PluginStore) -> Self {
        Self { store }
    }

    fn snapshot(&self) -> Result<Registry, Status> {
        Ok(self.store.registry())
    }

    fn with_rejection(&self, p: &Plugin) -> pb::Plugin {
        let mut out = to_proto(p);
        out.rejected_update = self
            .store
            .rejected(&p.metadata.name)
            .map(|message| ErrorDetail {
                reason: "PluginRejected".into(),
                message,
                fields: vec![],
                retryable: false,
            });
        out
    }
}

pub fn to_proto(p: &Plugin) -> pb::Plugin {
    let m = &p.metadata;
    pb::Plugin {
        name: m.name.clone(),
        plugin_version: m.version.clone(),
        description: m.description.clone(),
        roles: m.roles.clone(),
        ports: m
            .ports
            .iter()
            .map(|x| pb::Port {
                name: x.name.clone(),
                port: u32::from(x.port),
            })
            .collect(),
        config_path: m.config.path.clone(),
        parameters: m.parameters.iter().map(parameter).collect(),
        plugin_hash: format!("sha256:{}", p.content_hash),
        templates: p.template_files.clone(),
        source: p.source.clone(),
        rejected_update: None,
        middleware_versions: m.middleware.versions.clone(),
        default_middleware_version: m.middleware.default_version.clone(),
    }
}

fn parameter(p: &Parameter) -> pb::Parameter {
    let class = match p.class {
        ParameterClass::Dynamic => pb::parameter::Class::Dynamic,
        ParameterClass::RestartRequired => pb::parameter::Class::RestartRequired,
        ParameterClass::Immutable => pb::parameter::Class::Immutable,
    };
    pb::Parameter {
        name: p.name.clone(),
        class: class as i32,
        default_value: p.default.clone().unwrap_or_default(),
        description: p.description.clone(),
    }
}

#[tonic::async_trait]
impl PluginRegistry for PluginRegistryService {
    async fn list_plugins(
        &self,
        _: Request<pb::ListPluginsRequest>,
    ) -> Result<Response<pb::ListPluginsResponse>, Status> {
        let reg = self.snapshot()?;
        Ok(Response::new(pb::ListPluginsResponse {
            plugins: reg.iter().map(|p| self.with_rejection(p)).collect(),
        }))
    }

    async fn get_plugin(
        &self,
        req: Request<pb::GetPluginRequest>,
    ) -> Result<Response<pb::Plugin>, Status> {
        let req = req.into_inner();
        if req.name.is_empty() {
            return Err(ApiError::invalid_field("name", "is required").into());
        }
        let reg = self.snapshot()?;
        let plugin = reg
            .get(&req.name)
            .ok_or_else(|| ApiError::not_found(reason::PLUGIN_NOT_FOUND, "Plugin", &req.name))?;
        if !req.plugin_version.is_empty() && req.plugin_version != plugin.metadata.version {
            return Err(ApiError::new(
                Code::NotFound,
                reason::PLUGIN_VERSION_NOT_FOUND,
                format!(
                    "plugin {} is at version {}, not {}",
                    req.name, plugin.metadata.version, req.plugin_version
                ),
            )
            .resource("Plugin", &format!("{}@{}", req.name, req.plugin_version))
            .meta("servedPluginVersion", &plugin.metadata.version)
            .into());
        }
        Ok(Response::new(self.with_rejection(&plugin)))
    }

    async fn validate_plugin(
        &self,
        req: Request<pb::ValidatePluginRequest>,
    ) -> Result<Response<pb::ValidatePluginResponse>, Status> {
        let files: Files = req
            .into_inner()
            .files
            .map(|f| f.files.into_iter().collect())
            .unwrap_or_default();
        if files.is_empty() {
            return Err(
                ApiError::invalid_field("files", "holds no file (plugin.yaml at least)").into(),
            );
        }
        Ok(Response::new(
            match Plugin::from_files(files, "ValidatePlugin request".into()) {
                Ok(p) => pb::ValidatePluginResponse {
                    valid: true,
                    errors: vec![],
                    plugin: Some(to_proto(&p)),
                },
                Err(e) => pb::ValidatePluginResponse {
                    valid: false,
                    errors: vec![plugin_problem(&e)],
                    plugin: None,
                },
            },
        ))
    }

    async fn render_preview(
        &self,
        req: Request<pb::RenderPreviewRequest>,
    ) -> Result<Response<pb::RenderPreviewResponse>, Status> {
        let req = req.into_inner();
        let app: midplane_api::App = serde_yaml::from_str(&req.app_yaml)
            .map_err(|e| ApiError::invalid_field("app_yaml", e.to_string()))?;
        let reg = self.snapshot()?;
        if !req.plugin.is_empty() && reg.get(&req.plugin).is_none() {
            return Err(
                ApiError::not_found(reason::PLUGIN_NOT_FOUND, "Plugin", &req.plugin).into(),
            );
        }
        let objects = midplane_render::render_app(&app, &reg, &Default::default())
            .map_err(|e| invalid(&e))?;
        let objects: Vec<_> = objects
            .into_iter()
            .filter(|o| req.plugin.is_empty() || plugin_of(o) == Some(req.plugin.as_str()))
            .collect();
        let yaml = midplane_render::to_yaml_stream(&objects)
            .map_err(|e| ApiError::internal(format!("encoding the objects: {e}")))?;
        Ok(Response::new(pb::RenderPreviewResponse {
            objects_yaml: yaml,
        }))
    }
}

fn plugin_of(o: &midplane_render::RenderedObject) -> Option<&str> {
    o.object
        .pointer("/spec/plugin")
        .or_else(|| o.object.pointer("/metadata/labels/app.kubernetes.io~1name"))
        .and_then(|v| v.as_str())
}

/// Where a template error points, as `templates/<file>:<line>` relative to
/// the plugin directory, from the template's name (`<plugin>/templates/<file>`)
/// and the engine's message (`template: <name>:<line>[:<col>]: ...`); and the
/// message without that prefix.
fn template_location(template: &str, message: &str) -> (String, String) {
    let file = template
        .split_once('/')
        .map_or(template, |(_, rest)| rest)
        .to_string();
    let Some(rest) = message.strip_prefix(&format!("template: {template}:")) else {
        return (file, message.to_string());
    };
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    if digits.is_empty() {
        return (file, message.to_string());
    }
    // Skip `<line>:` and an optional `<col>:`, then the space.
    let mut tail = &rest[digits.len()..];
    tail = tail.strip_prefix(':').unwrap_or(tail);
    let col: String = tail.chars().take_while(char::is_ascii_digit).collect();
    if !col.is_empty() {
        tail = tail[col.len()..]
            .strip_prefix(':')
            .unwrap_or(&tail[col.len()..]);
    }
    (format!("{file}:{digits}"), tail.trim_start().to_string())
}

/// A plugin problem as the file (`[:line]`) it is in and what is wrong there.
fn plugin_problem(e: &midplane_plugin::PluginError) -> FieldError {
    use midplane_plugin::PluginError as E;
    let (field, message) = match e {
        E::Invalid { file, message } => (file.clone(), message.clone()),
        E::Template { template, message } => template_location(template, message),
        E::Io { path, .. } => (path.clone(), e.to_string()),
        E::ConfigMap { name, message } => (name.clone(), message.clone()),
    };
    FieldError { field, message }
}

/// An invalid App or a failing template becomes INVALID_ARGUMENT with a
/// BadRequest violation per field (or per template location).
fn invalid(e: &midplane_render::RenderError) -> Status {
    use midplane_render::RenderError as E;
    match e {
        E::Invalid(errs) => {
            let problems = errs.0.iter().map(|f| (f.field.clone(), f.message.clone()));
            return midplane_runtime::status::app_invalid(problems, &errs.to_string());
        }
        E::UnknownPlugin(name) => ApiError::not_found(reason::PLUGIN_NOT_FOUND, "Plugin", name),
        E::Template { template, message } => {
            let (at, what) = template_location(template, message);
            ApiError::new(Code::InvalidArgument, reason::RENDER_FAILED, e.to_string())
                .field(at, what)
        }
        E::Yaml { template, .. } | E::Object { template, .. } => {
            let (at, _) = template_location(template, "");
            ApiError::new(Code::InvalidArgument, reason::RENDER_FAILED, e.to_string())
                .field(at, e.to_string())
        }
    }
    .into_status()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn template_errors_point_at_file_and_line() {
        assert_eq!(
            template_location(
                "redis/templates/deployment.yaml",
                "template: redis/templates/deployment.yaml:29: function \"nindnet\" not defined"
            ),
            (
                "templates/deployment.yaml:29".to_string(),
                "function \"nindnet\" not defined".to_string()
            )
        );
        assert_eq!(
            template_location(
                "redis/templates/pvc.yaml",
                "template: redis/templates/pvc.yaml:3:12: executing \"x\" at <.y>: boom"
            ),
            (
                "templates/pvc.yaml:3".to_string(),
                "executing \"x\" at <.y>: boom".to_string()
            )
        );
        assert_eq!(
            template_location("redis/templates/a.yaml", "other"),
            ("templates/a.yaml".to_string(), "other".to_string())
        );
    }
}
