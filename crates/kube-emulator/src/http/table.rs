//! `meta.k8s.io/v1 Table` responses for `kubectl get`: the columns kubectl shows for the
//! built-in kinds we serve, and `additionalPrinterColumns` for CRDs.

use serde_json::{Value, json};

use crate::registry::ResourceType;

fn age(ts: &str) -> String {
    let Ok(t) = chrono::DateTime::parse_from_rfc3339(ts) else {
        return "<unknown>".into();
    };
    let secs = (chrono::Utc::now() - t.with_timezone(&chrono::Utc))
        .num_seconds()
        .max(0);
    match secs {
        s if s < 120 => format!("{s}s"),
        s if s < 600 => format!("{}m{}s", s / 60, s % 60),
        s if s < 3 * 3600 => format!("{}m", s / 60),
        s if s < 48 * 3600 => format!("{}h", s / 3600),
        s => format!("{}d", s / 86400),
    }
}

/// A simple JSONPath: `.a.b[0].c` and `.a[?(@.type=="Ready")].status`.
fn json_path(obj: &Value, path: &str) -> Value {
    let mut cur = obj.clone();
    let mut rest = path.trim_start_matches('.');
    while !rest.is_empty() {
        let end = rest.find(['.', '[']).unwrap_or(rest.len());
        let (field, tail) = rest.split_at(end);
        if !field.is_empty() {
            cur = cur.get(field).cloned().unwrap_or(Value::Null);
        }
        rest = tail;
        if let Some(t) = rest.strip_prefix('[') {
            let close = t.find(']').unwrap_or(t.len());
            let inner = &t[..close];
            rest = t.get(close + 1..).unwrap_or("");
            if let Some(filter) = inner.strip_prefix("?(@.").and_then(|f| f.strip_suffix(')')) {
                let (k, v) = filter.split_once("==").unwrap_or((filter, ""));
                let want = v.trim().trim_matches('"').trim_matches('\'');
                cur = cur
                    .as_array()
                    .and_then(|a| {
                        a.iter()
                            .find(|i| i[k.trim()].as_str() == Some(want))
                            .cloned()
                    })
                    .unwrap_or(Value::Null);
            } else if let Ok(i) = inner.parse::<usize>() {
                cur = cur.get(i).cloned().unwrap_or(Value::Null);
            }
        }
        rest = rest.trim_start_matches('.');
    }
    cur
}

fn cell(v: &Value) -> Value {
    match v {
        // The apiserver sends null for a missing value; kubectl renders it.
        Value::Null => Value::Null,
        Value::String(_) | Value::Number(_) | Value::Bool(_) => v.clone(),
        other => json!(other.to_string()),
    }
}

fn columns(rt: &ResourceType) -> Vec<(&'static str, &'static str)> {
    match (rt.group.as_str(), rt.kind.as_str()) {
        ("", "Pod") => vec![
            ("Ready", "string"),
            ("Status", "string"),
            ("Restarts", "string"),
        ],
        ("apps", "Deployment") => vec![
            ("Ready", "string"),
            ("Up-to-date", "integer"),
            ("Available", "integer"),
        ],
        ("", "Service") => vec![
            ("Type", "string"),
            ("Cluster-IP", "string"),
            ("Port(s)", "string"),
        ],
        ("", "PersistentVolumeClaim") => vec![
            ("Status", "string"),
            ("Capacity", "string"),
            ("Access Modes", "string"),
        ],
        ("", "ConfigMap") => vec![("Data", "integer")],
        ("", "Secret") => vec![("Type", "string"), ("Data", "integer")],
        ("", "Namespace") => vec![("Status", "string")],
        _ => vec![],
    }
}

fn builtin_cells(rt: &ResourceType, o: &Value) -> Vec<Value> {
    let count = |v: &Value| v.as_object().map(serde_json::Map::len).unwrap_or(0);
    match (rt.group.as_str(), rt.kind.as_str()) {
        ("", "Pod") => {
            let total = o["spec"]["containers"]
                .as_array()
                .map(Vec::len)
                .unwrap_or(0);
            let statuses = o["status"]["containerStatuses"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            let ready = statuses
                .iter()
                .filter(|s| s["ready"] == json!(true))
                .count();
            let restarts: i64 = statuses
                .iter()
                .map(|s| s["restartCount"].as_i64().unwrap_or(0))
                .sum();
            let reason = statuses
                .iter()
                .find_map(|s| s["state"]["waiting"]["reason"].as_str().map(String::from))
                .or_else(|| o["status"]["reason"].as_str().map(String::from))
                .unwrap_or_else(|| {
                    o["status"]["phase"]
                        .as_str()
                        .unwrap_or("Pending")
                        .to_string()
                });
            let reason = if o["metadata"]["deletionTimestamp"].is_null() {
                reason
            } else {
                "Terminating".into()
            };
            vec![
                json!(format!("{ready}/{total}")),
                json!(reason),
                json!(restarts.to_string()),
            ]
        }
        ("apps", "Deployment") => vec![
            json!(format!(
                "{}/{}",
                o["status"]["readyReplicas"].as_i64().unwrap_or(0),
                o["spec"]["replicas"].as_i64().unwrap_or(0)
            )),
            json!(o["status"]["updatedReplicas"].as_i64().unwrap_or(0)),
            json!(o["status"]["availableReplicas"].as_i64().unwrap_or(0)),
        ],
        ("", "Service") => {
            let ports: Vec<String> = o["spec"]["ports"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|p| match p["nodePort"].as_i64() {
                    Some(np) => format!(
                        "{}:{np}/{}",
                        p["port"],
                        p["protocol"].as_str().unwrap_or("TCP")
                    ),
                    None => format!("{}/{}", p["port"], p["protocol"].as_str().unwrap_or("TCP")),
                })
                .collect();
            vec![
                cell(&o["spec"]["type"]),
                cell(&o["spec"]["clusterIP"]),
                json!(if ports.is_empty() {
                    "<none>".into()
                } else {
                    ports.join(",")
                }),
            ]
        }
        ("", "PersistentVolumeClaim") => {
            let modes: Vec<&str> = o["spec"]["accessModes"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .collect();
            vec![
                cell(&o["status"]["phase"]),
                json!(o["status"]["capacity"]["storage"].as_str().unwrap_or("")),
                json!(modes.join(",")),
            ]
        }
        ("", "ConfigMap") => vec![json!(count(&o["data"]) + count(&o["binaryData"]))],
        ("", "Secret") => vec![cell(&o["type"]), json!(count(&o["data"]))],
        ("", "Namespace") => vec![cell(&o["status"]["phase"])],
        _ => vec![],
    }
}

/// Render objects as a Table; rows carry the full object (`includeObject=Object`).
pub fn table(rt: &ResourceType, items: &[Value], rv: u64, cont: Option<&str>) -> Value {
    let mut defs = vec![
        json!({"name": "Name", "type": "string", "format": "name", "description": "Name must be unique within a namespace.", "priority": 0}),
    ];
    let builtin = columns(rt);
    for (n, t) in &builtin {
        defs.push(json!({"name": n, "type": t, "format": "", "description": "", "priority": 0}));
    }
    for c in &rt.printer_columns {
        defs.push(json!({"name": c.name, "type": c.type_, "format": "", "description": "", "priority": c.priority}));
    }
    let has_age = rt
        .printer_columns
        .iter()
        .any(|c| c.json_path == ".metadata.creationTimestamp");
    if !has_age {
        defs.push(json!({"name": "Age", "type": "string", "format": "", "description": "CreationTimestamp", "priority": 0}));
    }
    let rows: Vec<Value> = items
        .iter()
        .map(|o| {
            let mut cells = vec![o["metadata"]["name"].clone()];
            cells.extend(builtin_cells(rt, o));
            for c in &rt.printer_columns {
                let v = json_path(o, &c.json_path);
                if c.type_ == "date" {
                    cells.push(json!(
                        v.as_str().map(age).unwrap_or_else(|| "<unknown>".into())
                    ));
                } else {
                    cells.push(cell(&v));
                }
            }
            if !has_age {
                cells.push(json!(age(o["metadata"]["creationTimestamp"]
                    .as_str()
                    .unwrap_or_default())));
            }
            json!({"cells": cells, "object": o})
        })
        .collect();
    let mut meta = json!({"resourceVersion": rv.to_string()});
    if let Some(c) = cont {
        meta["continue"] = json!(c);
    }
    json!({"kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": meta, "columnDefinitions": defs, "rows": rows})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_path_filters() {
        let o = json!({"status": {"conditions": [{"type": "A", "status": "False"}, {"type": "Ready", "status": "True"}]}});
        assert_eq!(
            json_path(&o, ".status.conditions[?(@.type==\"Ready\")].status"),
            json!("True")
        );
        assert_eq!(json_path(&o, ".status.conditions[0].type"), json!("A"));
        assert_eq!(json_path(&o, ".status.missing"), Value::Null);
    }
}
