//! Checks of an App against the plugins it names: the plugin exists, the
//! version is one it deploys, every parameter is known and settable, and no
//! immutable parameter changes against what is already running.

use crate::{ParameterClass, Registry};
use midplane_api::validate::{ValidationErrors, validate_app};
use midplane_api::{App, MiddlewareSpec};
use std::collections::BTreeMap;

/// Structural checks plus plugin checks, all problems at once.
/// `previous` holds the parameters in effect per component name (from the
/// running Components, or a previous App file) to refuse immutable changes.
pub fn validate(
    app: &App,
    plugins: &Registry,
    previous: &BTreeMap<String, BTreeMap<String, String>>,
) -> Result<(), ValidationErrors> {
    let mut errs = match validate_app(app) {
        Ok(()) => ValidationErrors::default(),
        Err(e) => e,
    };
    for (i, c) in app.spec.components.iter().enumerate() {
        let path = format!("spec.components[{i}]");
        check_middleware(&c.spec, &path, plugins, previous.get(&c.name), &mut errs);
    }
    errs.into_result()
}

/// The plugin checks for one component (also used by the Component controller).
pub fn check_middleware(
    spec: &MiddlewareSpec,
    path: &str,
    plugins: &Registry,
    previous: Option<&BTreeMap<String, String>>,
    errs: &mut ValidationErrors,
) {
    if spec.plugin.is_empty() {
        return; // already reported as required
    }
    let Some(plugin) = plugins.get(&spec.plugin) else {
        let known = plugins.names();
        errs.push(
            format!("{path}.plugin"),
            format!(
                "unknown plugin {:?}; known plugins: {}",
                spec.plugin,
                if known.is_empty() {
                    "none".to_string()
                } else {
                    known.join(", ")
                }
            ),
        );
        return;
    };
    let meta = &plugin.metadata;
    if !spec.version.is_empty() && !meta.middleware.versions.contains(&spec.version) {
        errs.push(
            format!("{path}.version"),
            format!(
                "plugin {} does not deploy {} {:?}; supported: {}",
                meta.name,
                meta.middleware.name,
                spec.version,
                meta.middleware.versions.join(", ")
            ),
        );
    }
    for (name, value) in &spec.parameters {
        let field = format!("{path}.parameters.{name}");
        if meta.reserved_parameters.contains(name) {
            errs.push(
                field,
                format!("is managed by the {} plugin and cannot be set", meta.name),
            );
            continue;
        }
        let Some(param) = meta.parameter(name) else {
            if !meta.allow_unknown_parameters {
                errs.push(
                    field,
                    format!("unknown parameter of the {} plugin", meta.name),
                );
            }
            continue;
        };
        if value.contains('\n') || value.contains('\r') {
            errs.push(field.clone(), "must be a single line");
        }
        if param.class == ParameterClass::Immutable
            && let Some(prev) = previous
        {
            let before = prev
                .get(name)
                .cloned()
                .or_else(|| param.default.clone())
                .unwrap_or_default();
            if &before != value {
                errs.push(
                    field,
                    format!("is immutable: it cannot change from {before:?} to {value:?}"),
                );
            }
        }
    }
    // An immutable parameter removed from the App falls back to its default: also a change.
    if let Some(prev) = previous {
        for (name, before) in prev {
            if spec.parameters.contains_key(name) {
                continue;
            }
            if let Some(param) = meta.parameter(name)
                && param.class == ParameterClass::Immutable
                && param.default.as_ref() != Some(before)
            {
                errs.push(
                    format!("{path}.parameters.{name}"),
                    format!("is immutable: it cannot be removed (currently {before:?})"),
                );
            }
        }
    }
}
