//! Reads YAML as Helm does (sigs.k8s.io/yaml over go-yaml v2): YAML 1.1 scalar resolution
//! (`yes`/`on` are booleans, `0755` is octal, `1_000` is 1000, timestamps stay strings), merge keys,
//! anchors, then the JSON round trip (every number a float64, every key a string).
//!
//! serde_yaml implements YAML 1.2 and hides scalar styles, so we read libyaml's events directly.
//! That is a C-style API (unsafe-libyaml), hence the unsafe blocks; each says why it holds.
#![allow(unsafe_code)]

use std::collections::{BTreeMap, HashMap};
use std::ffi::CStr;
use std::mem::MaybeUninit;
use std::sync::Arc;

use crate::error::Error;
use crate::value::Value;

#[derive(Clone)]
enum Node {
    Scalar {
        value: String,
        plain: bool,
        tag: Option<String>,
    },
    Seq(Vec<Node>),
    Map(Vec<(Node, Node)>),
}

enum Ev {
    DocStart,
    DocEnd,
    StreamEnd,
    Alias(String),
    Scalar(Node, Option<String>),
    SeqStart(Option<String>),
    SeqEnd,
    MapStart(Option<String>),
    MapEnd,
    Other,
}

struct Parser {
    sys: Box<MaybeUninit<unsafe_libyaml::yaml_parser_t>>,
}

impl Drop for Parser {
    fn drop(&mut self) {
        // SAFETY: initialised in `parse_nodes` before any Parser is handed out.
        unsafe { unsafe_libyaml::yaml_parser_delete(self.sys.as_mut_ptr()) }
    }
}

unsafe fn opt_str(p: *const u8) -> Option<String> {
    if p.is_null() {
        return None;
    }
    // SAFETY: libyaml hands out NUL-terminated strings that live until the event is deleted.
    Some(
        unsafe { CStr::from_ptr(p.cast()) }
            .to_string_lossy()
            .into_owned(),
    )
}

impl Parser {
    fn next(&mut self) -> Result<Ev, Error> {
        let mut ev = MaybeUninit::<unsafe_libyaml::yaml_event_t>::uninit();
        // SAFETY: the parser is initialised and pinned in its Box; the event is deleted below.
        unsafe {
            let p = self.sys.as_mut_ptr();
            if unsafe_libyaml::yaml_parser_parse(p, ev.as_mut_ptr()).fail {
                let parser = &*p;
                let problem =
                    opt_str(parser.problem.cast()).unwrap_or_else(|| "unknown error".into());
                // go-yaml v2's fail(): scanner errors report the mark's line + 1, parser
                // errors the 0-based mark line, else the context line; 0 means no line
                let mut line = 0;
                if parser.problem_mark.line != 0 {
                    line = parser.problem_mark.line;
                    if parser.error == unsafe_libyaml::YAML_SCANNER_ERROR {
                        line += 1;
                    }
                } else if parser.context_mark.line != 0 {
                    line = parser.context_mark.line;
                }
                let at = if line != 0 {
                    format!("line {line}: ")
                } else {
                    String::new()
                };
                return Err(Error::Yaml(format!(
                    "error converting YAML to JSON: yaml: {at}{problem}"
                )));
            }
            let e = &*ev.as_ptr();
            let out = match e.type_ {
                unsafe_libyaml::YAML_STREAM_END_EVENT => Ev::StreamEnd,
                unsafe_libyaml::YAML_DOCUMENT_START_EVENT => Ev::DocStart,
                unsafe_libyaml::YAML_DOCUMENT_END_EVENT => Ev::DocEnd,
                unsafe_libyaml::YAML_ALIAS_EVENT => {
                    Ev::Alias(opt_str(e.data.alias.anchor).unwrap_or_default())
                }
                unsafe_libyaml::YAML_SCALAR_EVENT => {
                    let s = e.data.scalar;
                    let bytes = std::slice::from_raw_parts(s.value, s.length as usize);
                    let node = Node::Scalar {
                        value: String::from_utf8_lossy(bytes).into_owned(),
                        plain: s.style == unsafe_libyaml::YAML_PLAIN_SCALAR_STYLE,
                        tag: opt_str(s.tag),
                    };
                    Ev::Scalar(node, opt_str(s.anchor))
                }
                unsafe_libyaml::YAML_SEQUENCE_START_EVENT => {
                    Ev::SeqStart(opt_str(e.data.sequence_start.anchor))
                }
                unsafe_libyaml::YAML_SEQUENCE_END_EVENT => Ev::SeqEnd,
                unsafe_libyaml::YAML_MAPPING_START_EVENT => {
                    Ev::MapStart(opt_str(e.data.mapping_start.anchor))
                }
                unsafe_libyaml::YAML_MAPPING_END_EVENT => Ev::MapEnd,
                _ => Ev::Other,
            };
            unsafe_libyaml::yaml_event_delete(ev.as_mut_ptr());
            Ok(out)
        }
    }
}

const MAX_DEPTH: usize = 500;
const MAX_NODES: usize = 1_000_000;

struct Builder {
    anchors: HashMap<String, Node>,
    nodes: usize,
}

impl Builder {
    fn node(&mut self, p: &mut Parser, ev: Ev, depth: usize) -> Result<Node, Error> {
        if depth > MAX_DEPTH {
            return Err(Error::Yaml(
                "error converting YAML to JSON: yaml: exceeded max depth".into(),
            ));
        }
        self.nodes += 1;
        if self.nodes > MAX_NODES {
            return Err(Error::Yaml(
                "error converting YAML to JSON: yaml: document contains excessive aliasing".into(),
            ));
        }
        let (node, anchor) = match ev {
            Ev::Scalar(n, a) => (n, a),
            Ev::Alias(a) => {
                let n = self.anchors.get(&a).cloned().ok_or_else(|| {
                    Error::Yaml(format!(
                        "error converting YAML to JSON: yaml: unknown anchor '{a}' referenced"
                    ))
                })?;
                self.nodes += count(&n);
                return Ok(n);
            }
            Ev::SeqStart(a) => {
                let mut items = Vec::new();
                loop {
                    match p.next()? {
                        Ev::SeqEnd => break,
                        e => items.push(self.node(p, e, depth + 1)?),
                    }
                }
                (Node::Seq(items), a)
            }
            Ev::MapStart(a) => {
                let mut items = Vec::new();
                loop {
                    match p.next()? {
                        Ev::MapEnd => break,
                        e => {
                            let k = self.node(p, e, depth + 1)?;
                            let ev = p.next()?;
                            let v = self.node(p, ev, depth + 1)?;
                            items.push((k, v));
                        }
                    }
                }
                (Node::Map(items), a)
            }
            _ => {
                return Err(Error::Yaml(
                    "error converting YAML to JSON: yaml: unexpected event".into(),
                ));
            }
        };
        if let Some(a) = anchor {
            self.anchors.insert(a, node.clone());
        }
        Ok(node)
    }
}

fn count(n: &Node) -> usize {
    match n {
        Node::Scalar { .. } => 1,
        Node::Seq(l) => 1 + l.iter().map(count).sum::<usize>(),
        Node::Map(m) => 1 + m.iter().map(|(k, v)| count(k) + count(v)).sum::<usize>(),
    }
}

/// The first document of `src` as Helm's values tree (`Nil` for an empty document).
pub fn load(src: &str) -> Result<Value, Error> {
    let mut parser = Parser {
        sys: Box::new(MaybeUninit::uninit()),
    };
    // SAFETY: initialise in place; `src` outlives the parser (both local to this function).
    unsafe {
        if unsafe_libyaml::yaml_parser_initialize(parser.sys.as_mut_ptr()).fail {
            return Err(Error::Yaml("yaml: parser allocation failed".into()));
        }
        unsafe_libyaml::yaml_parser_set_input_string(
            parser.sys.as_mut_ptr(),
            src.as_ptr(),
            src.len() as u64,
        );
    }
    let mut b = Builder {
        anchors: HashMap::new(),
        nodes: 0,
    };
    loop {
        match parser.next()? {
            Ev::StreamEnd => return Ok(Value::Nil),
            Ev::DocStart | Ev::Other | Ev::DocEnd => continue,
            ev => {
                let node = b.node(&mut parser, ev, 0)?;
                return Ok(to_value(&node));
            }
        }
    }
}

fn to_value(n: &Node) -> Value {
    match n {
        Node::Scalar { value, plain, tag } => resolve(value, *plain, tag.as_deref()),
        Node::Seq(items) => Value::List(Arc::new(items.iter().map(to_value).collect())),
        Node::Map(items) => {
            let mut m = BTreeMap::new();
            for (k, v) in items {
                if let Node::Scalar {
                    value,
                    plain: true,
                    tag: None,
                } = k
                    && value == "<<"
                {
                    merge(&mut m, v);
                    continue;
                }
                m.insert(key_string(k), to_value(v));
            }
            Value::Map(Arc::new(m))
        }
    }
}

/// `<<: *anchor` or `<<: [*a, *b]`: the merged maps' keys, in document order.
fn merge(into: &mut BTreeMap<String, Value>, v: &Node) {
    match v {
        Node::Map(_) => {
            if let Value::Map(src) = &to_value(v) {
                for (k, val) in src.iter() {
                    into.insert(k.clone(), val.clone());
                }
            }
        }
        Node::Seq(items) => items.iter().for_each(|i| merge(into, i)),
        Node::Scalar { .. } => {}
    }
}

fn key_string(k: &Node) -> String {
    match &to_value(k) {
        Value::String(s) => s.clone(),
        Value::Nil => "null".into(),
        Value::Bool(b) => b.to_string(),
        Value::Float(f) => {
            if let Node::Scalar { value, .. } = k
                && let Some(i) = int_value(value)
            {
                return i.to_string();
            }
            crate::gofmt::format_float_g(*f)
        }
        other => other.to_go_string(),
    }
}

fn int_value(s: &str) -> Option<i64> {
    let plain = s.replace('_', "");
    if let Some(i) = crate::funcs::parse_go_int(&plain) {
        return Some(i);
    }
    let bin = plain
        .strip_prefix("0b")
        .map(|b| (false, b))
        .or_else(|| plain.strip_prefix("-0b").map(|b| (true, b)));
    if let Some((neg, digits)) = bin {
        let v = i64::from_str_radix(digits, 2).ok()?;
        return Some(if neg { -v } else { v });
    }
    None
}

/// go-yaml v2's resolve() for an untagged scalar, then JSON's number model.
fn resolve(v: &str, plain: bool, tag: Option<&str>) -> Value {
    match tag {
        Some("tag:yaml.org,2002:str" | "!!str") => return Value::String(v.to_string()),
        Some("tag:yaml.org,2002:null") => return Value::Nil,
        _ => {}
    }
    if !plain
        && !matches!(
            tag,
            Some("tag:yaml.org,2002:int" | "tag:yaml.org,2002:float" | "tag:yaml.org,2002:bool")
        )
    {
        return Value::String(v.to_string());
    }
    match v {
        "y" | "Y" | "yes" | "Yes" | "YES" | "true" | "True" | "TRUE" | "on" | "On" | "ON" => {
            return Value::Bool(true);
        }
        "n" | "N" | "no" | "No" | "NO" | "false" | "False" | "FALSE" | "off" | "Off" | "OFF" => {
            return Value::Bool(false);
        }
        "" | "~" | "null" | "Null" | "NULL" => return Value::Nil,
        ".nan" | ".NaN" | ".NAN" => return Value::Float(f64::NAN),
        ".inf" | ".Inf" | ".INF" | "+.inf" | "+.Inf" | "+.INF" => {
            return Value::Float(f64::INFINITY);
        }
        "-.inf" | "-.Inf" | "-.INF" => return Value::Float(f64::NEG_INFINITY),
        _ => {}
    }
    let first = v.as_bytes()[0];
    if first == b'.' {
        if let Ok(f) = v.parse::<f64>() {
            return Value::Float(f);
        }
        return Value::String(v.to_string());
    }
    if !(first.is_ascii_digit() || first == b'+' || first == b'-') {
        return Value::String(v.to_string());
    }
    if is_timestamp(v) {
        return Value::String(v.to_string());
    }
    if let Some(i) = int_value(v) {
        return Value::Float(i as f64);
    }
    let plain_num = v.replace('_', "");
    if let Ok(u) = plain_num.parse::<u64>() {
        return Value::Float(u as f64);
    }
    if is_yaml_float(&plain_num)
        && let Ok(f) = plain_num.parse::<f64>()
    {
        return Value::Float(f);
    }
    Value::String(v.to_string())
}

fn is_yaml_float(s: &str) -> bool {
    // ^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$
    let b = s.strip_prefix(['-', '+']).unwrap_or(s);
    let (mant, exp) = match b.find(['e', 'E']) {
        Some(i) => (&b[..i], Some(&b[i + 1..])),
        None => (b, None),
    };
    let mant_ok = match mant.split_once('.') {
        Some(("", f)) => !f.is_empty() && f.bytes().all(|c| c.is_ascii_digit()),
        Some((i, f)) => {
            !i.is_empty()
                && i.bytes().all(|c| c.is_ascii_digit())
                && f.bytes().all(|c| c.is_ascii_digit())
        }
        None => !mant.is_empty() && mant.bytes().all(|c| c.is_ascii_digit()),
    };
    let exp_ok = exp.is_none_or(|e| {
        let d = e.strip_prefix(['-', '+']).unwrap_or(e);
        !d.is_empty() && d.bytes().all(|c| c.is_ascii_digit())
    });
    mant_ok && exp_ok
}

/// go-yaml v2 parseTimestamp: 4 digits and '-', then one of its layouts.
fn is_timestamp(s: &str) -> bool {
    let b = s.as_bytes();
    if b.len() < 8 || !b[..4].iter().all(u8::is_ascii_digit) || b[4] != b'-' {
        return false;
    }
    let (date, _time) = match s.find(['T', 't', ' ']) {
        Some(i) => (&s[..i], Some(&s[i + 1..])),
        None => (s, None),
    };
    let parts: Vec<&str> = date.split('-').collect();
    parts.len() == 3
        && parts
            .iter()
            .all(|p| !p.is_empty() && p.bytes().all(|c| c.is_ascii_digit()))
        && parts[1].len() <= 2
        && parts[2].len() <= 2
}
