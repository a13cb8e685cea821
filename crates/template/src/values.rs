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

/// Which `--set` flag an expression came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SetMode {
    Typed,
    String,
    Json,
    Literal,
}

/// Applies one `--set` expression (`a.b=c,d[0]=e,list={x,y}`) to `into`.
pub fn parse_set(expr: &str, into: &mut Value) -> Result<(), Error> {
    parse_set_mode(expr, into, SetMode::Typed)
}

/// Applies one expression of `--set`, `--set-string`, `--set-json` or `--set-literal`.
pub fn parse_set_mode(expr: &str, into: &mut Value, mode: SetMode) -> Result<(), Error> {
    use crate::strvals::{Reader, parse_into, parse_literal};
    match mode {
        SetMode::Typed => parse_into(expr, into, Reader::Typed)
            .map_err(|e| Error::Set(format!("failed parsing --set data: {e}"))),
        SetMode::String => parse_into(expr, into, Reader::String)
            .map_err(|e| Error::Set(format!("failed parsing --set-string data: {e}"))),
        SetMode::Literal => parse_literal(expr, into)
            .map_err(|e| Error::Set(format!("failed parsing --set-literal data: {e}"))),
        SetMode::Json => {
            let trimmed = expr.trim();
            if trimmed.starts_with('{') {
                let parsed: Result<serde_json::Map<String, serde_json::Value>, _> =
                    serde_json::from_str(trimmed);
                let Ok(obj) = parsed else {
                    return Err(Error::Set(format!(
                        "failed parsing --set-json data JSON: {expr}"
                    )));
                };
                *into = merge_maps(into, &Value::from_json(serde_json::Value::Object(obj)));
                return Ok(());
            }
            parse_into(expr, into, Reader::Json)
                .map_err(|_| Error::Set(format!("failed parsing --set-json data {expr}")))
        }
    }
}

/// Applies one `--set-file` expression: each value is a path whose contents become the value.
pub fn parse_set_file(
    expr: &str,
    into: &mut Value,
    read: &dyn Fn(&str) -> Result<String, String>,
) -> Result<(), Error> {
    crate::strvals::parse_into(expr, into, crate::strvals::Reader::File(read))
        .map_err(|e| Error::Set(format!("failed parsing --set-file data: {e}")))
}
