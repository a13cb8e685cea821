//! Helm's toToml and fromToml: BurntSushi/toml's encoder layout (scalars before tables, keys
//! sorted, two-space indents per table level) and a TOML 1.0 reader.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Arc;

use super::{P, Table, reg, s};
use crate::HelmMajor;
use crate::value::Value;

struct Enc {
    out: String,
    helm: HelmMajor,
}

fn bare(k: &str) -> bool {
    !k.is_empty()
        && k.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

fn quote(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{8}' => out.push_str("\\b"),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\u{c}' => out.push_str("\\f"),
            '\r' => out.push_str("\\r"),
            c if (c as u32) < 0x20 || c == '\u{7f}' => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn key_part(k: &str) -> String {
    if bare(k) { k.to_string() } else { quote(k) }
}

fn is_table(v: &Value) -> bool {
    match v {
        Value::Map(_) => true,
        Value::List(l) => !l.is_empty() && l.iter().all(|e| matches!(e, Value::Map(_))),
        _ => false,
    }
}

type R = Result<(), String>;

const NIL_ELEMENT: &str = "toml: cannot encode array with nil element";

impl Enc {
    fn newline(&mut self) {
        if !self.out.is_empty() {
            self.out.push('\n');
        }
    }

    fn indent(key: &[String]) -> String {
        "  ".repeat(key.len().saturating_sub(1))
    }

    fn element(&mut self, v: &Value) -> R {
        match v {
            Value::Bool(b) => self.out.push_str(if *b { "true" } else { "false" }),
            Value::Int(i) | Value::I64(i) => {
                let _ = write!(self.out, "{i}");
            }
            Value::Float(f) => self.out.push_str(&self.float(*f)),
            Value::String(s) => self.out.push_str(&quote(s)),
            Value::List(l) => {
                self.out.push('[');
                for (i, e) in l.iter().enumerate() {
                    if matches!(e, Value::Nil) {
                        return Err(NIL_ELEMENT.into());
                    }
                    if i > 0 {
                        self.out.push_str(", ");
                    }
                    self.element(e)?;
                }
                self.out.push(']');
            }
            Value::Map(m) => {
                self.out.push('{');
                let mut first = true;
                for (k, e) in sorted(m, false).into_iter().chain(sorted(m, true)) {
                    if !first {
                        self.out.push_str(", ");
                    }
                    first = false;
                    let _ = write!(self.out, "{} = ", key_part(k));
                    self.element(e)?;
                }
                self.out.push('}');
            }
            Value::Object(o) => match &**o {
                crate::object::Object::Time(t) => self
                    .out
                    .push_str(&t.format("2006-01-02T15:04:05.999999999Z07:00")),
                other => self.element(&other.as_value())?,
            },
            Value::Nil => return Err("toml: cannot encode a nil value".into()),
        }
        Ok(())
    }

    fn float(&self, f: f64) -> String {
        if f.is_nan() {
            return "nan".into();
        }
        if f.is_infinite() {
            return if f > 0.0 { "inf" } else { "-inf" }.into();
        }
        let abs = f.abs();
        if self.helm == HelmMajor::V4 && abs != 0.0 && !(1e-6..1e21).contains(&abs) {
            // strconv 'e' with the shortest digits: 1e+21, 1.5e-07
            let e = format!("{f:e}");
            let (m, x) = e.split_once('e').unwrap_or((&e, "0"));
            let x: i32 = x.parse().unwrap_or(0);
            let sign = if x < 0 { '-' } else { '+' };
            return format!("{m}e{sign}{:02}", x.abs());
        }
        let s = format!("{f}");
        if s.contains('.') { s } else { format!("{s}.0") }
    }

    fn key_value(&mut self, key: &[String], v: &Value) -> R {
        let last = key.last().map(|k| key_part(k)).unwrap_or_default();
        let _ = write!(self.out, "{}{last} = ", Self::indent(key));
        self.element(v)?;
        self.newline();
        Ok(())
    }

    fn encode(&mut self, key: &[String], v: &Value) -> R {
        match v {
            Value::Nil => Ok(()),
            Value::Map(m) => self.table(key, m),
            Value::List(l) if is_table(v) => {
                for e in l.iter() {
                    let Value::Map(m) = e else { continue };
                    self.newline();
                    let path: Vec<String> = key.iter().map(|k| key_part(k)).collect();
                    let _ = write!(self.out, "{}[[{}]]", Self::indent(key), path.join("."));
                    self.newline();
                    self.map(key, m)?;
                }
                Ok(())
            }
            other => self.key_value(key, other),
        }
    }

    fn table(&mut self, key: &[String], m: &BTreeMap<String, Value>) -> R {
        if key.len() == 1 {
            self.newline();
        }
        if !key.is_empty() {
            let path: Vec<String> = key.iter().map(|k| key_part(k)).collect();
            let _ = write!(self.out, "{}[{}]", Self::indent(key), path.join("."));
            self.newline();
        }
        self.map(key, m)
    }

    fn map(&mut self, key: &[String], m: &BTreeMap<String, Value>) -> R {
        for (direct, sub) in [(true, false), (false, true)] {
            let _ = direct;
            for (k, v) in sorted(m, sub) {
                let mut path = key.to_vec();
                path.push(k.clone());
                self.encode(&path, v)?;
            }
        }
        Ok(())
    }
}

/// Keys in order, either the non-table ones or the table ones.
fn sorted(m: &BTreeMap<String, Value>, tables: bool) -> Vec<(&String, &Value)> {
    m.iter()
        .filter(|(_, v)| !matches!(v, Value::Nil) && is_table(v) == tables)
        .collect()
}

/// toToml: the encoded document, or the encoder's error text.
pub fn to_toml(v: &Value, helm: HelmMajor) -> String {
    let mut e = Enc {
        out: String::new(),
        helm,
    };
    let r = match v {
        Value::Map(m) => e.map(&[], m),
        Value::Nil => Ok(()),
        other => e.element(other),
    };
    match r {
        Ok(()) => e.out,
        Err(msg) => msg,
    }
}

mod read;

pub(super) fn register(t: &mut Table) {
    use P::*;
    reg(t, "toToml", &[Any], None, |e, a| {
        Ok(Value::String(to_toml(&a[0], e.set.options.helm)))
    });
    reg(t, "fromToml", &[Str], None, |e, a| {
        Ok(match read::parse(&s(&a, 0), e.set.options.helm) {
            Ok(m) => Value::map(m),
            Err(msg) => {
                let mut m = BTreeMap::new();
                m.insert("Error".to_string(), Value::String(msg));
                Value::Map(Arc::new(m))
            }
        })
    });
}
