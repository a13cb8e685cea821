//! The words each Helm major prints for a failed schema keyword.

use std::fmt::Write as _;

use serde_json::Value as J;

use super::{HelmMajor, Kind, Problem};

/// A JSON number as Go prints it (big.Rat / %v): integers without a fraction.
fn num_text(v: &J) -> String {
    match v.as_f64() {
        Some(f) if f.fract() == 0.0 && f.abs() < 1e15 => format!("{}", f as i64),
        Some(f) => crate::gofmt::format_float_g(f),
        None => v.to_string(),
    }
}

pub(super) fn format_problems(mut problems: Vec<Problem>, helm: HelmMajor) -> String {
    let mut out = String::new();
    match helm {
        HelmMajor::V3 => {
            for p in &problems {
                let field = if p.path.is_empty() {
                    "(root)".to_string()
                } else {
                    p.path.join(".")
                };
                let _ = writeln!(out, "- {field}: {}", v3_message(&p.kind, &field));
            }
        }
        HelmMajor::V4 => {
            problems.sort_by(|a, b| a.path.cmp(&b.path));
            for p in &problems {
                let at: String = p.path.iter().map(|s| format!("/{s}")).collect();
                let _ = writeln!(out, "- at '{at}': {}", v4_message(&p.kind));
            }
        }
    }
    out
}

fn v3_message(k: &Kind, field: &str) -> String {
    let name = field.rsplit('.').next().unwrap_or(field);
    match k {
        Kind::Type { want, got } => {
            format!("Invalid type. Expected: {}, given: {got}", want.join("/"))
        }
        Kind::Required(p) => format!("{p} is required"),
        Kind::Enum(vals) => format!(
            "{name} must be one of the following: {}",
            vals.iter().map(J::to_string).collect::<Vec<_>>().join(", ")
        ),
        Kind::Const(c) => format!("{name} does not match: {c}"),
        Kind::Minimum(_, m, false) => format!("Must be greater than or equal to {}", num_text(m)),
        Kind::Minimum(_, m, true) => format!("Must be greater than {}", num_text(m)),
        Kind::Maximum(_, m, false) => format!("Must be less than or equal to {}", num_text(m)),
        Kind::Maximum(_, m, true) => format!("Must be less than {}", num_text(m)),
        Kind::MultipleOf(_, m) => format!("Must be a multiple of {}", num_text(m)),
        Kind::MinLength(_, n) => format!("String length must be greater than or equal to {n}"),
        Kind::MaxLength(_, n) => format!("String length must be less than or equal to {n}"),
        Kind::Pattern(_, p) => format!("Does not match pattern '{p}'"),
        Kind::MinItems(_, n) => format!("Array must have at least {n} items"),
        Kind::MaxItems(_, n) => format!("Array must have at most {n} items"),
        Kind::Unique(i, j) => format!("array items[{i},{j}] must be unique"),
        Kind::MinProperties(_, n) => format!("Must have at least {n} properties"),
        Kind::MaxProperties(_, n) => format!("Must have at most {n} properties"),
        Kind::Additional(p) => format!("Additional property {p} is not allowed"),
        Kind::AnyOf => "Must validate at least one schema (anyOf)".into(),
        Kind::OneOf => "Must validate one and only one schema (oneOf)".into(),
        Kind::AllOf => "Must validate all the schemas (allOf)".into(),
        Kind::Not => "Must not validate the schema (not)".into(),
        Kind::False => "False always fails validation".into(),
    }
}

fn quote_single(v: &J) -> String {
    match v {
        J::String(s) => format!("'{s}'"),
        J::Number(_) => num_text(v),
        other => other.to_string(),
    }
}

fn v4_message(k: &Kind) -> String {
    match k {
        Kind::Type { want, got } => format!("got {got}, want {}", want.join(" or ")),
        Kind::Required(p) => format!("missing property '{p}'"),
        Kind::Enum(vals) => format!(
            "value must be one of {}",
            vals.iter().map(quote_single).collect::<Vec<_>>().join(", ")
        ),
        Kind::Const(c) => format!("value must be {}", quote_single(c)),
        Kind::Minimum(g, m, false) => format!("minimum: got {}, want {}", num_text(g), num_text(m)),
        Kind::Minimum(g, m, true) => {
            format!(
                "exclusiveMinimum: got {}, want {}",
                num_text(g),
                num_text(m)
            )
        }
        Kind::Maximum(g, m, false) => format!("maximum: got {}, want {}", num_text(g), num_text(m)),
        Kind::Maximum(g, m, true) => {
            format!(
                "exclusiveMaximum: got {}, want {}",
                num_text(g),
                num_text(m)
            )
        }
        Kind::MultipleOf(g, m) => format!("{} not multipleOf {}", num_text(g), num_text(m)),
        Kind::MinLength(g, n) => format!("minLength: got {g}, want {n}"),
        Kind::MaxLength(g, n) => format!("maxLength: got {g}, want {n}"),
        Kind::Pattern(s, p) => format!("'{s}' does not match pattern '{p}'"),
        Kind::MinItems(g, n) => format!("minItems: got {g}, want {n}"),
        Kind::MaxItems(g, n) => format!("maxItems: got {g}, want {n}"),
        Kind::Unique(i, j) => format!("items at {i} and {j} are equal"),
        Kind::MinProperties(g, n) => format!("minProperties: got {g}, want {n}"),
        Kind::MaxProperties(g, n) => format!("maxProperties: got {g}, want {n}"),
        Kind::Additional(p) => format!("additional properties '{p}' not allowed"),
        Kind::AnyOf => "anyOf failed".into(),
        Kind::OneOf => "oneOf failed, none matched".into(),
        Kind::AllOf => "allOf failed".into(),
        Kind::Not => "not failed".into(),
        Kind::False => "false schema".into(),
    }
}
