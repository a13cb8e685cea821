//! Chart.yaml as Helm reads it (sigs.k8s.io/yaml into `chart.Metadata`: scalars given for string
//! fields become strings, `1.10` becomes "1.1"), validates it, and hands it to templates as
//! `.Chart` (a struct in Helm 3, a map with Go field names in Helm 4).

use std::collections::BTreeMap;
use std::sync::Arc;

use super::HelmMajor;
use crate::error::Error;
use crate::object::{Field, GoStruct, Object};
use crate::value::Value;

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

    /// `.Chart` for the templates of a chart.
    pub fn to_value(&self, is_root: bool, helm: HelmMajor) -> Value {
        match helm {
            HelmMajor::V3 => {
                let embedded = Value::Object(Arc::new(Object::Struct(self.go_struct())));
                Value::Object(Arc::new(Object::Struct(GoStruct {
                    type_name: "struct { chart.Metadata; IsRoot bool }",
                    pointer: false,
                    fields: vec![
                        Field::new("Metadata", None, embedded).embedded(),
                        Field::new("IsRoot", Some("IsRoot"), Value::Bool(is_root)),
                    ],
                    string: None,
                    string_on_pointer: false,
                    methods: Vec::new(),
                })))
            }
            HelmMajor::V4 => {
                let mut m = self.go_map();
                m.insert("IsRoot".into(), Value::Bool(is_root));
                Value::map(m)
            }
        }
    }

    /// `map[string]string`, nil when Chart.yaml has none.
    fn annotations_value(&self) -> Value {
        Value::Object(Arc::new(Object::StringMap(self.annotations.clone())))
    }

    /// Helm 3's `chart.Metadata` struct.
    fn go_struct(&self) -> GoStruct {
        let list = |l: &Option<Vec<String>>| match l {
            Some(l) => Value::list(l.iter().map(|s| Value::from(s.as_str())).collect()),
            None => Value::Nil,
        };
        let maintainers = match &self.maintainers {
            Some(ms) => Value::list(
                ms.iter()
                    .map(|m| {
                        Value::Object(Arc::new(Object::Struct(GoStruct {
                            type_name: "*chart.Maintainer",
                            pointer: true,
                            fields: vec![
                                Field::new("Name", Some("name"), Value::from(m.name.as_str()))
                                    .omitempty(),
                                Field::new("Email", Some("email"), Value::from(m.email.as_str()))
                                    .omitempty(),
                                Field::new("URL", Some("url"), Value::from(m.url.as_str()))
                                    .omitempty(),
                            ],
                            string: None,
                            string_on_pointer: false,
                            methods: Vec::new(),
                        })))
                    })
                    .collect(),
            ),
            None => Value::Nil,
        };
        let deps = match &self.dependencies {
            Some(ds) => Value::list(
                ds.iter()
                    .map(|d| Value::Object(Arc::new(Object::Struct(d.go_struct()))))
                    .collect(),
            ),
            None => Value::Nil,
        };
        let annotations = self.annotations_value();
        let s = |v: &str| Value::from(v);
        GoStruct {
            type_name: "chart.Metadata",
            pointer: false,
            fields: vec![
                Field::new("Name", Some("name"), s(&self.name)).omitempty(),
                Field::new("Home", Some("home"), s(&self.home)).omitempty(),
                Field::new("Sources", Some("sources"), list(&self.sources))
                    .omitempty()
                    .nil_prints("[]"),
                Field::new("Version", Some("version"), s(&self.version)).omitempty(),
                Field::new("Description", Some("description"), s(&self.description)).omitempty(),
                Field::new("Keywords", Some("keywords"), list(&self.keywords))
                    .omitempty()
                    .nil_prints("[]"),
                Field::new("Maintainers", Some("maintainers"), maintainers)
                    .omitempty()
                    .nil_prints("[]"),
                Field::new("Icon", Some("icon"), s(&self.icon)).omitempty(),
                Field::new("APIVersion", Some("apiVersion"), s(&self.api_version)).omitempty(),
                Field::new("Condition", Some("condition"), s(&self.condition)).omitempty(),
                Field::new("Tags", Some("tags"), s(&self.tags)).omitempty(),
                Field::new("AppVersion", Some("appVersion"), s(&self.app_version)).omitempty(),
                Field::new(
                    "Deprecated",
                    Some("deprecated"),
                    Value::Bool(self.deprecated),
                )
                .omitempty(),
                Field::new("Annotations", Some("annotations"), annotations)
                    .omitempty()
                    .nil_prints("map[]"),
                Field::new("KubeVersion", Some("kubeVersion"), s(&self.kube_version)).omitempty(),
                Field::new("Dependencies", Some("dependencies"), deps)
                    .omitempty()
                    .nil_prints("[]"),
                Field::new("Type", Some("type"), s(&self.chart_type)).omitempty(),
            ],
            string: None,
            string_on_pointer: false,
            methods: Vec::new(),
        }
    }

    /// Helm 4's metadata map: Go field names, empty lists for nil slices.
    fn go_map(&self) -> BTreeMap<String, Value> {
        let list = |l: &Option<Vec<String>>| {
            Value::list(
                l.iter()
                    .flatten()
                    .map(|s| Value::from(s.as_str()))
                    .collect(),
            )
        };
        let mut m = BTreeMap::new();
        let s = |v: &str| Value::from(v);
        m.insert("APIVersion".into(), s(&self.api_version));
        m.insert("Annotations".into(), self.annotations_value());
        m.insert("AppVersion".into(), s(&self.app_version));
        m.insert("Condition".into(), s(&self.condition));
        m.insert(
            "Dependencies".into(),
            Value::list(
                self.dependencies
                    .iter()
                    .flatten()
                    .map(|d| Value::map(d.go_map()))
                    .collect(),
            ),
        );
        m.insert("Deprecated".into(), Value::Bool(self.deprecated));
        m.insert("Description".into(), s(&self.description));
        m.insert("Home".into(), s(&self.home));
        m.insert("Icon".into(), s(&self.icon));
        m.insert("Keywords".into(), list(&self.keywords));
        m.insert("KubeVersion".into(), s(&self.kube_version));
        m.insert(
            "Maintainers".into(),
            Value::list(
                self.maintainers
                    .iter()
                    .flatten()
                    .map(|x| {
                        let mut mm = BTreeMap::new();
                        mm.insert("Email".into(), s(&x.email));
                        mm.insert("Name".into(), s(&x.name));
                        mm.insert("URL".into(), s(&x.url));
                        Value::map(mm)
                    })
                    .collect(),
            ),
        );
        m.insert("Name".into(), s(&self.name));
        m.insert("Sources".into(), list(&self.sources));
        m.insert("Tags".into(), s(&self.tags));
        m.insert("Type".into(), s(&self.chart_type));
        m.insert("Version".into(), s(&self.version));
        m
    }
}

impl Dependency {
    fn import_values_value(&self) -> Value {
        if self.import_values.is_empty() {
            Value::Nil
        } else {
            Value::list(self.import_values.clone())
        }
    }

    fn go_struct(&self) -> GoStruct {
        let s = |v: &str| Value::from(v);
        let tags = if self.tags.is_empty() {
            Value::Nil
        } else {
            Value::list(self.tags.iter().map(|t| s(t)).collect())
        };
        GoStruct {
            type_name: "*chart.Dependency",
            pointer: true,
            fields: vec![
                Field::new("Name", Some("name"), s(&self.name)),
                Field::new("Version", Some("version"), s(&self.version)).omitempty(),
                Field::new("Repository", Some("repository"), s(&self.repository)),
                Field::new("Condition", Some("condition"), s(&self.condition)).omitempty(),
                Field::new("Tags", Some("tags"), tags)
                    .omitempty()
                    .nil_prints("[]"),
                Field::new("Enabled", Some("enabled"), Value::Bool(self.enabled)).omitempty(),
                Field::new(
                    "ImportValues",
                    Some("import-values"),
                    self.import_values_value(),
                )
                .omitempty()
                .nil_prints("[]"),
                Field::new("Alias", Some("alias"), s(&self.alias)).omitempty(),
            ],
            string: None,
            string_on_pointer: false,
            methods: Vec::new(),
        }
    }

    fn go_map(&self) -> BTreeMap<String, Value> {
        let s = |v: &str| Value::from(v);
        let mut m = BTreeMap::new();
        m.insert("Alias".into(), s(&self.alias));
        m.insert("Condition".into(), s(&self.condition));
        m.insert("Enabled".into(), Value::Bool(self.enabled));
        m.insert(
            "ImportValues".into(),
            Value::list(self.import_values.clone()),
        );
        m.insert("Name".into(), s(&self.name));
        m.insert("Repository".into(), s(&self.repository));
        m.insert(
            "Tags".into(),
            Value::list(self.tags.iter().map(|t| s(t)).collect()),
        );
        m.insert("Version".into(), s(&self.version));
        m
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
