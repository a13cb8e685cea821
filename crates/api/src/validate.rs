//! Structural validation of an App: every problem is reported at once, each
//! with its field path (`spec.components[1].replicas: must be at least 1`).
//! Plugin-aware checks (unknown plugin, parameters) live in `midplane-plugin`.

use crate::types::{App, BackupPolicy, MiddlewareSpec, SERVICE_TYPES};
use std::collections::BTreeSet;
use std::fmt;

/// One bad field.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

/// Every problem found in an object.
#[derive(Debug, Clone, Default, PartialEq, Eq, thiserror::Error)]
pub struct ValidationErrors(pub Vec<FieldError>);

impl fmt::Display for ValidationErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let lines: Vec<String> = self.0.iter().map(ToString::to_string).collect();
        f.write_str(&lines.join("\n"))
    }
}

impl ValidationErrors {
    pub fn push(&mut self, field: impl Into<String>, message: impl Into<String>) {
        self.0.push(FieldError {
            field: field.into(),
            message: message.into(),
        });
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
    pub fn extend(&mut self, other: ValidationErrors) {
        self.0.extend(other.0);
    }
    pub fn into_result(self) -> Result<(), ValidationErrors> {
        if self.0.is_empty() { Ok(()) } else { Err(self) }
    }
}

/// Longest name of an App plus component: generated names
/// (`<app>-<component>-<shard>-<ordinal>-data`) must stay a DNS label (63).
pub const MAX_APP_COMPONENT_NAME: usize = 47;
/// Upper bounds that keep one App from flooding a cluster by typo.
pub const MAX_REPLICAS: i32 = 100;
pub const MAX_SHARDS: i32 = 64;

pub fn validate_app(app: &App) -> Result<(), ValidationErrors> {
    let mut errs = ValidationErrors::default();
    let name = app.metadata.name.as_deref().unwrap_or_default();
    if name.is_empty() {
        errs.push("metadata.name", "is required");
    } else if let Err(m) = dns_label(name) {
        errs.push("metadata.name", m);
    }
    if app.spec.components.is_empty() {
        errs.push("spec.components", "must list at least one component");
    }
    let mut seen = BTreeSet::new();
    for (i, c) in app.spec.components.iter().enumerate() {
        let path = format!("spec.components[{i}]");
        if c.name.is_empty() {
            errs.push(format!("{path}.name"), "is required");
        } else if let Err(m) = dns_label(&c.name) {
            errs.push(format!("{path}.name"), m);
        } else if !seen.insert(c.name.as_str()) {
            errs.push(
                format!("{path}.name"),
                format!("duplicate component name {:?}", c.name),
            );
        }
        if name.len() + 1 + c.name.len() > MAX_APP_COMPONENT_NAME {
            errs.push(
                format!("{path}.name"),
                format!(
                    "app name plus component name must be at most {MAX_APP_COMPONENT_NAME} characters so generated object names stay valid"
                ),
            );
        }
        validate_middleware(&c.spec, &path, &mut errs);
    }
    errs.into_result()
}

/// Checks shared by App components, Components and Groups.
pub fn validate_middleware(spec: &MiddlewareSpec, path: &str, errs: &mut ValidationErrors) {
    if spec.plugin.is_empty() {
        errs.push(format!("{path}.plugin"), "is required");
    }
    if spec.replicas < 1 {
        errs.push(format!("{path}.replicas"), "must be at least 1");
    } else if spec.replicas > MAX_REPLICAS {
        errs.push(
            format!("{path}.replicas"),
            format!("must be at most {MAX_REPLICAS}"),
        );
    }
    if spec.shards < 1 {
        errs.push(format!("{path}.shards"), "must be at least 1");
    } else if spec.shards > MAX_SHARDS {
        errs.push(
            format!("{path}.shards"),
            format!("must be at most {MAX_SHARDS}"),
        );
    }
    if let Some(res) = &spec.resources {
        for (kind, map) in [("requests", &res.requests), ("limits", &res.limits)] {
            for (k, v) in map {
                let field = format!("{path}.resources.{kind}.{k}");
                if !matches!(k.as_str(), "cpu" | "memory" | "ephemeral-storage") {
                    errs.push(
                        field.clone(),
                        format!("unknown resource {k:?} (cpu, memory, ephemeral-storage)"),
                    );
                }
                if let Err(m) = crate::quantity::parse(v) {
                    errs.push(field, m);
                }
            }
        }
        for (k, req) in &res.requests {
            if let (Some(lim), Ok(r)) = (res.limits.get(k), crate::quantity::parse(req))
                && let Ok(l) = crate::quantity::parse(lim)
                && r > l
            {
                errs.push(
                    format!("{path}.resources.requests.{k}"),
                    format!("must not exceed the limit {lim}"),
                );
            }
        }
    }
    if let Some(st) = &spec.storage {
        match crate::quantity::parse(&st.size) {
            Ok(v) if v <= 0.0 => errs.push(format!("{path}.storage.size"), "must be positive"),
            Ok(_) => {}
            Err(m) => errs.push(format!("{path}.storage.size"), m),
        }
    }
    if let Some(svc) = &spec.service {
        let t = svc.type_or_default();
        if !SERVICE_TYPES.contains(&t) {
            errs.push(
                format!("{path}.service.type"),
                format!(
                    "unknown service type {t:?}; expected one of {}",
                    SERVICE_TYPES.join(", ")
                ),
            );
        }
        match (t, svc.external_name.as_deref()) {
            ("ExternalName", None | Some("")) => errs.push(
                format!("{path}.service.externalName"),
                "is required when service.type is ExternalName",
            ),
            ("ExternalName", _) | (_, None) => {}
            (_, Some(_)) => errs.push(
                format!("{path}.service.externalName"),
                "is only allowed when service.type is ExternalName",
            ),
        }
    }
    for k in spec.parameters.keys() {
        if k.is_empty() || k.contains(char::is_whitespace) {
            errs.push(
                format!("{path}.parameters"),
                format!("{k:?} is not a valid parameter name"),
            );
        }
    }
    if let Some(b) = &spec.backup {
        validate_backup(b, &format!("{path}.backup"), errs);
    }
}

fn validate_backup(b: &BackupPolicy, path: &str, errs: &mut ValidationErrors) {
    if let Some(enc) = &b.encryption
        && !matches!(enc.as_str(), "aes256-gcm" | "aes256-cbc" | "gpg")
    {
        errs.push(
            format!("{path}.encryption"),
            format!("unknown algorithm {enc:?}; expected aes256-gcm, aes256-cbc or gpg"),
        );
    }
    if b.enabled {
        if b.schedule.is_empty() {
            errs.push(
                format!("{path}.schedule"),
                "is required when backup is enabled",
            );
        } else if let Err(m) = cron_fields(&b.schedule) {
            errs.push(format!("{path}.schedule"), m);
        }
        if b.storage.is_empty() {
            errs.push(
                format!("{path}.storage"),
                "is required when backup is enabled",
            );
        }
    }
    if let Some(r) = &b.retention {
        if r.count.is_some_and(|c| c < 1) {
            errs.push(format!("{path}.retention.count"), "must be at least 1");
        }
        if let Some(age) = &r.max_age
            && parse_duration_secs(age).is_none()
        {
            errs.push(
                format!("{path}.retention.maxAge"),
                format!("{age:?} is not a duration such as 168h or 30m"),
            );
        }
    }
}

/// A standard 5-field cron expression, each field made of `*`, numbers, `-`, `,` and `/`.
fn cron_fields(expr: &str) -> Result<(), String> {
    let fields: Vec<&str> = expr.split_whitespace().collect();
    if fields.len() != 5 {
        return Err(format!(
            "{expr:?} must have 5 fields (minute hour day-of-month month day-of-week)"
        ));
    }
    for f in fields {
        if !f
            .chars()
            .all(|c| c.is_ascii_digit() || matches!(c, '*' | '-' | ',' | '/'))
        {
            return Err(format!("{expr:?}: field {f:?} is not a cron field"));
        }
    }
    Ok(())
}

/// Go-style durations: `90s`, `30m`, `168h`, `1h30m`.
pub fn parse_duration_secs(s: &str) -> Option<u64> {
    let mut total = 0u64;
    let mut num = String::new();
    if s.is_empty() {
        return None;
    }
    for c in s.chars() {
        if c.is_ascii_digit() {
            num.push(c);
        } else {
            let n: u64 = num.parse().ok()?;
            num.clear();
            total += n * match c {
                's' => 1,
                'm' => 60,
                'h' => 3600,
                'd' => 86400,
                _ => return None,
            };
        }
    }
    num.is_empty().then_some(total)
}

/// RFC 1123 label: lower-case alphanumerics and '-', 1-63 chars, alphanumeric at both ends.
pub fn dns_label(s: &str) -> Result<(), String> {
    let ok_chars = s
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    let ok_ends = s.chars().next().is_some_and(|c| c.is_ascii_alphanumeric())
        && s.chars().last().is_some_and(|c| c.is_ascii_alphanumeric());
    if s.len() > 63 || !ok_chars || !ok_ends {
        Err(format!(
            "{s:?} must be a DNS label: lower-case letters, digits and '-', starting and ending with a letter or digit, at most 63 characters"
        ))
    } else {
        Ok(())
    }
}
