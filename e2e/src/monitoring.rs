//! The monitoring kit in `k8s/monitoring/` as tests read it: the rule file,
//! the dashboards, and the metric names their PromQL reads.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde_json::Value as Json;
use serde_yaml::Value as Yaml;

pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_path_buf()
}

pub fn dir() -> PathBuf {
    root().join("k8s/monitoring")
}

pub fn yaml(path: &Path) -> Yaml {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_yaml::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

pub fn rule_groups() -> Vec<Yaml> {
    yaml(&dir().join("rules/midplane.rules.yaml"))["groups"]
        .as_sequence()
        .expect("groups")
        .clone()
}

pub fn rules() -> Vec<Yaml> {
    rule_groups()
        .iter()
        .flat_map(|g| g["rules"].as_sequence().expect("rules").clone())
        .collect()
}

pub fn alerts() -> Vec<Yaml> {
    rules()
        .into_iter()
        .filter(|r| r.get("alert").is_some())
        .collect()
}

pub const DASHBOARDS: [&str; 3] = ["suite", "group", "backups"];

pub fn dashboard(name: &str) -> Json {
    let path = dir().join(format!("dashboards/{name}.json"));
    let text = std::fs::read_to_string(&path).expect("dashboard");
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Every dashboard query as (where, PromQL).
pub fn dashboard_queries() -> Vec<(String, String)> {
    let mut out = Vec::new();
    for name in DASHBOARDS {
        let board = dashboard(name);
        for p in board["panels"].as_array().expect("panels") {
            for t in p["targets"].as_array().into_iter().flatten() {
                let expr = t["expr"].as_str().expect("expr");
                out.push((
                    format!(
                        "dashboard {name}: {}",
                        p["title"].as_str().unwrap_or_default()
                    ),
                    expr.to_string(),
                ));
            }
        }
    }
    out
}

/// Every rule's and every panel's PromQL, as (where, PromQL).
pub fn all_queries() -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = rules()
        .iter()
        .map(|r| {
            let name = r["alert"]
                .as_str()
                .or(r["record"].as_str())
                .unwrap_or_default();
            (
                format!("rule {name}"),
                r["expr"].as_str().expect("expr").to_string(),
            )
        })
        .collect();
    out.extend(dashboard_queries());
    out
}

/// Names defined by recording rules (`midplane:…`).
pub fn recorded() -> BTreeSet<String> {
    rules()
        .iter()
        .filter_map(|r| r["record"].as_str().map(ToString::to_string))
        .collect()
}

/// Metric names a PromQL expression reads: identifiers outside label
/// matchers, ranges and strings that are not functions, aggregations,
/// keywords, label lists (`by (…)`, `on (…)`…) or Grafana variables.
pub fn metric_names(expr: &str) -> BTreeSet<String> {
    let chars: Vec<char> = expr.chars().collect();
    let mut names = BTreeSet::new();
    let mut depth_braces = 0usize;
    let mut depth_brackets = 0usize;
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        match c {
            '"' | '\'' | '`' => {
                // Skip the string literal.
                let quote = c;
                i += 1;
                while i < chars.len() && chars[i] != quote {
                    if chars[i] == '\\' {
                        i += 1;
                    }
                    i += 1;
                }
                i += 1;
                continue;
            }
            '{' => depth_braces += 1,
            '}' => depth_braces = depth_braces.saturating_sub(1),
            '[' => depth_brackets += 1,
            ']' => depth_brackets = depth_brackets.saturating_sub(1),
            _ => {}
        }
        let starts_word = c.is_ascii_alphabetic() || c == '_' || c == ':';
        let glued = i > 0 && {
            let p = chars[i - 1];
            p.is_ascii_alphanumeric() || p == '_' || p == '$' || p == '.'
        };
        if !starts_word || glued || depth_braces > 0 || depth_brackets > 0 {
            i += 1;
            continue;
        }
        let start = i;
        while i < chars.len()
            && (chars[i].is_ascii_alphanumeric() || chars[i] == '_' || chars[i] == ':')
        {
            i += 1;
        }
        let word: String = chars[start..i].iter().collect();
        let rest: String = chars[i..].iter().collect();
        let rest = rest.trim_start();
        let is_call = rest.starts_with('(');
        let is_aggregation = AGGREGATIONS.contains(&word.as_str())
            && (is_call || rest.starts_with("by") || rest.starts_with("without"));
        if !is_call
            && !is_aggregation
            && !KEYWORDS.contains(&word.as_str())
            && !label_list_open(&chars[..start])
        {
            names.insert(word);
        }
    }
    names
}

const KEYWORDS: &[&str] = &[
    "by",
    "on",
    "without",
    "ignoring",
    "group_left",
    "group_right",
    "and",
    "or",
    "unless",
    "bool",
    "offset",
    "inf",
    "nan",
    "Inf",
    "NaN",
];

const AGGREGATIONS: &[&str] = &[
    "sum",
    "min",
    "max",
    "avg",
    "group",
    "stddev",
    "stdvar",
    "count",
    "count_values",
    "bottomk",
    "topk",
    "quantile",
    "limitk",
    "limit_ratio",
];

/// Whether the text ends inside `by (`/`on (`/… before its closing parenthesis.
fn label_list_open(before: &[char]) -> bool {
    let text: String = before.iter().collect();
    let Some(open) = text.rfind('(') else {
        return false;
    };
    if text[open..].contains(')') {
        return false;
    }
    let head = text[..open].trim_end();
    [
        "by",
        "on",
        "without",
        "ignoring",
        "group_left",
        "group_right",
    ]
    .iter()
    .any(|k| head.ends_with(k))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metric_names_are_read_from_promql() {
        let n = metric_names(
            r#"sum by (namespace, app) (rate(midplane_x_total{a="b{c}"}[$__rate_interval])) / on (pod) group_left midplane:y:rate5m > 0.9 and up{job="z"} == 0 or count by (g) (midplane_z) * 0 > 24 * 3600 unless changes(midplane_t[1h]) offset 10m"#,
        );
        let want: BTreeSet<String> = [
            "midplane_x_total",
            "midplane:y:rate5m",
            "up",
            "midplane_z",
            "midplane_t",
        ]
        .iter()
        .map(ToString::to_string)
        .collect();
        assert_eq!(n, want);
    }
}
