//! The render path: Group + plugin + values → Kubernetes objects, in apply
//! order, each owned by its Group, each instance stamped with a content hash
//! so only real changes roll. Pure: nothing here touches a cluster, so the
//! controller and `midplane render` produce the same bytes.

pub mod context;
pub mod error;
pub mod hash;
pub mod objects;
pub mod order;

pub use error::RenderError;
pub use objects::RenderedObject;

use midplane_api::{App, Group, expand};
use midplane_plugin::{Plugin, Registry};
use std::collections::BTreeMap;

/// What rendering one Group produced.
#[derive(Debug, Clone)]
pub struct GroupRender {
    /// Every object, in apply order.
    pub objects: Vec<RenderedObject>,
    /// The instances, in ordinal order (the first starts as primary).
    pub instances: Vec<String>,
    /// Content hash per instance name.
    pub instance_hashes: BTreeMap<String, String>,
    /// Pod template hash per instance name: it changes exactly when the
    /// instance's Pod must restart (see `labels::TEMPLATE_HASH`).
    pub template_hashes: BTreeMap<String, String>,
    /// The middleware version rendered (the spec's, else the plugin's default).
    pub middleware_version: String,
    /// sha256 of the rendered config file, if the plugin has one.
    pub config_hash: Option<String>,
    /// `name@version` and content hash of the plugin used.
    pub plugin: String,
    pub plugin_hash: String,
}

/// Renders one Group through its plugin.
pub fn render_group(group: &Group, plugin: &Plugin) -> Result<GroupRender, RenderError> {
    let ctx = context::GroupContext::new(group, plugin)?;
    let mut objects = Vec::new();
    for file in plugin.group_templates() {
        objects.extend(objects::render_template(
            plugin,
            file,
            &ctx.value(None),
            None,
        )?);
    }

    let config_hash = objects::find_config(&objects, &plugin.metadata.config.file)
        .map(|content| hash::sha256_hex(content.as_bytes()));
    let restart_hash = hash::restart_hash(&ctx.parameters, &plugin.metadata);

    let mut instance_hashes = BTreeMap::new();
    let mut template_hashes = BTreeMap::new();
    for instance in &ctx.instances {
        let mut rendered = Vec::new();
        for file in plugin.instance_templates() {
            rendered.extend(objects::render_template(
                plugin,
                file,
                &ctx.value(Some(instance)),
                Some(&instance.name),
            )?);
        }
        objects::stamp_restart_hash(&mut rendered, &restart_hash);
        let content_hash = hash::instance_hash(&rendered, config_hash.as_deref());
        if let Some(t) =
            objects::stamp_instance(&mut rendered, &content_hash, config_hash.as_deref())
        {
            template_hashes.insert(instance.name.clone(), t);
        }
        instance_hashes.insert(instance.name.clone(), content_hash);
        objects.extend(rendered);
    }

    for obj in &mut objects {
        objects::adopt(obj, group)?;
        objects::check_typed(obj)?;
    }
    order::sort_for_apply(&mut objects);
    Ok(GroupRender {
        objects,
        instances: ctx.instances.iter().map(|i| i.name.clone()).collect(),
        instance_hashes,
        template_hashes,
        middleware_version: ctx.version.clone(),
        config_hash,
        plugin: plugin.id(),
        plugin_hash: plugin.content_hash.clone(),
    })
}

/// Everything the platform creates for an App: its Components, their Groups
/// and every Group's objects. `previous` holds the parameters in effect per
/// component, to refuse an immutable change.
pub fn render_app(
    app: &App,
    plugins: &Registry,
    previous: &BTreeMap<String, BTreeMap<String, String>>,
) -> Result<Vec<RenderedObject>, RenderError> {
    midplane_plugin::validate_app::validate(app, plugins, previous)?;
    let mut components = Vec::new();
    let mut groups = Vec::new();
    let mut children = Vec::new();
    for component in expand::components(app) {
        for group in expand::groups(&component) {
            let plugin = plugins
                .get(&group.spec.middleware.plugin)
                .ok_or_else(|| RenderError::UnknownPlugin(group.spec.middleware.plugin.clone()))?;
            children.extend(render_group(&group, &plugin)?.objects);
            groups.push(RenderedObject::from_resource(&group, "midplane/group")?);
        }
        components.push(RenderedObject::from_resource(
            &component,
            "midplane/component",
        )?);
    }
    components.extend(groups);
    components.extend(children);
    Ok(components)
}

/// Multi-document YAML with Helm-style `# Source:` headers.
pub fn to_yaml_stream(objects: &[RenderedObject]) -> Result<String, RenderError> {
    let mut out = String::new();
    for obj in objects {
        out.push_str("---\n# Source: ");
        out.push_str(&obj.template);
        out.push('\n');
        out.push_str(
            &serde_yaml::to_string(&obj.object).map_err(|e| RenderError::Yaml {
                template: obj.template.clone(),
                message: e.to_string(),
            })?,
        );
    }
    Ok(out)
}
