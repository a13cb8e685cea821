//! `helm template` for a plain chart directory: load, coalesce values, render every template with
//! Helm's built-in objects, then print manifests in Helm's install order with hooks last.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::error::Error;
use crate::object::Object;
use crate::value::Value;
use crate::{Options, Templates, values};

pub mod cli;
mod load;
mod sort;

pub use load::Chart;
pub use sort::INSTALL_ORDER;

/// Which Helm's behaviour to follow where Helm 3 and Helm 4 differ.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum HelmMajor {
    /// Helm 3.17.
    V3,
    /// Helm 4.1, the current major.
    #[default]
    V4,
}

impl HelmMajor {
    /// `3` or `4` (as `--helm` takes it).
    pub fn parse(s: &str) -> Result<HelmMajor, Error> {
        match s.trim_start_matches('v') {
            "3" | "3.17" => Ok(HelmMajor::V3),
            "4" | "4.1" => Ok(HelmMajor::V4),
            _ => Err(Error::Chart(format!(
                "invalid argument {s:?} for \"--helm\" flag: want 3 or 4"
            ))),
        }
    }
}

/// Flags of `helm template`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RenderOptions {
    pub release_name: String,
    pub namespace: String,
    pub values_files: Vec<PathBuf>,
    pub set: Vec<String>,
    pub set_string: Vec<String>,
    pub set_file: Vec<String>,
    pub set_json: Vec<String>,
    pub set_literal: Vec<String>,
    pub show_only: Vec<String>,
    pub kube_version: Option<String>,
    pub api_versions: Vec<String>,
    pub include_crds: bool,
    pub skip_tests: bool,
    pub no_hooks: bool,
    pub is_upgrade: bool,
    pub skip_schema_validation: bool,
    pub generate_name: bool,
    pub name_template: Option<String>,
    pub helm: HelmMajor,
    /// Relative paths (values files, `--set-file`) resolve against this directory.
    pub base_dir: Option<PathBuf>,
}

/// A failed render: the error, whether Helm had got as far as building a release (it then
/// adds its `--debug` hint), and what `--debug` prints before the error.
#[derive(Debug, Clone)]
pub struct Failure {
    pub error: Error,
    pub rendered: bool,
    pub partial: Option<String>,
}

impl From<Error> for Failure {
    fn from(error: Error) -> Self {
        Failure {
            error,
            rendered: false,
            partial: None,
        }
    }
}

/// Kubernetes version `helm template` assumes without `--kube-version`: Helm 3's compiled-in
/// chartutil default (k8sVersionMajor/Minor = 1/20).
pub const DEFAULT_KUBE_VERSION: &str = "v1.20.0";

/// Group versions Helm's default capabilities know (client-go's scheme), plus `group/version/Kind`.
const DEFAULT_API_VERSIONS: &[&str] = &[
    "v1",
    "admissionregistration.k8s.io/v1",
    "apiextensions.k8s.io/v1",
    "apiregistration.k8s.io/v1",
    "apps/v1",
    "authentication.k8s.io/v1",
    "authorization.k8s.io/v1",
    "autoscaling/v1",
    "autoscaling/v2",
    "batch/v1",
    "certificates.k8s.io/v1",
    "coordination.k8s.io/v1",
    "discovery.k8s.io/v1",
    "events.k8s.io/v1",
    "flowcontrol.apiserver.k8s.io/v1",
    "networking.k8s.io/v1",
    "node.k8s.io/v1",
    "policy/v1",
    "rbac.authorization.k8s.io/v1",
    "scheduling.k8s.io/v1",
    "storage.k8s.io/v1",
    "v1/ConfigMap",
    "v1/Secret",
    "v1/Service",
    "v1/ServiceAccount",
    "v1/PersistentVolumeClaim",
    "v1/Pod",
    "apps/v1/Deployment",
    "apps/v1/StatefulSet",
    "apps/v1/DaemonSet",
    "batch/v1/Job",
    "batch/v1/CronJob",
    "networking.k8s.io/v1/Ingress",
    "networking.k8s.io/v1/NetworkPolicy",
    "policy/v1/PodDisruptionBudget",
    "autoscaling/v2/HorizontalPodAutoscaler",
];

/// Renders `dir` exactly as `helm template` prints it.
pub fn render_chart(dir: &Path, opts: &RenderOptions) -> Result<String, Error> {
    render_chart_full(dir, opts).map_err(|f| f.error)
}

/// [`render_chart`] with what Helm prints around a failure.
pub fn render_chart_full(dir: &Path, opts: &RenderOptions) -> Result<String, Failure> {
    let chart = Chart::load(dir)?;
    let user = user_values(opts)?;
    let vals = values::coalesce(&chart.values, &user);
    let tags = vals.path("tags").cloned().unwrap_or(Value::Nil);
    let mut charts = Vec::new();
    let vals = subchart_values(&chart, vals, &tags, &mut charts);
    charts.insert(0, (&chart, vals));
    let release_name = release_name(opts)?;
    let namespace = if opts.namespace.is_empty() {
        "default".to_string()
    } else {
        opts.namespace.clone()
    };
    let common = common_values(&release_name, &namespace, opts)?;
    let rendered = render_templates(&charts, &common).map_err(|e| Failure {
        error: e,
        rendered: true,
        partial: None,
    })?;
    let mut crds = BTreeMap::new();
    for (c, _) in &charts {
        crds.extend(c.crds.iter().map(|(k, v)| (k.clone(), v.clone())));
    }
    sort::print(&crds, rendered, opts).map_err(|e| Failure {
        error: e,
        rendered: true,
        partial: None,
    })
}

/// Helm's ProcessDependencies + coalesceDeps: each enabled subchart gets its section of the
/// parent's values over its own defaults, plus the parent's `global`. Returns the parent's values
/// with the subchart sections filled in; pushes every enabled subchart with its values.
fn subchart_values<'a>(
    chart: &'a Chart,
    mut vals: Value,
    tags: &Value,
    out: &mut Vec<(&'a Chart, Value)>,
) -> Value {
    for sub in &chart.subcharts {
        let spec = chart
            .dependencies
            .iter()
            .find(|d| d.alias.as_deref() == Some(sub.name.as_str()) || d.name == sub.name);
        let mut sub_user = match vals.path(&sub.name) {
            Some(Value::Map(m)) => Value::Map(m.clone()),
            _ => Value::empty_map(),
        };
        copy_globals(&mut sub_user, &vals);
        let sub_vals = values::coalesce(&sub.values, &sub_user);
        // conditions see the coalesced values, the subchart's defaults included
        let mut probe = vals.clone();
        set_key(&mut probe, &sub.name, sub_vals.clone());
        if !spec.is_none_or(|d| dependency_enabled(d, &probe, tags)) {
            continue;
        }
        let mut inner = Vec::new();
        let sub_vals = subchart_values(sub, sub_vals, tags, &mut inner);
        set_key(&mut vals, &sub.name, sub_vals.clone());
        out.push((sub, sub_vals));
        out.extend(inner);
    }
    vals
}

fn set_key(target: &mut Value, key: &str, v: Value) {
    if let Value::Map(m) = target {
        Arc::make_mut(m).insert(key.to_string(), v);
    }
}

/// coalesceGlobals: the parent's globals win over the subchart's.
fn copy_globals(sub_user: &mut Value, parent: &Value) {
    let mut dg = match sub_user.path("global") {
        Some(Value::Map(m)) => (**m).clone(),
        _ => BTreeMap::new(),
    };
    if let Some(Value::Map(sg)) = parent.path("global") {
        for (k, v) in sg.iter() {
            let merged = match (v, dg.get(k)) {
                (Value::Map(_), Some(dv @ Value::Map(_))) => values::coalesce(dv, v),
                _ => v.clone(),
            };
            dg.insert(k.clone(), merged);
        }
    }
    set_key(sub_user, "global", Value::map(dg));
}

/// Tags enable when any is true (else disable when one is false); a condition that resolves to
/// a bool overrides tags.
fn dependency_enabled(d: &load::Dependency, vals: &Value, tags: &Value) -> bool {
    let mut enabled = true;
    let tag_vals: Vec<bool> = d
        .tags
        .iter()
        .filter_map(|t| match tags.as_map().and_then(|m| m.get(t)) {
            Some(Value::Bool(b)) => Some(*b),
            _ => None,
        })
        .collect();
    if tag_vals.contains(&true) {
        enabled = true;
    } else if tag_vals.contains(&false) {
        enabled = false;
    }
    if let Some(cond) = &d.condition {
        for path in cond.split(',').map(str::trim) {
            if let Some(Value::Bool(b)) = vals.path(path) {
                return *b;
            }
        }
    }
    enabled
}

/// `--values` files merged in order, then `--set` expressions.
pub fn user_values(opts: &RenderOptions) -> Result<Value, Error> {
    let mut base = Value::map(BTreeMap::new());
    for f in &opts.values_files {
        let text = std::fs::read_to_string(resolve(opts, f))
            .map_err(|e| Error::Chart(format!("open {}: {}", f.display(), go_io_error(&e))))?;
        let v = Value::from_yaml_str(&text)
            .map_err(|e| Error::Chart(format!("failed to parse {}: {e}", f.display())))?;
        base = values::merge_maps(&base, &v);
    }
    for s in &opts.set {
        values::parse_set(s, &mut base)?;
    }
    Ok(base)
}

fn release_name(opts: &RenderOptions) -> Result<String, Error> {
    if let Some(tpl) = &opts.name_template {
        let mut t = Templates::new(Options::default());
        t.add("name-template", tpl)?;
        let name = t.render("name-template", &Value::map(BTreeMap::new()))?;
        return Ok(name);
    }
    if opts.release_name.is_empty() {
        Ok("release-name".to_string())
    } else {
        Ok(opts.release_name.clone())
    }
}

fn kube_version(opts: &RenderOptions) -> Result<Object, Error> {
    let raw = opts.kube_version.as_deref().unwrap_or(DEFAULT_KUBE_VERSION);
    let v = crate::funcs::parse_semver_lenient(raw).ok_or_else(|| {
        Error::Chart(format!(
            "invalid kube version {raw:?}: Invalid Semantic Version"
        ))
    })?;
    Ok(Object::KubeVersion {
        version: format!("v{}.{}.{}", v.major, v.minor, v.patch),
        major: v.major.to_string(),
        minor: v.minor.to_string(),
    })
}

/// `.Release` and `.Capabilities`, shared by every chart of the render.
fn common_values(release: &str, ns: &str, opts: &RenderOptions) -> Result<Value, Error> {
    let mut release_map = BTreeMap::new();
    release_map.insert("Name".to_string(), Value::from(release));
    release_map.insert("Namespace".to_string(), Value::from(ns));
    release_map.insert("IsInstall".to_string(), Value::Bool(true));
    release_map.insert("IsUpgrade".to_string(), Value::Bool(false));
    release_map.insert("Revision".to_string(), Value::Int(1));
    release_map.insert("Service".to_string(), Value::from("Helm"));

    let mut apis: Vec<String> = DEFAULT_API_VERSIONS.iter().map(|s| s.to_string()).collect();
    apis.extend(opts.api_versions.iter().cloned());
    let mut helm = BTreeMap::new();
    helm.insert("Version".to_string(), Value::from("v3.17.0"));
    helm.insert("GitCommit".to_string(), Value::from(""));
    helm.insert("GitTreeState".to_string(), Value::from(""));
    helm.insert("GoVersion".to_string(), Value::from("go1.23"));
    let mut caps = BTreeMap::new();
    caps.insert(
        "KubeVersion".to_string(),
        Value::Object(Arc::new(kube_version(opts)?)),
    );
    caps.insert(
        "APIVersions".to_string(),
        Value::Object(Arc::new(Object::ApiVersions(apis))),
    );
    caps.insert("HelmVersion".to_string(), Value::map(helm));

    let mut top = BTreeMap::new();
    top.insert("Release".to_string(), Value::map(release_map));
    top.insert("Capabilities".to_string(), Value::map(caps));
    Ok(Value::map(top))
}

/// The top-level object one chart's templates see.
fn chart_top(
    common: &Value,
    chart: &Chart,
    vals: &Value,
    enabled: &[String],
) -> BTreeMap<String, Value> {
    let mut top = common.as_map().cloned().unwrap_or_default();
    top.insert("Values".to_string(), vals.clone());
    top.insert("Chart".to_string(), chart.metadata.clone());
    top.insert(
        "Files".to_string(),
        Value::Object(Arc::new(Object::Files(chart.files.clone()))),
    );
    // only subcharts that survived their conditions/tags
    let subs = chart
        .subcharts
        .iter()
        .filter(|c| enabled.contains(&c.path))
        .map(|c| (c.name.clone(), c.metadata.clone()))
        .collect();
    top.insert("Subcharts".to_string(), Value::map(subs));
    top
}

/// Helm's engine: every template parsed into one set (deepest paths first, as sortTemplates
/// orders them), every non-partial rendered with its own `.Template`, `<no value>` removed.
fn render_templates(
    charts: &[(&Chart, Value)],
    common: &Value,
) -> Result<BTreeMap<String, String>, Error> {
    let mut owner: BTreeMap<&String, usize> = BTreeMap::new();
    for (i, (c, _)) in charts.iter().enumerate() {
        for name in c.templates.keys() {
            owner.insert(name, i);
        }
    }
    let mut names: Vec<&String> = owner.keys().copied().collect();
    names.sort_by(|a, b| {
        let (ca, cb) = (a.matches('/').count(), b.matches('/').count());
        cb.cmp(&ca).then_with(|| b.cmp(a))
    });
    let mut set = Templates::new(Options::default());
    for name in &names {
        let (chart, _) = &charts[owner[*name]];
        set.add(name, &chart.templates[*name])
            .map_err(|e| Error::Chart(parse_error_message(&e)))?;
    }
    let enabled: Vec<String> = charts.iter().map(|(c, _)| c.path.clone()).collect();
    let mut tops: Vec<BTreeMap<String, Value>> = charts
        .iter()
        .map(|(c, v)| chart_top(common, c, v, &enabled))
        .collect();
    let mut out = BTreeMap::new();
    for name in names {
        let file = name.rsplit('/').next().unwrap_or(name);
        if file.starts_with('_') {
            continue;
        }
        let i = owner[name];
        // library charts only lend their defines
        if charts[i].0.metadata.path("Type").and_then(Value::as_str) == Some("library") {
            continue;
        }
        let mut top = tops[i].clone();
        let mut tm = BTreeMap::new();
        tm.insert("Name".to_string(), Value::String(name.clone()));
        tm.insert(
            "BasePath".to_string(),
            Value::String(format!("{}/templates", charts[i].0.path)),
        );
        top.insert("Template".to_string(), Value::map(tm));
        let (text, replaced) = set
            .render_tracking(name, &Value::map(top))
            .map_err(|e| Error::Chart(e.helm_message()))?;
        // Helm's files share one `.Values`: a `set` in one file is seen by the files after it
        for (old, new) in &replaced {
            for t in tops.iter_mut() {
                for v in t.values_mut() {
                    crate::shared::replace_in(v, old, new);
                }
            }
        }
        out.insert(name.clone(), text);
    }
    Ok(out)
}

/// Helm's cleanupParseError: `parse error at (FILE:LINE): MSG`.
fn parse_error_message(e: &Error) -> String {
    match e {
        Error::Parse { name, line, msg } => {
            let last = msg.rsplit(": ").next().unwrap_or(msg);
            format!("parse error at ({name}:{line}): {last}")
        }
        other => other.to_string(),
    }
}

/// A path as the user gave it, resolved against [`RenderOptions::base_dir`].
fn resolve(opts: &RenderOptions, p: &Path) -> PathBuf {
    match &opts.base_dir {
        Some(base) if p.is_relative() => base.join(p),
        _ => p.to_path_buf(),
    }
}

/// An I/O error worded as Go's syscall errors print (`no such file or directory`).
pub(crate) fn go_io_error(e: &std::io::Error) -> String {
    use std::io::ErrorKind::*;
    match e.kind() {
        NotFound => "no such file or directory".into(),
        PermissionDenied => "permission denied".into(),
        IsADirectory => "is a directory".into(),
        NotADirectory => "not a directory".into(),
        _ => {
            let s = e.to_string();
            match s.find(" (os error") {
                Some(i) => s[..i].to_lowercase(),
                None => s,
            }
        }
    }
}
