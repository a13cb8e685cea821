//! Helm's built-in objects that carry methods: `.Files`, `.Capabilities.APIVersions`,
//! `.Capabilities.KubeVersion`.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use base64::Engine as _;

use crate::value::Value;

#[derive(Debug, Clone)]
pub enum Object {
    /// chart files (path -> bytes), everything outside templates/ and the chart metadata.
    Files(BTreeMap<String, Vec<u8>>),
    /// `.Capabilities.APIVersions` and the Go type name it has in this Helm.
    ApiVersions(Vec<String>, &'static str),
    /// A Go struct value (`.Capabilities`, `.Capabilities.KubeVersion`, Helm 3's `.Chart`).
    Struct(GoStruct),
    /// time.Time.
    Time(crate::funcs::gotime::GoTime),
    /// A Masterminds semver.Version: (version, original text, held through a pointer).
    Semver(semver::Version, String, bool),
    /// time.Duration (nanoseconds).
    Duration(i64),
    /// A `map[string]string` (`.Chart.Annotations`): a missing key reads as "", not nil;
    /// `None` is a nil map.
    StringMap(Option<BTreeMap<String, String>>),
}

/// A Go struct as templates see it: fields in declaration order (for `%v`), JSON names (for
/// `toJson`/`toYaml`) and an optional `String` method.
#[derive(Debug, Clone)]
pub struct GoStruct {
    pub type_name: &'static str,
    /// Held through a pointer: `%v` prints `&{...}` (template printing does not).
    pub pointer: bool,
    pub fields: Vec<Field>,
    /// What `String()` returns, if the type has that method.
    pub string: Option<String>,
    /// `String` has a pointer receiver: template printing (fields are addressable) uses it,
    /// `%v` of a copy (printf, quote, toString) does not.
    pub string_on_pointer: bool,
    /// Methods without arguments: (name, result).
    pub methods: Vec<(&'static str, Value)>,
}

#[derive(Debug, Clone)]
pub struct Field {
    /// The Go field name; a lower-case first letter marks an unexported field (printed by `%v`,
    /// invisible to templates and JSON).
    pub name: &'static str,
    /// JSON key; `None` for `json:"-"` or unexported fields.
    pub json: Option<&'static str>,
    pub omitempty: bool,
    /// An embedded struct: its fields are promoted and its JSON fields are inlined.
    pub embedded: bool,
    /// How `%v` prints a nil value here (`[]` for slices, `map[]` for maps, `<nil>`).
    pub nil_prints: &'static str,
    pub value: Value,
}

impl Field {
    pub fn new(name: &'static str, json: Option<&'static str>, value: Value) -> Field {
        Field {
            name,
            json,
            omitempty: false,
            embedded: false,
            nil_prints: "<nil>",
            value,
        }
    }

    pub fn omitempty(mut self) -> Field {
        self.omitempty = true;
        self
    }

    pub fn nil_prints(mut self, s: &'static str) -> Field {
        self.nil_prints = s;
        self
    }

    pub fn embedded(mut self) -> Field {
        self.embedded = true;
        self
    }
}

impl GoStruct {
    /// A field or promoted field by its Go name (exported fields only).
    pub fn field(&self, name: &str) -> Option<&Value> {
        if name.starts_with(|c: char| c.is_ascii_lowercase()) {
            return None;
        }
        for f in &self.fields {
            if f.name == name && !f.embedded {
                return Some(&f.value);
            }
        }
        for f in &self.fields {
            if f.embedded
                && let Value::Object(o) = &f.value
                && let Object::Struct(inner) = &**o
                && let Some(v) = inner.field(name)
            {
                return Some(v);
            }
        }
        None
    }

    /// encoding/json's view: exported fields by JSON name, omitempty applied, embedded inlined.
    pub fn json_map(&self) -> BTreeMap<String, Value> {
        let mut m = BTreeMap::new();
        for f in &self.fields {
            if f.embedded {
                if let Value::Object(o) = &f.value
                    && let Object::Struct(inner) = &**o
                {
                    m.extend(inner.json_map());
                }
                continue;
            }
            let Some(key) = f.json else { continue };
            if f.omitempty && !f.value.is_true() && !is_struct(&f.value) {
                continue;
            }
            let v = match &f.value {
                Value::Nil if f.nil_prints == "[]" || f.nil_prints == "map[]" => Value::Nil,
                other => other.clone(),
            };
            m.insert(key.to_string(), v);
        }
        m
    }

    /// encoding/json's fields in declaration order (embedded structs inlined).
    pub fn json_fields(&self) -> Vec<(String, Value)> {
        let mut out = Vec::new();
        for f in &self.fields {
            if f.embedded {
                if let Value::Object(o) = &f.value
                    && let Object::Struct(inner) = &**o
                {
                    out.extend(inner.json_fields());
                }
                continue;
            }
            let Some(key) = f.json else { continue };
            if f.omitempty && !f.value.is_true() && !is_struct(&f.value) {
                continue;
            }
            out.push((key.to_string(), f.value.clone()));
        }
        out
    }

    /// `%v` of the struct (fmt prints fields in order, space separated, in braces).
    pub fn write_v(&self, out: &mut String) {
        out.push('{');
        for (i, f) in self.fields.iter().enumerate() {
            if i > 0 {
                out.push(' ');
            }
            match &f.value {
                Value::Nil => out.push_str(f.nil_prints),
                Value::Object(o) => match &**o {
                    Object::Struct(s) if !s.string_on_pointer && s.string.is_some() => {
                        out.push_str(s.string.as_deref().unwrap_or_default());
                    }
                    Object::Struct(s) => s.write_v(out),
                    other => out.push_str(&other.to_string()),
                },
                other => crate::gofmt::write_v(out, other),
            }
        }
        out.push('}');
    }
}

/// The outcome of a field or method lookup on an object.
pub enum Lookup {
    Found(Value),
    /// The name exists but is a method needing a different argument count.
    BadArgs(usize),
    /// A field given arguments.
    NotMethod,
    Missing,
}

impl fmt::Display for Object {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Object::Time(t) => f.write_str(&t.to_go_string()),
            Object::Semver(v, _, _) => write!(f, "{v}"),
            Object::Duration(d) => f.write_str(&crate::funcs::gotime::duration_string(*d)),
            Object::StringMap(m) => {
                f.write_str("map[")?;
                for (i, (k, v)) in m.iter().flatten().enumerate() {
                    if i > 0 {
                        f.write_str(" ")?;
                    }
                    write!(f, "{k}:{v}")?;
                }
                f.write_str("]")
            }
            Object::Files(files) => {
                f.write_str("map[")?;
                for (i, (k, v)) in files.iter().enumerate() {
                    if i > 0 {
                        f.write_str(" ")?;
                    }
                    write!(f, "{k}:{v:?}")?;
                }
                f.write_str("]")
            }
            Object::ApiVersions(v, _) => write!(f, "[{}]", v.join(" ")),
            Object::Struct(s) => match (&s.string, s.string_on_pointer || s.pointer) {
                (Some(text), true) if s.pointer => f.write_str(text),
                (Some(text), false) => f.write_str(text),
                _ => {
                    let mut out = String::new();
                    if s.pointer {
                        out.push('&');
                    }
                    s.write_v(&mut out);
                    f.write_str(&out)
                }
            },
        }
    }
}

impl Object {
    pub fn type_name(&self) -> &'static str {
        match self {
            Object::Files(_) => "engine.files",
            Object::StringMap(_) => "map[string]string",
            Object::Time(_) => "time.Time",
            Object::Semver(_, _, true) => "*semver.Version",
            Object::Semver(_, _, false) => "semver.Version",
            Object::Duration(_) => "time.Duration",
            Object::ApiVersions(_, t) => t,
            Object::Struct(s) => s.type_name,
        }
    }

    pub fn len(&self) -> usize {
        match self {
            Object::Files(f) => f.len(),
            Object::StringMap(m) => m.as_ref().map_or(0, BTreeMap::len),
            Object::Time(_) | Object::Duration(_) | Object::Semver(..) => 0,
            Object::ApiVersions(v, _) => v.len(),
            Object::Struct(_) => 0,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Elements when ranged over or indexed like the Go value underneath.
    pub fn as_value(&self) -> Value {
        match self {
            Object::Files(f) => Value::map(
                f.iter()
                    .map(|(k, v)| {
                        (
                            k.clone(),
                            Value::String(String::from_utf8_lossy(v).into_owned()),
                        )
                    })
                    .collect(),
            ),
            Object::ApiVersions(v, _) => {
                Value::list(v.iter().map(|s| Value::String(s.clone())).collect())
            }
            Object::Struct(s) => Value::map(s.json_map()),
            Object::Time(t) => Value::String(t.rfc3339_nano()),
            Object::Semver(v, _, _) => Value::String(v.to_string()),
            Object::Duration(d) => Value::I64(*d),
            Object::StringMap(None) => Value::Nil,
            Object::StringMap(Some(m)) => Value::map(
                m.iter()
                    .map(|(k, v)| (k.clone(), Value::from(v.as_str())))
                    .collect(),
            ),
        }
    }

    /// Field access or method call `obj.Name args...`.
    pub fn lookup(&self, name: &str, args: &[Value]) -> Lookup {
        let argc = |n: usize| {
            if args.len() == n {
                None
            } else {
                Some(Lookup::BadArgs(n))
            }
        };
        let arg_str = |i: usize| match args.get(i) {
            Some(Value::String(s)) => s.clone(),
            Some(other) => other.to_go_string(),
            None => String::new(),
        };
        match (self, name) {
            (Object::Files(files), "Get") => {
                if let Some(bad) = argc(1) {
                    return bad;
                }
                let content = files
                    .get(&arg_str(0))
                    .map(|b| String::from_utf8_lossy(b).into_owned());
                Lookup::Found(Value::String(content.unwrap_or_default()))
            }
            (Object::Files(files), "GetBytes") => {
                if let Some(bad) = argc(1) {
                    return bad;
                }
                let bytes = files.get(&arg_str(0)).cloned().unwrap_or_default();
                Lookup::Found(Value::list(
                    bytes.into_iter().map(|b| Value::Int(b as i64)).collect(),
                ))
            }
            (Object::Files(files), "Glob") => {
                if let Some(bad) = argc(1) {
                    return bad;
                }
                let re = glob_regex(&arg_str(0));
                let picked = files
                    .iter()
                    .filter(|(k, _)| re.as_ref().map(|r| r.is_match(k)).unwrap_or(true))
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect();
                Lookup::Found(Value::Object(Arc::new(Object::Files(picked))))
            }
            (Object::Files(files), "Lines") => {
                if let Some(bad) = argc(1) {
                    return bad;
                }
                let Some(content) = files.get(&arg_str(0)) else {
                    return Lookup::Found(Value::list(Vec::new()));
                };
                let mut s = String::from_utf8_lossy(content).into_owned();
                if s.ends_with('\n') {
                    s.pop();
                }
                Lookup::Found(Value::list(s.split('\n').map(Value::from).collect()))
            }
            (Object::Files(files), "AsConfig") => {
                if let Some(bad) = argc(0) {
                    return bad;
                }
                let m = files
                    .iter()
                    .map(|(k, v)| {
                        (
                            base_name(k),
                            Value::String(String::from_utf8_lossy(v).into_owned()),
                        )
                    })
                    .collect();
                Lookup::Found(Value::String(files_yaml(Value::map(m))))
            }
            (Object::Files(files), "AsSecrets") => {
                if let Some(bad) = argc(0) {
                    return bad;
                }
                let b64 = base64::engine::general_purpose::STANDARD;
                let m = files
                    .iter()
                    .map(|(k, v)| (base_name(k), Value::String(b64.encode(v))))
                    .collect();
                Lookup::Found(Value::String(files_yaml(Value::map(m))))
            }
            (Object::ApiVersions(v, _), "Has") => {
                if let Some(bad) = argc(1) {
                    return bad;
                }
                let want = arg_str(0);
                Lookup::Found(Value::Bool(v.contains(&want)))
            }
            (Object::Time(t), _) => crate::funcs::dates::time_method(t, name, args),
            (Object::Semver(v, orig, _), _) => {
                crate::funcs::text::semver_method(v, orig, name, args)
            }
            (Object::Duration(d), _) => crate::funcs::dates::duration_method(*d, name, args),
            (Object::StringMap(m), _) => {
                if !args.is_empty() {
                    return Lookup::NotMethod;
                }
                let v = m.as_ref().and_then(|m| m.get(name)).cloned();
                Lookup::Found(Value::String(v.unwrap_or_default()))
            }
            (Object::Struct(s), _) => {
                if let Some(v) = s.field(name) {
                    if !args.is_empty() {
                        return Lookup::NotMethod;
                    }
                    return Lookup::Found(v.clone());
                }
                if name == "String"
                    && let Some(text) = &s.string
                {
                    if let Some(bad) = argc(0) {
                        return bad;
                    }
                    return Lookup::Found(Value::String(text.clone()));
                }
                if let Some((_, v)) = s.methods.iter().find(|(m, _)| *m == name) {
                    if let Some(bad) = argc(0) {
                        return bad;
                    }
                    return Lookup::Found(v.clone());
                }
                Lookup::Missing
            }
            _ => Lookup::Missing,
        }
    }
}

/// Helm's toYAML (used by AsConfig/AsSecrets): yaml.Marshal without its final newline.
fn files_yaml(v: Value) -> String {
    let mut out = crate::funcs::yaml_emit::to_yaml(&v);
    if out.ends_with('\n') {
        out.pop();
    }
    out
}

fn base_name(p: &str) -> String {
    p.rsplit('/').next().unwrap_or(p).to_string()
}

/// gobwas/glob with '/' as separator: `*` stays inside a path segment, `**` crosses them.
pub fn glob_regex(pattern: &str) -> Option<regex::Regex> {
    let mut re = String::from("^");
    let chars: Vec<char> = pattern.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        match c {
            '*' if chars.get(i + 1) == Some(&'*') => {
                re.push_str(".*");
                i += 1;
            }
            '*' => re.push_str("[^/]*"),
            '?' => re.push_str("[^/]"),
            '{' => re.push_str("(?:"),
            '}' => re.push(')'),
            ',' => re.push('|'),
            '[' => {
                let end = chars[i..].iter().position(|&x| x == ']')?;
                let inner: String = chars[i + 1..i + end].iter().collect();
                let inner = inner
                    .strip_prefix('!')
                    .map(|r| format!("^{r}"))
                    .unwrap_or(inner);
                re.push('[');
                re.push_str(&inner.replace('\\', "\\\\"));
                re.push(']');
                i += end;
            }
            '\\' if i + 1 < chars.len() => {
                i += 1;
                re.push_str(&regex::escape(&chars[i].to_string()));
            }
            other => re.push_str(&regex::escape(&other.to_string())),
        }
        i += 1;
    }
    re.push('$');
    regex::Regex::new(&re).ok()
}

/// encoding/json never treats a struct as empty for `omitempty`.
fn is_struct(v: &Value) -> bool {
    matches!(v, Value::Object(o) if matches!(&**o, Object::Struct(_)))
}
