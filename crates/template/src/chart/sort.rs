//! releaseutil.SortManifests and `helm template`'s printing (CRDs, manifests by install order,
//! hooks last, `--show-only`, `--skip-tests`).

use std::collections::BTreeMap;
use std::sync::OnceLock;

use super::RenderOptions;
use crate::error::Error;
use crate::value::Value;

/// Helm's InstallOrder.
pub const INSTALL_ORDER: &[&str] = &[
    "PriorityClass",
    "Namespace",
    "NetworkPolicy",
    "ResourceQuota",
    "LimitRange",
    "PodSecurityPolicy",
    "PodDisruptionBudget",
    "ServiceAccount",
    "Secret",
    "SecretList",
    "ConfigMap",
    "StorageClass",
    "PersistentVolume",
    "PersistentVolumeClaim",
    "CustomResourceDefinition",
    "ClusterRole",
    "ClusterRoleList",
    "ClusterRoleBinding",
    "ClusterRoleBindingList",
    "Role",
    "RoleList",
    "RoleBinding",
    "RoleBindingList",
    "Service",
    "DaemonSet",
    "Pod",
    "ReplicationController",
    "ReplicaSet",
    "Deployment",
    "HorizontalPodAutoscaler",
    "StatefulSet",
    "Job",
    "CronJob",
    "IngressClass",
    "Ingress",
    "APIService",
    "MutatingWebhookConfiguration",
    "ValidatingWebhookConfiguration",
];

const HOOK_EVENTS: &[&str] = &[
    "pre-install",
    "post-install",
    "pre-delete",
    "post-delete",
    "pre-upgrade",
    "post-upgrade",
    "pre-rollback",
    "post-rollback",
    "test",
    "test-success",
];

struct Manifest {
    path: String,
    content: String,
    kind: String,
    test_hook: bool,
}

fn separator() -> &'static regex::Regex {
    static R: OnceLock<regex::Regex> = OnceLock::new();
    R.get_or_init(|| {
        regex::Regex::new(r"(?:^|[\t\n\x0c\r ]*\n)---[\t\n\x0c\r ]*").expect("static regex")
    })
}

/// releaseutil.SplitManifests: documents in file order, trimmed, empty ones dropped.
pub fn split_manifests(big: &str) -> Vec<String> {
    separator()
        .split(big.trim())
        .filter(|d| !d.is_empty())
        .map(|d| d.trim().to_string())
        .collect()
}

fn kind_rank(kind: &str) -> Option<usize> {
    INSTALL_ORDER.iter().position(|k| *k == kind)
}

/// lessByKind, used with a stable sort.
fn by_kind(a: &Manifest, b: &Manifest) -> std::cmp::Ordering {
    use std::cmp::Ordering::*;
    match (kind_rank(&a.kind), kind_rank(&b.kind)) {
        (None, None) => a.kind.cmp(&b.kind),
        (None, Some(_)) => Greater,
        (Some(_), None) => Less,
        (Some(x), Some(y)) => x.cmp(&y),
    }
}

fn classify(path: &str, doc: &str) -> Result<Option<(Manifest, bool)>, Error> {
    let head = if doc.trim().is_empty() {
        Value::Nil
    } else {
        Value::from_yaml_str(doc)
            .map_err(|e| Error::Chart(format!("YAML parse error on {path}: {e}")))?
    };
    let head = match &head {
        Value::Map(m) => Value::Map(m.clone()),
        Value::Nil => Value::map(BTreeMap::new()),
        other => {
            let kind = match other {
                Value::List(_) => "array",
                Value::String(_) => "string",
                Value::Bool(_) => "bool",
                _ => "number",
            };
            return Err(Error::Chart(format!(
                "YAML parse error on {path}: error unmarshaling JSON: while decoding JSON: json: cannot unmarshal {kind} into Go value of type releaseutil.SimpleHead"
            )));
        }
    };
    let kind = match head.path("kind") {
        Some(Value::String(k)) => k.clone(),
        _ => String::new(),
    };
    let mut m = Manifest {
        path: path.to_string(),
        content: doc.to_string(),
        kind,
        test_hook: false,
    };
    let Some(Value::String(hooks)) = head
        .path("metadata")
        .and_then(|md| md.path("annotations"))
        .and_then(|a| a.as_map())
        .and_then(|a| a.get("helm.sh/hook"))
    else {
        return Ok(Some((m, false)));
    };
    let mut events = Vec::new();
    for h in hooks.split(',') {
        let h = h.trim().to_lowercase();
        if !HOOK_EVENTS.contains(&h.as_str()) {
            // Helm skips manifests with unknown hook types
            return Ok(None);
        }
        events.push(h);
    }
    m.test_hook = events.iter().any(|e| e == "test" || e == "test-success");
    Ok(Some((m, true)))
}

pub(super) fn print(
    crds: &BTreeMap<String, String>,
    rendered: BTreeMap<String, String>,
    opts: &RenderOptions,
) -> Result<String, Error> {
    let mut generic = Vec::new();
    let mut hooks = Vec::new();
    for (path, content) in &rendered {
        let base = path.rsplit('/').next().unwrap_or(path);
        if base.starts_with('_') || base == "NOTES.txt" || content.trim().is_empty() {
            continue;
        }
        for doc in split_manifests(content) {
            match classify(path, &doc)? {
                Some((m, true)) => hooks.push(m),
                Some((m, false)) => generic.push(m),
                None => {}
            }
        }
    }
    generic.sort_by(by_kind);
    hooks.sort_by(by_kind);

    let mut manifest = String::new();
    if opts.include_crds {
        for (path, data) in crds {
            manifest.push_str(&format!("---\n# Source: {path}\n{data}\n"));
        }
    }
    for m in &generic {
        manifest.push_str(&format!("---\n# Source: {}\n{}\n", m.path, m.content));
    }
    let mut out = format!("{}\n", manifest.trim());
    for h in &hooks {
        if opts.skip_tests && h.test_hook {
            continue;
        }
        out.push_str(&format!("---\n# Source: {}\n{}\n", h.path, h.content));
    }
    if opts.show_only.is_empty() {
        return Ok(out);
    }
    show_only(&out, &opts.show_only)
}

/// `--show-only`: documents whose `# Source:` path (without the chart name) matches a pattern.
fn show_only(all: &str, patterns: &[String]) -> Result<String, Error> {
    let docs = split_manifests(all);
    let mut picked = Vec::new();
    for pat in patterns {
        let re = crate::object::glob_regex(&pat.replace('\\', "/"))
            .ok_or_else(|| Error::Chart(format!("could not find template {pat} in chart")))?;
        let mut missing = true;
        for d in &docs {
            let Some(src) = d.lines().find_map(|l| l.strip_prefix("# Source: ")) else {
                continue;
            };
            let Some((_, rest)) = src.split_once('/') else {
                continue;
            };
            if re.is_match(rest) {
                picked.push(d.clone());
                missing = false;
            }
        }
        if missing {
            return Err(Error::Chart(format!(
                "could not find template {pat} in chart"
            )));
        }
    }
    Ok(picked.into_iter().map(|d| format!("---\n{d}\n")).collect())
}
