//! Turning a template's output into objects, and the stamps render puts on
//! them: owner, namespace, labels, hashes.

use crate::RenderError;
use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::core::v1::{
    ConfigMap, PersistentVolumeClaim, Pod, Secret, Service, ServiceAccount,
};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use kube::{Resource, ResourceExt};
use midplane_api::{Group, expand, labels};
use midplane_plugin::{Plugin, template_name};
use midplane_template::Value;
use serde::de::DeserializeOwned;
use serde_json::{Value as Json, json};

/// One Kubernetes object and where it came from.
#[derive(Debug, Clone, PartialEq)]
pub struct RenderedObject {
    /// The template that produced it (`redis/templates/deployment.yaml`).
    pub template: String,
    /// The instance it belongs to, for per-instance templates.
    pub instance: Option<String>,
    pub object: Json,
}

impl RenderedObject {
    pub fn kind(&self) -> &str {
        self.object
            .get("kind")
            .and_then(Json::as_str)
            .unwrap_or_default()
    }
    pub fn api_version(&self) -> &str {
        self.object
            .get("apiVersion")
            .and_then(Json::as_str)
            .unwrap_or_default()
    }
    pub fn name(&self) -> &str {
        self.object
            .pointer("/metadata/name")
            .and_then(Json::as_str)
            .unwrap_or_default()
    }
    pub fn namespace(&self) -> Option<&str> {
        self.object
            .pointer("/metadata/namespace")
            .and_then(Json::as_str)
    }
    pub fn annotation(&self, key: &str) -> Option<&str> {
        self.object
            .pointer("/metadata/annotations")
            .and_then(|a| a.get(key))
            .and_then(Json::as_str)
    }

    /// A typed resource (Component, Group) as a rendered object.
    pub fn from_resource<K>(res: &K, template: &str) -> Result<Self, RenderError>
    where
        K: Resource<DynamicType = ()> + serde::Serialize,
    {
        let mut object = serde_json::to_value(res).map_err(|e| RenderError::Object {
            template: template.into(),
            kind: K::kind(&()).into_owned(),
            name: res.name_any(),
            message: e.to_string(),
        })?;
        if let Some(map) = object.as_object_mut() {
            map.insert("apiVersion".into(), json!(K::api_version(&())));
            map.insert("kind".into(), json!(K::kind(&())));
            map.remove("status");
        }
        Ok(Self {
            template: template.into(),
            instance: None,
            object,
        })
    }
}

/// Executes one template file and parses every YAML document it printed.
pub fn render_template(
    plugin: &Plugin,
    file: &str,
    data: &Value,
    instance: Option<&str>,
) -> Result<Vec<RenderedObject>, RenderError> {
    let name = template_name(&plugin.metadata.name, file);
    let text = plugin
        .templates
        .render(&name, data)
        .map_err(|e| RenderError::Template {
            template: name.clone(),
            message: e.to_string(),
        })?;
    let mut out = Vec::new();
    for (start_line, doc) in split_documents(&text) {
        if doc
            .lines()
            .all(|l| l.trim().is_empty() || l.trim_start().starts_with('#'))
        {
            continue;
        }
        let object: Json = serde_yaml::from_str(doc).map_err(|e| RenderError::Yaml {
            template: name.clone(),
            message: match e.location() {
                Some(loc) => format!(
                    "line {} of the output: {e}",
                    start_line + loc.line().saturating_sub(1)
                ),
                None => e.to_string(),
            },
        })?;
        if object.is_null() {
            continue;
        }
        if !object.is_object() {
            return Err(RenderError::Yaml {
                template: name.clone(),
                message: format!("document at output line {start_line} is not a mapping"),
            });
        }
        out.push(RenderedObject {
            template: name.clone(),
            instance: instance.map(str::to_string),
            object,
        });
    }
    Ok(out)
}

/// Splits on `---` lines as Helm does; yields each document with the
/// 1-based output line it starts on.
fn split_documents(text: &str) -> Vec<(usize, &str)> {
    let mut docs = Vec::new();
    let mut start = 0usize;
    let mut start_line = 1usize;
    let mut offset = 0usize;
    for (i, line) in text.split_inclusive('\n').enumerate() {
        let t = line.trim_end();
        if t == "---" || t.starts_with("--- ") {
            docs.push((start_line, &text[start..offset]));
            start = offset + line.len();
            start_line = i + 2;
        }
        offset += line.len();
    }
    docs.push((start_line, &text[start..]));
    docs
}

/// The config file content from the rendered ConfigMap holding `file`.
pub fn find_config<'a>(objects: &'a [RenderedObject], file: &str) -> Option<&'a str> {
    objects
        .iter()
        .filter(|o| o.kind() == "ConfigMap")
        .find_map(|o| o.object.pointer("/data").and_then(|d| d.get(file)))
        .and_then(Json::as_str)
}

fn annotations_at<'a>(
    obj: &'a mut Json,
    pointer: &str,
) -> Option<&'a mut serde_json::Map<String, Json>> {
    let meta = obj.pointer_mut(pointer)?.as_object_mut()?;
    let ann = meta
        .entry("annotations")
        .or_insert_with(|| Json::Object(Default::default()));
    if ann.is_null() {
        *ann = Json::Object(Default::default());
    }
    ann.as_object_mut()
}

/// Puts the restart hash on every workload's pod template.
pub fn stamp_restart_hash(objects: &mut [RenderedObject], restart_hash: &str) {
    for o in objects.iter_mut() {
        if matches!(o.kind(), "Deployment" | "StatefulSet")
            && let Some(ann) = annotations_at(&mut o.object, "/spec/template/metadata")
        {
            ann.insert(labels::RESTART_HASH.into(), json!(restart_hash));
        }
    }
}

/// Puts the content, config and pod template hashes on the instance's
/// workloads; returns the template hash (of the first workload), the one
/// value that says whether applying the instance restarts its Pod.
pub fn stamp_instance(
    objects: &mut [RenderedObject],
    content_hash: &str,
    config_hash: Option<&str>,
) -> Option<String> {
    let mut instance_template = None;
    for o in objects.iter_mut() {
        if !matches!(o.kind(), "Deployment" | "StatefulSet") {
            continue;
        }
        let template = o
            .object
            .pointer("/spec/template")
            .map(|t| crate::hash::sha256_hex(t.to_string().as_bytes()));
        if let Some(ann) = annotations_at(&mut o.object, "/metadata") {
            ann.insert(labels::CONTENT_HASH.into(), json!(content_hash));
            if let Some(h) = config_hash {
                ann.insert(labels::CONFIG_HASH.into(), json!(h));
            }
            if let Some(t) = &template {
                ann.insert(labels::TEMPLATE_HASH.into(), json!(t));
            }
        }
        if instance_template.is_none() {
            instance_template = template;
        }
    }
    instance_template
}

/// Makes the Group the controller owner, fixes the namespace and makes sure
/// the labels the controllers select on are present.
pub fn adopt(o: &mut RenderedObject, group: &Group) -> Result<(), RenderError> {
    let namespace = group.namespace().unwrap_or_else(|| "default".to_string());
    let (kind, name, template) = (
        o.kind().to_string(),
        o.name().to_string(),
        o.template.clone(),
    );
    let err = |message: String| RenderError::Object {
        template: template.clone(),
        kind: kind.clone(),
        name: name.clone(),
        message,
    };
    if o.api_version().is_empty() || kind.is_empty() {
        return Err(err("apiVersion and kind are required".into()));
    }
    if name.is_empty() {
        return Err(err("metadata.name is required".into()));
    }
    if let Some(ns) = o.namespace()
        && ns != namespace
    {
        return Err(err(format!(
            "metadata.namespace {ns:?} differs from the Group's namespace {namespace:?}"
        )));
    }
    let owner =
        serde_json::to_value(expand::owner_reference(group)).map_err(|e| err(e.to_string()))?;
    let Some(meta) = o.object.get_mut("metadata").and_then(Json::as_object_mut) else {
        return Err(err("metadata must be a mapping".into()));
    };
    meta.insert("namespace".into(), json!(namespace));
    meta.insert("ownerReferences".into(), json!([owner]));
    let lbl = meta
        .entry("labels")
        .or_insert_with(|| Json::Object(Default::default()));
    if lbl.is_null() {
        *lbl = Json::Object(Default::default());
    }
    let lbl = lbl
        .as_object_mut()
        .ok_or_else(|| err("metadata.labels must be a mapping".into()))?;
    lbl.entry(labels::MANAGED_BY)
        .or_insert(json!(labels::MANAGED_BY_VALUE));
    lbl.entry(labels::GROUP).or_insert(json!(group.name_any()));
    lbl.entry(labels::APP).or_insert(json!(group.spec.app));
    lbl.entry(labels::COMPONENT_NAME)
        .or_insert(json!(group.spec.component));
    if let Some(instance) = &o.instance {
        lbl.entry(labels::MIDDLEWARE_INSTANCE)
            .or_insert(json!(instance));
    }
    Ok(())
}

/// Parses built-in kinds into their k8s-openapi types, so a wrong type or a
/// missing required field is caught at render time, naming the object.
pub fn check_typed(o: &RenderedObject) -> Result<(), RenderError> {
    let res = match (o.api_version(), o.kind()) {
        ("v1", "ConfigMap") => parse::<ConfigMap>(o),
        ("v1", "Secret") => parse::<Secret>(o),
        ("v1", "Service") => parse::<Service>(o),
        ("v1", "PersistentVolumeClaim") => parse::<PersistentVolumeClaim>(o),
        ("v1", "ServiceAccount") => parse::<ServiceAccount>(o),
        ("v1", "Pod") => parse::<Pod>(o),
        ("apps/v1", "Deployment") => parse::<Deployment>(o),
        ("apps/v1", "StatefulSet") => parse::<StatefulSet>(o),
        ("policy/v1", "PodDisruptionBudget") => parse::<PodDisruptionBudget>(o),
        _ => Ok(()),
    };
    res.map_err(|message| RenderError::Object {
        template: o.template.clone(),
        kind: o.kind().to_string(),
        name: o.name().to_string(),
        message,
    })
}

fn parse<T: DeserializeOwned>(o: &RenderedObject) -> Result<(), String> {
    serde_json::from_value::<T>(o.object.clone())
        .map(|_| ())
        .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::split_documents;

    #[test]
    fn splits_on_separator_lines_only() {
        let docs = split_documents("a: 1\n---\nb: 2\n--- # c\nc: '---'\n");
        let texts: Vec<&str> = docs.iter().map(|d| d.1).collect();
        assert_eq!(texts, ["a: 1\n", "b: 2\n", "c: '---'\n"]);
        assert_eq!(docs[1].0, 3);
        assert_eq!(docs[2].0, 5);
    }
}
