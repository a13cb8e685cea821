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
    let running: BTreeMap<String, MiddlewareSpec> = previous
        .iter()
        .map(|(name, parameters)| {
            let spec = MiddlewareSpec {
                parameters: parameters.clone(),
                ..MiddlewareSpec::default()
            };
            (name.clone(), spec)
        })
        .collect();
    validate_running(app, plugins, &running, false)
}

/// Like [`validate`], against the whole spec each component runs with now
/// (from its Component): besides immutable parameters, the changes
/// Kubernetes forbids are refused here, with their field path, before any
/// object is written (a storage shrink, a storage class change: a
/// PersistentVolumeClaim only grows). `storage_known` says whether `running`
/// carries real storage (false: parameters only, storage is not compared).
pub fn validate_running(
    app: &App,
    plugins: &Registry,
    running: &BTreeMap<String, MiddlewareSpec>,
    storage_known: bool,
) -> Result<(), ValidationErrors> {
    let mut errs = match validate_app(app) {
        Ok(()) => ValidationErrors::default(),
        Err(e) => e,
    };
    for (i, c) in app.spec.components.iter().enumerate() {
        let path = format!("spec.components[{i}]");
        let before = running.get(&c.name);
        check_middleware(
            &c.spec,
            &path,
            plugins,
            before.map(|b| &b.parameters),
            &mut errs,
        );
        if storage_known && let Some(before) = before {
            check_storage(&c.spec, before, &path, plugins, &mut errs);
        }
    }
    errs.into_result()
}

/// The storage a spec asks for: its own, else the plugin's default
/// (`storage.size` and `storage.storageClassName` in values.yaml).
fn effective_storage(
    spec: &MiddlewareSpec,
    plugins: &Registry,
) -> (Option<String>, Option<String>) {
    let default = |key: &str| {
        plugins.get(&spec.plugin).and_then(|p| {
            p.values
                .path(key)
                .and_then(|v| v.as_str().map(str::to_string))
                .filter(|v| !v.is_empty())
        })
    };
    match &spec.storage {
        Some(s) => (
            Some(s.size.clone()),
            s.storage_class_name
                .clone()
                .or_else(|| default("storage.storageClassName")),
        ),
        None => (default("storage.size"), default("storage.storageClassName")),
    }
}

/// A PersistentVolumeClaim's size may only grow and its class never changes.
pub fn check_storage(
    spec: &MiddlewareSpec,
    running: &MiddlewareSpec,
    path: &str,
    plugins: &Registry,
    errs: &mut ValidationErrors,
) {
    let (size, class) = effective_storage(spec, plugins);
    let (size_before, class_before) = effective_storage(running, plugins);
    if let (Some(now), Some(before)) = (&size, &size_before)
        && let (Ok(n), Ok(b)) = (
            midplane_api::quantity::parse(now),
            midplane_api::quantity::parse(before),
        )
        && n < b
    {
        errs.push(
            format!("{path}.storage.size"),
            format!("cannot shrink from {before} to {now}: a PersistentVolumeClaim can only grow"),
        );
    }
    if class != class_before {
        errs.push(
            format!("{path}.storage.storageClassName"),
            format!(
                "is immutable: a PersistentVolumeClaim's storage class cannot change from {} to {}",
                class_before.as_deref().unwrap_or("the default"),
                class.as_deref().unwrap_or("the default")
            ),
        );
    }
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
        } else if let Err(problem) = param.check(value) {
            errs.push(field.clone(), problem);
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

#[cfg(test)]
mod tests {
    use super::*;
    use midplane_api::{App, AppSpec, ComponentTemplate, Storage};

    fn app(size: &str) -> App {
        let spec = MiddlewareSpec {
            plugin: "redis".into(),
            replicas: 3,
            shards: 1,
            storage: Some(Storage {
                size: size.into(),
                storage_class_name: None,
            }),
            ..MiddlewareSpec::default()
        };
        let mut app = App::new(
            "shop",
            AppSpec {
                components: vec![ComponentTemplate {
                    name: "cache".into(),
                    spec,
                }],
            },
        );
        app.metadata.namespace = Some("default".into());
        app
    }

    #[test]
    fn a_storage_shrink_is_refused_with_its_path_and_growth_is_not() {
        let plugins = crate::registry::bundled().expect("bundled plugins");
        let running = BTreeMap::from([(
            "cache".to_string(),
            app("2Gi").spec.components[0].spec.clone(),
        )]);
        let errs = validate_running(&app("1Gi"), &plugins, &running, true).expect_err("a shrink");
        assert!(
            errs.0
                .iter()
                .any(|e| e.field == "spec.components[0].storage.size"
                    && e.message.contains("cannot shrink from 2Gi to 1Gi")),
            "{errs}"
        );
        let grown = validate_running(&app("4Gi"), &plugins, &running, true);
        assert!(grown.is_ok(), "{grown:?}");
        assert!(
            validate_running(&app("1Gi"), &plugins, &running, false).is_ok(),
            "storage not known: not compared"
        );
    }
}
