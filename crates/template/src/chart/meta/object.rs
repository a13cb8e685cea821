//! Chart.yaml as templates see it: `.Chart` is a `chart.Metadata` struct in Helm 3 and a map
//! keyed by Go field names in Helm 4.

use super::*;

impl Metadata {
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
