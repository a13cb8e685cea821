//! releaseutil.SortManifests and `helm template`'s printing (CRDs, manifests by install order,
//! hooks last, `--show-only`, `--skip-tests`).

use std::collections::BTreeMap;
use std::sync::OnceLock;

use super::{HelmMajor, RenderOptions};
use crate::error::Error;
use crate::value::Value;

/// Helm 4's InstallOrder (Helm 3's plus the webhook configurations at the end).
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

/// Helm 3.17's InstallOrder: the webhook configurations are unknown kinds there.
pub fn install_order(helm: HelmMajor) -> &'static [&'static str] {
    match helm {
        HelmMajor::V3 => &INSTALL_ORDER[..INSTALL_ORDER.len() - 2],
        HelmMajor::V4 => INSTALL_ORDER,
    }
}

/// lessByKind, used with a stable sort.
fn by_kind(order: &[&str], a: &Manifest, b: &Manifest) -> std::cmp::Ordering {
    use std::cmp::Ordering::*;
    let rank = |k: &str| order.iter().position(|x| *x == k);
    match (rank(&a.kind), rank(&b.kind)) {
        (None, None) => a.kind.cmp(&b.kind),
        (None, Some(_)) => Greater,
        (Some(_), None) => Less,
        (Some(x), Some(y)) => x.cmp(&y),
    }
}

/// The document's SimpleHead: kind and hook events (`None` = skipped as an unknown hook).
fn classify(
    path: &str,
    doc: &str,
    helm: HelmMajor,
    log: &mut Vec<String>,
) -> Result<Option<(Manifest, bool)>, Error> {
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
            let pkg = match helm {
                HelmMajor::V3 => "releaseutil",
                HelmMajor::V4 => "util",
            };
            return Err(Error::Chart(format!(
                "YAML parse error on {path}: error unmarshaling JSON: while decoding JSON: json: cannot unmarshal {kind} into Go value of type {pkg}.SimpleHead"
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
            // Helm skips manifests with unknown hook types; Helm 4 says so
            log.push(match helm {
                HelmMajor::V3 => format!(
                    "manifest_sorter.go:190: info: skipping unknown hook: {}",
                    crate::gofmt::quote(hooks)
                ),
                HelmMajor::V4 => format!(
                    "level=INFO msg=\"skipping unknown hooks\" hookTypes={}",
                    logfmt_value(hooks)
                ),
            });
            return Ok(None);
        }
        events.push(h);
    }
    m.test_hook = events.iter().any(|e| e == "test" || e == "test-success");
    Ok(Some((m, true)))
}

/// A value as Go's slog TextHandler writes it: quoted when empty or when it holds spaces,
/// quotes, `=` or unprintable characters.
pub(super) fn logfmt_value(v: &str) -> String {
    let needs = v.is_empty()
        || v.chars().any(|c| {
            c == ' ' || c == '"' || c == '=' || c.is_control() || !c.is_ascii() && c.is_whitespace()
        });
    if needs {
        crate::gofmt::quote(v)
    } else {
        v.to_string()
    }
}

/// What `helm template` prints, or the `--show-only` error Helm gives after rendering.
pub(super) enum Printed {
    Manifest(String),
    ShowOnlyMissing(Error),
}

/// Prints CRDs (with `--include-crds`), manifests by kind, then hooks. A YAML error comes back
/// with what `--debug` prints for it.
pub(super) fn print(
    crds: &[(String, String)],
    rendered: BTreeMap<String, String>,
    bad_utf8: &BTreeMap<String, &'static str>,
    opts: &RenderOptions,
    log: &mut Vec<String>,
) -> Result<Printed, (Error, Option<String>)> {
    let mut generic = Vec::new();
    let mut hooks = Vec::new();
    for (path, content) in &rendered {
        let base = path.rsplit('/').next().unwrap_or(path);
        if base.starts_with('_') || base == "NOTES.txt" || content.trim().is_empty() {
            continue;
        }
        for doc in split_manifests(content) {
            // bytes that were not UTF-8 in the template are still in Helm's output: its YAML
            // reader refuses them
            let invalid = bad_utf8
                .get(path)
                .filter(|_| doc.contains('\u{fffd}'))
                .map(|p| {
                    Error::Chart(format!(
                        "YAML parse error on {path}: error converting YAML to JSON: yaml: {p}"
                    ))
                });
            let classified = match invalid {
                Some(e) => Err(e),
                None => classify(path, &doc, opts.helm, log),
            };
            match classified {
                Ok(Some((m, true))) => hooks.push(m),
                Ok(Some((m, false))) => generic.push(m),
                Ok(None) => {}
                Err(e) => {
                    // --debug prints every rendered file as it came out (Helm walks a map here,
                    // so its order is random; this is one of its orders)
                    let mut all = String::new();
                    for (name, text) in &rendered {
                        let base = name.rsplit('/').next().unwrap_or(name);
                        if base == "NOTES.txt" || text.trim().is_empty() {
                            continue;
                        }
                        all.push_str(&format!("---\n# Source: {name}\n{text}\n"));
                    }
                    return Err((e, Some(format!("{}\n", all.trim()))));
                }
            }
        }
    }
    let order = install_order(opts.helm);
    generic.sort_by(|a, b| by_kind(order, a, b));
    hooks.sort_by(|a, b| by_kind(order, a, b));

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
    if !opts.no_hooks {
        for h in &hooks {
            if opts.skip_tests && h.test_hook {
                continue;
            }
            out.push_str(&format!("---\n# Source: {}\n{}\n", h.path, h.content));
        }
    }
    if opts.show_only.is_empty() {
        return Ok(Printed::Manifest(out));
    }
    Ok(show_only(&out, &opts.show_only))
}

/// `--show-only`: documents whose `# Source:` path (without the chart name) matches a
/// filepath.Match pattern, pattern by pattern.
fn show_only(all: &str, patterns: &[String]) -> Printed {
    let docs = split_manifests(all);
    let mut picked = Vec::new();
    for pat in patterns {
        let pat = pat.replace('\\', "/");
        let mut missing = true;
        for d in &docs {
            let Some(name) = d.find("# Source: ").and_then(|i| {
                let rest = &d[i + "# Source: ".len()..];
                let line = rest.split('\n').next().unwrap_or(rest);
                let slash = line.find('/')?;
                if slash == 0 || line.len() == slash + 1 {
                    return None;
                }
                Some(line[slash + 1..].to_string())
            }) else {
                continue;
            };
            if super::files::go_match(&pat, &name) == Ok(true) {
                picked.push(d.clone());
                missing = false;
            }
        }
        if missing {
            return Printed::ShowOnlyMissing(Error::Chart(format!(
                "could not find template {pat} in chart"
            )));
        }
    }
    Printed::Manifest(picked.into_iter().map(|d| format!("---\n{d}\n")).collect())
}
