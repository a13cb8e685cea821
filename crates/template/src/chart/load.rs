//! Helm's chart loader: a directory or archive becomes Chart.yaml metadata, values, schema,
//! templates, other files and subcharts (unpacked directories or .tgz archives under charts/).

use std::path::Path;

use super::HelmMajor;
use super::files::{RawFile, read_archive, read_archive_file, read_dir};
use super::meta::Metadata;
use crate::error::Error;
use crate::value::Value;

#[derive(Debug, Clone)]
pub struct Chart {
    pub metadata: Metadata,
    /// values.yaml (an empty map without one).
    pub values: Value,
    /// values.schema.json, as given.
    pub schema: Option<Vec<u8>>,
    /// `templates/...` files in load order.
    pub templates: Vec<RawFile>,
    /// Every other file (`.Files`), crds/ included.
    pub files: Vec<RawFile>,
    /// Subcharts: as loaded, then the enabled ones once dependencies are processed.
    pub dependencies: Vec<Chart>,
    /// Helm's ChartFullPath (`parent/charts/name`), set when dependencies are processed.
    pub full_path: String,
}

impl Chart {
    pub fn name(&self) -> &str {
        &self.metadata.name
    }

    pub fn is_library(&self) -> bool {
        self.metadata.chart_type == "library"
    }

    /// `crds/` files with a manifest extension, this chart's first, then its subcharts'.
    pub fn crd_objects(&self) -> Vec<(String, &[u8])> {
        let mut out = Vec::new();
        for (name, data) in &self.files {
            if name.starts_with("crds/")
                && [".yaml", ".yml", ".json"].iter().any(|e| name.ends_with(e))
            {
                out.push((format!("{}/{name}", self.full_path), data.as_slice()));
            }
        }
        for d in &self.dependencies {
            out.extend(d.crd_objects());
        }
        out
    }
}

/// loader.Load for the path the user gave (`shown` is how Helm names it in errors).
pub fn load(path: &Path, shown: &str, helm: HelmMajor) -> Result<Chart, Error> {
    let meta = std::fs::metadata(path)
        .map_err(|e| Error::Chart(format!("stat {shown}: {}", super::go_io_error(&e))))?;
    if meta.is_dir() {
        if helm == HelmMajor::V4 {
            let cy = format!("{shown}/Chart.yaml");
            if let Err(e) = std::fs::metadata(path.join("Chart.yaml")) {
                return Err(Error::Chart(format!(
                    "unable to detect chart at {cy}: open {cy}: {}",
                    super::go_io_error(&e)
                )));
            }
        }
        from_files(read_dir(path)?, helm)
    } else {
        from_files(read_archive_file(path, shown)?, helm)
    }
}

/// Values of a YAML file that must hold a map (values.yaml, `-f` files).
pub fn values_map(text: &str, helm: HelmMajor) -> Result<Value, String> {
    let doc = match helm {
        HelmMajor::V3 => "",
        HelmMajor::V4 => "cannot unmarshal yaml document: ",
    };
    match Value::from_yaml_str(text) {
        Ok(v @ Value::Map(_)) => Ok(v),
        Ok(other) => {
            let kind = match other {
                Value::List(_) => "array",
                Value::String(_) => "string",
                Value::Bool(_) => "bool",
                _ => "number",
            };
            Err(format!(
                "{doc}error unmarshaling JSON: while decoding JSON: json: cannot unmarshal {kind} into Go value of type map[string]interface {{}}"
            ))
        }
        Err(e) => Err(format!("{doc}{e}")),
    }
}

/// LoadFiles.
pub fn from_files(files: Vec<RawFile>, helm: HelmMajor) -> Result<Chart, Error> {
    let mut metadata: Option<Metadata> = None;
    for (name, data) in &files {
        if name == "Chart.yaml" {
            let raw = Value::from_yaml_str(&String::from_utf8_lossy(data))
                .map_err(|e| Error::Chart(format!("cannot load Chart.yaml: {e}")))?;
            let mut md = Metadata::from_value(&raw).map_err(|e| {
                Error::Chart(format!(
                    "cannot load Chart.yaml: error unmarshaling JSON: while decoding JSON: {e}"
                ))
            })?;
            if md.api_version.is_empty() {
                md.api_version = "v1".into();
            }
            metadata = Some(md);
        }
    }
    let mut values = Value::empty_map();
    let mut schema = None;
    let mut templates = Vec::new();
    let mut other = Vec::new();
    let mut subcharts: Vec<(String, Vec<RawFile>)> = Vec::new();
    for (name, data) in files {
        match name.as_str() {
            "Chart.yaml" | "Chart.lock" => {}
            "values.yaml" => {
                values = values_map(&String::from_utf8_lossy(&data), helm)
                    .map_err(|e| Error::Chart(format!("cannot load values.yaml: {e}")))?;
            }
            "values.schema.json" => schema = Some(data),
            "requirements.yaml" | "requirements.lock" => {
                let md = metadata.get_or_insert_with(Metadata::default);
                if name == "requirements.yaml" {
                    let raw = Value::from_yaml_str(&String::from_utf8_lossy(&data))
                        .map_err(|e| Error::Chart(format!("cannot load requirements.yaml: {e}")))?;
                    if let Ok(req) = Metadata::from_value(&raw)
                        && req.dependencies.is_some()
                    {
                        md.dependencies = req.dependencies;
                    }
                }
                if md.api_version == "v1" {
                    other.push((name, data));
                }
            }
            n if n.starts_with("templates/") => templates.push((name, data)),
            n if n.starts_with("charts/") => {
                if n.ends_with(".prov") {
                    other.push((name, data));
                    continue;
                }
                let rest = &n["charts/".len()..];
                let cname = rest.split('/').next().unwrap_or(rest).to_string();
                let entry = (rest.to_string(), data);
                match subcharts.iter_mut().find(|(c, _)| *c == cname) {
                    Some((_, list)) => list.push(entry),
                    None => subcharts.push((cname, vec![entry])),
                }
            }
            _ => other.push((name, data)),
        }
    }
    let Some(mut metadata) = metadata else {
        return Err(Error::Chart("Chart.yaml file is missing".into()));
    };
    metadata.validate()?;
    let chart_name = metadata.name.clone();
    let mut dependencies = Vec::new();
    for (cname, files) in subcharts {
        if cname.starts_with(['_', '.']) {
            continue;
        }
        let sub = if cname.ends_with(".tgz") {
            let Some((fname, data)) = files.into_iter().next() else {
                continue;
            };
            if fname != cname {
                return Err(Error::Chart(format!(
                    "error unpacking subchart tar in {chart_name}: expected {cname}, got {fname}"
                )));
            }
            read_archive(&data).and_then(|f| from_files(f, helm))
        } else {
            let inner: Vec<RawFile> = files
                .into_iter()
                .filter_map(|(n, d)| n.split_once('/').map(|(_, rest)| (rest.to_string(), d)))
                .collect();
            from_files(inner, helm)
        };
        let sub = sub.map_err(|e| {
            Error::Chart(format!(
                "error unpacking subchart {cname} in {chart_name}: {}",
                e.helm_message()
            ))
        })?;
        dependencies.push(sub);
    }
    Ok(Chart {
        metadata,
        values,
        schema,
        templates,
        files: other,
        dependencies,
        full_path: String::new(),
    })
}
