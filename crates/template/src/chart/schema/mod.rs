//! values.schema.json validation as each Helm reports it: Helm 3 through gojsonschema
//! (`- image.repository: Does not match pattern '...'`), Helm 4 through santhosh-tekuri's
//! jsonschema (`- at '/image/repository': 'x' does not match pattern '...'`).

use std::fmt::Write as _;

use serde_json::Value as J;

use super::HelmMajor;
use super::load::Chart;
use crate::value::Value;

mod messages;

/// One failed keyword: where in the values, and what.
struct Problem {
    path: Vec<String>,
    kind: Kind,
}

enum Kind {
    Type {
        want: Vec<String>,
        got: &'static str,
    },
    Required(String),
    Enum(Vec<J>),
    Const(J),
    Minimum(J, J, bool),
    Maximum(J, J, bool),
    MultipleOf(J, J),
    MinLength(usize, usize),
    MaxLength(usize, usize),
    Pattern(String, String),
    MinItems(usize, usize),
    MaxItems(usize, usize),
    Unique(usize, usize),
    MinProperties(usize, usize),
    MaxProperties(usize, usize),
    Additional(String),
    AnyOf,
    OneOf,
    AllOf,
    Not,
    False,
}

/// ValidateAgainstSchema over the chart tree: one block per chart whose values fail.
pub fn validate_tree(c: &Chart, vals: &Value, helm: HelmMajor) -> String {
    let mut out = String::new();
    if let Some(schema) = &c.schema {
        match serde_json::from_slice::<J>(schema) {
            Ok(s) => {
                let inst = vals.to_json();
                let mut problems = Vec::new();
                check(&s, &s, &inst, &mut Vec::new(), &mut problems);
                if !problems.is_empty() {
                    let _ = writeln!(out, "{}:", c.name());
                    out.push_str(&messages::format_problems(problems, helm));
                }
            }
            Err(e) => {
                let _ = writeln!(out, "{}:", c.name());
                let _ = writeln!(out, "- (root): invalid schema: {e}");
            }
        }
    }
    for d in &c.dependencies {
        let sub = super::deps::scoped(vals, d.name());
        out.push_str(&validate_tree(d, &sub, helm));
    }
    out
}

fn type_of(v: &J) -> &'static str {
    match v {
        J::Null => "null",
        J::Bool(_) => "boolean",
        J::Number(n) => {
            if n.is_i64() || n.is_u64() || n.as_f64().is_some_and(|f| f.fract() == 0.0) {
                "integer"
            } else {
                "number"
            }
        }
        J::String(_) => "string",
        J::Array(_) => "array",
        J::Object(_) => "object",
    }
}

fn is_type(v: &J, t: &str) -> bool {
    match t {
        "number" => v.is_number(),
        "integer" => type_of(v) == "integer",
        other => type_of(v) == other,
    }
}

fn num(v: &J) -> Option<f64> {
    v.as_f64()
}

/// Resolves a local `$ref` (`#/definitions/x`, `#/$defs/x`, `#`).
fn resolve<'a>(root: &'a J, r: &str) -> Option<&'a J> {
    let frag = r.strip_prefix('#')?;
    if frag.is_empty() {
        return Some(root);
    }
    root.pointer(frag)
}

fn check(root: &J, s: &J, v: &J, path: &mut Vec<String>, out: &mut Vec<Problem>) {
    let push = |out: &mut Vec<Problem>, path: &Vec<String>, kind: Kind| {
        out.push(Problem {
            path: path.clone(),
            kind,
        });
    };
    let obj = match s {
        J::Bool(true) => return,
        J::Bool(false) => return push(out, path, Kind::False),
        J::Object(o) => o,
        _ => return,
    };
    if let Some(J::String(r)) = obj.get("$ref") {
        if let Some(target) = resolve(root, r) {
            check(root, target, v, path, out);
        }
        return;
    }
    if let Some(t) = obj.get("type") {
        let want: Vec<String> = match t {
            J::String(t) => vec![t.clone()],
            J::Array(ts) => ts
                .iter()
                .filter_map(|x| x.as_str().map(str::to_string))
                .collect(),
            _ => Vec::new(),
        };
        if !want.is_empty() && !want.iter().any(|t| is_type(v, t)) {
            push(
                out,
                path,
                Kind::Type {
                    want,
                    got: type_of(v),
                },
            );
            return;
        }
    }
    if let Some(J::Array(allowed)) = obj.get("enum")
        && !allowed.iter().any(|a| json_eq(a, v))
    {
        push(out, path, Kind::Enum(allowed.clone()));
    }
    if let Some(c) = obj.get("const")
        && !json_eq(c, v)
    {
        push(out, path, Kind::Const(c.clone()));
    }
    if let Some(x) = num(v) {
        let draft4_excl = |k: &str| matches!(obj.get(k), Some(J::Bool(true)));
        if let Some(min) = obj.get("minimum").and_then(num) {
            let excl = draft4_excl("exclusiveMinimum");
            if x < min || (excl && x == min) {
                push(
                    out,
                    path,
                    Kind::Minimum(v.clone(), obj["minimum"].clone(), excl),
                );
            }
        }
        if let Some(max) = obj.get("maximum").and_then(num) {
            let excl = draft4_excl("exclusiveMaximum");
            if x > max || (excl && x == max) {
                push(
                    out,
                    path,
                    Kind::Maximum(v.clone(), obj["maximum"].clone(), excl),
                );
            }
        }
        if let Some(J::Number(n)) = obj.get("exclusiveMinimum")
            && x <= n.as_f64().unwrap_or(f64::MIN)
        {
            push(
                out,
                path,
                Kind::Minimum(v.clone(), J::Number(n.clone()), true),
            );
        }
        if let Some(J::Number(n)) = obj.get("exclusiveMaximum")
            && x >= n.as_f64().unwrap_or(f64::MAX)
        {
            push(
                out,
                path,
                Kind::Maximum(v.clone(), J::Number(n.clone()), true),
            );
        }
        if let Some(m) = obj.get("multipleOf").and_then(num)
            && m != 0.0
            && ((x / m) - (x / m).round()).abs() > 1e-9
        {
            push(
                out,
                path,
                Kind::MultipleOf(v.clone(), obj["multipleOf"].clone()),
            );
        }
    }
    if let J::String(text) = v {
        let len = text.chars().count();
        if let Some(n) = obj.get("minLength").and_then(J::as_u64)
            && len < n as usize
        {
            push(out, path, Kind::MinLength(len, n as usize));
        }
        if let Some(n) = obj.get("maxLength").and_then(J::as_u64)
            && len > n as usize
        {
            push(out, path, Kind::MaxLength(len, n as usize));
        }
        if let Some(J::String(p)) = obj.get("pattern")
            && let Ok(re) = crate::funcs::goregex::compile(p)
            && !re.is_match(text)
        {
            push(out, path, Kind::Pattern(text.clone(), p.clone()));
        }
    }
    if let J::Array(items) = v {
        if let Some(n) = obj.get("minItems").and_then(J::as_u64)
            && items.len() < n as usize
        {
            push(out, path, Kind::MinItems(items.len(), n as usize));
        }
        if let Some(n) = obj.get("maxItems").and_then(J::as_u64)
            && items.len() > n as usize
        {
            push(out, path, Kind::MaxItems(items.len(), n as usize));
        }
        if matches!(obj.get("uniqueItems"), Some(J::Bool(true))) {
            'outer: for i in 0..items.len() {
                for j in i + 1..items.len() {
                    if json_eq(&items[i], &items[j]) {
                        push(out, path, Kind::Unique(i, j));
                        break 'outer;
                    }
                }
            }
        }
        match obj.get("items") {
            Some(J::Array(schemas)) => {
                for (i, (item, sch)) in items.iter().zip(schemas.iter()).enumerate() {
                    path.push(i.to_string());
                    check(root, sch, item, path, out);
                    path.pop();
                }
                if let Some(extra) = obj.get("additionalItems") {
                    for (i, item) in items.iter().enumerate().skip(schemas.len()) {
                        path.push(i.to_string());
                        check(root, extra, item, path, out);
                        path.pop();
                    }
                }
            }
            Some(sch) => {
                for (i, item) in items.iter().enumerate() {
                    path.push(i.to_string());
                    check(root, sch, item, path, out);
                    path.pop();
                }
            }
            None => {}
        }
    }
    if let J::Object(m) = v {
        if let Some(J::Array(req)) = obj.get("required") {
            for r in req.iter().filter_map(J::as_str) {
                if !m.contains_key(r) {
                    push(out, path, Kind::Required(r.to_string()));
                }
            }
        }
        if let Some(n) = obj.get("minProperties").and_then(J::as_u64)
            && m.len() < n as usize
        {
            push(out, path, Kind::MinProperties(m.len(), n as usize));
        }
        if let Some(n) = obj.get("maxProperties").and_then(J::as_u64)
            && m.len() > n as usize
        {
            push(out, path, Kind::MaxProperties(m.len(), n as usize));
        }
        let props = obj.get("properties").and_then(J::as_object);
        let patterns = obj.get("patternProperties").and_then(J::as_object);
        if let Some(props) = props {
            for (k, sch) in props {
                if let Some(item) = m.get(k) {
                    path.push(k.clone());
                    check(root, sch, item, path, out);
                    path.pop();
                }
            }
        }
        for (k, item) in m {
            let mut matched = props.is_some_and(|p| p.contains_key(k));
            if let Some(pats) = patterns {
                for (p, sch) in pats {
                    if crate::funcs::goregex::compile(p).is_ok_and(|re| re.is_match(k)) {
                        matched = true;
                        path.push(k.clone());
                        check(root, sch, item, path, out);
                        path.pop();
                    }
                }
            }
            if !matched && let Some(extra) = obj.get("additionalProperties") {
                if matches!(extra, J::Bool(false)) {
                    push(out, path, Kind::Additional(k.clone()));
                } else {
                    path.push(k.clone());
                    check(root, extra, item, path, out);
                    path.pop();
                }
            }
        }
    }
    let here = path.clone();
    let valid = |s: &J| {
        let mut p = Vec::new();
        check(root, s, v, &mut here.clone(), &mut p);
        p.is_empty()
    };
    if let Some(J::Array(all)) = obj.get("allOf") {
        let mut sub = Vec::new();
        for s in all {
            check(root, s, v, path, &mut sub);
        }
        if !sub.is_empty() {
            out.extend(sub);
            push(out, path, Kind::AllOf);
        }
    }
    if let Some(J::Array(any)) = obj.get("anyOf")
        && !any.iter().any(valid)
    {
        push(out, path, Kind::AnyOf);
    }
    if let Some(J::Array(one)) = obj.get("oneOf")
        && one.iter().filter(|s| valid(s)).count() != 1
    {
        push(out, path, Kind::OneOf);
    }
    if let Some(not) = obj.get("not")
        && valid(not)
    {
        push(out, path, Kind::Not);
    }
    if let Some(cond) = obj.get("if") {
        let branch = if valid(cond) {
            obj.get("then")
        } else {
            obj.get("else")
        };
        if let Some(b) = branch {
            check(root, b, v, path, out);
        }
    }
}

fn json_eq(a: &J, b: &J) -> bool {
    match (a, b) {
        (J::Number(x), J::Number(y)) => x.as_f64() == y.as_f64(),
        (J::Array(x), J::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(p, q)| json_eq(p, q))
        }
        (J::Object(x), J::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| json_eq(v, w)))
        }
        _ => a == b,
    }
}
