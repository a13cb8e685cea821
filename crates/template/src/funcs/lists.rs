//! Sprig's list functions (list.go) plus until/untilStep/seq.

use super::{FnErr, FnResult, P, Table, as_list, int, is_empty, reg, to_i64};
use crate::value::Value;

fn need_list(v: &Value, what: &str) -> Result<Vec<Value>, FnErr> {
    match v {
        Value::List(_) | Value::Object(_) => {
            as_list(v).ok_or_else(|| FnErr::Msg(format!("Cannot {what} on type {}", v.type_name())))
        }
        // reflect.TypeOf(nil).Kind() dereferences a nil type in Sprig
        Value::Nil => {
            Err("runtime error: invalid memory address or nil pointer dereference".into())
        }
        other => Err(format!("Cannot {what} on type {}", kind_word(other)).into()),
    }
}

fn kind_word(v: &Value) -> &'static str {
    v.kind_name()
}

fn list(v: Vec<Value>) -> FnResult {
    Ok(Value::list(v))
}

pub(super) fn register(t: &mut Table) {
    use P::*;
    reg(t, "list", &[], Some(Any), |_, a| list(a));
    reg(t, "tuple", &[], Some(Any), |_, a| list(a));
    for (name, must) in [
        ("append", false),
        ("push", false),
        ("mustAppend", true),
        ("mustPush", true),
    ] {
        let _ = must;
        reg(t, name, &[Any, Any], None, |_, a| {
            let mut l = need_list(&a[0], "push")?;
            l.push(a[1].clone());
            list(l)
        });
    }
    for name in ["prepend", "mustPrepend"] {
        reg(t, name, &[Any, Any], None, |_, a| {
            let mut l = need_list(&a[0], "prepend")?;
            l.insert(0, a[1].clone());
            list(l)
        });
    }
    for name in ["first", "mustFirst"] {
        reg(t, name, &[Any], None, |_, a| {
            Ok(need_list(&a[0], "find first")?
                .first()
                .cloned()
                .unwrap_or(Value::Nil))
        });
    }
    for name in ["last", "mustLast"] {
        reg(t, name, &[Any], None, |_, a| {
            Ok(need_list(&a[0], "find last")?
                .last()
                .cloned()
                .unwrap_or(Value::Nil))
        });
    }
    for name in ["rest", "mustRest"] {
        reg(t, name, &[Any], None, |_, a| {
            let l = need_list(&a[0], "find rest")?;
            if l.is_empty() {
                Ok(Value::Nil)
            } else {
                list(l[1..].to_vec())
            }
        });
    }
    for name in ["initial", "mustInitial"] {
        reg(t, name, &[Any], None, |_, a| {
            let l = need_list(&a[0], "find initial")?;
            if l.is_empty() {
                Ok(Value::Nil)
            } else {
                list(l[..l.len() - 1].to_vec())
            }
        });
    }
    for name in ["reverse", "mustReverse"] {
        reg(t, name, &[Any], None, |_, a| {
            let mut l = need_list(&a[0], "find reverse")?;
            l.reverse();
            list(l)
        });
    }
    for name in ["uniq", "mustUniq"] {
        reg(t, name, &[Any], None, |_, a| {
            let l = need_list(&a[0], "find uniq")?;
            let mut out: Vec<Value> = Vec::new();
            for v in l {
                if !out.contains(&v) {
                    out.push(v);
                }
            }
            list(out)
        });
    }
    for name in ["compact", "mustCompact"] {
        reg(t, name, &[Any], None, |_, a| {
            list(
                need_list(&a[0], "compact")?
                    .into_iter()
                    .filter(|v| !is_empty(v))
                    .collect(),
            )
        });
    }
    for name in ["without", "mustWithout"] {
        reg(t, name, &[Any], Some(Any), |_, a| {
            let l = need_list(&a[0], "find without")?;
            list(l.into_iter().filter(|v| !a[1..].contains(v)).collect())
        });
    }
    for name in ["has", "mustHas"] {
        reg(t, name, &[Any, Any], None, |_, a| {
            if matches!(a[1], Value::Nil) {
                return Ok(Value::Bool(false));
            }
            let l = need_list(&a[1], "find has")?;
            Ok(Value::Bool(l.contains(&a[0])))
        });
    }
    for name in ["slice", "mustSlice"] {
        reg(t, name, &[Any], Some(Any), |_, a| {
            let l = match &a[0] {
                Value::List(l) => l.clone(),
                other => {
                    return Err(format!(
                        "list should be type of slice or array but {}",
                        other.kind_name()
                    )
                    .into());
                }
            };
            if l.is_empty() {
                return Ok(Value::Nil);
            }
            let start = a.get(1).map(to_i64).unwrap_or(0);
            let end = if a.len() < 3 {
                l.len() as i64
            } else {
                to_i64(&a[2])
            };
            if start < 0 || end < start || end as usize > l.len() {
                return Err("reflect.Value.Slice: slice index out of bounds".into());
            }
            list(l[start as usize..end as usize].to_vec())
        });
    }
    reg(t, "concat", &[], Some(Any), |_, a| {
        let mut out = Vec::new();
        for v in &a {
            match v {
                Value::List(l) => out.extend(l.iter().cloned()),
                other => {
                    return Err(format!("Cannot concat type {} as list", other.kind_name()).into());
                }
            }
        }
        list(out)
    });
    for name in ["chunk", "mustChunk"] {
        reg(t, name, &[Int, Any], None, |_, a| {
            let size = int(&a, 0);
            let l = need_list(&a[1], "chunk")?;
            if size <= 0 {
                return Err("runtime error: integer divide by zero".into());
            }
            list(
                l.chunks(size as usize)
                    .map(|c| Value::list(c.to_vec()))
                    .collect(),
            )
        });
    }
    reg(t, "until", &[Int], None, |_, a| {
        let n = int(&a, 0);
        let step = if n < 0 { -1 } else { 1 };
        until_step(0, n, step)
    });
    reg(t, "untilStep", &[Int, Int, Int], None, |_, a| {
        until_step(int(&a, 0), int(&a, 1), int(&a, 2))
    });
    reg(t, "seq", &[], Some(Int), |_, a| {
        let p: Vec<i64> = (0..a.len()).map(|i| int(&a, i)).collect();
        let r = match p.len() {
            1 => {
                let inc = if p[0] < 1 { -1 } else { 1 };
                until_step(1, p[0].wrapping_add(inc), inc)?
            }
            2 => {
                let step = if p[1] < p[0] { -1 } else { 1 };
                until_step(p[0], p[1].wrapping_add(step), step)?
            }
            3 => {
                let mut inc = 1;
                if p[2] < p[0] {
                    inc = -1;
                    if p[1] > 0 {
                        return Ok(Value::String(String::new()));
                    }
                }
                until_step(p[0], p[2].wrapping_add(inc), p[1])?
            }
            _ => return Ok(Value::String(String::new())),
        };
        let parts: Vec<String> = match &r {
            Value::List(l) => l.iter().map(Value::to_go_string).collect(),
            _ => Vec::new(),
        };
        Ok(Value::String(parts.join(" ")))
    });
}

/// `until 100000000` would allocate gigabytes; no chart needs lists this long.
const MAX_LIST: usize = 1_000_000;

fn until_step(start: i64, stop: i64, step: i64) -> FnResult {
    let mut v = Vec::new();
    if stop < start {
        if step >= 0 {
            return list(v);
        }
        let mut i = start;
        while i > stop {
            v.push(Value::Int(i));
            if v.len() > MAX_LIST {
                return Err("list too long".into());
            }
            i = match i.checked_add(step) {
                Some(n) => n,
                None => break,
            };
        }
        return list(v);
    }
    if step <= 0 {
        return list(v);
    }
    let mut i = start;
    while i < stop {
        v.push(Value::Int(i));
        if v.len() > MAX_LIST {
            return Err("list too long".into());
        }
        i = match i.checked_add(step) {
            Some(n) => n,
            None => break,
        };
    }
    list(v)
}
