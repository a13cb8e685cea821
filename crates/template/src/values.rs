//! Helm's values handling: coalescing chart defaults with user values (null deletes a key),
//! merging values files, and `--set` parsing (strvals).

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::error::Error;
use crate::value::Value;

type Map = BTreeMap<String, Value>;

/// chartutil.CoalesceValues: `overrides` win; a null in `overrides` deletes the default.
pub fn coalesce(defaults: &Value, overrides: &Value) -> Value {
    let (Value::Map(d), Value::Map(o)) = (defaults, overrides) else {
        return match overrides {
            Value::Nil => defaults.clone(),
            other => other.clone(),
        };
    };
    let mut v = (**o).clone();
    for (key, val) in d.iter() {
        match v.get_mut(key) {
            Some(Value::Nil) => {
                v.remove(key);
            }
            Some(Value::Map(dest)) => {
                if let Value::Map(src) = val {
                    coalesce_tables(Arc::make_mut(dest), src);
                }
            }
            Some(_) => {}
            None => {
                v.insert(key.clone(), val.clone());
            }
        }
    }
    Value::map(v)
}

/// chartutil's coalesceTablesFullKey (dst authoritative, its nulls delete keys).
fn coalesce_tables(dst: &mut Map, src: &Map) {
    let nils: Vec<String> = dst
        .iter()
        .filter(|(_, v)| matches!(v, Value::Nil))
        .map(|(k, _)| k.clone())
        .collect();
    for k in &nils {
        dst.remove(k);
    }
    for (key, val) in src {
        if nils.contains(key) {
            continue;
        }
        match dst.get_mut(key) {
            None => {
                dst.insert(key.clone(), val.clone());
            }
            Some(Value::Map(dv)) => {
                if let Value::Map(sv) = val {
                    coalesce_tables(Arc::make_mut(dv), sv);
                }
            }
            Some(_) => {}
        }
    }
}

/// Helm's mergeMaps for successive `--values` files (later files win, tables merge).
pub fn merge_maps(a: &Value, b: &Value) -> Value {
    let (Value::Map(am), Value::Map(bm)) = (a, b) else {
        return b.clone();
    };
    let mut out = (**am).clone();
    for (k, v) in bm.iter() {
        if let (Value::Map(_), Some(existing @ Value::Map(_))) = (v, out.get(k)) {
            let merged = merge_maps(existing, v);
            out.insert(k.clone(), merged);
            continue;
        }
        out.insert(k.clone(), v.clone());
    }
    Value::map(out)
}

fn set_err(expr: &str, msg: &str) -> Error {
    Error::Set(format!("failed parsing --set data {expr:?}: {msg}"))
}

/// Applies one `--set` expression (`a.b=c,d[0]=e,list={x,y}`) to `into`.
pub fn parse_set(expr: &str, into: &mut Value) -> Result<(), Error> {
    if !matches!(into, Value::Map(_)) {
        *into = Value::map(Map::new());
    }
    for part in split_unescaped(expr, ',', true) {
        if part.is_empty() {
            continue;
        }
        let Some(eq) = find_unescaped(&part, '=') else {
            return Err(set_err(expr, &format!("key {part:?} has no value")));
        };
        let key = &part[..eq];
        let raw = &part[eq + 1..];
        let value = if raw.starts_with('{') && raw.ends_with('}') {
            Value::list(
                split_unescaped(&raw[1..raw.len() - 1], ',', false)
                    .into_iter()
                    .map(|s| typed(&unescape(&s)))
                    .collect(),
            )
        } else {
            typed(&unescape(raw))
        };
        let path = parse_key(key).map_err(|m| set_err(expr, &m))?;
        set_path(into, &path, value).map_err(|m| set_err(expr, &m))?;
    }
    Ok(())
}

/// strvals typedVal.
fn typed(v: &str) -> Value {
    if v.eq_ignore_ascii_case("true") {
        return Value::Bool(true);
    }
    if v.eq_ignore_ascii_case("false") {
        return Value::Bool(false);
    }
    if v.eq_ignore_ascii_case("null") {
        return Value::Nil;
    }
    if v == "0" {
        return Value::Int(0);
    }
    if !v.is_empty() && !v.starts_with('0') {
        let body = v.strip_prefix(['+', '-']).unwrap_or(v);
        if !body.is_empty()
            && body.chars().all(|c| c.is_ascii_digit())
            && let Ok(i) = v.parse::<i64>()
        {
            return Value::Int(i);
        }
    }
    Value::String(v.to_string())
}

#[derive(Debug)]
enum Seg {
    Key(String),
    Index(usize),
}

fn parse_key(key: &str) -> Result<Vec<Seg>, String> {
    let mut segs = Vec::new();
    let mut cur = String::new();
    let mut chars = key.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                if let Some(n) = chars.next() {
                    cur.push(n);
                }
            }
            '.' => {
                if !cur.is_empty() {
                    segs.push(Seg::Key(std::mem::take(&mut cur)));
                }
            }
            '[' => {
                if !cur.is_empty() {
                    segs.push(Seg::Key(std::mem::take(&mut cur)));
                }
                let mut num = String::new();
                for d in chars.by_ref() {
                    if d == ']' {
                        break;
                    }
                    num.push(d);
                }
                let idx: usize = num
                    .parse()
                    .map_err(|_| format!("invalid list index {num:?}"))?;
                if idx > 65536 {
                    return Err(format!(
                        "index of {idx} is greater than maximum supported index of 65536"
                    ));
                }
                segs.push(Seg::Index(idx));
            }
            c => cur.push(c),
        }
    }
    if !cur.is_empty() {
        segs.push(Seg::Key(cur));
    }
    if segs.is_empty() {
        return Err("empty key".into());
    }
    Ok(segs)
}

fn set_path(target: &mut Value, path: &[Seg], value: Value) -> Result<(), String> {
    let Some((first, rest)) = path.split_first() else {
        *target = value;
        return Ok(());
    };
    match first {
        Seg::Key(k) => {
            if !matches!(target, Value::Map(_)) {
                *target = Value::map(Map::new());
            }
            let Value::Map(m) = target else {
                return Err("not a map".into());
            };
            let m = Arc::make_mut(m);
            if rest.is_empty() {
                m.insert(k.clone(), value);
                return Ok(());
            }
            let slot = m.entry(k.clone()).or_insert(Value::Nil);
            set_path(slot, rest, value)
        }
        Seg::Index(i) => {
            if !matches!(target, Value::List(_)) {
                *target = Value::list(Vec::new());
            }
            let Value::List(l) = target else {
                return Err("not a list".into());
            };
            let l = Arc::make_mut(l);
            while l.len() <= *i {
                l.push(Value::Nil);
            }
            set_path(&mut l[*i], rest, value)
        }
    }
}

fn find_unescaped(s: &str, ch: char) -> Option<usize> {
    let mut esc = false;
    for (i, c) in s.char_indices() {
        if esc {
            esc = false;
            continue;
        }
        if c == '\\' {
            esc = true;
        } else if c == ch {
            return Some(i);
        }
    }
    None
}

/// Splits on `sep` outside `{...}` (when `braces`) and not after a backslash; keeps escapes.
fn split_unescaped(s: &str, sep: char, braces: bool) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut depth = 0;
    let mut esc = false;
    for c in s.chars() {
        if esc {
            cur.push('\\');
            cur.push(c);
            esc = false;
            continue;
        }
        match c {
            '\\' => esc = true,
            '{' if braces => {
                depth += 1;
                cur.push(c);
            }
            '}' if braces => {
                depth -= 1;
                cur.push(c);
            }
            c if c == sep && depth == 0 => out.push(std::mem::take(&mut cur)),
            c => cur.push(c),
        }
    }
    if esc {
        cur.push('\\');
    }
    out.push(cur);
    out
}

fn unescape(s: &str) -> String {
    let mut out = String::new();
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            if let Some(n) = chars.next() {
                out.push(n);
            }
        } else {
            out.push(c);
        }
    }
    out
}
