//! Helm's value model: what `map[string]interface{}` trees hold after Helm reads YAML/JSON.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::error::Error;
use crate::gofmt;
use crate::object::Object;

/// A template value. `Int` is Go's `int`/`int64`, `Float` Go's `float64` (every number Helm reads from
/// YAML or JSON is a `Float`), `Nil` is a nil `interface{}`.
#[derive(Debug, Clone, Default)]
pub enum Value {
    #[default]
    Nil,
    Bool(bool),
    Int(i64),
    /// Go's `int64`: what Sprig's integer math and `--set` integers produce.
    I64(i64),
    Float(f64),
    String(String),
    /// Shared like Go's slices: cloning a value is cheap, writes copy on demand.
    List(Arc<Vec<Value>>),
    /// Shared like Go's maps.
    Map(Arc<BTreeMap<String, Value>>),
    /// Built-in objects with methods (`.Files`, `.Capabilities.APIVersions`, ...).
    Object(Arc<Object>),
}

/// Drops nested lists/maps iteratively: a template can build a million-deep chain with
/// `dict "k" $d` in a loop, and the default recursive drop would overflow the stack.
impl Drop for Value {
    fn drop(&mut self) {
        let mut stack: Vec<Value> = Vec::new();
        take_children(self, &mut stack);
        while let Some(mut v) = stack.pop() {
            take_children(&mut v, &mut stack);
        }
    }
}

fn take_children(v: &mut Value, stack: &mut Vec<Value>) {
    match v {
        Value::List(l) => {
            if let Some(items) = Arc::get_mut(l) {
                stack.append(items);
            }
        }
        Value::Map(m) => {
            if let Some(items) = Arc::get_mut(m) {
                stack.extend(std::mem::take(items).into_values());
            }
        }
        _ => {}
    }
}

impl PartialEq for Value {
    fn eq(&self, other: &Self) -> bool {
        let Some(_level) = crate::guard::enter() else {
            return false;
        };
        match (self, other) {
            (Value::Nil, Value::Nil) => true,
            (Value::Bool(a), Value::Bool(b)) => a == b,
            (Value::Int(a), Value::Int(b)) => a == b,
            (Value::I64(a), Value::I64(b)) => a == b,
            (Value::Float(a), Value::Float(b)) => a == b,
            (Value::String(a), Value::String(b)) => a == b,
            (Value::List(a), Value::List(b)) => Arc::ptr_eq(a, b) || a == b,
            (Value::Map(a), Value::Map(b)) => Arc::ptr_eq(a, b) || a == b,
            (Value::Object(a), Value::Object(b)) => Arc::ptr_eq(a, b),
            _ => false,
        }
    }
}

impl Value {
    pub fn map(m: BTreeMap<String, Value>) -> Value {
        Value::Map(Arc::new(m))
    }

    pub fn list(l: Vec<Value>) -> Value {
        Value::List(Arc::new(l))
    }

    pub fn empty_map() -> Value {
        Value::Map(Arc::new(BTreeMap::new()))
    }
}

impl From<&str> for Value {
    fn from(s: &str) -> Self {
        Value::String(s.to_string())
    }
}
impl From<String> for Value {
    fn from(s: String) -> Self {
        Value::String(s)
    }
}
impl From<bool> for Value {
    fn from(b: bool) -> Self {
        Value::Bool(b)
    }
}
impl From<i64> for Value {
    fn from(i: i64) -> Self {
        Value::Int(i)
    }
}

impl Value {
    /// Reads YAML the way Helm reads values files (sigs.k8s.io/yaml: YAML -> JSON -> float64 numbers).
    pub fn from_yaml_str(src: &str) -> Result<Value, Error> {
        match crate::yaml_load::load(src)? {
            Value::Nil => Ok(Value::empty_map()),
            v => Ok(v),
        }
    }

    /// JSON numbers become float64 as Go's encoding/json does for `interface{}`.
    pub fn from_json(v: serde_json::Value) -> Value {
        use serde_json::Value as J;
        match v {
            J::Null => Value::Nil,
            J::Bool(b) => Value::Bool(b),
            J::Number(n) => Value::Float(n.as_f64().unwrap_or(0.0)),
            J::String(s) => Value::String(s),
            J::Array(a) => Value::list(a.into_iter().map(Value::from_json).collect()),
            J::Object(o) => Value::map(
                o.into_iter()
                    .map(|(k, v)| (k, Value::from_json(v)))
                    .collect(),
            ),
        }
    }

    pub fn to_json(&self) -> serde_json::Value {
        let Some(_level) = crate::guard::enter() else {
            return serde_json::Value::Null;
        };
        use serde_json::Value as J;
        match self {
            Value::Nil => J::Null,
            Value::Bool(b) => J::Bool(*b),
            Value::Int(i) | Value::I64(i) => J::from(*i),
            Value::Float(f) => serde_json::Number::from_f64(*f)
                .map(J::Number)
                .unwrap_or(J::Null),
            Value::String(s) => J::String(s.clone()),
            Value::List(l) => J::Array(l.iter().map(Value::to_json).collect()),
            Value::Map(m) => J::Object(m.iter().map(|(k, v)| (k.clone(), v.to_json())).collect()),
            Value::Object(o) => J::String(o.to_string()),
        }
    }

    /// Go's truthiness (text/template `isTrue`).
    pub fn is_true(&self) -> bool {
        match self {
            Value::Nil => false,
            Value::Bool(b) => *b,
            Value::Int(i) | Value::I64(i) => *i != 0,
            Value::Float(f) => *f != 0.0,
            Value::String(s) => !s.is_empty(),
            Value::List(l) => !l.is_empty(),
            Value::Map(m) => !m.is_empty(),
            Value::Object(o) => match &**o {
                Object::Struct(_) | Object::Time(_) | Object::Semver(..) => true,
                Object::Duration(d) => *d != 0,
                other => !other.is_empty(),
            },
        }
    }

    /// Go's `%T` of the dynamic value.
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Nil => "<nil>",
            Value::Bool(_) => "bool",
            Value::Int(_) => "int",
            Value::I64(_) => "int64",
            Value::Float(_) => "float64",
            Value::String(_) => "string",
            Value::List(_) => "[]interface {}",
            Value::Map(_) => "map[string]interface {}",
            Value::Object(o) => o.type_name(),
        }
    }

    /// reflect.Kind name, as Sprig's `kindOf` prints it.
    pub fn kind_name(&self) -> &'static str {
        match self {
            Value::Nil => "invalid",
            Value::Bool(_) => "bool",
            Value::Int(_) => "int",
            Value::I64(_) => "int64",
            Value::Float(_) => "float64",
            Value::String(_) => "string",
            Value::List(_) => "slice",
            Value::Map(_) => "map",
            Value::Object(o) => match &**o {
                Object::Duration(_) => "int64",
                Object::StringMap(_) | Object::Files(_) => "map",
                Object::ApiVersions(..) => "slice",
                Object::Semver(_, _, true) => "ptr",
                _ => "struct",
            },
        }
    }

    /// `fmt.Sprint`-style rendering (`%v`).
    pub fn to_go_string(&self) -> String {
        let mut s = String::new();
        gofmt::write_v(&mut s, self);
        s
    }

    /// The value of any Go integer type.
    pub fn as_int(&self) -> Option<i64> {
        match self {
            Value::Int(i) | Value::I64(i) => Some(*i),
            _ => None,
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::String(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_map(&self) -> Option<&BTreeMap<String, Value>> {
        match self {
            Value::Map(m) => Some(m),
            _ => None,
        }
    }

    /// Looks a dotted path up (`a.b.c`), as chartutil.Values.PathValue does.
    pub fn path(&self, path: &str) -> Option<&Value> {
        let mut cur = self;
        for part in path.split('.') {
            cur = cur.as_map()?.get(part)?;
        }
        Some(cur)
    }
}
