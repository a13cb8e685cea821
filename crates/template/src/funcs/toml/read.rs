//! A TOML 1.0 reader for fromToml: integers are int64, floats float64, times time.Time;
//! errors worded as BurntSushi/toml words the common ones.

use std::collections::BTreeMap;

use crate::funcs::gotime::{Loc, parse_in_location};
use crate::value::Value;

type Map = BTreeMap<String, Value>;

struct P<'a> {
    /// Helm 3's BurntSushi/toml says line 0 for errors at the end of input.
    eof_line_zero: bool,
    s: &'a [u8],
    i: usize,
    line: usize,
    last_key: String,
}

impl P<'_> {
    fn err(&self, msg: &str) -> String {
        let line = if self.eof_line_zero && msg.starts_with("unexpected EOF") {
            0
        } else {
            self.line
        };
        if self.last_key.is_empty() {
            format!("toml: line {line}: {msg}")
        } else {
            format!(
                "toml: line {line} (last key {}): {msg}",
                crate::gofmt::quote(&self.last_key)
            )
        }
    }

    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }

    fn bump(&mut self) -> Option<u8> {
        let c = self.peek()?;
        self.i += 1;
        if c == b'\n' {
            self.line += 1;
        }
        Some(c)
    }

    fn ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t')) {
            self.i += 1;
        }
    }

    fn comment(&mut self) {
        if self.peek() == Some(b'#') {
            while self.peek().is_some_and(|c| c != b'\n') {
                self.i += 1;
            }
        }
    }

    /// Whitespace, comments and newlines (inside arrays).
    fn ws_nl(&mut self) {
        loop {
            self.ws();
            self.comment();
            match self.peek() {
                Some(b'\n') => {
                    self.bump();
                }
                Some(b'\r') if self.s.get(self.i + 1) == Some(&b'\n') => {
                    self.i += 1;
                }
                _ => return,
            }
        }
    }

    fn key(&mut self) -> Result<Vec<String>, String> {
        let mut parts = Vec::new();
        loop {
            self.ws();
            let part = match self.peek() {
                Some(b'"') => self.basic_string()?,
                Some(b'\'') => self.literal_string()?,
                Some(c) if c.is_ascii_alphanumeric() || c == b'_' || c == b'-' => {
                    let start = self.i;
                    while self
                        .peek()
                        .is_some_and(|c| c.is_ascii_alphanumeric() || c == b'_' || c == b'-')
                    {
                        self.i += 1;
                    }
                    String::from_utf8_lossy(&self.s[start..self.i]).into_owned()
                }
                Some(b'=') => return Err(self.err("unexpected '=': key name appears blank")),
                Some(c) => {
                    return Err(self.err(&format!("bare keys cannot contain {}", rune_q(c))));
                }
                None => return Err(self.err("unexpected EOF; expected key name")),
            };
            parts.push(part);
            self.ws();
            if self.peek() == Some(b'.') {
                self.i += 1;
                continue;
            }
            return Ok(parts);
        }
    }

    fn basic_string(&mut self) -> Result<String, String> {
        if self.s[self.i..].starts_with(b"\"\"\"") {
            self.i += 3;
            if self.peek() == Some(b'\n') {
                self.bump();
            }
            return self.string_body(b"\"\"\"", true);
        }
        self.i += 1;
        self.string_body(b"\"", true)
    }

    fn literal_string(&mut self) -> Result<String, String> {
        if self.s[self.i..].starts_with(b"'''") {
            self.i += 3;
            if self.peek() == Some(b'\n') {
                self.bump();
            }
            return self.string_body(b"'''", false);
        }
        self.i += 1;
        self.string_body(b"'", false)
    }

    fn string_body(&mut self, end: &[u8], escapes: bool) -> Result<String, String> {
        let mut out = Vec::new();
        loop {
            if self.s[self.i..].starts_with(end) {
                self.i += end.len();
                return Ok(String::from_utf8_lossy(&out).into_owned());
            }
            let Some(c) = self.bump() else {
                let q = if escapes { "\\\"" } else { "'" };
                return Err(self.err(&format!("unexpected EOF; expected \"{q}\"")));
            };
            if c == b'\n' && end.len() == 1 {
                return Err(self.err("strings cannot contain newlines"));
            }
            if c == b'\\' && escapes {
                let Some(e) = self.bump() else {
                    return Err(self.err("unexpected EOF; expected escape"));
                };
                match e {
                    b'b' => out.push(8),
                    b't' => out.push(b'\t'),
                    b'n' => out.push(b'\n'),
                    b'f' => out.push(12),
                    b'r' => out.push(b'\r'),
                    b'"' => out.push(b'"'),
                    b'\\' => out.push(b'\\'),
                    b'u' | b'U' => {
                        let n = if e == b'u' { 4 } else { 8 };
                        let hex = String::from_utf8_lossy(
                            self.s.get(self.i..self.i + n).unwrap_or_default(),
                        )
                        .into_owned();
                        self.i += n;
                        let ch = u32::from_str_radix(&hex, 16)
                            .ok()
                            .and_then(char::from_u32)
                            .ok_or_else(|| {
                                self.err(&format!("invalid escape: '\\{}{hex}'", e as char))
                            })?;
                        let mut b = [0u8; 4];
                        out.extend_from_slice(ch.encode_utf8(&mut b).as_bytes());
                    }
                    b'\n' | b' ' | b'\t' | b'\r' if end.len() == 3 => {
                        // line-ending backslash: trim following whitespace
                        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
                            self.bump();
                        }
                    }
                    other => {
                        return Err(
                            self.err(&format!("invalid escape in string '\\{}'", other as char))
                        );
                    }
                }
                continue;
            }
            out.push(c);
        }
    }

    fn value(&mut self) -> Result<Value, String> {
        self.ws();
        let Some(c) = self.peek() else {
            return Err(self.err("unexpected EOF; expected value"));
        };
        match c {
            b'"' => self.basic_string().map(Value::String),
            b'\'' => self.literal_string().map(Value::String),
            b'[' => {
                self.i += 1;
                let mut items = Vec::new();
                loop {
                    self.ws_nl();
                    if self.peek() == Some(b']') {
                        self.i += 1;
                        return Ok(Value::list(items));
                    }
                    items.push(self.value()?);
                    self.ws_nl();
                    match self.peek() {
                        Some(b',') => self.i += 1,
                        Some(b']') => {}
                        None => return Err(self.err("unexpected EOF; expected array separator")),
                        Some(c) => {
                            return Err(self.err(&format!(
                                "expected a comma (',') or array terminator (']'), but got {}",
                                crate::gofmt::quote(&(c as char).to_string())
                            )));
                        }
                    }
                }
            }
            b'{' => {
                self.i += 1;
                let mut m = Map::new();
                self.ws();
                if self.peek() == Some(b'}') {
                    self.i += 1;
                    return Ok(Value::map(m));
                }
                loop {
                    let key = self.key()?;
                    self.ws();
                    if self.peek() != Some(b'=') {
                        return Err(self.err("expected '=' after key"));
                    }
                    self.i += 1;
                    let v = self.value()?;
                    insert(&mut m, &key, v).map_err(|e| self.err(&e))?;
                    self.ws();
                    match self.bump() {
                        Some(b',') => {}
                        Some(b'}') => return Ok(Value::map(m)),
                        _ => {
                            return Err(
                                self.err("expected a comma or an inline table terminator '}'")
                            );
                        }
                    }
                }
            }
            _ => {
                let start = self.i;
                loop {
                    match self.peek() {
                        None | Some(b',' | b']' | b'}' | b'\n' | b'#' | b'\r' | b'\t') => break,
                        // a space ends the value, except between a date and its time
                        Some(b' ') => {
                            let so_far = &self.s[start..self.i];
                            let date = so_far.len() == 10 && so_far[4] == b'-' && so_far[7] == b'-';
                            if !(date && self.s.get(self.i + 1).is_some_and(u8::is_ascii_digit)) {
                                break;
                            }
                            self.i += 1;
                        }
                        Some(_) => self.i += 1,
                    }
                }
                let raw = String::from_utf8_lossy(&self.s[start..self.i])
                    .trim()
                    .to_string();
                scalar(&raw).ok_or_else(|| {
                    self.err(&format!(
                        "expected value but found {} instead",
                        crate::gofmt::quote(&raw)
                    ))
                })
            }
        }
    }
}

/// Go's %q of a rune: 'b'.
fn rune_q(c: u8) -> String {
    match c {
        b'\'' => "'\\''".into(),
        b'\\' => "'\\\\'".into(),
        c if c.is_ascii_graphic() || c == b' ' => format!("'{}'", c as char),
        c => format!("'\\x{c:02x}'"),
    }
}

fn scalar(raw: &str) -> Option<Value> {
    match raw {
        "true" => return Some(Value::Bool(true)),
        "false" => return Some(Value::Bool(false)),
        "inf" | "+inf" => return Some(Value::Float(f64::INFINITY)),
        "-inf" => return Some(Value::Float(f64::NEG_INFINITY)),
        "nan" | "+nan" | "-nan" => return Some(Value::Float(f64::NAN)),
        _ => {}
    }
    let plain = raw.replace('_', "");
    for (prefix, radix) in [("0x", 16), ("0o", 8), ("0b", 2)] {
        if let Some(d) = plain.strip_prefix(prefix) {
            return i64::from_str_radix(d, radix).ok().map(Value::I64);
        }
    }
    if let Ok(i) = plain.parse::<i64>() {
        return Some(Value::I64(i));
    }
    if plain
        .chars()
        .all(|c| c.is_ascii_digit() || "+-.eE".contains(c))
        && let Ok(f) = plain.parse::<f64>()
    {
        return Some(Value::Float(f));
    }
    // date-times: offset, local date-time, local date, local time
    let t = raw.replacen(' ', "T", 1);
    for layout in [
        "2006-01-02T15:04:05.999999999Z07:00",
        "2006-01-02T15:04:05.999999999",
        "2006-01-02",
        "15:04:05.999999999",
    ] {
        if let Ok(v) = parse_in_location(layout, &t, Loc::Local) {
            return Some(Value::Object(std::sync::Arc::new(
                crate::object::Object::Time(v),
            )));
        }
    }
    None
}

/// Sets a dotted key, refusing to redefine one.
fn insert(m: &mut Map, key: &[String], v: Value) -> Result<(), String> {
    let (last, parents) = key.split_last().ok_or("empty key")?;
    let mut cur = m;
    for p in parents {
        let slot = cur.entry(p.clone()).or_insert_with(Value::empty_map);
        let Value::Map(next) = slot else {
            return Err(format!("Key '{}' has already been defined.", key.join(".")));
        };
        cur = std::sync::Arc::make_mut(next);
    }
    if cur.contains_key(last) {
        return Err(format!("Key '{}' has already been defined.", key.join(".")));
    }
    cur.insert(last.clone(), v);
    Ok(())
}

/// The table a `[a.b]` or `[[a.b]]` header opens (creating it, or a new array element).
fn open<'m>(m: &'m mut Map, key: &[String], array: bool) -> Result<&'m mut Map, String> {
    let mut cur = m;
    for (i, p) in key.iter().enumerate() {
        let last = i + 1 == key.len();
        if last && array {
            let slot = cur
                .entry(p.clone())
                .or_insert_with(|| Value::list(Vec::new()));
            let Value::List(l) = slot else {
                return Err(format!("Key '{}' has already been defined.", key.join(".")));
            };
            let l = std::sync::Arc::make_mut(l);
            l.push(Value::empty_map());
            let Some(Value::Map(t)) = l.last_mut() else {
                return Err("internal".into());
            };
            return Ok(std::sync::Arc::make_mut(t));
        }
        let slot = cur.entry(p.clone()).or_insert_with(Value::empty_map);
        cur = match slot {
            Value::Map(t) => std::sync::Arc::make_mut(t),
            // a path through an array of tables goes to its last element
            Value::List(l) => match std::sync::Arc::make_mut(l).last_mut() {
                Some(Value::Map(t)) => std::sync::Arc::make_mut(t),
                _ => return Err(format!("Key '{}' has already been defined.", key.join("."))),
            },
            _ => return Err(format!("Key '{}' has already been defined.", key.join("."))),
        };
    }
    Ok(cur)
}

pub fn parse(text: &str, helm: crate::HelmMajor) -> Result<Map, String> {
    let mut p = P {
        eof_line_zero: helm == crate::HelmMajor::V3,
        s: text.as_bytes(),
        i: 0,
        line: 1,
        last_key: String::new(),
    };
    let mut root = Map::new();
    let mut current: Vec<String> = Vec::new();
    loop {
        p.ws_nl();
        let Some(c) = p.peek() else { break };
        if c == b'[' {
            let array = p.s[p.i..].starts_with(b"[[");
            p.i += if array { 2 } else { 1 };
            let key = p.key()?;
            let close: &[u8] = if array { b"]]" } else { b"]" };
            if !p.s[p.i..].starts_with(close) {
                return Err(p.err("expected table header terminator"));
            }
            p.i += close.len();
            p.last_key = key.join(".");
            open(&mut root, &key, array).map_err(|e| p.err(&e))?;
            current = key;
        } else {
            let key = p.key()?;
            p.last_key = current
                .iter()
                .chain(key.iter())
                .cloned()
                .collect::<Vec<_>>()
                .join(".");
            p.ws();
            if p.peek() != Some(b'=') {
                return Err(p.err("expected key separator '='"));
            }
            p.i += 1;
            let v = p.value()?;
            let table = if current.is_empty() {
                &mut root
            } else {
                open_existing(&mut root, &current).map_err(|e| p.err(&e))?
            };
            insert(table, &key, v).map_err(|e| p.err(&e))?;
        }
        p.ws();
        p.comment();
        match p.peek() {
            None | Some(b'\n' | b'\r') => {}
            Some(c) => {
                // the reader reports this before the key-value reaches the parser: no key
                p.last_key.clear();
                return Err(p.err(&format!(
                    "expected a top-level item to end with a newline, comment, or EOF, but got {} instead",
                    rune_q(c)
                )));
            }
        }
    }
    Ok(root)
}

/// The table the last header opened.
fn open_existing<'m>(m: &'m mut Map, key: &[String]) -> Result<&'m mut Map, String> {
    let mut cur = m;
    for p in key {
        let slot = cur.entry(p.clone()).or_insert_with(Value::empty_map);
        cur = match slot {
            Value::List(l) => match std::sync::Arc::make_mut(l).last_mut() {
                Some(Value::Map(t)) => std::sync::Arc::make_mut(t),
                _ => return Err(format!("Key '{}' has already been defined.", key.join("."))),
            },
            Value::Map(t) => std::sync::Arc::make_mut(t),
            _ => return Err(format!("Key '{}' has already been defined.", key.join("."))),
        };
    }
    Ok(cur)
}
