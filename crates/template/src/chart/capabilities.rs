//! `.Capabilities` as each Helm builds it for `helm template`: the Kubernetes version (parsed
//! the way that Helm parses `--kube-version`), the API versions client-go knows plus
//! `--api-versions`, and Helm's own build information.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::HelmMajor;
use crate::error::Error;
use crate::object::{Field, GoStruct, Object};
use crate::value::Value;

/// Group versions in Helm 3.17's default capabilities (client-go 0.32's scheme), in its order.
const HELM3_API_VERSIONS: &[&str] = &[
    "v1",
    "admissionregistration.k8s.io/v1",
    "admissionregistration.k8s.io/v1alpha1",
    "admissionregistration.k8s.io/v1beta1",
    "internal.apiserver.k8s.io/v1alpha1",
    "apps/v1",
    "apps/v1beta1",
    "apps/v1beta2",
    "authentication.k8s.io/v1",
    "authentication.k8s.io/v1alpha1",
    "authentication.k8s.io/v1beta1",
    "authorization.k8s.io/v1",
    "authorization.k8s.io/v1beta1",
    "autoscaling/v1",
    "autoscaling/v2",
    "autoscaling/v2beta1",
    "autoscaling/v2beta2",
    "batch/v1",
    "batch/v1beta1",
    "certificates.k8s.io/v1",
    "certificates.k8s.io/v1beta1",
    "certificates.k8s.io/v1alpha1",
    "coordination.k8s.io/v1alpha2",
    "coordination.k8s.io/v1beta1",
    "coordination.k8s.io/v1",
    "discovery.k8s.io/v1",
    "discovery.k8s.io/v1beta1",
    "events.k8s.io/v1",
    "events.k8s.io/v1beta1",
    "extensions/v1beta1",
    "flowcontrol.apiserver.k8s.io/v1",
    "flowcontrol.apiserver.k8s.io/v1beta1",
    "flowcontrol.apiserver.k8s.io/v1beta2",
    "flowcontrol.apiserver.k8s.io/v1beta3",
    "networking.k8s.io/v1",
    "networking.k8s.io/v1alpha1",
    "networking.k8s.io/v1beta1",
    "node.k8s.io/v1",
    "node.k8s.io/v1alpha1",
    "node.k8s.io/v1beta1",
    "policy/v1",
    "policy/v1beta1",
    "rbac.authorization.k8s.io/v1",
    "rbac.authorization.k8s.io/v1beta1",
    "rbac.authorization.k8s.io/v1alpha1",
    "resource.k8s.io/v1beta1",
    "resource.k8s.io/v1alpha3",
    "scheduling.k8s.io/v1alpha1",
    "scheduling.k8s.io/v1beta1",
    "scheduling.k8s.io/v1",
    "storage.k8s.io/v1beta1",
    "storage.k8s.io/v1",
    "storage.k8s.io/v1alpha1",
    "storagemigration.k8s.io/v1alpha1",
    "apiextensions.k8s.io/v1beta1",
    "apiextensions.k8s.io/v1",
];

/// Group versions in Helm 4.1's default capabilities (client-go 0.35's scheme), in its order.
const HELM4_API_VERSIONS: &[&str] = &[
    "v1",
    "admissionregistration.k8s.io/v1",
    "admissionregistration.k8s.io/v1alpha1",
    "admissionregistration.k8s.io/v1beta1",
    "internal.apiserver.k8s.io/v1alpha1",
    "apps/v1",
    "apps/v1beta1",
    "apps/v1beta2",
    "authentication.k8s.io/v1",
    "authentication.k8s.io/v1alpha1",
    "authentication.k8s.io/v1beta1",
    "authorization.k8s.io/v1",
    "authorization.k8s.io/v1beta1",
    "autoscaling/v1",
    "autoscaling/v2",
    "autoscaling/v2beta1",
    "autoscaling/v2beta2",
    "batch/v1",
    "batch/v1beta1",
    "certificates.k8s.io/v1",
    "certificates.k8s.io/v1beta1",
    "certificates.k8s.io/v1alpha1",
    "coordination.k8s.io/v1alpha2",
    "coordination.k8s.io/v1beta1",
    "coordination.k8s.io/v1",
    "discovery.k8s.io/v1",
    "discovery.k8s.io/v1beta1",
    "events.k8s.io/v1",
    "events.k8s.io/v1beta1",
    "extensions/v1beta1",
    "flowcontrol.apiserver.k8s.io/v1",
    "flowcontrol.apiserver.k8s.io/v1beta1",
    "flowcontrol.apiserver.k8s.io/v1beta2",
    "flowcontrol.apiserver.k8s.io/v1beta3",
    "networking.k8s.io/v1",
    "networking.k8s.io/v1beta1",
    "node.k8s.io/v1",
    "node.k8s.io/v1alpha1",
    "node.k8s.io/v1beta1",
    "policy/v1",
    "policy/v1beta1",
    "rbac.authorization.k8s.io/v1",
    "rbac.authorization.k8s.io/v1beta1",
    "rbac.authorization.k8s.io/v1alpha1",
    "resource.k8s.io/v1",
    "resource.k8s.io/v1beta2",
    "resource.k8s.io/v1beta1",
    "resource.k8s.io/v1alpha3",
    "scheduling.k8s.io/v1alpha1",
    "scheduling.k8s.io/v1beta1",
    "scheduling.k8s.io/v1",
    "storage.k8s.io/v1beta1",
    "storage.k8s.io/v1",
    "storage.k8s.io/v1alpha1",
    "storagemigration.k8s.io/v1beta1",
    "apiextensions.k8s.io/v1beta1",
    "apiextensions.k8s.io/v1",
];

/// The Helm build `.Capabilities.HelmVersion` describes.
struct Build {
    version: &'static str,
    git_commit: &'static str,
    go_version: &'static str,
    /// Helm 4 only.
    kube_client_version: Option<&'static str>,
    /// `--kube-version` when not given.
    default_kube_version: &'static str,
}

fn build(helm: HelmMajor) -> Build {
    match helm {
        HelmMajor::V3 => Build {
            version: "v3.17.0",
            git_commit: "301108edc7ac2a8ba79e4ebf5701b0b6ce6a31e4",
            go_version: "go1.23.4",
            kube_client_version: None,
            default_kube_version: "v1.32.0",
        },
        HelmMajor::V4 => Build {
            version: "v4.1.4",
            git_commit: "05fa37973dc9e42b76e1d2883494c87174b6074f",
            go_version: "go1.25.9",
            kube_client_version: Some("v1.35"),
            default_kube_version: "v1.35.0",
        },
    }
}

/// A parsed Kubernetes version: what templates see, and what version checks compare.
pub struct KubeVersion {
    pub version: String,
    /// Helm 4's normalised form (no pre-release or build); Helm 3's `String()` is `version`.
    pub normalized: Option<String>,
    pub major: String,
    pub minor: String,
}

impl KubeVersion {
    /// What `String()` returns: the version Helm compares `kubeVersion` constraints against.
    pub fn string(&self) -> &str {
        self.normalized.as_deref().unwrap_or(&self.version)
    }
}

/// `--kube-version` parsed as each Helm parses it.
pub fn parse_kube_version(raw: &str, helm: HelmMajor) -> Result<KubeVersion, Error> {
    let bad = |msg: String| Error::Chart(format!("invalid kube version '{raw}': {msg}"));
    match helm {
        HelmMajor::V3 => {
            // Masterminds semver.NewVersion, lenient: missing parts are zero
            let v = crate::funcs::parse_semver_lenient(raw)
                .ok_or_else(|| bad("Invalid Semantic Version".into()))?;
            Ok(KubeVersion {
                version: format!("v{v}"),
                normalized: None,
                major: v.major.to_string(),
                minor: v.minor.to_string(),
            })
        }
        HelmMajor::V4 => {
            // k8s.io/apimachinery util/version ParseGeneric: two or more numeric parts
            let t = raw.trim();
            let t = t.strip_prefix('v').unwrap_or(t);
            let end = t
                .find(|c: char| !(c.is_ascii_digit() || c == '.'))
                .unwrap_or(t.len());
            let numbers = &t[..end];
            if numbers.is_empty() || !t.starts_with(|c: char| c.is_ascii_digit()) {
                return Err(bad(format!("could not parse {raw:?} as version")));
            }
            let numbers = numbers.trim_end_matches('.');
            let parts: Vec<&str> = numbers.split('.').collect();
            if parts.len() < 2 || parts.iter().any(|p| p.is_empty()) {
                return Err(bad(format!("illegal version string {raw:?}")));
            }
            let mut comps = Vec::new();
            for (i, p) in parts.iter().enumerate() {
                if i == 0 && p.starts_with('0') && *p != "0" {
                    return Err(bad(format!(
                        "illegal zero-prefixed version component {p:?} in {raw:?}"
                    )));
                }
                let n: u64 = p.parse().map_err(|e| {
                    bad(format!(
                        "illegal non-numeric version component {p:?} in {raw:?}: {e}"
                    ))
                })?;
                comps.push(n.to_string());
            }
            let version = format!("v{}", raw.strip_prefix('v').unwrap_or(raw));
            Ok(KubeVersion {
                version,
                normalized: Some(format!("v{}", comps.join("."))),
                major: comps[0].clone(),
                minor: comps[1].clone(),
            })
        }
    }
}

fn kube_version_struct(kv: &KubeVersion, helm: HelmMajor) -> GoStruct {
    let mut fields = vec![Field::new(
        "Version",
        Some("Version"),
        Value::from(kv.version.as_str()),
    )];
    if let Some(n) = &kv.normalized {
        fields.push(Field::new(
            "normalizedVersion",
            None,
            Value::from(n.as_str()),
        ));
    }
    fields.push(Field::new(
        "Major",
        Some("Major"),
        Value::from(kv.major.as_str()),
    ));
    fields.push(Field::new(
        "Minor",
        Some("Minor"),
        Value::from(kv.minor.as_str()),
    ));
    GoStruct {
        type_name: match helm {
            HelmMajor::V3 => "chartutil.KubeVersion",
            HelmMajor::V4 => "common.KubeVersion",
        },
        pointer: false,
        fields,
        string: Some(kv.string().to_string()),
        string_on_pointer: true,
        methods: vec![("GitVersion", Value::from(kv.version.as_str()))],
    }
}

fn helm_version_struct(helm: HelmMajor) -> GoStruct {
    let b = build(helm);
    let mut fields = vec![
        Field::new("Version", Some("version"), Value::from(b.version)).omitempty(),
        Field::new("GitCommit", Some("git_commit"), Value::from(b.git_commit)).omitempty(),
        Field::new("GitTreeState", Some("git_tree_state"), Value::from("clean")).omitempty(),
        Field::new("GoVersion", Some("go_version"), Value::from(b.go_version)).omitempty(),
    ];
    if let Some(k) = b.kube_client_version {
        fields.push(Field::new(
            "KubeClientVersion",
            Some("kube_client_version"),
            Value::from(k),
        ));
    }
    GoStruct {
        type_name: match helm {
            HelmMajor::V3 => "chartutil.HelmVersion",
            HelmMajor::V4 => "common.HelmVersion",
        },
        pointer: false,
        fields,
        string: None,
        string_on_pointer: false,
        methods: Vec::new(),
    }
}

/// The Kubernetes version of a render: `--kube-version` or the Helm's default.
pub fn kube_version(flag: Option<&str>, helm: HelmMajor) -> Result<KubeVersion, Error> {
    parse_kube_version(flag.unwrap_or(build(helm).default_kube_version), helm)
}

/// `.Capabilities`.
pub fn capabilities(kv: &KubeVersion, extra_apis: &[String], helm: HelmMajor) -> Value {
    let defaults = match helm {
        HelmMajor::V3 => HELM3_API_VERSIONS,
        HelmMajor::V4 => HELM4_API_VERSIONS,
    };
    let mut apis: Vec<String> = defaults
        .iter()
        .map(std::string::ToString::to_string)
        .collect();
    apis.extend(extra_apis.iter().cloned());
    let version_set = match helm {
        HelmMajor::V3 => "chartutil.VersionSet",
        HelmMajor::V4 => "common.VersionSet",
    };
    let caps = GoStruct {
        type_name: match helm {
            HelmMajor::V3 => "*chartutil.Capabilities",
            HelmMajor::V4 => "*common.Capabilities",
        },
        pointer: true,
        fields: vec![
            Field::new(
                "KubeVersion",
                Some("KubeVersion"),
                Value::Object(Arc::new(Object::Struct(kube_version_struct(kv, helm)))),
            ),
            Field::new(
                "APIVersions",
                Some("APIVersions"),
                Value::Object(Arc::new(Object::ApiVersions(apis, version_set))),
            ),
            Field::new(
                "HelmVersion",
                Some("HelmVersion"),
                Value::Object(Arc::new(Object::Struct(helm_version_struct(helm)))),
            ),
        ],
        string: None,
        string_on_pointer: false,
        methods: Vec::new(),
    };
    Value::Object(Arc::new(Object::Struct(caps)))
}

/// `.Release` for `helm template`.
pub fn release(name: &str, namespace: &str, upgrade: bool) -> Value {
    let mut m = BTreeMap::new();
    m.insert("Name".to_string(), Value::from(name));
    m.insert("Namespace".to_string(), Value::from(namespace));
    m.insert("IsInstall".to_string(), Value::Bool(!upgrade));
    m.insert("IsUpgrade".to_string(), Value::Bool(upgrade));
    m.insert("Revision".to_string(), Value::Int(1));
    m.insert("Service".to_string(), Value::from("Helm"));
    Value::map(m)
}
