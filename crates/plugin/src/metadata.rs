//! `plugin.yaml`: what a plugin deploys and how its parameters behave.

use crate::PluginError;
use crate::parameter::ParameterType;
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PluginMetadata {
    /// Always `midplane.dev/v1alpha1`.
    pub api_version: String,
    /// Always `Plugin`.
    pub kind: String,
    /// DNS label; the name Apps refer to (`plugin: redis`).
    pub name: String,
    /// The plugin's own version (semver), bumped on every change.
    pub version: String,
    #[serde(default)]
    pub description: String,
    pub middleware: Middleware,
    /// Roles an instance can hold, the first being the writable one.
    pub roles: Vec<String>,
    pub ports: Vec<Port>,
    pub config: ConfigFile,
    #[serde(default)]
    pub parameters: Vec<Parameter>,
    /// Parameters the plugin sets itself; an App may not set them.
    #[serde(default)]
    pub reserved_parameters: Vec<String>,
    /// Accept parameters not listed (passed through as restart-required).
    #[serde(default)]
    pub allow_unknown_parameters: bool,
    /// Templates rendered once per instance (a Deployment and a PVC each);
    /// every other template renders once per Group.
    #[serde(default)]
    pub instance_templates: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Middleware {
    /// e.g. `redis`.
    pub name: String,
    /// Used when the App names no version.
    pub default_version: String,
    /// Versions this plugin can deploy.
    pub versions: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Port {
    pub name: String,
    pub port: u16,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ConfigFile {
    /// Where the middleware reads it, e.g. `/etc/redis/redis.conf`.
    pub path: String,
    /// The key of the rendered ConfigMap holding it, e.g. `redis.conf`.
    pub file: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Parameter {
    pub name: String,
    pub class: ParameterClass,
    /// Rendered when the App does not set it; absent: not rendered.
    #[serde(default)]
    pub default: Option<String>,
    #[serde(default)]
    pub description: String,
    /// The value's type (see [`crate::parameter`]); absent: any single line.
    #[serde(default, rename = "type", skip_serializing_if = "is_string")]
    pub kind: ParameterType,
    /// Smallest value allowed (integer, size, duration), in the type's syntax.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min: Option<String>,
    /// Largest value allowed (integer, size, duration), in the type's syntax.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<String>,
    /// The values an `enum` parameter takes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub values: Vec<String>,
}

fn is_string(t: &ParameterType) -> bool {
    *t == ParameterType::String
}

impl Parameter {
    /// Checks a value against the parameter's type, range and values.
    pub fn check(&self, value: &str) -> Result<(), String> {
        crate::parameter::check(
            self.kind,
            self.min.as_deref(),
            self.max.as_deref(),
            &self.values,
            value,
        )
    }

    /// Problems with the declaration itself (range, values, default).
    fn declaration_problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        if !self.kind.ranged() && (self.min.is_some() || self.max.is_some()) {
            problems.push("min and max apply to integer, size and duration only".to_string());
        }
        for (key, bound) in [("min", &self.min), ("max", &self.max)] {
            if let Some(b) = bound
                && self.kind.ranged()
                && let Err(e) = crate::parameter::check(self.kind, None, None, &[], b)
            {
                problems.push(format!("{key}: {e}"));
            }
        }
        match (self.kind, self.values.is_empty()) {
            (ParameterType::Enum, true) => problems.push("values: an enum lists its values".into()),
            (ParameterType::Enum, false) | (_, true) => {}
            (_, false) => problems.push("values: only an enum lists values".into()),
        }
        if problems.is_empty()
            && let Some(d) = &self.default
            && let Err(e) = self.check(d)
        {
            problems.push(format!("default: {e}"));
        }
        problems
    }
}

/// How a change of a parameter reaches a running instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ParameterClass {
    /// Applied live by the agent (Redis `CONFIG SET`).
    Dynamic,
    /// Takes effect after an instance restart; the instance rolls.
    RestartRequired,
    /// Fixed once the Component exists; a change is refused.
    Immutable,
}

impl PluginMetadata {
    pub fn parse(src: &str) -> Result<Self, PluginError> {
        let meta: PluginMetadata = serde_yaml::from_str(src).map_err(|e| PluginError::Invalid {
            file: crate::METADATA_FILE.into(),
            message: e.to_string(),
        })?;
        meta.validate()?;
        Ok(meta)
    }

    fn validate(&self) -> Result<(), PluginError> {
        let mut problems = Vec::new();
        if self.api_version != "midplane.dev/v1alpha1" {
            problems.push(format!(
                "apiVersion: must be midplane.dev/v1alpha1, got {:?}",
                self.api_version
            ));
        }
        if self.kind != "Plugin" {
            problems.push(format!("kind: must be Plugin, got {:?}", self.kind));
        }
        if let Err(m) = midplane_api::validate::dns_label(&self.name) {
            problems.push(format!("name: {m}"));
        }
        if semver::Version::parse(&self.version).is_err() {
            problems.push(format!(
                "version: {:?} is not a semantic version (e.g. 1.2.0)",
                self.version
            ));
        }
        if self.middleware.versions.is_empty() {
            problems.push("middleware.versions: must list at least one version".into());
        } else if !self
            .middleware
            .versions
            .contains(&self.middleware.default_version)
        {
            problems.push(format!(
                "middleware.defaultVersion: {:?} is not in middleware.versions",
                self.middleware.default_version
            ));
        }
        if self.roles.is_empty() {
            problems.push("roles: must list at least one role".into());
        }
        let mut ports = BTreeSet::new();
        for (i, p) in self.ports.iter().enumerate() {
            if p.port == 0 {
                problems.push(format!("ports[{i}].port: must be 1-65535"));
            }
            if !ports.insert(p.name.as_str()) {
                problems.push(format!("ports[{i}].name: duplicate port name {:?}", p.name));
            }
        }
        if !self.config.path.starts_with('/') {
            problems.push(format!(
                "config.path: {:?} must be an absolute path",
                self.config.path
            ));
        }
        let mut names = BTreeSet::new();
        for (i, p) in self.parameters.iter().enumerate() {
            if p.name.is_empty() {
                problems.push(format!("parameters[{i}].name: is required"));
            } else if !names.insert(p.name.as_str()) {
                problems.push(format!(
                    "parameters[{i}].name: duplicate parameter {:?}",
                    p.name
                ));
            }
            for problem in p.declaration_problems() {
                problems.push(format!("parameters[{i}] ({}): {problem}", p.name));
            }
            if self.reserved_parameters.contains(&p.name) {
                problems.push(format!(
                    "parameters[{i}].name: {:?} is also in reservedParameters",
                    p.name
                ));
            }
        }
        for (i, t) in self.instance_templates.iter().enumerate() {
            if t.starts_with('_') || t.contains('/') {
                problems.push(format!(
                    "instanceTemplates[{i}]: {t:?} must be a template file name in templates/"
                ));
            }
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(PluginError::Invalid {
                file: crate::METADATA_FILE.into(),
                message: problems.join("; "),
            })
        }
    }

    pub fn parameter(&self, name: &str) -> Option<&Parameter> {
        self.parameters.iter().find(|p| p.name == name)
    }

    pub fn port(&self, name: &str) -> Option<u16> {
        self.ports.iter().find(|p| p.name == name).map(|p| p.port)
    }

    /// The class of a parameter; unknown ones (when allowed) need a restart.
    pub fn class_of(&self, name: &str) -> ParameterClass {
        self.parameter(name)
            .map(|p| p.class)
            .unwrap_or(ParameterClass::RestartRequired)
    }
}
