//! text/template's predefined functions (funcs.go).

use std::fmt::Write as _;

use super::{FnResult, P, Table, reg, strval};
use crate::exec::Exec;
use crate::printf::sprintf;
use crate::value::Value;

pub(super) fn register(t: &mut Table) {
    // and/or short-circuit in eval.rs; the entries carry their arity
    reg(t, "and", &[P::Any], Some(P::Any), |_, a| {
        Ok(a.into_iter().last().unwrap_or_default())
    });
    reg(t, "or", &[P::Any], Some(P::Any), |_, a| {
        Ok(a.into_iter().last().unwrap_or_default())
    });
    reg(t, "not", &[P::Any], None, |_, a| {
        Ok(Value::Bool(!a[0].is_true()))
    });
    reg(t, "len", &[P::Any], None, len);
    reg(t, "index", &[P::Any], Some(P::Any), index);
    reg(t, "print", &[], Some(P::Any), |_, a| {
        Ok(Value::String(sprint(&a)))
    });
    reg(t, "println", &[], Some(P::Any), |_, a| {
        Ok(Value::String(sprintln(&a)))
    });
    reg(t, "printf", &[P::Str], Some(P::Any), |_, a| {
        Ok(Value::String(sprintf(&super::s(&a, 0), &a[1..])))
    });
    reg(t, "eq", &[P::Any], Some(P::Any), eq);
    reg(t, "ne", &[P::Any, P::Any], None, |e, a| match eq(e, a)? {
        Value::Bool(b) => Ok(Value::Bool(!b)),
        other => Ok(other),
    });
    reg(t, "lt", &[P::Any, P::Any], None, |e, a| {
        cmp(e.set.options.helm, &a[0], &a[1]).map(|o| Value::Bool(o.is_lt()))
    });
    reg(t, "le", &[P::Any, P::Any], None, |e, a| {
        cmp(e.set.options.helm, &a[0], &a[1]).map(|o| Value::Bool(o.is_le()))
    });
    reg(t, "gt", &[P::Any, P::Any], None, |e, a| {
        cmp(e.set.options.helm, &a[0], &a[1]).map(|o| Value::Bool(o.is_gt()))
    });
    reg(t, "ge", &[P::Any, P::Any], None, |e, a| {
        cmp(e.set.options.helm, &a[0], &a[1]).map(|o| Value::Bool(o.is_ge()))
    });
    reg(t, "html", &[], Some(P::Any), |_, a| {
        Ok(Value::String(html_escape(&eval_args(&a))))
    });
    reg(t, "js", &[], Some(P::Any), |_, a| {
        Ok(Value::String(js_escape(&eval_args(&a))))
    });
    reg(t, "urlquery", &[], Some(P::Any), |_, a| {
        Ok(Value::String(query_escape(&eval_args(&a))))
    });
    reg(t, "call", &[P::Any], Some(P::Any), |_, a| match &a[0] {
        Value::Nil => Err("call of nil".into()),
        other => Err(format!(
            "non-function {} of type {}",
            strval(other),
            other.type_name()
        )
        .into()),
    });
}

fn len(_: &mut Exec<'_>, a: Vec<Value>) -> FnResult {
    Ok(Value::Int(match &a[0] {
        Value::String(s) => s.len() as i64,
        Value::List(l) => l.len() as i64,
        Value::Map(m) => m.len() as i64,
        Value::Object(o) => o.len() as i64,
        Value::Nil => return Err("reflect: call of reflect.Value.Type on zero Value".into()),
        other => return Err(format!("len of type {}", other.type_name()).into()),
    }))
}

fn index(_: &mut Exec<'_>, a: Vec<Value>) -> FnResult {
    let mut item = a[0].clone();
    if let Value::Object(o) = &item {
        // a map[string]string gives "" for a missing key
        if let crate::object::Object::StringMap(m) = &**o
            && a.len() == 2
            && let Value::String(k) = &a[1]
        {
            let v = m.as_ref().and_then(|m| m.get(k)).cloned();
            return Ok(Value::String(v.unwrap_or_default()));
        }
        item = o.as_value();
    }
    if matches!(item, Value::Nil) {
        return Err("index of untyped nil".into());
    }
    for idx in &a[1..] {
        item = match &item {
            Value::List(l) => l[index_arg(idx, l.len(), "slice/array")?].clone(),
            Value::String(s) => {
                Value::Int(i64::from(s.as_bytes()[index_arg(idx, s.len(), "string")?]))
            }
            Value::Map(m) => match idx {
                Value::String(k) => m.get(k).cloned().unwrap_or(Value::Nil),
                Value::Nil => return Err("value is nil; should be of type string".into()),
                other => {
                    return Err(
                        format!("value has type {}; should be string", other.type_name()).into(),
                    );
                }
            },
            Value::Nil => return Err("index of nil pointer".into()),
            other => return Err(format!("can't index item of type {}", other.type_name()).into()),
        };
    }
    Ok(item)
}

fn index_arg(idx: &Value, len: usize, what: &str) -> Result<usize, super::FnErr> {
    let x = match idx {
        Value::Int(i) | Value::I64(i) => *i,
        Value::Nil => return Err(format!("cannot index {what} with nil").into()),
        other => return Err(format!("cannot index {what} with type {}", other.type_name()).into()),
    };
    if x < 0 || x as usize >= len {
        return Err(format!("index out of range: {x}").into());
    }
    Ok(x as usize)
}

/// fmt.Sprint: a space between operands when neither is a string.
pub(crate) fn sprint(a: &[Value]) -> String {
    let mut out = String::new();
    for (i, v) in a.iter().enumerate() {
        if i > 0 && !matches!(v, Value::String(_)) && !matches!(a[i - 1], Value::String(_)) {
            out.push(' ');
        }
        crate::gofmt::write_v(&mut out, v);
    }
    out
}

fn sprintln(a: &[Value]) -> String {
    let parts: Vec<String> = a.iter().map(Value::to_go_string).collect();
    format!("{}\n", parts.join(" "))
}

fn eval_args(a: &[Value]) -> String {
    if a.len() == 1
        && let Value::String(s) = &a[0]
    {
        return s.clone();
    }
    sprint(a)
}

#[derive(PartialEq, Clone, Copy)]
enum Kind {
    Invalid,
    Bool,
    Int,
    Float,
    Str,
    Other,
}

fn kind(v: &Value) -> Kind {
    match v {
        Value::Nil => Kind::Invalid,
        Value::Bool(_) => Kind::Bool,
        Value::Int(_) | Value::I64(_) => Kind::Int,
        Value::Float(_) => Kind::Float,
        Value::String(_) => Kind::Str,
        _ => Kind::Other,
    }
}

/// Go 1.24 added the two types to this message; Helm 3.17 is built with Go 1.23.
fn incompatible(helm: crate::HelmMajor, a1: &Value, a2: &Value) -> super::FnErr {
    match helm {
        crate::HelmMajor::V3 => "incompatible types for comparison".into(),
        crate::HelmMajor::V4 => format!(
            "incompatible types for comparison: {} and {}",
            a1.type_name(),
            a2.type_name()
        )
        .into(),
    }
}

fn eq(e: &mut Exec<'_>, a: Vec<Value>) -> FnResult {
    let helm = e.set.options.helm;
    let a1 = &a[0];
    if a.len() < 2 {
        return Err("missing argument for comparison".into());
    }
    let k1 = kind(a1);
    for a2 in &a[1..] {
        let k2 = kind(a2);
        let truth = if k1 != k2 {
            if k1 != Kind::Invalid && k2 != Kind::Invalid {
                return Err(incompatible(helm, a1, a2));
            }
            false
        } else {
            match (a1, a2) {
                (Value::Bool(x), Value::Bool(y)) => x == y,
                (Value::Int(x) | Value::I64(x), Value::Int(y) | Value::I64(y)) => x == y,
                (Value::Float(x), Value::Float(y)) => x == y,
                (Value::String(x), Value::String(y)) => x == y,
                (Value::Nil, Value::Nil) => true,
                (x, _) => {
                    let shown = crate::printf::sprintf("%s", std::slice::from_ref(x));
                    return Err(format!("non-comparable type {shown}: {}", x.type_name()).into());
                }
            }
        };
        if truth {
            return Ok(Value::Bool(true));
        }
    }
    Ok(Value::Bool(false))
}

fn cmp(helm: crate::HelmMajor, a1: &Value, a2: &Value) -> Result<std::cmp::Ordering, super::FnErr> {
    let k1 = kind(a1);
    let k2 = kind(a2);
    if matches!(k1, Kind::Invalid | Kind::Other) || matches!(k2, Kind::Invalid | Kind::Other) {
        return Err("invalid type for comparison".into());
    }
    if k1 != k2 {
        return Err(incompatible(helm, a1, a2));
    }
    Ok(match (a1, a2) {
        (Value::Int(x) | Value::I64(x), Value::Int(y) | Value::I64(y)) => x.cmp(y),
        (Value::Float(x), Value::Float(y)) => {
            x.partial_cmp(y).unwrap_or(std::cmp::Ordering::Greater)
        }
        (Value::String(x), Value::String(y)) => x.cmp(y),
        _ => return Err("invalid type for comparison".into()),
    })
}

pub(crate) fn html_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '"' => out.push_str("&#34;"),
            '\'' => out.push_str("&#39;"),
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '\0' => out.push('\u{fffd}'),
            c => out.push(c),
        }
    }
    out
}

fn js_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\'' => out.push_str("\\'"),
            '"' => out.push_str("\\\""),
            '<' => out.push_str("\\u003C"),
            '>' => out.push_str("\\u003E"),
            '&' => out.push_str("\\u0026"),
            '=' => out.push_str("\\u003D"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04X}", c as u32);
            }
            c => out.push(c),
        }
    }
    out
}

/// url.QueryEscape.
pub(crate) fn query_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char);
            }
            b' ' => out.push('+'),
            b => {
                let _ = write!(out, "%{b:02X}");
            }
        }
    }
    out
}
