//! CRD structural schemas: pruning of unknown fields and validation of types, `required`,
//! `enum`, bounds and lengths, as the apiserver does for custom resources. `pattern` and
//! `format` are not checked (see README).

use serde_json::{Map, Value};

use crate::error::Cause;

fn cause(reason: &str, field: &str, message: String) -> Cause {
    Cause {
        reason: reason.into(),
        field: field.into(),
        message,
    }
}

fn join(path: &str, seg: &str) -> String {
    if path.is_empty() {
        seg.to_string()
    } else {
        format!("{path}.{seg}")
    }
}

/// Drop fields the schema does not know; returns the pruned field paths.
pub fn prune(schema: &Value, value: &mut Value, path: &str, root: bool, pruned: &mut Vec<String>) {
    if schema["x-kubernetes-preserve-unknown-fields"] == Value::Bool(true)
        && schema.get("properties").is_none()
    {
        return;
    }
    match value {
        Value::Object(m) => {
            let props = schema["properties"].as_object();
            let additional = &schema["additionalProperties"];
            let preserve = schema["x-kubernetes-preserve-unknown-fields"] == Value::Bool(true);
            let keys: Vec<String> = m.keys().cloned().collect();
            for k in keys {
                if root && (k == "apiVersion" || k == "kind" || k == "metadata") {
                    continue;
                }
                let child_path = join(path, &k);
                if let Some(child_schema) = props.and_then(|p| p.get(&k)) {
                    if let Some(child) = m.get_mut(&k) {
                        prune(child_schema, child, &child_path, false, pruned);
                    }
                } else if additional.is_object() {
                    if let Some(child) = m.get_mut(&k) {
                        prune(additional, child, &child_path, false, pruned);
                    }
                } else if additional != &Value::Bool(true) && !preserve {
                    m.remove(&k);
                    pruned.push(child_path);
                }
            }
        }
        Value::Array(items) => {
            for (i, item) in items.iter_mut().enumerate() {
                prune(
                    &schema["items"],
                    item,
                    &format!("{path}[{i}]"),
                    false,
                    pruned,
                );
            }
        }
        _ => {}
    }
}

/// Validate a (pruned) value against its schema.
pub fn validate(schema: &Value, value: &Value, path: &str, root: bool, out: &mut Vec<Cause>) {
    if value.is_null() {
        if schema["nullable"] != Value::Bool(true) && !root {
            out.push(cause(
                "FieldValueTypeInvalid",
                path,
                format!(
                    "Invalid value: \"null\": {path} in body must be of type {}",
                    schema["type"].as_str().unwrap_or("object")
                ),
            ));
        }
        return;
    }
    let int_or_string = schema["x-kubernetes-int-or-string"] == Value::Bool(true);
    if let Some(t) = schema["type"].as_str() {
        let ok = match t {
            "object" => value.is_object(),
            "array" => value.is_array(),
            "string" => value.is_string() || (int_or_string && value.is_i64()),
            "integer" => value.is_i64() || value.is_u64(),
            "number" => value.is_number(),
            "boolean" => value.is_boolean(),
            _ => true,
        };
        if !ok {
            out.push(cause(
                "FieldValueTypeInvalid",
                path,
                format!(
                    "Invalid value: \"{}\": {path} in body must be of type {t}: \"{}\"",
                    value,
                    json_type(value)
                ),
            ));
            return;
        }
    }
    if let Some(allowed) = schema["enum"].as_array()
        && !allowed.contains(value)
    {
        let list: Vec<String> = allowed.iter().map(Value::to_string).collect();
        out.push(cause(
            "FieldValueNotSupported",
            path,
            format!(
                "Unsupported value: {value}: supported values: {}",
                list.join(", ")
            ),
        ));
    }
    if let Some(n) = value.as_f64() {
        if let Some(min) = schema["minimum"].as_f64()
            && n < min
        {
            out.push(cause(
                "FieldValueInvalid",
                path,
                format!(
                    "Invalid value: {n}: {path} in body should be greater than or equal to {min}"
                ),
            ));
        }
        if let Some(max) = schema["maximum"].as_f64()
            && n > max
        {
            out.push(cause(
                "FieldValueInvalid",
                path,
                format!("Invalid value: {n}: {path} in body should be less than or equal to {max}"),
            ));
        }
    }
    if let Some(s) = value.as_str() {
        let len = s.chars().count() as u64;
        if schema["minLength"].as_u64().is_some_and(|m| len < m) {
            out.push(cause(
                "FieldValueInvalid",
                path,
                format!(
                    "Invalid value: \"{s}\": {path} in body should be at least {} chars long",
                    schema["minLength"]
                ),
            ));
        }
        if schema["maxLength"].as_u64().is_some_and(|m| len > m) {
            out.push(cause(
                "FieldValueTooLong",
                path,
                format!(
                    "Too long: {path} may not be more than {} bytes",
                    schema["maxLength"]
                ),
            ));
        }
    }
    match value {
        Value::Object(m) => validate_object(schema, m, path, root, out),
        Value::Array(items) => {
            let n = items.len() as u64;
            if schema["minItems"].as_u64().is_some_and(|m| n < m) {
                out.push(cause(
                    "FieldValueInvalid",
                    path,
                    format!(
                        "Invalid value: {n}: {path} in body should have at least {} items",
                        schema["minItems"]
                    ),
                ));
            }
            if schema["maxItems"].as_u64().is_some_and(|m| n > m) {
                out.push(cause(
                    "FieldValueTooMany",
                    path,
                    format!(
                        "Too many: {n}: must have at most {} items",
                        schema["maxItems"]
                    ),
                ));
            }
            for (i, item) in items.iter().enumerate() {
                validate(&schema["items"], item, &format!("{path}[{i}]"), false, out);
            }
        }
        _ => {}
    }
}

fn validate_object(
    schema: &Value,
    m: &Map<String, Value>,
    path: &str,
    root: bool,
    out: &mut Vec<Cause>,
) {
    for req in schema["required"].as_array().into_iter().flatten() {
        if let Some(r) = req.as_str()
            && m.get(r).is_none_or(Value::is_null)
        {
            out.push(cause(
                "FieldValueRequired",
                &join(path, r),
                "Required value".into(),
            ));
        }
    }
    for (k, v) in m {
        if root && (k == "apiVersion" || k == "kind" || k == "metadata") {
            continue;
        }
        let child = join(path, k);
        if let Some(s) = schema["properties"].get(k) {
            validate(s, v, &child, false, out);
        } else if schema["additionalProperties"].is_object() {
            validate(&schema["additionalProperties"], v, &child, false, out);
        }
    }
}

fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_f64() => "number",
        Value::Number(_) => "integer",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn prunes_unknown_and_reports_type_enum_required() {
        let schema = json!({"type": "object", "properties": {"spec": {"type": "object",
            "required": ["replicas"],
            "properties": {"replicas": {"type": "integer", "minimum": 0},
                           "mode": {"type": "string", "enum": ["a", "b"]},
                           "free": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}}}}});
        let mut v = json!({"apiVersion": "x/v1", "kind": "K", "metadata": {"name": "n"},
            "spec": {"mode": "c", "junk": 1, "free": {"any": 1}}});
        let mut pruned = Vec::new();
        prune(&schema, &mut v, "", true, &mut pruned);
        assert_eq!(pruned, vec!["spec.junk".to_string()]);
        assert_eq!(v["spec"]["free"]["any"], json!(1));
        let mut causes = Vec::new();
        validate(&schema, &v, "", true, &mut causes);
        let fields: Vec<&str> = causes.iter().map(|c| c.field.as_str()).collect();
        assert_eq!(fields, vec!["spec.replicas", "spec.mode"]);
    }
}
