//! Chart.yaml as Helm reads it (sigs.k8s.io/yaml into `chart.Metadata`: scalars given for string
//! fields become strings, `1.10` becomes "1.1"), validates it, and hands it to templates as
//! `.Chart` (a struct in Helm 3, a map with Go field names in Helm 4).

use std::collections::BTreeMap;
use std::sync::Arc;

use super::HelmMajor;
use crate::error::Error;
use crate::object::{Field, GoStruct, Object};
use crate::value::Value;

mod object;

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Maintainer {
    pub name: String,
    pub email: String,
    pub url: String,
}

/// One entry of Chart.yaml `dependencies`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Dependency {
    pub name: String,
    pub version: String,
    pub repository: String,
    pub condition: String,
    pub tags: Vec<String>,
    pub enabled: bool,
    pub import_values: Vec<Value>,
    pub alias: String,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Metadata {
    pub name: String,
    pub home: String,
    pub sources: Option<Vec<String>>,
    pub version: String,
    pub description: String,
    pub keywords: Option<Vec<String>>,
    pub maintainers: Option<Vec<Maintainer>>,
    pub icon: String,
    pub api_version: String,
    pub condition: String,
    pub tags: String,
    pub app_version: String,
    pub deprecated: bool,
    pub annotations: Option<BTreeMap<String, String>>,
    pub kube_version: String,
    pub dependencies: Option<Vec<Dependency>>,
    pub chart_type: String,
}

fn json_kind(v: &Value) -> &'static str {
    match v {
        Value::String(_) => "string",
        Value::Bool(_) => "bool",
        Value::Int(_) | Value::I64(_) | Value::Float(_) => "number",
        Value::List(_) => "array",
        Value::Map(_) => "object",
        _ => "null",
    }
}

fn type_err(v: &Value, field: &str, go: &str) -> Error {
    Error::Chart(format!(
        "json: cannot unmarshal {} into Go struct field {field} of type {go}",
        json_kind(v)
    ))
}

/// A YAML scalar read into a Go string field (sigs.k8s.io/yaml's jsonTarget conversion).
fn string_field(v: Option<&Value>, field: &str) -> Result<String, Error> {
    Ok(match v {
        None | Some(Value::Nil) => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(Value::Bool(b)) => b.to_string(),
        Some(Value::Int(i) | Value::I64(i)) => i.to_string(),
        Some(Value::Float(f)) => {
            if f.fract() == 0.0 && f.abs() < 1e15 {
                format!("{}", *f as i64)
            } else {
                crate::gofmt::format_float32_g(*f)
            }
        }
        Some(other) => return Err(type_err(other, field, "string")),
    })
}

fn string_list(v: Option<&Value>, field: &str) -> Result<Option<Vec<String>>, Error> {
    match v {
        None | Some(Value::Nil) => Ok(None),
        Some(Value::List(l)) => l
            .iter()
            .map(|e| string_field(Some(e), field))
            .collect::<Result<Vec<_>, _>>()
            .map(Some),
        Some(other) => Err(type_err(other, field, "[]string")),
    }
}

impl Metadata {
    /// Decodes Chart.yaml's values (already read as YAML) into the metadata.
    pub fn from_value(raw: &Value) -> Result<Metadata, Error> {
        let Value::Map(m) = raw else {
            return Err(type_err(raw, "", "chart.Metadata").reworded_unmarshal());
        };
        let s = |k: &str, f: &str| string_field(m.get(k), f);
        let mut md = Metadata {
            name: s("name", "Metadata.name")?,
            home: s("home", "Metadata.home")?,
            sources: string_list(m.get("sources"), "Metadata.sources")?,
            version: s("version", "Metadata.version")?,
            description: s("description", "Metadata.description")?,
            keywords: string_list(m.get("keywords"), "Metadata.keywords")?,
            maintainers: None,
            icon: s("icon", "Metadata.icon")?,
            api_version: s("apiVersion", "Metadata.apiVersion")?,
            condition: s("condition", "Metadata.condition")?,
            tags: s("tags", "Metadata.tags")?,
            app_version: s("appVersion", "Metadata.appVersion")?,
            deprecated: match m.get("deprecated") {
                None | Some(Value::Nil) => false,
                Some(Value::Bool(b)) => *b,
                Some(other) => return Err(type_err(other, "Metadata.deprecated", "bool")),
            },
            annotations: None,
            kube_version: s("kubeVersion", "Metadata.kubeVersion")?,
            dependencies: None,
            chart_type: s("type", "Metadata.type")?,
        };
        md.maintainers = match m.get("maintainers") {
            None | Some(Value::Nil) => None,
            Some(Value::List(l)) => Some(
                l.iter()
                    .map(|e| {
                        let em = e.as_map();
                        let g = |k: &str| string_field(em.and_then(|x| x.get(k)), k);
                        Ok(Maintainer {
                            name: g("name")?,
                            email: g("email")?,
                            url: g("url")?,
                        })
                    })
                    .collect::<Result<Vec<_>, Error>>()?,
            ),
            Some(other) => {
                return Err(type_err(
                    other,
                    "Metadata.maintainers",
                    "[]*chart.Maintainer",
                ));
            }
        };
        md.annotations = match m.get("annotations") {
            None | Some(Value::Nil) => None,
            Some(Value::Map(a)) => Some(
                a.iter()
                    .map(|(k, v)| Ok((k.clone(), string_field(Some(v), "Metadata.annotations")?)))
                    .collect::<Result<BTreeMap<_, _>, Error>>()?,
            ),
            Some(other) => {
                return Err(type_err(other, "Metadata.annotations", "map[string]string"));
            }
        };
        md.dependencies = parse_dependencies(m.get("dependencies"))?;
        Ok(md)
    }

    /// Metadata.Validate: sanitises strings, then checks what Helm requires.
    pub fn validate(&mut self) -> Result<(), Error> {
        for s in [
            &mut self.name,
            &mut self.description,
            &mut self.home,
            &mut self.icon,
            &mut self.condition,
            &mut self.tags,
            &mut self.app_version,
            &mut self.kube_version,
        ] {
            *s = sanitize(s);
        }
        for list in [&mut self.sources, &mut self.keywords]
            .into_iter()
            .flatten()
        {
            for s in list.iter_mut() {
                *s = sanitize(s);
            }
        }
        let v = |m: String| Error::Chart(format!("validation: {m}"));
        if self.api_version.is_empty() {
            return Err(v("chart.metadata.apiVersion is required".into()));
        }
        if self.name.is_empty() {
            return Err(v("chart.metadata.name is required".into()));
        }
        if self.name.contains('/') || self.name == "." || self.name == ".." {
            return Err(v(format!("chart.metadata.name {:?} is invalid", self.name)));
        }
        if self.version.is_empty() {
            return Err(v("chart.metadata.version is required".into()));
        }
        if crate::funcs::parse_semver_lenient(&self.version).is_none() {
            return Err(v(format!(
                "chart.metadata.version {:?} is invalid",
                self.version
            )));
        }
        if !matches!(self.chart_type.as_str(), "" | "application" | "library") {
            return Err(v(
                "chart.metadata.type must be application or library".into()
            ));
        }
        for m in self.maintainers.iter_mut().flatten() {
            m.name = sanitize(&m.name);
            m.email = sanitize(&m.email);
            m.url = sanitize(&m.url);
            if m.name.is_empty() {
                return Err(v("each maintainer requires a name".into()));
            }
        }
        let mut seen = std::collections::BTreeSet::new();
        for d in self.dependencies.iter().flatten() {
            if !d.alias.is_empty()
                && !d
                    .alias
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
            {
                return Err(v(format!(
                    "dependency {:?} has disallowed characters in the alias",
                    d.name
                )));
            }
            let key = if d.alias.is_empty() {
                &d.name
            } else {
                &d.alias
            };
            if !seen.insert(key.clone()) {
                return Err(v(format!(
                    "more than one dependency with name or alias {key:?}"
                )));
            }
        }
        Ok(())
    }
}

fn parse_dependencies(v: Option<&Value>) -> Result<Option<Vec<Dependency>>, Error> {
    let l = match v {
        None | Some(Value::Nil) => return Ok(None),
        Some(Value::List(l)) => l,
        Some(other) => {
            return Err(type_err(
                other,
                "Metadata.dependencies",
                "[]*chart.Dependency",
            ));
        }
    };
    let mut out = Vec::new();
    for d in l.iter() {
        let m = d.as_map();
        let g = |k: &str| string_field(m.and_then(|x| x.get(k)), k);
        out.push(Dependency {
            name: g("name")?,
            version: g("version")?,
            repository: g("repository")?,
            condition: g("condition")?,
            tags: string_list(m.and_then(|x| x.get("tags")), "tags")?.unwrap_or_default(),
            enabled: matches!(m.and_then(|x| x.get("enabled")), Some(Value::Bool(true))),
            import_values: match m.and_then(|x| x.get("import-values")) {
                Some(Value::List(l)) => (**l).clone(),
                _ => Vec::new(),
            },
            alias: g("alias")?,
        });
    }
    Ok(Some(out))
}

/// Helm's sanitizeString: spaces become ' ', unprintable characters go.
fn sanitize(s: &str) -> String {
    s.chars()
        .filter_map(|c| {
            if c.is_whitespace() {
                Some(' ')
            } else if c.is_control() {
                None
            } else {
                Some(c)
            }
        })
        .collect()
}

trait Reword {
    fn reworded_unmarshal(self) -> Error;
}

impl Reword for Error {
    fn reworded_unmarshal(self) -> Error {
        match self {
            Error::Chart(m) => {
                Error::Chart(m.replace("Go struct field  of type", "Go value of type"))
            }
            other => other,
        }
    }
}
