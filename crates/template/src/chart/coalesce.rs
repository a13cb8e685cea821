//! Value coalescing (chartutil's coalesce.go): chart defaults, subchart sections and globals
//! under the user's values, with the warnings Helm logs when a table meets a non-table.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::sync::Arc;

use super::HelmMajor;
use super::load::Chart;
use crate::error::Error;
use crate::gofmt;
use crate::value::Value;

type Map = BTreeMap<String, Value>;

thread_local! {
    /// Warnings of this render, with the line of coalesce.go that logs each in Helm 3.17.
    static WARNINGS: RefCell<Vec<(u32, String)>> = const { RefCell::new(Vec::new()) };
}

fn warn(line: u32, msg: String) {
    WARNINGS.with(|w| w.borrow_mut().push((line, msg)));
}

/// Takes the warnings logged so far, as Helm prints them on stderr: Helm 3's `log` with the
/// file and line, Helm 4's `log` routed through slog's text handler.
pub fn take_warnings(helm: HelmMajor) -> Vec<String> {
    WARNINGS
        .with(|w| std::mem::take(&mut *w.borrow_mut()))
        .into_iter()
        .map(|(line, msg)| match helm {
            HelmMajor::V3 => format!("coalesce.go:{line}: {msg}"),
            HelmMajor::V4 => format!("level=INFO msg={}", super::sort::logfmt_value(&msg)),
        })
        .collect()
}

fn concat_prefix(a: &str, b: &str) -> String {
    if a.is_empty() {
        b.to_string()
    } else {
        format!("{a}.{b}")
    }
}

/// CoalesceValues(chart, vals): the chart's defaults and its subcharts' under `vals`; nulls
/// delete keys.
pub fn coalesce_values(c: &Chart, vals: &Value) -> Result<Value, Error> {
    coalesce(c, vals, false)
}

/// MergeValues(chart, vals): as [`coalesce_values`], but nulls are kept.
pub fn merge_values(c: &Chart, vals: &Value) -> Result<Value, Error> {
    coalesce(c, vals, true)
}

fn coalesce(ch: &Chart, dest: &Value, merge: bool) -> Result<Value, Error> {
    let mut d = match dest {
        Value::Map(m) => (**m).clone(),
        _ => Map::new(),
    };
    coalesce_into(ch, &mut d, "", merge)?;
    Ok(Value::map(d))
}

fn coalesce_into(ch: &Chart, dest: &mut Map, prefix: &str, merge: bool) -> Result<(), Error> {
    coalesce_chart_values(ch, dest, prefix, merge);
    coalesce_deps(ch, dest, prefix, merge)
}

fn coalesce_deps(ch: &Chart, dest: &mut Map, prefix: &str, merge: bool) -> Result<(), Error> {
    for sub in &ch.dependencies {
        let name = sub.name().to_string();
        match dest.get(&name) {
            None => {
                dest.insert(name.clone(), Value::empty_map());
            }
            Some(Value::Map(_)) => {}
            Some(other) => {
                return Err(Error::Chart(format!(
                    "type mismatch on {name}: %!t({}={})",
                    go_type(other),
                    other.to_go_string()
                )));
            }
        }
        let mut dv = match dest.get(&name) {
            Some(Value::Map(m)) => (**m).clone(),
            _ => Map::new(),
        };
        let sub_prefix = concat_prefix(prefix, &ch.metadata.name);
        coalesce_globals(&mut dv, dest, &sub_prefix);
        coalesce_into(sub, &mut dv, &sub_prefix, merge)?;
        dest.insert(name, Value::map(dv));
    }
    Ok(())
}

fn go_type(v: &Value) -> &'static str {
    match v {
        Value::String(_) => "string",
        Value::Float(_) => "float64",
        Value::Int(_) => "int",
        Value::I64(_) => "int64",
        Value::List(_) => "[]interface {}",
        _ => "interface {}",
    }
}

/// coalesceGlobals: the parent's globals over the subchart's.
fn coalesce_globals(dest: &mut Map, src: &Map, prefix: &str) {
    let mut dg = match dest.get("global") {
        None => Map::new(),
        Some(Value::Map(m)) => (**m).clone(),
        Some(_) => {
            warn(
                138,
                "warning: skipping globals because destination global is not a table.".into(),
            );
            return;
        }
    };
    let sg = match src.get("global") {
        None => Map::new(),
        Some(Value::Map(m)) => (**m).clone(),
        Some(_) => {
            warn(
                145,
                "warning: skipping globals because source global is not a table.".into(),
            );
            return;
        }
    };
    for (key, val) in sg {
        match (&val, dg.get(&key)) {
            (Value::Map(vv), None) => {
                dg.insert(key, Value::Map(vv.clone()));
            }
            (Value::Map(vv), Some(Value::Map(destv))) => {
                let mut vv = (**vv).clone();
                coalesce_tables(&mut vv, destv, &concat_prefix(prefix, &key), true);
                dg.insert(key, Value::map(vv));
            }
            (Value::Map(_), Some(_)) => warn(
                161,
                format!(
                    "Conflict: cannot merge map onto non-map for {}. Skipping.",
                    gofmt::quote(&key)
                ),
            ),
            (_, Some(Value::Map(_))) => warn(175, format!("key {key} is table. Skipping")),
            _ => {
                dg.insert(key, val);
            }
        }
    }
    dest.insert("global".into(), Value::map(dg));
}

/// coalesceValues: the chart's own values.yaml under `v`.
fn coalesce_chart_values(c: &Chart, v: &mut Map, prefix: &str, merge: bool) {
    let Value::Map(vc) = &c.values else { return };
    let sub_prefix = concat_prefix(prefix, &c.metadata.name);
    for (key, val) in vc.iter() {
        match v.get_mut(key) {
            Some(Value::Nil) if !merge => {
                v.remove(key);
            }
            Some(Value::Map(dest)) => match val {
                Value::Map(src) => {
                    // a subchart's section merges (keeps nulls for the subchart to see)
                    let merge = merge || c.dependencies.iter().any(|d| d.name() == key);
                    let full = concat_prefix(&sub_prefix, key);
                    coalesce_tables(Arc::make_mut(dest), src, &full, merge);
                }
                Value::Nil => {}
                _ => warn(
                    237,
                    format!("warning: skipped value for {sub_prefix}.{key}: Not a table."),
                ),
            },
            Some(_) => {}
            None => {
                v.insert(key.clone(), val.clone());
            }
        }
    }
}

/// coalesceTablesFullKey: `dst` is authoritative; with `merge` off its nulls delete keys.
pub fn coalesce_tables(dst: &mut Map, src: &Map, prefix: &str, merge: bool) {
    let mut src = src.clone();
    for (key, val) in dst.iter() {
        if matches!(val, Value::Nil) {
            src.insert(key.clone(), Value::Nil);
        }
    }
    for (key, val) in src {
        let full = concat_prefix(prefix, &key);
        match dst.get_mut(&key) {
            Some(Value::Nil) if !merge => {
                dst.remove(&key);
            }
            None => {
                dst.insert(key, val);
            }
            Some(dv) => match (&val, dv) {
                (Value::Map(sv), Value::Map(dv)) => {
                    coalesce_tables(Arc::make_mut(dv), sv, &full, merge);
                }
                (Value::Map(_), _) => warn(
                    286,
                    format!(
                        "warning: cannot overwrite table with non table for {full} ({})",
                        val.to_go_string()
                    ),
                ),
                (Value::Nil, _) => {}
                (_, Value::Map(_)) => warn(
                    289,
                    format!(
                        "warning: destination for {full} is a table. Ignoring non-table value ({})",
                        val.to_go_string()
                    ),
                ),
                _ => {}
            },
        }
    }
}
