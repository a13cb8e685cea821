//! The data a plugin template sees. Helm's names stay (`.Values`, `.Release`,
//! `.Chart`) so ported charts work; Midplane's own objects sit beside them.
//!
//! | key | what |
//! | --- | --- |
//! | `.Values` | plugin values.yaml, overridden by the App's resources/storage/service |
//! | `.Config` | every config parameter in effect (plugin defaults + App parameters) |
//! | `.App` / `.Component` | `Name` of each |
//! | `.Group` | `Name`, `Namespace`, `Shard`, `Shards`, `Replicas`, `Version` |
//! | `.Plugin` | `Name`, `Version`, `ConfigPath`, `ConfigDir`, `ConfigFile`, `Ports` (name → port), `PortList`, `Roles` |
//! | `.Instances` | list of `{Name, Ordinal, Role}`; ordinal 0 starts as primary |
//! | `.Instance` | the instance being rendered (instance templates only) |
//! | `.Release` / `.Chart` | Helm compatibility: Release.Name = group, Chart.Name = plugin |

use crate::RenderError;
use kube::ResourceExt;
use midplane_api::{Group, expand};
use midplane_plugin::Plugin;
use midplane_template::{Value, values};
use serde_json::{Value as Json, json};
use std::collections::BTreeMap;

#[derive(Debug, Clone)]
pub struct InstanceInfo {
    pub name: String,
    pub ordinal: i32,
    pub role: String,
}

pub struct GroupContext {
    base: BTreeMap<String, Json>,
    values: Value,
    pub parameters: BTreeMap<String, String>,
    pub instances: Vec<InstanceInfo>,
    /// The middleware version rendered.
    pub version: String,
}

impl GroupContext {
    pub fn new(group: &Group, plugin: &Plugin) -> Result<Self, RenderError> {
        let meta = &plugin.metadata;
        let spec = &group.spec.middleware;
        let name = group.name_any();
        let namespace = group.namespace().unwrap_or_else(|| "default".to_string());
        let version = if spec.version.is_empty() {
            meta.middleware.default_version.clone()
        } else {
            spec.version.clone()
        };

        let mut parameters: BTreeMap<String, String> = meta
            .parameters
            .iter()
            .filter_map(|p| p.default.clone().map(|d| (p.name.clone(), d)))
            .collect();
        parameters.extend(spec.parameters.clone());

        let primary_role = meta.roles.first().cloned().unwrap_or_default();
        let secondary_role = meta
            .roles
            .get(1)
            .cloned()
            .unwrap_or_else(|| primary_role.clone());
        let instances: Vec<InstanceInfo> = expand::instances(group)
            .into_iter()
            .enumerate()
            .map(|(i, name)| InstanceInfo {
                name,
                ordinal: i as i32,
                role: if i == 0 {
                    primary_role.clone()
                } else {
                    secondary_role.clone()
                },
            })
            .collect();

        let ports: serde_json::Map<String, Json> = meta
            .ports
            .iter()
            .map(|p| (p.name.clone(), json!(p.port)))
            .collect();
        let port_list: Vec<Json> = meta
            .ports
            .iter()
            .map(|p| json!({"name": p.name, "port": p.port}))
            .collect();
        let config_dir = std::path::Path::new(&meta.config.path)
            .parent()
            .map(|p| p.display().to_string())
            .unwrap_or_else(|| "/".into());

        let mut base = BTreeMap::new();
        base.insert("App".into(), json!({"Name": group.spec.app}));
        base.insert(
            "Component".into(),
            json!({"Name": group.spec.component, "Object": expand::component_name(&group.spec.app, &group.spec.component)}),
        );
        base.insert(
            "Group".into(),
            json!({
                "Name": name, "Namespace": namespace, "Shard": group.spec.shard,
                "Shards": spec.shards, "Replicas": spec.replicas, "Version": version,
            }),
        );
        base.insert(
            "Plugin".into(),
            json!({
                "Name": meta.name, "Version": meta.version, "Middleware": meta.middleware.name,
                "ConfigPath": meta.config.path, "ConfigDir": config_dir, "ConfigFile": meta.config.file,
                "Ports": ports, "PortList": port_list, "Roles": meta.roles,
            }),
        );
        base.insert(
            "Instances".into(),
            Json::Array(instances.iter().map(instance_json).collect()),
        );
        base.insert(
            "Release".into(),
            json!({"Name": name, "Namespace": namespace, "Service": "Midplane", "IsInstall": true, "IsUpgrade": false, "Revision": 1}),
        );
        base.insert(
            "Chart".into(),
            json!({"Name": meta.name, "Version": meta.version, "AppVersion": version, "Description": meta.description}),
        );
        // The backup the instances start from (spec.restoreFrom, resolved by the Component
        // controller); null when there is none, so templates can `with .Restore`.
        base.insert(
            "Restore".into(),
            match spec
                .restore_from
                .as_ref()
                .filter(|r| !r.storage.is_empty() && !r.id.is_empty())
            {
                Some(r) => json!({
                    "Backup": r.backup, "Storage": r.storage, "Id": r.id,
                    "KeySecret": r.key_secret.clone().unwrap_or_default(),
                    "CredentialsSecret": r.credentials_secret.clone().unwrap_or_default(),
                }),
                None => Json::Null,
            },
        );
        base.insert(
            "Config".into(),
            Json::Object(
                parameters
                    .iter()
                    .map(|(k, v)| (k.clone(), Json::String(v.clone())))
                    .collect(),
            ),
        );

        let values = values::coalesce(&plugin.values, &Value::from_json(overrides(group)));
        Ok(Self {
            base,
            values,
            parameters,
            instances,
            version,
        })
    }

    /// The template data, with `.Instance` set for instance templates.
    pub fn value(&self, instance: Option<&InstanceInfo>) -> Value {
        let mut map = BTreeMap::new();
        for (k, v) in &self.base {
            map.insert(k.clone(), Value::from_json(v.clone()));
        }
        map.insert("Values".into(), self.values.clone());
        if let Some(i) = instance {
            map.insert("Instance".into(), Value::from_json(instance_json(i)));
        }
        Value::map(map)
    }
}

fn instance_json(i: &InstanceInfo) -> Json {
    json!({"Name": i.name, "Ordinal": i.ordinal, "Role": i.role})
}

/// The App's component fields as values overrides (only what the user set).
fn overrides(group: &Group) -> Json {
    let spec = &group.spec.middleware;
    let mut o = serde_json::Map::new();
    if let Some(r) = &spec.resources {
        let mut res = serde_json::Map::new();
        if !r.requests.is_empty() {
            res.insert("requests".into(), json!(r.requests));
        }
        if !r.limits.is_empty() {
            res.insert("limits".into(), json!(r.limits));
        }
        o.insert("resources".into(), Json::Object(res));
    }
    if let Some(s) = &spec.storage {
        let mut st = serde_json::Map::new();
        st.insert("size".into(), json!(s.size));
        if let Some(class) = &s.storage_class_name {
            st.insert("storageClassName".into(), json!(class));
        }
        o.insert("storage".into(), Json::Object(st));
    }
    if let Some(s) = &spec.service {
        let mut sv = serde_json::Map::new();
        sv.insert("type".into(), json!(s.type_or_default()));
        if let Some(ext) = &s.external_name {
            sv.insert("externalName".into(), json!(ext));
        }
        if !s.annotations.is_empty() {
            sv.insert("annotations".into(), json!(s.annotations));
        }
        o.insert("service".into(), Json::Object(sv));
    }
    Json::Object(o)
}
