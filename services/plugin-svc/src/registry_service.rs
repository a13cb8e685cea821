//! The PluginRegistry gRPC service over a shared, swappable registry.

use midplane_operator::plugins::PluginStore;
use midplane_plugin::{Files, Parameter, ParameterClass, Plugin, Registry};
use midplane_proto::common::{ErrorDetail, FieldError};
use midplane_proto::plugin as pb;
use midplane_proto::plugin::plugin_registry_server::PluginRegistry;
use tonic::{Request, Response, Status};

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
        version: m.version.clone(),
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
        content_hash: p.content_hash.clone(),
        templates: p.template_files.clone(),
        source: p.source.clone(),
        rejected_update: None,
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
        let reg = self.snapshot()?;
        let plugin = reg
            .get(&req.name)
            .ok_or_else(|| Status::not_found(format!("plugin {:?} is not registered", req.name)))?;
        if !req.version.is_empty() && req.version != plugin.metadata.version {
            return Err(Status::not_found(format!(
                "plugin {} is at version {}, not {}",
                req.name, plugin.metadata.version, req.version
            )));
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
        Ok(Response::new(
            match Plugin::from_files(files, "ValidatePlugin request".into()) {
                Ok(p) => pb::ValidatePluginResponse {
                    valid: true,
                    errors: vec![],
                    plugin: Some(to_proto(&p)),
                },
                Err(e) => pb::ValidatePluginResponse {
                    valid: false,
                    errors: vec![FieldError {
                        field: error_field(&e),
                        message: e.to_string(),
                    }],
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
            .map_err(|e| Status::invalid_argument(format!("app_yaml: {e}")))?;
        let reg = self.snapshot()?;
        if !req.plugin.is_empty() && reg.get(&req.plugin).is_none() {
            return Err(Status::not_found(format!(
                "plugin {:?} is not registered",
                req.plugin
            )));
        }
        let objects = midplane_render::render_app(&app, &reg, &Default::default())
            .map_err(|e| invalid(&e))?;
        let objects: Vec<_> = objects
            .into_iter()
            .filter(|o| req.plugin.is_empty() || plugin_of(o) == Some(req.plugin.as_str()))
            .collect();
        let yaml = midplane_render::to_yaml_stream(&objects)
            .map_err(|e| Status::internal(e.to_string()))?;
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

fn error_field(e: &midplane_plugin::PluginError) -> String {
    match e {
        midplane_plugin::PluginError::Invalid { file, .. } => file.clone(),
        midplane_plugin::PluginError::Template { template, .. } => template.clone(),
        midplane_plugin::PluginError::Io { path, .. } => path.clone(),
        midplane_plugin::PluginError::ConfigMap { name, .. } => name.clone(),
    }
}

/// An invalid App or a failing template becomes INVALID_ARGUMENT with every
/// field error attached as details the caller can read.
fn invalid(e: &midplane_render::RenderError) -> Status {
    let detail = ErrorDetail {
        reason: e.reason().to_string(),
        message: e.to_string(),
        fields: match e {
            midplane_render::RenderError::Invalid(errs) => errs
                .0
                .iter()
                .map(|f| FieldError {
                    field: f.field.clone(),
                    message: f.message.clone(),
                })
                .collect(),
            _ => vec![],
        },
        retryable: false,
    };
    let bytes = prost::Message::encode_to_vec(&detail);
    Status::with_details(tonic::Code::InvalidArgument, e.to_string(), bytes.into())
}
