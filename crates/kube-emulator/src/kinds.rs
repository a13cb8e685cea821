//! Per-kind defaulting and validation for the built-in kinds (the subset the apiserver would
//! reject or fill in for our flows), and the metadata rules every kind shares.

use base64::Engine as _;
use serde_json::{Value, json};

use crate::error::Cause;
use crate::registry::ResourceType;
use crate::selector::LabelSelector;

mod pvc;

pub use pvc::quantity;
use pvc::validate_pvc_update;

fn invalid(field: &str, message: String) -> Cause {
    Cause {
        reason: "FieldValueInvalid".into(),
        field: field.into(),
        message,
    }
}

fn required(field: &str) -> Cause {
    Cause {
        reason: "FieldValueRequired".into(),
        field: field.into(),
        message: "Required value".into(),
    }
}

fn is_label(s: &str, max: usize, allow_digit_start: bool) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= max
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
        && (b[0].is_ascii_lowercase() || (allow_digit_start && b[0].is_ascii_digit()))
        && b[b.len() - 1] != b'-'
}

pub fn is_dns_subdomain(s: &str) -> bool {
    s.len() <= 253 && s.split('.').all(|p| is_label(p, 63, true))
}

/// `metadata.name` rules: DNS-1123 label for Namespaces, DNS-1035 label for Services,
/// DNS-1123 subdomain for everything else.
pub fn validate_name(rt: &ResourceType, name: &str) -> Option<Cause> {
    let (ok, what) = match rt.kind.as_str() {
        "Namespace" if rt.group.is_empty() => (
            is_label(name, 63, true),
            "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character",
        ),
        "Service" if rt.group.is_empty() => (
            is_label(name, 63, false),
            "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character",
        ),
        _ => (
            is_dns_subdomain(name),
            "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character",
        ),
    };
    (!ok).then(|| {
        invalid(
            "metadata.name",
            format!("Invalid value: \"{name}\": {what}"),
        )
    })
}

fn validate_labels(obj: &Value, out: &mut Vec<Cause>) {
    let Some(labels) = obj["metadata"]["labels"].as_object() else {
        return;
    };
    for (k, v) in labels {
        let name = k.rsplit('/').next().unwrap_or(k);
        let key_ok = !name.is_empty()
            && name.len() <= 63
            && name
                .bytes()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'));
        if !key_ok {
            out.push(invalid("metadata.labels", format!("Invalid value: \"{k}\": name part must consist of alphanumeric characters, '-', '_' or '.'")));
        }
        let val = v.as_str().unwrap_or_default();
        let val_ok = val.len() <= 63
            && val
                .bytes()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'));
        if !val_ok || !v.is_string() {
            out.push(invalid(&format!("metadata.labels.{k}"), format!("Invalid value: {v}: a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.' (at most 63)")));
        }
    }
}

fn set_default(obj: &mut Value, ptr: &[&str], value: Value) {
    let mut cur = obj;
    for (i, seg) in ptr.iter().enumerate() {
        if !cur.is_object() {
            return;
        }
        if i == ptr.len() - 1 {
            if cur.get(*seg).is_none_or(Value::is_null) {
                cur[*seg] = value;
            }
            return;
        }
        if cur.get(*seg).is_none_or(Value::is_null) {
            cur[*seg] = json!({});
        }
        cur = &mut cur[*seg];
    }
}

/// Defaults the apiserver fills in on every write; `old` carries allocations (cluster IPs).
pub fn apply_defaults(
    rt: &ResourceType,
    obj: &mut Value,
    old: Option<&Value>,
    alloc: crate::store::Alloc,
) {
    let seed = alloc.seed;
    let job = rt.group == "batch" && rt.kind == "Job";
    if !rt.group.is_empty() && rt.kind != "Deployment" && !job {
        return;
    }
    match rt.kind.as_str() {
        "Job" => job_defaults(obj, old),
        "Namespace" => {
            let name = obj["metadata"]["name"].clone();
            set_default(
                obj,
                &["metadata", "labels", "kubernetes.io/metadata.name"],
                name,
            );
            set_default(obj, &["spec", "finalizers"], json!(["kubernetes"]));
            set_default(obj, &["status", "phase"], json!("Active"));
        }
        "Pod" => {
            set_default(obj, &["spec", "restartPolicy"], json!("Always"));
            set_default(obj, &["spec", "schedulerName"], json!("default-scheduler"));
            set_default(obj, &["status", "phase"], json!("Pending"));
            default_container_ports(obj, &["spec"]);
        }
        "Deployment" => {
            set_default(obj, &["spec", "replicas"], json!(1));
            set_default(obj, &["spec", "revisionHistoryLimit"], json!(10));
            set_default(obj, &["spec", "progressDeadlineSeconds"], json!(600));
            set_default(obj, &["spec", "strategy", "type"], json!("RollingUpdate"));
            if obj["spec"]["strategy"]["type"] == "RollingUpdate" {
                set_default(
                    obj,
                    &["spec", "strategy", "rollingUpdate", "maxUnavailable"],
                    json!("25%"),
                );
                set_default(
                    obj,
                    &["spec", "strategy", "rollingUpdate", "maxSurge"],
                    json!("25%"),
                );
            }
            default_container_ports(obj, &["spec", "template", "spec"]);
        }
        "Service" => {
            set_default(obj, &["spec", "type"], json!("ClusterIP"));
            set_default(obj, &["spec", "sessionAffinity"], json!("None"));
            let ty = obj["spec"]["type"].as_str().unwrap_or_default().to_string();
            if ty != "ExternalName" {
                let ip = old
                    .and_then(|o| o["spec"].get("clusterIP").cloned())
                    .unwrap_or_else(|| match alloc.loopback_block {
                        Some(block) => json!(crate::process::addresses::cluster_ip(block, seed)),
                        None => json!(format!("10.96.{}.{}", (seed / 250) % 250, seed % 250 + 2)),
                    });
                set_default(obj, &["spec", "clusterIP"], ip.clone());
                let ip = obj["spec"]["clusterIP"].clone();
                set_default(obj, &["spec", "clusterIPs"], json!([ip]));
            }
            let old_ports = old
                .map(|o| o["spec"]["ports"].clone())
                .unwrap_or(Value::Null);
            if let Some(ports) = obj["spec"]["ports"].as_array_mut() {
                for (i, p) in ports.iter_mut().enumerate() {
                    set_default(p, &["protocol"], json!("TCP"));
                    let port = p["port"].clone();
                    set_default(p, &["targetPort"], port);
                    if ty == "NodePort" || ty == "LoadBalancer" {
                        let prev = old_ports[i]["nodePort"].clone();
                        let np = if prev.is_null() {
                            json!(30000 + (seed * 7 + i as u64) % 2768)
                        } else {
                            prev
                        };
                        set_default(p, &["nodePort"], np);
                    }
                }
            }
            if ty == "LoadBalancer" {
                set_default(obj, &["status", "loadBalancer"], json!({}));
            }
        }
        "PersistentVolumeClaim" => {
            set_default(obj, &["spec", "volumeMode"], json!("Filesystem"));
            set_default(obj, &["status", "phase"], json!("Pending"));
        }
        "Secret" => {
            set_default(obj, &["type"], json!("Opaque"));
            if let Some(sd) = obj.as_object_mut().and_then(|m| m.remove("stringData"))
                && let Some(sd) = sd.as_object()
            {
                for (k, v) in sd {
                    let enc = base64::engine::general_purpose::STANDARD
                        .encode(v.as_str().unwrap_or_default());
                    set_default(obj, &["data"], json!({}));
                    obj["data"][k] = json!(enc);
                }
            }
        }
        _ => {}
    }
}

fn default_container_ports(obj: &mut Value, pod_spec: &[&str]) {
    let mut cur = &mut *obj;
    for seg in pod_spec {
        cur = &mut cur[*seg];
    }
    for list in ["initContainers", "containers"] {
        for c in cur[list].as_array_mut().into_iter().flatten() {
            for p in c["ports"].as_array_mut().into_iter().flatten() {
                set_default(p, &["protocol"], json!("TCP"));
            }
            // The apiserver defaults a gRPC probe's service to "" (kubectl describe relies
            // on it being set).
            for probe in ["livenessProbe", "readinessProbe", "startupProbe"] {
                if c[probe]["grpc"].is_object() {
                    set_default(&mut c[probe], &["grpc", "service"], json!(""));
                }
            }
        }
    }
}

fn validate_pod_spec(spec: &Value, path: &str, out: &mut Vec<Cause>) {
    match spec["containers"].as_array() {
        Some(cs) if !cs.is_empty() => {
            for (i, c) in cs.iter().enumerate() {
                if c["name"].as_str().is_none_or(str::is_empty) {
                    out.push(required(&format!("{path}.containers[{i}].name")));
                }
                if c["image"].as_str().is_none_or(str::is_empty) {
                    out.push(required(&format!("{path}.containers[{i}].image")));
                }
            }
        }
        _ => out.push(required(&format!("{path}.containers"))),
    }
}

/// Validation of the built-in kinds' specs; `old` enables immutability checks.
pub fn validate(rt: &ResourceType, obj: &Value, old: Option<&Value>) -> Vec<Cause> {
    let mut out = Vec::new();
    validate_labels(obj, &mut out);
    match (rt.group.as_str(), rt.kind.as_str()) {
        ("", "Pod") => validate_pod_spec(&obj["spec"], "spec", &mut out),
        ("apps", "Deployment") => {
            let sel = &obj["spec"]["selector"];
            if !sel.is_object() {
                out.push(required("spec.selector"));
            } else {
                let tmpl =
                    json!({"metadata": {"labels": obj["spec"]["template"]["metadata"]["labels"]}});
                let s = LabelSelector::from_object(sel);
                if s.is_empty() {
                    out.push(invalid(
                        "spec.selector",
                        "Invalid value: empty selector is invalid for deployment".into(),
                    ));
                } else if !s.matches(&tmpl) {
                    out.push(invalid(
                        "spec.template.metadata.labels",
                        format!(
                            "Invalid value: {}: `selector` does not match template `labels`",
                            tmpl["metadata"]["labels"]
                        ),
                    ));
                }
                if let Some(old) = old
                    && old["spec"]["selector"] != *sel
                {
                    out.push(invalid(
                        "spec.selector",
                        format!("Invalid value: {sel}: field is immutable"),
                    ));
                }
            }
            if obj["spec"]["replicas"].as_i64().is_some_and(|r| r < 0) {
                out.push(invalid(
                    "spec.replicas",
                    "Invalid value: must be greater than or equal to 0".into(),
                ));
            }
            validate_pod_spec(
                &obj["spec"]["template"]["spec"],
                "spec.template.spec",
                &mut out,
            );
        }
        ("batch", "Job") => validate_job(obj, old, &mut out),
        ("", "Service") => {
            let ty = obj["spec"]["type"].as_str().unwrap_or("ClusterIP");
            if !["ClusterIP", "NodePort", "LoadBalancer", "ExternalName"].contains(&ty) {
                out.push(Cause {
                    reason: "FieldValueNotSupported".into(),
                    field: "spec.type".into(),
                    message: format!("Unsupported value: \"{ty}\": supported values: \"ClusterIP\", \"ExternalName\", \"LoadBalancer\", \"NodePort\""),
                });
            }
            if ty == "ExternalName"
                && obj["spec"]["externalName"]
                    .as_str()
                    .is_none_or(str::is_empty)
            {
                out.push(required("spec.externalName"));
            }
            for (i, p) in obj["spec"]["ports"]
                .as_array()
                .into_iter()
                .flatten()
                .enumerate()
            {
                let port = p["port"].as_i64().unwrap_or(0);
                if !(1..=65535).contains(&port) {
                    out.push(invalid(
                        &format!("spec.ports[{i}].port"),
                        format!("Invalid value: {port}: must be between 1 and 65535, inclusive"),
                    ));
                }
            }
            if let Some(old) = old {
                let (o, n) = (&old["spec"]["clusterIP"], &obj["spec"]["clusterIP"]);
                if o.is_string() && o != n && ty != "ExternalName" {
                    out.push(invalid(
                        "spec.clusterIP",
                        format!("Invalid value: {n}: field is immutable"),
                    ));
                }
            }
        }
        ("", "PersistentVolumeClaim") => {
            if obj["spec"]["resources"]["requests"]["storage"].is_null() {
                out.push(required("spec.resources[storage]"));
            }
            if let Some(old) = old {
                validate_pvc_update(obj, old, &mut out);
            }
        }
        _ => {}
    }
    out
}

/// Job defaulting as the apiserver does it (strategy + SetDefaults_Job): counts, modes and,
/// unless `manualSelector`, the generated selector and template labels on the Job's uid.
fn job_defaults(obj: &mut Value, old: Option<&Value>) {
    set_default(obj, &["spec", "backoffLimit"], json!(6));
    set_default(obj, &["spec", "completions"], json!(1));
    set_default(obj, &["spec", "parallelism"], json!(1));
    set_default(obj, &["spec", "completionMode"], json!("NonIndexed"));
    set_default(obj, &["spec", "suspend"], json!(false));
    if obj["spec"]["podFailurePolicy"].is_null() {
        set_default(
            obj,
            &["spec", "podReplacementPolicy"],
            json!("TerminatingOrFailed"),
        );
    }
    default_container_ports(obj, &["spec", "template", "spec"]);
    if obj["spec"]["manualSelector"] == json!(true) {
        return;
    }
    // The uid the selector names: the stored one on update, else the one create assigns.
    let uid = match old {
        Some(o) => o["metadata"]["uid"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
        None => match obj["metadata"]["uid"].as_str() {
            Some(u) if !u.is_empty() => u.to_string(),
            _ => {
                let u = uuid::Uuid::new_v4().to_string();
                obj["metadata"]["uid"] = json!(u);
                u
            }
        },
    };
    let name = obj["metadata"]["name"].clone();
    for (k, v) in [
        ("batch.kubernetes.io/controller-uid", json!(uid)),
        ("batch.kubernetes.io/job-name", name.clone()),
        ("controller-uid", json!(uid)),
        ("job-name", name),
    ] {
        set_default(obj, &["spec", "template", "metadata", "labels", k], v);
    }
    set_default(
        obj,
        &[
            "spec",
            "selector",
            "matchLabels",
            "batch.kubernetes.io/controller-uid",
        ],
        json!(uid),
    );
}

fn not_negative(obj: &Value, field: &str, out: &mut Vec<Cause>) {
    let v = &obj["spec"][field];
    if v.as_i64().is_some_and(|n| n < 0) {
        out.push(invalid(
            &format!("spec.{field}"),
            format!("Invalid value: {v}: must be greater than or equal to 0"),
        ));
    }
}

fn validate_job(obj: &Value, old: Option<&Value>, out: &mut Vec<Cause>) {
    let spec = &obj["spec"];
    let policy = spec["template"]["spec"]["restartPolicy"]
        .as_str()
        .unwrap_or("Always");
    if policy != "Never" && policy != "OnFailure" {
        out.push(Cause {
            reason: "FieldValueNotSupported".into(),
            field: "spec.template.spec.restartPolicy".into(),
            message: format!(
                "Unsupported value: \"{policy}\": supported values: \"OnFailure\", \"Never\""
            ),
        });
    }
    for f in ["backoffLimit", "completions", "parallelism"] {
        not_negative(obj, f, out);
    }
    if let Some(v) = spec["activeDeadlineSeconds"].as_i64()
        && v <= 0
    {
        out.push(invalid(
            "spec.activeDeadlineSeconds",
            format!("Invalid value: {v}: must be greater than 0"),
        ));
    }
    not_negative(obj, "ttlSecondsAfterFinished", out);
    let sel = &spec["selector"];
    if !sel.is_object() {
        out.push(required("spec.selector"));
    } else {
        let tmpl = json!({"metadata": {"labels": spec["template"]["metadata"]["labels"]}});
        if !LabelSelector::from_object(sel).matches(&tmpl) {
            out.push(invalid(
                "spec.template.metadata.labels",
                format!(
                    "Invalid value: {}: `selector` does not match template `labels`",
                    tmpl["metadata"]["labels"]
                ),
            ));
        }
    }
    validate_pod_spec(&spec["template"]["spec"], "spec.template.spec", out);
    if let Some(old) = old {
        for f in ["template", "selector", "completions", "completionMode"] {
            if old["spec"][f] != spec[f] {
                out.push(invalid(
                    &format!("spec.{f}"),
                    format!("Invalid value: {}: field is immutable", spec[f]),
                ));
            }
        }
    }
}
