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
    ApiVersions(Vec<String>),
    KubeVersion {
        version: String,
        major: String,
        minor: String,
    },
}

/// The outcome of a field or method lookup on an object.
pub enum Lookup {
    Found(Value),
    /// The name exists but is a method needing a different argument count.
    BadArgs(usize),
    Missing,
}

impl fmt::Display for Object {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
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
            Object::ApiVersions(v) => write!(f, "[{}]", v.join(" ")),
            Object::KubeVersion { version, .. } => f.write_str(version),
        }
    }
}

impl Object {
    pub fn type_name(&self) -> &'static str {
        match self {
            Object::Files(_) => "chart.Files",
            Object::ApiVersions(_) => "chartutil.VersionSet",
            Object::KubeVersion { .. } => "*chartutil.KubeVersion",
        }
    }

    pub fn len(&self) -> usize {
        match self {
            Object::Files(f) => f.len(),
            Object::ApiVersions(v) => v.len(),
            Object::KubeVersion { .. } => 0,
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
            Object::ApiVersions(v) => {
                Value::list(v.iter().map(|s| Value::String(s.clone())).collect())
            }
            Object::KubeVersion { version, .. } => Value::String(version.clone()),
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
            (Object::ApiVersions(v), "Has") => {
                if let Some(bad) = argc(1) {
                    return bad;
                }
                let want = arg_str(0);
                Lookup::Found(Value::Bool(v.contains(&want)))
            }
            (Object::KubeVersion { version, .. }, "Version" | "GitVersion" | "String") => {
                Lookup::Found(Value::String(version.clone()))
            }
            (Object::KubeVersion { major, .. }, "Major") => {
                Lookup::Found(Value::String(major.clone()))
            }
            (Object::KubeVersion { minor, .. }, "Minor") => {
                Lookup::Found(Value::String(minor.clone()))
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
