//! Helm's own functions (include, tpl, required, fail, lookup, YAML/JSON) and Sprig's
//! defaults/type helpers.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Arc;

use super::{FnErr, FnResult, P, Table, is_empty, reg, s};
use crate::exec::{Exec, Flow, Val};
use crate::gofmt;
use crate::value::Value;

pub(super) fn register(t: &mut Table) {
    use P::*;
    reg(t, "include", &[Str, Any], None, include);
    reg(t, "tpl", &[Str, Map], None, tpl);
    reg(t, "required", &[Str, Any], None, |_, a| {
        match &a[1] {
            Value::Nil => return Err(FnErr::User(s(&a, 0))),
            Value::String(v) if v.is_empty() => return Err(FnErr::User(s(&a, 0))),
            _ => {}
        }
        Ok(a[1].clone())
    });
    reg(t, "fail", &[Str], None, |_, a| Err(FnErr::User(s(&a, 0))));
    reg(t, "lookup", &[Str, Str, Str, Str], None, |_, _| {
        Ok(Value::map(BTreeMap::new()))
    });
    reg(t, "toYaml", &[Any], None, |_, a| {
        Ok(Value::String(trim_one_newline(super::yaml_emit::to_yaml(
            &a[0],
        ))))
    });
    reg(t, "toYamlPretty", &[Any], None, |_, a| {
        Ok(Value::String(trim_one_newline(
            super::yaml_emit::to_yaml_pretty(&a[0]),
        )))
    });
    reg(t, "mustToYaml", &[Any], None, |_, a| {
        Ok(Value::String(trim_one_newline(super::yaml_emit::to_yaml(
            &a[0],
        ))))
    });
    reg(t, "fromYaml", &[Str], None, |_, a| Ok(from_yaml(&s(&a, 0))));
    reg(t, "fromYamlArray", &[Str], None, |_, a| {
        Ok(from_yaml_array(&s(&a, 0)))
    });
    for name in ["toJson", "mustToJson"] {
        reg(t, name, &[Any], None, |_, a| {
            Ok(Value::String(to_json(&a[0], true, None)))
        });
    }
    for name in ["toPrettyJson", "mustToPrettyJson"] {
        reg(t, name, &[Any], None, |_, a| {
            Ok(Value::String(to_json(&a[0], true, Some(0))))
        });
    }
    for name in ["toRawJson", "mustToRawJson"] {
        reg(t, name, &[Any], None, |_, a| {
            Ok(Value::String(to_json(&a[0], false, None)))
        });
    }
    reg(t, "fromJson", &[Str], None, |_, a| {
        Ok(match serde_json::from_str::<serde_json::Value>(&s(&a, 0)) {
            Ok(serde_json::Value::Object(o)) => Value::from_json(serde_json::Value::Object(o)),
            Ok(serde_json::Value::Null) => Value::map(BTreeMap::new()),
            Ok(other) => err_map(format!(
                "json: cannot unmarshal {} into Go value of type map[string]interface {{}}",
                json_kind(&other)
            )),
            Err(_) => err_map(json_syntax(&s(&a, 0))),
        })
    });
    reg(t, "fromJsonArray", &[Str], None, |_, a| {
        Ok(match serde_json::from_str::<serde_json::Value>(&s(&a, 0)) {
            Ok(serde_json::Value::Array(l)) => Value::from_json(serde_json::Value::Array(l)),
            Ok(serde_json::Value::Null) => Value::list(Vec::new()),
            Ok(other) => Value::list(vec![Value::String(format!(
                "json: cannot unmarshal {} into Go value of type []interface {{}}",
                json_kind(&other)
            ))]),
            Err(_) => Value::list(vec![Value::String(json_syntax(&s(&a, 0)))]),
        })
    });
    reg(t, "mustFromJson", &[Str], None, |_, a| {
        serde_json::from_str::<serde_json::Value>(&s(&a, 0))
            .map(Value::from_json)
            .map_err(|_| FnErr::Msg(json_syntax(&s(&a, 0))))
    });
    reg(t, "default", &[Any], Some(Any), |_, a| {
        if a.len() < 2 || is_empty(&a[1]) {
            Ok(a[0].clone())
        } else {
            Ok(a[1].clone())
        }
    });
    reg(t, "empty", &[Any], None, |_, a| {
        Ok(Value::Bool(is_empty(&a[0])))
    });
    reg(t, "coalesce", &[], Some(Any), |_, a| {
        Ok(a.into_iter().find(|v| !is_empty(v)).unwrap_or(Value::Nil))
    });
    reg(t, "all", &[], Some(Any), |_, a| {
        Ok(Value::Bool(a.iter().all(|v| !is_empty(v))))
    });
    reg(t, "any", &[], Some(Any), |_, a| {
        Ok(Value::Bool(a.iter().any(|v| !is_empty(v))))
    });
    reg(t, "ternary", &[Any, Any, Bool], None, |_, a| {
        Ok(if matches!(a[2], Value::Bool(true)) {
            a[0].clone()
        } else {
            a[1].clone()
        })
    });
    reg(t, "typeOf", &[Any], None, |_, a| {
        Ok(Value::String(a[0].type_name().to_string()))
    });
    reg(t, "typeIs", &[Str, Any], None, |_, a| {
        Ok(Value::Bool(s(&a, 0) == a[1].type_name()))
    });
    reg(t, "typeIsLike", &[Str, Any], None, |_, a| {
        let t = s(&a, 0);
        let n = a[1].type_name();
        Ok(Value::Bool(t == n || t == format!("*{n}")))
    });
    reg(t, "kindOf", &[Any], None, |_, a| {
        Ok(Value::String(a[0].kind_name().to_string()))
    });
    reg(t, "kindIs", &[Str, Any], None, |_, a| {
        Ok(Value::Bool(s(&a, 0) == a[1].kind_name()))
    });
}

fn err_map(msg: String) -> Value {
    let mut m = BTreeMap::new();
    m.insert("Error".to_string(), Value::String(msg));
    Value::map(m)
}

fn json_kind(v: &serde_json::Value) -> &'static str {
    match v {
        serde_json::Value::Array(_) => "array",
        serde_json::Value::Object(_) => "object",
        serde_json::Value::String(_) => "string",
        serde_json::Value::Number(_) => "number",
        serde_json::Value::Bool(_) => "bool",
        serde_json::Value::Null => "null",
    }
}

/// encoding/json's message for text serde_json refused.
fn json_syntax(src: &str) -> String {
    match super::gojson::check(src) {
        Err(m) => m,
        Ok(()) => "json: cannot unmarshal number into Go value".into(),
    }
}

fn yaml_kind(v: &Value) -> &'static str {
    match v {
        Value::List(_) => "array",
        Value::Map(_) => "object",
        Value::String(_) => "string",
        Value::Bool(_) => "bool",
        _ => "number",
    }
}

pub(crate) fn from_yaml(src: &str) -> Value {
    match Value::from_yaml_str(src) {
        Ok(v @ Value::Map(_)) => v,
        Ok(Value::Nil) => Value::map(BTreeMap::new()),
        Ok(other) => err_map(format!(
            "error unmarshaling JSON: while decoding JSON: json: cannot unmarshal {} into Go value of type map[string]interface {{}}",
            yaml_kind(&other)
        )),
        Err(e) => err_map(e.to_string()),
    }
}

fn from_yaml_array(src: &str) -> Value {
    match Value::from_yaml_str(src) {
        Ok(v @ Value::List(_)) => v,
        Ok(Value::Nil) => Value::list(Vec::new()),
        Ok(Value::Map(ref m)) if m.is_empty() && src.trim().is_empty() => Value::list(Vec::new()),
        Ok(other) => Value::list(vec![Value::String(format!(
            "error unmarshaling JSON: while decoding JSON: json: cannot unmarshal {} into Go value of type []interface {{}}",
            yaml_kind(&other)
        ))]),
        Err(e) => Value::list(vec![Value::String(e.to_string())]),
    }
}

/// encoding/json Marshal (sorted keys, HTML-safe escapes unless `html` is false), or
/// MarshalIndent with two spaces when `indent` is given.
pub(crate) fn to_json(v: &Value, html: bool, indent: Option<usize>) -> String {
    let mut out = String::new();
    write_json(&mut out, v, html, indent);
    out
}

fn newline(out: &mut String, indent: Option<usize>) {
    if let Some(n) = indent {
        out.push('\n');
        for _ in 0..n {
            out.push_str("  ");
        }
    }
}

fn write_json(out: &mut String, v: &Value, html: bool, indent: Option<usize>) {
    let Some(_level) = crate::guard::enter_text(out.len()) else {
        out.push_str("null");
        return;
    };
    let deeper = indent.map(|n| n + 1);
    match v {
        Value::Nil => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Int(i) | Value::I64(i) => {
            let _ = write!(out, "{i}");
        }
        Value::Float(f) => {
            if f.is_finite() {
                out.push_str(&gofmt::format_float_json(*f));
            } else {
                out.push_str("null");
            }
        }
        Value::String(s) => json_string(out, s, html),
        Value::List(l) => {
            if l.is_empty() {
                out.push_str("[]");
                return;
            }
            out.push('[');
            for (i, e) in l.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                newline(out, deeper);
                write_json(out, e, html, deeper);
            }
            newline(out, indent);
            out.push(']');
        }
        Value::Map(m) => write_json_object(out, m.iter(), m.is_empty(), html, indent),
        Value::Object(o) => match &**o {
            // encoding/json writes struct fields in declaration order
            crate::object::Object::Struct(st) => {
                let fields = st.json_fields();
                write_json_object(
                    out,
                    fields.iter().map(|(k, v)| (k, v)),
                    fields.is_empty(),
                    html,
                    indent,
                );
            }
            other => write_json(out, &other.as_value(), html, indent),
        },
    }
}

fn write_json_object<'a>(
    out: &mut String,
    entries: impl Iterator<Item = (&'a String, &'a Value)>,
    empty: bool,
    html: bool,
    indent: Option<usize>,
) {
    let deeper = indent.map(|n| n + 1);
    {
        {
            if empty {
                out.push_str("{}");
                return;
            }
            out.push('{');
            for (i, (k, e)) in entries.enumerate() {
                if i > 0 {
                    out.push(',');
                }
                newline(out, deeper);
                json_string(out, k, html);
                out.push(':');
                if indent.is_some() {
                    out.push(' ');
                }
                write_json(out, e, html, deeper);
            }
            newline(out, indent);
            out.push('}');
        }
    }
}

fn json_string(out: &mut String, s: &str, html: bool) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '<' | '>' | '&' if html => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            '\u{2028}' | '\u{2029}' => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Helm's recursionMaxNums: one name may nest this deep in `include`.
const INCLUDE_MAX_NESTING: usize = 1000;

fn include(e: &mut Exec<'_>, a: Vec<Value>) -> FnResult {
    let name = s(&a, 0);
    let count = e.include_counts.entry(name.clone()).or_insert(0);
    if *count > INCLUDE_MAX_NESTING {
        return Err(FnErr::Msg(format!(
            "rendering template has a nested reference name: {name}: unable to execute template"
        )));
    }
    *count += 1;
    let r = include_counted(e, &name, a);
    if let Some(c) = e.include_counts.get_mut(&name) {
        *c = c.saturating_sub(1);
    }
    r
}

fn include_counted(e: &mut Exec<'_>, name: &str, a: Vec<Value>) -> FnResult {
    let name = name.to_string();
    let Some(tree) = e.lookup_template(&name) else {
        return Err(FnErr::Msg(format!(
            "template: no template {} associated with template \"gotpl\"",
            gofmt::quote(&name)
        )));
    };
    if let Some(max) = e.limits().max_include_depth
        && e.include_depth >= max
    {
        return Err(FnErr::Msg(format!(
            "rendering template has a nested reference name: {name}: include/tpl depth exceeds the limit of {max}"
        )));
    }
    let saved_out = std::mem::take(&mut e.out);
    e.include_depth += 1;
    let r = e.call_tree(tree, Val::new(a[1].clone()));
    e.include_depth -= 1;
    let produced = std::mem::replace(&mut e.out, saved_out);
    match r {
        Ok(()) => Ok(Value::String(produced)),
        Err(Flow::Err(err)) => Err(FnErr::Nested(err)),
        Err(_) => Err(FnErr::Msg("break or continue outside range".into())),
    }
}

fn tpl(e: &mut Exec<'_>, a: Vec<Value>) -> FnResult {
    let src = s(&a, 0);
    let vals = a[1].clone();
    // Helm parses the text into a clone of its template set under the set's own name
    let name = "gotpl".to_string();
    if let Some(max) = e.limits().max_include_depth
        && e.include_depth >= max
    {
        return Err(FnErr::Msg(format!(
            "include/tpl depth exceeds the limit of {max}"
        )));
    }
    let trees = e.set.parse_cached(&name, &src).map_err(|err| {
        FnErr::Msg(format!(
            "cannot parse template {}: {err}",
            gofmt::quote(&src)
        ))
    })?;
    let mut overlay = std::collections::HashMap::new();
    let mut main = None;
    for t in trees.iter() {
        if t.name == name && main.is_none() {
            main = Some(t.clone());
        } else if !t.is_empty() || !overlay.contains_key(&t.name) {
            overlay.insert(t.name.clone(), t.clone());
        }
    }
    let main: Arc<_> = match main {
        Some(m) => m,
        None => return Ok(Value::String(String::new())),
    };
    overlay.insert(name.clone(), main.clone());
    e.overlays.push(overlay);
    let saved_out = std::mem::take(&mut e.out);
    e.include_depth += 1;
    let r = e.call_tree(main, Val::new(vals));
    e.include_depth -= 1;
    e.overlays.pop();
    let produced = std::mem::replace(&mut e.out, saved_out);
    match r {
        Ok(()) => Ok(Value::String(produced.replace("<no value>", ""))),
        Err(Flow::Err(err)) => {
            let user = err.user_message().map(str::to_string);
            let msg = format!(
                "error during tpl function execution for {}: {err}",
                gofmt::quote(&src)
            );
            Err(FnErr::Wrapped(msg, user))
        }
        Err(_) => Err(FnErr::Msg("break or continue outside range".into())),
    }
}

/// Helm's toYAML: strings.TrimSuffix(out, "\n").
fn trim_one_newline(mut s: String) -> String {
    if s.ends_with('\n') {
        s.pop();
    }
    s
}
