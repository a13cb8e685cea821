//! Helm's engine over a processed chart tree: every template parsed into one set (deepest paths
//! first), each non-partial rendered with its chart's built-in objects, `<no value>` removed.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::HelmMajor;
use super::load::Chart;
use crate::error::Error;
use crate::object::Object;
use crate::value::Value;
use crate::{Options, Templates};

/// What every chart of a render shares.
pub struct Common {
    pub enable_dns: bool,
    pub release: Value,
    pub capabilities: Value,
    pub helm: HelmMajor,
}

struct Node<'a> {
    chart: &'a Chart,
    values: Value,
    children: Vec<usize>,
    top: BTreeMap<String, Value>,
}

fn collect<'a>(
    c: &'a Chart,
    values: Value,
    is_root: bool,
    common: &Common,
    out: &mut Vec<Node<'a>>,
) -> usize {
    let idx = out.len();
    let mut top = BTreeMap::new();
    top.insert(
        "Chart".to_string(),
        c.metadata.to_value(is_root, common.helm),
    );
    top.insert(
        "Files".to_string(),
        Value::Object(Arc::new(Object::Files(c.files.iter().cloned().collect()))),
    );
    top.insert("Release".to_string(), common.release.clone());
    top.insert("Capabilities".to_string(), common.capabilities.clone());
    top.insert("Values".to_string(), values.clone());
    out.push(Node {
        chart: c,
        values: values.clone(),
        children: Vec::new(),
        top,
    });
    let mut children = Vec::new();
    for d in &c.dependencies {
        let sub = super::deps::scoped(&values, d.name());
        children.push(collect(d, sub, false, common, out));
    }
    out[idx].children = children;
    idx
}

/// `.Subcharts`: each enabled subchart's own top-level object, as its templates saw it last.
fn subcharts(nodes: &[Node<'_>], i: usize) -> Value {
    Value::map(
        nodes[i]
            .children
            .iter()
            .map(|&c| {
                let mut top = nodes[c].top.clone();
                top.insert("Subcharts".to_string(), subcharts(nodes, c));
                (nodes[c].chart.name().to_string(), Value::map(top))
            })
            .collect(),
    )
}

/// Helm's sortTemplates: more path segments first, then reverse lexical order.
fn sort_names(names: &mut [String]) {
    names.sort_by(|a, b| {
        let (ca, cb) = (a.matches('/').count(), b.matches('/').count());
        cb.cmp(&ca).then_with(|| b.cmp(a))
    });
}

/// What go-yaml's reader says about the first invalid UTF-8 sequence in `b`.
pub fn utf8_problem(b: &[u8]) -> Option<&'static str> {
    let e = std::str::from_utf8(b).err()?;
    let rest = &b[e.valid_up_to()..];
    let lead = rest[0];
    let width = match lead {
        0x00..=0x7f => 1,
        0xc0..=0xdf => 2,
        0xe0..=0xef => 3,
        0xf0..=0xf7 => 4,
        _ => return Some("invalid leading UTF-8 octet"),
    };
    if rest.len() < width {
        return Some("incomplete UTF-8 octet sequence");
    }
    if rest[1..width].iter().any(|c| c & 0xc0 != 0x80) {
        return Some("invalid trailing UTF-8 octet");
    }
    Some("invalid length of a UTF-8 sequence")
}

/// Rendered files: name -> output (partials excluded), and for files whose source was not
/// UTF-8, go-yaml's complaint about it.
pub type RenderedFiles = (BTreeMap<String, String>, BTreeMap<String, &'static str>);

/// Renders every template of the tree.
pub fn render_all(root: &Chart, vals: &Value, common: &Common) -> Result<RenderedFiles, Error> {
    let mut nodes = Vec::new();
    collect(root, vals.clone(), true, common, &mut nodes);
    let mut owner: BTreeMap<String, (usize, String)> = BTreeMap::new();
    let mut bad_utf8 = BTreeMap::new();
    for (i, n) in nodes.iter().enumerate() {
        for (name, data) in &n.chart.templates {
            let base = name.rsplit('/').next().unwrap_or(name);
            if n.chart.is_library() && !base.starts_with('_') {
                continue;
            }
            let src = String::from_utf8_lossy(data).into_owned();
            let full = format!("{}/{name}", n.chart.full_path);
            if let Some(p) = utf8_problem(data) {
                bad_utf8.insert(full.clone(), p);
            }
            owner.insert(full, (i, src));
        }
    }
    let mut names: Vec<String> = owner.keys().cloned().collect();
    sort_names(&mut names);
    let mut set = Templates::new(Options {
        helm: common.helm,
        enable_dns: common.enable_dns,
        limits: crate::Limits::helm(),
        ..Options::default()
    });
    for name in &names {
        set.add(name, &owner[name].1)
            .map_err(|e| Error::Chart(parse_error_message(&e)))?;
    }
    let mut out = BTreeMap::new();
    for name in names {
        let base = name.rsplit('/').next().unwrap_or(&name);
        if base.starts_with('_') {
            continue;
        }
        let i = owner[&name].0;
        let mut top = nodes[i].top.clone();
        top.insert("Subcharts".to_string(), subcharts(&nodes, i));
        let mut tm = BTreeMap::new();
        tm.insert("Name".to_string(), Value::String(name.clone()));
        tm.insert(
            "BasePath".to_string(),
            Value::String(format!("{}/templates", nodes[i].chart.full_path)),
        );
        let template = Value::map(tm);
        top.insert("Template".to_string(), template.clone());
        nodes[i].top.insert("Template".to_string(), template);
        let (text, replaced) = set
            .render_tracking(&name, &Value::map(top))
            .map_err(|e| Error::Chart(exec_error_message(&e, common.helm)))?;
        // Helm's files share one `.Values`: a `set` in one file is seen by the files after it
        for (old, new) in &replaced {
            for n in &mut nodes {
                crate::shared::replace_in(&mut n.values, old, new);
                for v in n.top.values_mut() {
                    crate::shared::replace_in(v, old, new);
                }
            }
        }
        out.insert(name, text);
    }
    Ok((out, bad_utf8))
}

/// Helm's cleanupParseError: `parse error at (FILE:LINE): MSG`.
fn parse_error_message(e: &Error) -> String {
    match e {
        Error::Parse { name, line, msg } => {
            let last = msg.rsplit(": ").next().unwrap_or(msg);
            format!("parse error at ({name}:{line}): {last}")
        }
        other => other.to_string(),
    }
}

/// cleanupExecError (Helm 3) or reformatExecErrorMsg (Helm 4).
fn exec_error_message(e: &Error, helm: HelmMajor) -> String {
    if e.user_message().is_some() {
        return e.helm_message();
    }
    let text = e.to_string();
    match helm {
        HelmMajor::V3 => text,
        HelmMajor::V4 => reformat_v4(&text).unwrap_or(text),
    }
}

/// Helm 4 lays a chain of template errors out one location per block: a level's message is
/// kept when it is final, or split at `error calling F: ` when what follows is again a
/// `template: ...` error. Anything else leaves the message as Go printed it.
fn reformat_v4(text: &str) -> Option<String> {
    let mut blocks = Vec::new();
    let mut rest = text;
    loop {
        let Some((loc, exec, msg)) = parse_level(rest) else {
            if blocks.is_empty() || !rest.starts_with("template: ") {
                return None;
            }
            blocks.push(format!("{rest}\n"));
            break;
        };
        if let Some(call) = msg.strip_prefix("error calling ")
            && let Some((func, inner)) = call.split_once(": ")
        {
            if !inner.starts_with("template: ") {
                return None;
            }
            blocks.push(format!("{loc}\n  {exec}:\n    error calling {func}:\n"));
            rest = inner;
            continue;
        }
        blocks.push(format!("{loc}\n  {exec}:\n    {}\n", msg.trim_end()));
        break;
    }
    let mut s = blocks.concat();
    while s.ends_with('\n') {
        s.pop();
    }
    Some(s)
}

/// `template: LOC: executing "NAME" at <CTX>: MSG` -> (LOC, `executing "NAME" at <CTX>`, MSG).
fn parse_level(s: &str) -> Option<(&str, &str, &str)> {
    let rest = s.strip_prefix("template: ")?;
    let exec_at = rest.find(": executing \"")?;
    let loc = &rest[..exec_at];
    let after = &rest[exec_at + 2..];
    let ctx_end = after.find(">: ")?;
    let exec = &after[..ctx_end + 1];
    let msg = &after[ctx_end + 3..];
    Some((loc, exec, msg))
}
