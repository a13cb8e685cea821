//! Loads a chart directory the way Helm's loader sorts its files.

use std::collections::BTreeMap;
use std::path::Path;

use crate::error::Error;
use crate::value::Value;

pub struct Chart {
    /// The name templates see (`.Chart.Name`): Chart.yaml's name, or the dependency's alias.
    pub name: String,
    /// Where its templates live in the render (`parent/charts/sub`), Helm's ChartFullPath.
    pub path: String,
    /// Unpacked subcharts under `charts/`.
    pub subcharts: Vec<Chart>,
    /// Chart.yaml `dependencies` (name, alias, condition, tags).
    pub dependencies: Vec<Dependency>,
    /// `.Chart`: Chart.yaml with Helm's Go field names (Name, Version, AppVersion, ...).
    pub metadata: Value,
    /// values.yaml.
    pub values: Value,
    /// `NAME/templates/...` -> source.
    pub templates: BTreeMap<String, String>,
    /// `NAME/crds/...` -> content, for `--include-crds`.
    pub crds: BTreeMap<String, String>,
    /// `.Files`: every other file, by chart-relative path.
    pub files: BTreeMap<String, Vec<u8>>,
}

#[derive(Debug, Clone, Default)]
pub struct Dependency {
    pub name: String,
    pub alias: Option<String>,
    pub condition: Option<String>,
    pub tags: Vec<String>,
}

/// Chart.yaml keys and the Go field names templates see.
const METADATA_FIELDS: &[(&str, &str)] = &[
    ("name", "Name"),
    ("home", "Home"),
    ("sources", "Sources"),
    ("version", "Version"),
    ("description", "Description"),
    ("keywords", "Keywords"),
    ("maintainers", "Maintainers"),
    ("icon", "Icon"),
    ("apiVersion", "APIVersion"),
    ("condition", "Condition"),
    ("tags", "Tags"),
    ("appVersion", "AppVersion"),
    ("deprecated", "Deprecated"),
    ("annotations", "Annotations"),
    ("kubeVersion", "KubeVersion"),
    ("dependencies", "Dependencies"),
    ("type", "Type"),
];

fn io_err(p: &Path, e: std::io::Error) -> Error {
    Error::Chart(format!("{}: {e}", p.display()))
}

impl Chart {
    pub fn load(dir: &Path) -> Result<Chart, Error> {
        Self::load_at(dir, None, None)
    }

    /// Loads a chart; a subchart gets its parent's path and possibly an alias for its name.
    fn load_at(dir: &Path, parent: Option<&str>, alias: Option<&str>) -> Result<Chart, Error> {
        let chart_yaml = dir.join("Chart.yaml");
        let text = std::fs::read_to_string(&chart_yaml).map_err(|e| io_err(&chart_yaml, e))?;
        let raw = Value::from_yaml_str(&text)
            .map_err(|e| Error::Chart(format!("cannot load Chart.yaml: {e}")))?;
        let name = match raw.path("name") {
            Some(Value::String(n)) if !n.is_empty() => n.clone(),
            _ => {
                return Err(Error::Chart(
                    "validation: chart.metadata.name is required".into(),
                ));
            }
        };
        let name = alias.map(str::to_string).unwrap_or(name);
        let path = match parent {
            Some(p) => format!("{p}/charts/{name}"),
            None => name.clone(),
        };
        let dependencies = parse_dependencies(&raw);
        if !matches!(
            raw.path("version"),
            Some(Value::String(_) | Value::Float(_))
        ) {
            return Err(Error::Chart(
                "validation: chart.metadata.version is required".into(),
            ));
        }
        if raw.path("apiVersion").is_none() {
            return Err(Error::Chart(
                "validation: chart.metadata.apiVersion is required".into(),
            ));
        }
        let mut meta = BTreeMap::new();
        for (yaml_key, go_name) in METADATA_FIELDS {
            let v = match raw.path(yaml_key) {
                Some(_) if *go_name == "Name" => Value::String(name.clone()),
                Some(Value::Float(f)) => Value::String(crate::gofmt::format_float_g(*f)),
                Some(v) => v.clone(),
                None => match *go_name {
                    "Sources" | "Keywords" | "Maintainers" | "Dependencies" => Value::Nil,
                    "Deprecated" => Value::Bool(false),
                    "Annotations" => Value::Nil,
                    _ => Value::String(String::new()),
                },
            };
            meta.insert(go_name.to_string(), v);
        }
        let values_path = dir.join("values.yaml");
        let values = if values_path.exists() {
            let t = std::fs::read_to_string(&values_path).map_err(|e| io_err(&values_path, e))?;
            Value::from_yaml_str(&t)
                .map_err(|e| Error::Chart(format!("cannot load values.yaml: {e}")))?
        } else {
            Value::map(BTreeMap::new())
        };
        let ignore = load_ignore(dir);
        let mut all = Vec::new();
        walk(dir, dir, &ignore, &mut all)?;
        let mut templates = BTreeMap::new();
        let mut crds = BTreeMap::new();
        let mut files = BTreeMap::new();
        for (rel, data) in all {
            match rel.as_str() {
                "Chart.yaml" | "Chart.lock" | "values.yaml" | "values.schema.json"
                | "requirements.yaml" | "requirements.lock" => continue,
                _ => {}
            }
            if rel.starts_with("templates/") {
                let src = String::from_utf8(data).map_err(|_| {
                    Error::Chart(format!("{path}/{rel}: template is not valid UTF-8"))
                })?;
                templates.insert(format!("{path}/{rel}"), src);
            } else if rel.starts_with("charts/") {
                // subcharts are loaded from their own directories below
                continue;
            } else {
                if rel.starts_with("crds/") {
                    crds.insert(
                        format!("{path}/{rel}"),
                        String::from_utf8_lossy(&data).into_owned(),
                    );
                }
                files.insert(rel, data);
            }
        }
        let subcharts = load_subcharts(dir, &path, &dependencies)?;
        Ok(Chart {
            name,
            path,
            subcharts,
            dependencies,
            metadata: Value::map(meta),
            values,
            templates,
            crds,
            files,
        })
    }
}

/// .helmignore lines as glob regexes (basename or full relative path, `dir/` for directories).
fn load_ignore(dir: &Path) -> Vec<(regex::Regex, bool)> {
    let Ok(text) = std::fs::read_to_string(dir.join(".helmignore")) else {
        return Vec::new();
    };
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter_map(|l| {
            let dir_only = l.ends_with('/');
            let pat = l.trim_end_matches('/').trim_start_matches('/');
            crate::object::glob_regex(pat).map(|r| (r, dir_only))
        })
        .collect()
}

fn ignored(rules: &[(regex::Regex, bool)], rel: &str, is_dir: bool) -> bool {
    let base = rel.rsplit('/').next().unwrap_or(rel);
    rules
        .iter()
        .any(|(r, dir_only)| (!dir_only || is_dir) && (r.is_match(rel) || r.is_match(base)))
}

fn walk(
    root: &Path,
    dir: &Path,
    ignore: &[(regex::Regex, bool)],
    out: &mut Vec<(String, Vec<u8>)>,
) -> Result<(), Error> {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .map_err(|e| io_err(dir, e))?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .collect();
    entries.sort();
    for p in entries {
        let rel = p
            .strip_prefix(root)
            .unwrap_or(&p)
            .to_string_lossy()
            .replace('\\', "/");
        let is_dir = p.is_dir();
        if ignored(ignore, &rel, is_dir) {
            continue;
        }
        if is_dir {
            walk(root, &p, ignore, out)?;
        } else {
            let data = std::fs::read(&p).map_err(|e| io_err(&p, e))?;
            out.push((rel, data));
        }
    }
    Ok(())
}

fn parse_dependencies(raw: &Value) -> Vec<Dependency> {
    let Some(Value::List(deps)) = raw.path("dependencies") else {
        return Vec::new();
    };
    let text = |d: &Value, k: &str| match d.path(k) {
        Some(Value::String(s)) if !s.is_empty() => Some(s.clone()),
        _ => None,
    };
    deps.iter()
        .map(|d| Dependency {
            name: text(d, "name").unwrap_or_default(),
            alias: text(d, "alias"),
            condition: text(d, "condition"),
            tags: match d.path("tags") {
                Some(Value::List(t)) => t
                    .iter()
                    .filter_map(|x| x.as_str().map(str::to_string))
                    .collect(),
                _ => Vec::new(),
            },
        })
        .collect()
}

/// Unpacked charts under `charts/`, named by their dependency alias when one is declared.
fn load_subcharts(dir: &Path, path: &str, deps: &[Dependency]) -> Result<Vec<Chart>, Error> {
    let charts_dir = dir.join("charts");
    let Ok(entries) = std::fs::read_dir(&charts_dir) else {
        return Ok(Vec::new());
    };
    let mut dirs: Vec<_> = entries.filter_map(Result::ok).map(|e| e.path()).collect();
    dirs.sort();
    let mut out = Vec::new();
    for d in dirs {
        if d.is_file() && d.extension().is_some_and(|e| e == "tgz") {
            return Err(Error::Chart(format!(
                "{}: packaged subcharts are not supported yet; unpack it into charts/",
                d.display()
            )));
        }
        if !d.join("Chart.yaml").is_file() {
            continue;
        }
        let dir_name = d
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let text = std::fs::read_to_string(d.join("Chart.yaml")).map_err(|e| io_err(&d, e))?;
        let probe = Value::from_yaml_str(&text)?;
        let chart_name = probe
            .path("name")
            .and_then(Value::as_str)
            .unwrap_or(&dir_name)
            .to_string();
        let alias = deps
            .iter()
            .find(|x| x.name == chart_name)
            .and_then(|x| x.alias.as_deref());
        out.push(Chart::load_at(&d, Some(path), alias)?);
    }
    Ok(out)
}
