//! `helm template`: load a chart, process its dependencies, coalesce and validate values,
//! render every template with Helm's built-in objects, then print manifests in Helm's install
//! order with hooks last. [`HelmMajor`] picks Helm 3.17's or Helm 4.1's behaviour.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::error::Error;
use crate::value::Value;
use crate::{Options, Templates, gofmt, values};

mod capabilities;
pub mod cli;
mod coalesce;
mod deps;
mod files;
mod load;
mod meta;
mod render;
mod schema;
mod sort;

pub use crate::HelmMajor;
pub use load::Chart;
pub use meta::{Dependency, Maintainer, Metadata};
pub use sort::INSTALL_ORDER;

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
    /// `--enable-dns`.
    pub enable_dns: bool,
    pub name_template: Option<String>,
    pub helm: HelmMajor,
    /// Relative paths (values files, `--set-file`) resolve against this directory.
    pub base_dir: Option<PathBuf>,
    /// The chart argument as typed (Helm quotes it in "not found" errors).
    pub chart_arg: Option<String>,
}

/// A failed render: the error, whether Helm had got as far as building a release (it then
/// adds its `--debug` hint), and what `--debug` prints before the error.
#[derive(Debug, Clone)]
pub struct Failure {
    pub error: Error,
    pub rendered: bool,
    pub partial: Option<String>,
    /// Log lines Helm printed to stderr before the error.
    pub log: Vec<String>,
}

impl From<Error> for Failure {
    fn from(error: Error) -> Self {
        Failure {
            error,
            rendered: false,
            partial: None,
            log: Vec::new(),
        }
    }
}

/// Renders `dir` exactly as `helm template` prints it.
pub fn render_chart(dir: &Path, opts: &RenderOptions) -> Result<String, Error> {
    render_chart_full(dir, opts)
        .map(|r| r.manifest)
        .map_err(|f| f.error)
}

/// What a successful render prints: the manifests, and the log lines Helm writes to stderr.
#[derive(Debug, Clone, Default)]
pub struct Rendered {
    pub manifest: String,
    pub log: Vec<String>,
}

fn rendered_failure(error: Error, log: Vec<String>) -> Failure {
    Failure {
        error,
        rendered: true,
        partial: None,
        log,
    }
}

/// Stack for a render: Go grows goroutine stacks to 1 GB, so Helm takes 100,000 nested
/// `{{template}}` calls; the reservation is virtual, pages are touched only as used.
const RENDER_STACK: usize = 1 << 30;

/// [`render_chart`] with what Helm prints around it: log lines and, on failure, whether Helm
/// adds its `--debug` hint and what `--debug` shows.
pub fn render_chart_full(dir: &Path, opts: &RenderOptions) -> Result<Rendered, Failure> {
    std::thread::scope(|s| {
        std::thread::Builder::new()
            .name("helm-render".into())
            .stack_size(RENDER_STACK)
            .spawn_scoped(s, || render_on_this_thread(dir, opts))
            .map_err(|e| Failure::from(Error::Chart(format!("cannot start render thread: {e}"))))?
            .join()
            .unwrap_or_else(|_| Err(Error::Chart("rendering template failed: panic".into()).into()))
    })
}

fn render_on_this_thread(dir: &Path, opts: &RenderOptions) -> Result<Rendered, Failure> {
    let helm = opts.helm;
    let user = user_values(opts)?;
    let shown = shown_path(dir, opts)?;
    let mut chart = load::load(dir, &shown, helm)?;
    if chart.is_library() {
        return Err(Error::Chart("library charts are not installable".into()).into());
    }
    if chart.metadata.dependencies.is_some()
        && let Err(e) = deps::check_dependencies(&chart)
    {
        let lead = match helm {
            HelmMajor::V3 => "An error occurred",
            HelmMajor::V4 => "an error occurred",
        };
        return Err(Error::Chart(format!(
            "{lead} while checking for chart dependencies. You may need to run `helm dependency build` to fetch missing dependencies: {e}"
        ))
        .into());
    }
    let mut log = Vec::new();
    let release_name = release_name(opts)?;
    if let Err(e) = validate_release_name(&release_name) {
        let msg = match helm {
            HelmMajor::V3 => e,
            HelmMajor::V4 => {
                log.push(format!(
                    "level=ERROR msg=\"release name check failed\" error={}",
                    gofmt::quote(&e)
                ));
                format!("release name check failed: {e}")
            }
        };
        return Err(Failure {
            error: Error::Chart(msg),
            rendered: false,
            partial: None,
            log,
        });
    }
    let namespace = if opts.namespace.is_empty() {
        "default".to_string()
    } else {
        opts.namespace.clone()
    };
    coalesce::take_warnings(helm);
    let processed = deps::process(&mut chart, &user);
    log.extend(coalesce::take_warnings(helm));
    let vals = match (processed, helm) {
        (Err(e), HelmMajor::V4) => {
            // Helm 4's install action logs and wraps what ProcessDependencies returns
            let e = e.to_string();
            log.push(format!(
                "level=ERROR msg=\"chart dependencies processing failed\" error={}",
                gofmt::quote(&e)
            ));
            Err(Error::Chart(format!(
                "chart dependencies processing failed: {e}"
            )))
        }
        (Err(e), HelmMajor::V3) => Err(e),
        (Ok(()), _) => deps::coalesce_values(&chart, &user),
    };
    log.extend(coalesce::take_warnings(helm));
    let vals = match vals {
        Ok(v) => v,
        Err(e) => {
            return Err(Failure {
                error: e,
                rendered: false,
                partial: None,
                log,
            });
        }
    };
    if !opts.skip_schema_validation {
        let problems = schema::validate_tree(&chart, &vals, helm);
        if !problems.is_empty() {
            return Err(Error::Chart(format!(
                "values don't meet the specifications of the schema(s) in the following chart(s):\n{problems}"
            ))
            .into());
        }
    }
    let kv = capabilities::kube_version(opts.kube_version.as_deref(), helm)?;
    let common = render::Common {
        enable_dns: opts.enable_dns,
        release: capabilities::release(&release_name, &namespace, opts.is_upgrade),
        capabilities: capabilities::capabilities(&kv, &opts.api_versions, helm),
        helm,
    };
    if !chart.metadata.kube_version.is_empty()
        && !crate::funcs::semver_range_matches(&chart.metadata.kube_version, kv.string())
            .unwrap_or(false)
    {
        return Err(rendered_failure(
            Error::Chart(format!(
                "chart requires kubeVersion: {} which is incompatible with Kubernetes {}",
                chart.metadata.kube_version,
                kv.string()
            )),
            log,
        ));
    }
    let files = match render::render_all(&chart, &vals, &common) {
        Ok(f) => f,
        Err(e) => return Err(rendered_failure(e, log)),
    };
    let crds: Vec<(String, String)> = chart
        .crd_objects()
        .into_iter()
        .map(|(n, d)| (n, String::from_utf8_lossy(d).into_owned()))
        .collect();
    let (files, bad_utf8) = files;
    match sort::print(&crds, files, &bad_utf8, opts, &mut log) {
        Ok(sort::Printed::Manifest(manifest)) => Ok(Rendered { manifest, log }),
        Ok(sort::Printed::ShowOnlyMissing(e)) => Err(Failure {
            error: e,
            rendered: false,
            partial: None,
            log,
        }),
        Err((e, partial)) => Err(Failure {
            error: e,
            rendered: true,
            partial,
            log,
        }),
    }
}

/// How Helm names the chart path in errors: absolute once it exists.
fn shown_path(dir: &Path, opts: &RenderOptions) -> Result<String, Error> {
    let given = opts
        .chart_arg
        .clone()
        .unwrap_or_else(|| dir.display().to_string());
    if dir.exists() {
        let abs = if dir.is_absolute() {
            dir.to_path_buf()
        } else {
            std::env::current_dir()
                .map(|c| c.join(dir))
                .unwrap_or_else(|_| dir.to_path_buf())
        };
        return Ok(clean_abs(&abs));
    }
    if given.starts_with('.') || given.starts_with('/') {
        return Err(Error::Chart(format!("path {given:?} not found")));
    }
    Err(Error::Chart(format!(
        "non-absolute URLs should be in form of repo_name/path_to_chart, got: {given}"
    )))
}

/// filepath.Abs's cleaning: `.` and `..` segments resolved lexically.
fn clean_abs(p: &Path) -> String {
    let mut out: Vec<String> = Vec::new();
    for c in p.components() {
        match c {
            std::path::Component::RootDir => out.clear(),
            std::path::Component::CurDir => {}
            std::path::Component::ParentDir => {
                out.pop();
            }
            std::path::Component::Normal(s) => out.push(s.to_string_lossy().into_owned()),
            std::path::Component::Prefix(_) => {}
        }
    }
    format!("/{}", out.join("/"))
}

/// chartutil.ValidateReleaseName.
fn validate_release_name(name: &str) -> Result<(), String> {
    let ok_label = |l: &str| {
        !l.is_empty()
            && l.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
            && !l.starts_with('-')
            && !l.ends_with('-')
    };
    if name.is_empty() || name.len() > 53 || !name.split('.').all(ok_label) {
        return Err(format!(
            "release name {name:?}: invalid release name, must match regex ^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$ and the length must not be longer than 53"
        ));
    }
    Ok(())
}

/// `--values` files merged in order, then `--set-json`, `--set`, `--set-string`, `--set-file`
/// and `--set-literal`, as Helm's values.Options.MergeValues applies them.
pub fn user_values(opts: &RenderOptions) -> Result<Value, Error> {
    let mut base = Value::map(BTreeMap::new());
    for f in &opts.values_files {
        let text = std::fs::read(resolve(opts, f))
            .map_err(|e| Error::Chart(format!("open {}: {}", f.display(), go_io_error(&e))))?;
        let v = load::values_map(&String::from_utf8_lossy(&text), opts.helm)
            .map_err(|e| Error::Chart(format!("failed to parse {}: {e}", f.display())))?;
        base = values::merge_maps(&base, &v);
    }
    for s in &opts.set_json {
        values::parse_set_mode(s, &mut base, values::SetMode::Json)?;
    }
    for s in &opts.set {
        values::parse_set(s, &mut base)?;
    }
    for s in &opts.set_string {
        values::parse_set_mode(s, &mut base, values::SetMode::String)?;
    }
    for s in &opts.set_file {
        let base_dir = opts.base_dir.clone();
        values::parse_set_file(s, &mut base, &|p: &str| {
            let path = match &base_dir {
                Some(b) if Path::new(p).is_relative() => b.join(p),
                _ => PathBuf::from(p),
            };
            std::fs::read(&path)
                .map(|b| String::from_utf8_lossy(&b).into_owned())
                .map_err(|e| format!("open {p}: {}", go_io_error(&e)))
        })?;
    }
    for s in &opts.set_literal {
        values::parse_set_mode(s, &mut base, values::SetMode::Literal)?;
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
