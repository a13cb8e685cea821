//! The breaking-change check of the event contract, as a subscriber sees it:
//! compares an AsyncAPI document (docs/asyncapi.yaml) with the last released
//! one (docs/released/asyncapi.yaml). Within an event type, fields may only be
//! added; an event or channel removed, a field removed, retyped (a JSON type
//! or `const` it did not have, another `format`) or no longer required is
//! breaking (docs/events.md, "Compatibility").

use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};

use crate::error::{BusError, Result};

/// Every breaking change from `released` to `current` (AsyncAPI YAML texts),
/// one line each: `<event type>: <path>: <what>`. Empty: compatible.
pub fn breaking_changes(released: &str, current: &str) -> Result<Vec<String>> {
    let released = parse(released, "released")?;
    let current = parse(current, "current")?;
    let mut out = Vec::new();
    let addresses = |doc: &Value| -> BTreeSet<String> {
        doc["channels"]
            .as_object()
            .into_iter()
            .flat_map(|c| c.values())
            .filter_map(|c| c["address"].as_str().map(str::to_owned))
            .collect()
    };
    let now = addresses(&current);
    for address in addresses(&released).difference(&now) {
        out.push(format!("{address}: channel removed"));
    }
    let current_messages = messages(&current);
    for (event, old) in messages(&released) {
        match current_messages.get(&event) {
            None => out.push(format!("{event}: event removed")),
            Some(new) => compare(
                &event,
                "",
                &old["payload"]["schema"],
                &new["payload"]["schema"],
                &mut out,
            ),
        }
    }
    Ok(out)
}

fn parse(text: &str, which: &str) -> Result<Value> {
    serde_yaml::from_str(text)
        .map_err(|e| BusError::Catalogue(format!("{which} AsyncAPI document: {e}")))
}

/// Messages by event type (their `name`).
fn messages(doc: &Value) -> BTreeMap<String, Value> {
    doc["components"]["messages"]
        .as_object()
        .into_iter()
        .flat_map(|m| m.values())
        .filter_map(|m| Some((m["name"].as_str()?.to_owned(), m.clone())))
        .collect()
}

/// The JSON types a schema allows; empty: any.
fn types(schema: &Value) -> BTreeSet<String> {
    match &schema["type"] {
        Value::String(t) => [t.clone()].into(),
        Value::Array(ts) => ts
            .iter()
            .filter_map(|t| t.as_str().map(str::to_owned))
            .collect(),
        _ => BTreeSet::new(),
    }
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_owned()
    } else {
        format!("{path}.{key}")
    }
}

fn compare(event: &str, path: &str, old: &Value, new: &Value, out: &mut Vec<String>) {
    let at = if path.is_empty() { "(event)" } else { path };
    let (old_types, new_types) = (types(old), types(new));
    if !old_types.is_empty() && (new_types.is_empty() || !new_types.is_subset(&old_types)) {
        out.push(format!(
            "{event}: {at}: retyped from {old_types:?} to {new_types:?}"
        ));
    }
    if !old["const"].is_null() && old["const"] != new["const"] {
        out.push(format!(
            "{event}: {at}: const {} became {}",
            old["const"], new["const"]
        ));
    }
    if !old["format"].is_null() && old["format"] != new["format"] {
        out.push(format!(
            "{event}: {at}: format {} became {}",
            old["format"], new["format"]
        ));
    }
    let required = |s: &Value| -> BTreeSet<String> {
        s["required"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|r| r.as_str().map(str::to_owned))
            .collect()
    };
    for field in required(old).difference(&required(new)) {
        out.push(format!(
            "{event}: {}: no longer required",
            join(path, field)
        ));
    }
    if let Some(props) = old["properties"].as_object() {
        for (key, old_prop) in props {
            let field = join(path, key);
            match new["properties"].get(key) {
                None => out.push(format!("{event}: {field}: removed")),
                Some(new_prop) => compare(event, &field, old_prop, new_prop, out),
            }
        }
    }
    if old["items"].is_object() {
        compare(event, &format!("{at}[]"), &old["items"], &new["items"], out);
    }
    if old["additionalProperties"].is_object() {
        compare(
            event,
            &format!("{at}{{}}"),
            &old["additionalProperties"],
            &new["additionalProperties"],
            out,
        );
    }
}
