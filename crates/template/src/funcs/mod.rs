//! The function table: Go's builtins plus Helm's and Sprig's functions, with Go parameter types
//! so argument errors read like Go's.

use std::collections::HashMap;
use std::sync::OnceLock;

use crate::error::Error;
use crate::exec::Exec;
use crate::value::Value;

mod builtin;
mod crypto;
pub(crate) mod dates;
mod der;
mod dicts;
mod encoding;
mod gojson;
pub mod goregex;
pub mod gotime;
mod helm;
mod lists;
mod math;
mod random;
mod regexfns;
mod secrets;
mod strings;
pub(crate) mod text;
mod toml;
mod url;
pub mod yaml_emit;

pub use dicts::MUTATING;

/// Functions returning slices or maps of a concrete element type (`[]string`, `[]int`,
/// `map[string]string`, `[][]interface{}`): `range` over their result yields concrete values.
pub const TYPED_ELEMS: &[&str] = &[
    "until",
    "untilStep",
    "keys",
    "sortAlpha",
    "splitList",
    "split",
    "splitn",
    "toStrings",
    "regexFindAll",
    "mustRegexFindAll",
    "regexSplit",
    "mustRegexSplit",
    "chunk",
    "mustChunk",
];
pub use text::parse_semver as parse_semver_lenient;

/// A Go parameter type, as far as templates can tell them apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum P {
    Any,
    Str,
    Int,
    I64,
    Float,
    Bool,
    List,
    Map,
    /// time.Time.
    Time,
}

impl P {
    pub fn go_name(self) -> &'static str {
        match self {
            P::Any => "interface {}",
            P::Str => "string",
            P::Int => "int",
            P::I64 => "int64",
            P::Float => "float64",
            P::Bool => "bool",
            P::List => "[]interface {}",
            P::Map => "map[string]interface {}",
            P::Time => "time.Time",
        }
    }

    pub fn can_be_nil(self) -> bool {
        matches!(self, P::Any | P::List | P::Map)
    }
}

pub enum FnErr {
    Msg(String),
    /// `required`/`fail`: Helm shows only this text.
    User(String),
    /// An error from a nested execution (`include`, `tpl`).
    Nested(Box<Error>),
    /// A message that carries a nested `required`/`fail` text along.
    Wrapped(String, Option<String>),
}

impl From<String> for FnErr {
    fn from(s: String) -> Self {
        FnErr::Msg(s)
    }
}

impl From<&str> for FnErr {
    fn from(s: &str) -> Self {
        FnErr::Msg(s.to_string())
    }
}

pub type FnResult = Result<Value, FnErr>;
pub type FnImpl = fn(&mut Exec<'_>, Vec<Value>) -> FnResult;

#[derive(Clone, Copy)]
pub struct Func {
    pub params: &'static [P],
    pub variadic: Option<P>,
    pub f: FnImpl,
}

impl std::fmt::Debug for Func {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Func")
            .field("params", &self.params)
            .field("variadic", &self.variadic)
            .finish()
    }
}

pub(crate) type Table = HashMap<&'static str, Func>;

pub(crate) fn reg(
    t: &mut Table,
    name: &'static str,
    params: &'static [P],
    variadic: Option<P>,
    f: FnImpl,
) {
    t.insert(
        name,
        Func {
            params,
            variadic,
            f,
        },
    );
}

fn table() -> &'static Table {
    static TABLE: OnceLock<Table> = OnceLock::new();
    TABLE.get_or_init(|| {
        let mut t = Table::new();
        builtin::register(&mut t);
        strings::register(&mut t);
        lists::register(&mut t);
        dicts::register(&mut t);
        math::register(&mut t);
        encoding::register(&mut t);
        helm::register(&mut t);
        dates::register(&mut t);
        url::register(&mut t);
        random::register(&mut t);
        crypto::register(&mut t);
        secrets::register(&mut t);
        toml::register(&mut t);
        t
    })
}

pub fn lookup(name: &str) -> Option<&'static Func> {
    table().get(name)
}

pub fn exists(name: &str) -> bool {
    table().contains_key(name)
}

/// Functions Helm 4 added: a Helm 3 template using one fails to parse.
const HELM4_ONLY: &[&str] = &["mustToYaml"];

/// Whether `name` is a function in that Helm.
pub fn exists_in(name: &str, helm: crate::HelmMajor) -> bool {
    exists(name) && !(helm == crate::HelmMajor::V3 && HELM4_ONLY.contains(&name))
}

/// Sprig's strval: strings as they are, everything else through `%v`.
pub(crate) fn strval(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_go_string(),
    }
}

/// Sprig's empty(): Go's zero-value test.
pub(crate) fn is_empty(v: &Value) -> bool {
    !v.is_true()
}

/// spf13/cast ToInt64 as Sprig uses it: unparsable input becomes 0.
pub(crate) fn to_i64(v: &Value) -> i64 {
    match v {
        Value::Int(i) | Value::I64(i) => *i,
        Value::Float(f) => {
            if f.is_nan() {
                0
            } else {
                *f as i64
            }
        }
        Value::Bool(b) => i64::from(*b),
        Value::String(s) => parse_go_int(s.trim_end_matches(".0")).unwrap_or(0),
        _ => 0,
    }
}

/// strconv.ParseInt(s, 0, 64).
pub(crate) fn parse_go_int(s: &str) -> Option<i64> {
    let (neg, body) = match s.strip_prefix('-') {
        Some(b) => (true, b),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    let lower = body.to_ascii_lowercase();
    let v = if let Some(h) = lower.strip_prefix("0x") {
        i64::from_str_radix(h, 16).ok()?
    } else if let Some(b) = lower.strip_prefix("0b") {
        i64::from_str_radix(b, 2).ok()?
    } else if let Some(o) = lower.strip_prefix("0o") {
        i64::from_str_radix(o, 8).ok()?
    } else if lower.len() > 1 && lower.starts_with('0') {
        i64::from_str_radix(&lower[1..], 8).ok()?
    } else {
        if lower.is_empty() || !lower.chars().all(|c| c.is_ascii_digit()) {
            return None;
        }
        lower.parse::<i64>().ok()?
    };
    Some(if neg { -v } else { v })
}

pub(crate) fn to_f64(v: &Value) -> f64 {
    match v {
        Value::Int(i) | Value::I64(i) => *i as f64,
        Value::Float(f) => *f,
        Value::Bool(b) => f64::from(u8::from(*b)),
        Value::String(s) => s.trim().parse::<f64>().unwrap_or(0.0),
        _ => 0.0,
    }
}

pub(crate) fn as_list(v: &Value) -> Option<Vec<Value>> {
    match v {
        Value::List(l) => Some((**l).clone()),
        Value::Object(o) => match &o.as_value() {
            Value::List(l) => Some((**l).clone()),
            _ => None,
        },
        _ => None,
    }
}

/// Sprig's strslice.
pub(crate) fn strslice(v: &Value) -> Vec<String> {
    match v {
        Value::List(l) => l
            .iter()
            .filter(|e| !matches!(e, Value::Nil))
            .map(strval)
            .collect(),
        Value::Nil => Vec::new(),
        other => vec![strval(other)],
    }
}

pub(crate) fn s(v: &[Value], i: usize) -> String {
    match v.get(i) {
        Some(Value::String(s)) => s.clone(),
        Some(other) => strval(other),
        None => String::new(),
    }
}

pub(crate) fn int(v: &[Value], i: usize) -> i64 {
    match v.get(i) {
        Some(Value::Int(n) | Value::I64(n)) => *n,
        Some(other) => to_i64(other),
        None => 0,
    }
}

/// Masterminds/semver's `Constraint.Check` (`IsCompatibleRange`): `Ok(false)` when the version
/// is outside the range, `Err` when either does not parse.
pub fn semver_range_matches(constraint: &str, version: &str) -> Result<bool, String> {
    let v = text::parse_semver(version).ok_or_else(|| "Invalid Semantic Version".to_string())?;
    math::constraint_matches(constraint, &v).map_err(|e| match e {
        FnErr::Msg(m) | FnErr::User(m) | FnErr::Wrapped(m, _) => m,
        FnErr::Nested(e) => e.to_string(),
    })
}
