//! `toYaml` bytes as Helm produces them: sigs.k8s.io/yaml (JSON round trip) then go-yaml v2's
//! emitter (block style, indentless sequences in maps, its key order and scalar quoting rules).

use std::cmp::Ordering;
use std::fmt::Write as _;
use std::sync::OnceLock;

use crate::gofmt;
use crate::value::Value;

mod scalar;

use scalar::scalar_string;

thread_local! {
    /// Set while toYamlPretty runs (yaml.v3's encoder with a 2-space indent).
    static PRETTY: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

fn pretty() -> bool {
    PRETTY.with(std::cell::Cell::get)
}

/// toYamlPretty: yaml.v3 with indent 2 indents sequences under their key and never folds.
pub fn to_yaml_pretty(v: &Value) -> String {
    PRETTY.with(|p| p.set(true));
    let out = to_yaml(v);
    PRETTY.with(|p| p.set(false));
    out
}

/// yaml.Marshal output (ends with a newline).
pub fn to_yaml(v: &Value) -> String {
    let mut out = String::new();
    match v {
        Value::Map(m) if !m.is_empty() => emit_map(&mut out, m, 0, false),
        Value::List(l) if !l.is_empty() => emit_seq(&mut out, l, 0, false),
        Value::Object(o) => return to_yaml(&o.as_value()),
        other => {
            emit_inline(&mut out, other, 2, false);
            if !out.ends_with('\n') {
                out.push('\n');
            }
        }
    }
    out
}

/// go-yaml's best_width: plain and quoted scalars fold at a space past this column.
const BEST_WIDTH: usize = 80;

/// The column the next character lands in (characters since the last line break).
fn column(out: &str) -> usize {
    let line = out.rfind('\n').map_or(out, |p| &out[p + 1..]);
    if line.is_ascii() {
        line.len()
    } else {
        line.chars().count()
    }
}

fn pad(out: &mut String, n: usize) {
    for _ in 0..n {
        out.push(' ');
    }
}

fn sorted_entries(m: &std::collections::BTreeMap<String, Value>) -> Vec<(&String, &Value)> {
    let mut v: Vec<(&String, &Value)> = m.iter().collect();
    v.sort_by(|a, b| key_cmp(a.0, b.0));
    v
}

fn emit_map(
    out: &mut String,
    m: &std::collections::BTreeMap<String, Value>,
    indent: usize,
    first_inline: bool,
) {
    let Some(_level) = crate::guard::enter_text(out.len()) else {
        out.push_str("...");
        return;
    };
    for (i, (k, v)) in sorted_entries(m).into_iter().enumerate() {
        if i > 0 || !first_inline {
            pad(out, indent);
        }
        out.push_str(&scalar_string(k, indent + 2, true, indent));
        out.push(':');
        match v {
            Value::Map(sub) if !sub.is_empty() => {
                out.push('\n');
                emit_map(out, sub, indent + 2, false);
            }
            Value::List(l) if !l.is_empty() => {
                out.push('\n');
                let seq_indent = if pretty() { indent + 2 } else { indent };
                emit_seq(out, l, seq_indent, false);
            }
            Value::Object(o) => {
                let mut tmp = std::collections::BTreeMap::new();
                tmp.insert(k.clone(), o.as_value());
                // re-emit this single entry through the plain path
                let start = out.rfind('\n').map(|p| p + 1).unwrap_or(0);
                out.truncate(start);
                emit_map(out, &tmp, indent, i == 0 && first_inline);
            }
            other => {
                out.push(' ');
                emit_inline(out, other, indent + 2, false);
                if !out.ends_with('\n') {
                    out.push('\n');
                }
            }
        }
    }
}

fn emit_seq(out: &mut String, l: &[Value], indent: usize, first_inline: bool) {
    let Some(_level) = crate::guard::enter_text(out.len()) else {
        out.push_str("...");
        return;
    };
    for (i, v) in l.iter().enumerate() {
        if i > 0 || !first_inline {
            pad(out, indent);
        }
        out.push('-');
        let v = match v {
            Value::Object(o) => o.as_value(),
            other => other.clone(),
        };
        match &v {
            Value::Map(sub) if !sub.is_empty() => {
                out.push(' ');
                emit_map(out, sub, indent + 2, true);
            }
            Value::List(sub) if !sub.is_empty() => {
                out.push(' ');
                emit_seq(out, sub, indent + 2, true);
            }
            other => {
                out.push(' ');
                emit_inline(out, other, indent + 2, false);
                if !out.ends_with('\n') {
                    out.push('\n');
                }
            }
        }
    }
}

/// Scalars and empty collections.
fn emit_inline(out: &mut String, v: &Value, block_indent: usize, simple_key: bool) {
    let Some(_level) = crate::guard::enter_text(out.len()) else {
        out.push_str("...");
        return;
    };
    match v {
        Value::Nil => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Int(i) | Value::I64(i) => {
            let _ = write!(out, "{i}");
        }
        Value::Float(f) => out.push_str(&float_text(*f)),
        Value::String(s) => {
            let col = column(out);
            out.push_str(&scalar_string(s, block_indent, simple_key, col));
        }
        Value::List(_) => out.push_str("[]"),
        Value::Map(_) => out.push_str("{}"),
        Value::Object(o) => emit_inline(out, &o.as_value(), block_indent, simple_key),
    }
}

/// A float after the JSON round trip: integral values come back as YAML ints.
fn float_text(f: f64) -> String {
    if !f.is_finite() {
        return "null".into();
    }
    let j = gofmt::format_float_json(f);
    if !j.contains(['.', 'e', 'E']) && (j.parse::<i64>().is_ok() || j.parse::<u64>().is_ok()) {
        return j;
    }
    let parsed: f64 = j.parse().unwrap_or(f);
    gofmt::format_float_g(parsed)
}

/// go-yaml v2 keyList.Less for string keys.
pub fn key_cmp(a: &str, b: &str) -> Ordering {
    let ar: Vec<char> = a.chars().collect();
    let br: Vec<char> = b.chars().collect();
    let mut i = 0;
    while i < ar.len() && i < br.len() {
        if ar[i] == br[i] {
            i += 1;
            continue;
        }
        let al = ar[i].is_alphabetic();
        let bl = br[i].is_alphabetic();
        if al && bl {
            return ar[i].cmp(&br[i]);
        }
        if al || bl {
            return if bl {
                Ordering::Less
            } else {
                Ordering::Greater
            };
        }
        let (mut an, mut bn) = (0i64, 0i64);
        if ar[i] == '0' || br[i] == '0' {
            let mut j = i;
            while j > 0 && ar[j - 1].is_ascii_digit() {
                j -= 1;
                if ar[j] != '0' {
                    an = 1;
                    bn = 1;
                    break;
                }
            }
        }
        let mut ai = i;
        while ai < ar.len() && ar[ai].is_ascii_digit() {
            an = an.wrapping_mul(10).wrapping_add(ar[ai] as i64 - '0' as i64);
            ai += 1;
        }
        let mut bi = i;
        while bi < br.len() && br[bi].is_ascii_digit() {
            bn = bn.wrapping_mul(10).wrapping_add(br[bi] as i64 - '0' as i64);
            bi += 1;
        }
        if an != bn {
            return an.cmp(&bn);
        }
        if ai != bi {
            return ai.cmp(&bi);
        }
        return ar[i].cmp(&br[i]);
    }
    ar.len().cmp(&br.len())
}
