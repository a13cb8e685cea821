//! Helm's strvals: the `--set` family (`a.b=c,d[0]=e,list={x,y}`), parsed rune by rune with
//! Helm's own rules and error texts. `--set` types its values, `--set-string` keeps strings,
//! `--set-json` decodes JSON, `--set-file` reads files, `--set-literal` takes the rest verbatim.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::gofmt::quote;
use crate::value::Value;

type Map = BTreeMap<String, Value>;

const MAX_INDEX: i64 = 65536;
const MAX_NESTED_NAME_LEVEL: usize = 30;

/// How values are read.
pub enum Reader<'a> {
    Typed,
    String,
    File(&'a dyn Fn(&str) -> Result<String, String>),
    Json,
}

enum Stop {
    Err(String),
    Eof,
}

type R<T> = Result<T, Stop>;

fn err<T>(m: impl Into<String>) -> R<T> {
    Err(Stop::Err(m.into()))
}

struct Parser<'a> {
    chars: Vec<char>,
    pos: usize,
    reader: Reader<'a>,
}

impl Parser<'_> {
    fn read(&mut self) -> Option<char> {
        let c = self.chars.get(self.pos).copied();
        if c.is_some() {
            self.pos += 1;
        }
        c
    }

    fn unread(&mut self) {
        self.pos -= 1;
    }

    /// runesUntil: reads up to a stop rune (backslash escapes the next rune).
    fn until(&mut self, stop: &[char]) -> (Vec<char>, Option<char>) {
        let mut v = Vec::new();
        loop {
            match self.read() {
                None => return (v, None),
                Some(c) if stop.contains(&c) => return (v, Some(c)),
                Some('\\') => match self.read() {
                    None => return (v, None),
                    Some(n) => v.push(n),
                },
                Some(c) => v.push(c),
            }
        }
    }

    fn key(&mut self, data: &mut Map, level: usize) -> R<()> {
        let (k, last) = self.until(&['=', '[', ',', '.']);
        let k: String = k.into_iter().collect();
        match last {
            None => {
                if k.is_empty() {
                    Err(Stop::Eof)
                } else {
                    err(format!("key {} has no value", quote(&k)))
                }
            }
            Some('[') => {
                let i = self.key_index()?;
                let mut list = match data.get(&k) {
                    None => Vec::new(),
                    Some(Value::List(l)) => (**l).clone(),
                    Some(other) => {
                        return err(format!(
                            "unable to parse key: interface conversion: interface {{}} is {}, not []interface {{}}",
                            go_type(other)
                        ));
                    }
                };
                let r = self.list_item(&mut list, i, level);
                set(data, &k, Value::list(list));
                r
            }
            Some('=') => {
                if matches!(self.reader, Reader::Json) {
                    if self.empty_val() {
                        set(data, &k, Value::Nil);
                        return Ok(());
                    }
                    let v = self.json_value()?;
                    set(data, &k, v);
                    self.empty_val();
                    return Ok(());
                }
                match self.val_list() {
                    Ok(Some(vl)) => {
                        set(data, &k, Value::list(vl));
                        Ok(())
                    }
                    Err(Stop::Eof) => {
                        set(data, &k, Value::from(""));
                        Err(Stop::Eof)
                    }
                    Ok(None) => {
                        let (rs, _) = self.until(&[',']);
                        let v = self.value(&rs)?;
                        set(data, &k, v);
                        Ok(())
                    }
                    Err(e) => Err(e),
                }
            }
            Some(',') => {
                set(data, &k, Value::from(""));
                err(format!(
                    "key {} has no value (cannot end with ,)",
                    quote(&k)
                ))
            }
            Some(_) => {
                let level = level + 1;
                if level > MAX_NESTED_NAME_LEVEL {
                    return err(format!(
                        "value name nested level is greater than maximum supported nested level of {MAX_NESTED_NAME_LEVEL}"
                    ));
                }
                let mut inner = match data.get(&k) {
                    None => Map::new(),
                    Some(Value::Map(m)) => (**m).clone(),
                    Some(other) => {
                        return err(format!(
                            "unable to parse key: interface conversion: interface {{}} is {}, not map[string]interface {{}}",
                            go_type(other)
                        ));
                    }
                };
                let r = self.key(&mut inner, level);
                if r.is_ok() && inner.is_empty() {
                    return err(format!("key map {} has no value", quote(&k)));
                }
                if !inner.is_empty() {
                    set(data, &k, Value::map(inner));
                }
                r
            }
        }
    }

    fn key_index(&mut self) -> R<i64> {
        let (v, last) = self.until(&[']']);
        if last.is_none() {
            return Err(Stop::Eof);
        }
        let s: String = v.into_iter().collect();
        s.parse::<i64>().or_else(|_| {
            err(format!(
                "error parsing index: strconv.Atoi: parsing {}: {}",
                quote(&s),
                if s.trim_start_matches(['-', '+'])
                    .chars()
                    .all(|c| c.is_ascii_digit())
                    && !s.trim_start_matches(['-', '+']).is_empty()
                {
                    "value out of range"
                } else {
                    "invalid syntax"
                }
            ))
        })
    }

    fn list_item(&mut self, list: &mut Vec<Value>, i: i64, level: usize) -> R<()> {
        if i < 0 {
            return err(format!("negative {i} index not allowed"));
        }
        let (k, last) = self.until(&['[', '.', '=']);
        if !k.is_empty() {
            let k: String = k.into_iter().collect();
            return err(format!(
                "unexpected data at end of array index: {}",
                quote(&k)
            ));
        }
        match last {
            None => Err(Stop::Eof),
            Some('=') => {
                if matches!(self.reader, Reader::Json) {
                    if self.empty_val() {
                        return set_index(list, i, Value::Nil);
                    }
                    let v = self.json_value()?;
                    set_index(list, i, v)?;
                    self.empty_val();
                    return Ok(());
                }
                match self.val_list() {
                    Ok(Some(vl)) => set_index(list, i, Value::list(vl)),
                    Err(Stop::Eof) => set_index(list, i, Value::from("")),
                    Ok(None) => {
                        let (rs, _) = self.until(&[',']);
                        let v = self.value(&rs)?;
                        set_index(list, i, v)
                    }
                    Err(e) => Err(e),
                }
            }
            Some('[') => {
                let next = self.key_index()?;
                let mut inner = match list.get(i as usize) {
                    Some(Value::List(l)) => (**l).clone(),
                    Some(Value::Nil) | None => Vec::new(),
                    Some(other) => {
                        return err(format!(
                            "unable to parse key: interface conversion: interface {{}} is {}, not []interface {{}}",
                            go_type(other)
                        ));
                    }
                };
                self.list_item(&mut inner, next, level)?;
                set_index(list, i, Value::list(inner))
            }
            Some(_) => {
                let mut inner = match list.get(i as usize) {
                    Some(Value::Map(m)) => (**m).clone(),
                    _ => Map::new(),
                };
                self.key(&mut inner, level)?;
                set_index(list, i, Value::map(inner))
            }
        }
    }

    /// Skips spaces; true at a comma or the end (an empty value).
    fn empty_val(&mut self) -> bool {
        loop {
            match self.read() {
                None | Some(',') => return true,
                Some(c) if c.is_whitespace() => {}
                Some(_) => {
                    self.unread();
                    return false;
                }
            }
        }
    }

    fn json_value(&mut self) -> R<Value> {
        let rest: String = self.chars[self.pos..].iter().collect();
        let mut stream = serde_json::Deserializer::from_str(&rest).into_iter::<serde_json::Value>();
        match stream.next() {
            Some(Ok(v)) => {
                let used = rest[..stream.byte_offset()].chars().count();
                self.pos += used;
                Ok(Value::from_json(v))
            }
            Some(Err(e)) => err(e.to_string()),
            None => err("unexpected end of JSON input"),
        }
    }

    /// `{a,b}` lists: `Ok(None)` when the value is not a list.
    fn val_list(&mut self) -> R<Option<Vec<Value>>> {
        match self.read() {
            None => return Err(Stop::Eof),
            Some('{') => {}
            Some(_) => {
                self.unread();
                return Ok(None);
            }
        }
        let mut list = Vec::new();
        loop {
            let (rs, last) = self.until(&[',', '}']);
            match last {
                None => return err("list must terminate with '}'"),
                Some('}') => {
                    if let Some(c) = self.read()
                        && c != ','
                    {
                        self.unread();
                    }
                    list.push(self.value(&rs)?);
                    return Ok(Some(list));
                }
                Some(_) => list.push(self.value(&rs)?),
            }
        }
    }

    fn value(&self, rs: &[char]) -> R<Value> {
        let s: String = rs.iter().collect();
        match &self.reader {
            Reader::Typed | Reader::Json => Ok(typed(&s)),
            Reader::String => Ok(Value::String(s)),
            Reader::File(read) => read(&s).map(Value::String).map_err(Stop::Err),
        }
    }
}

fn go_type(v: &Value) -> &'static str {
    match v {
        Value::String(_) => "string",
        Value::Int(_) => "int",
        Value::I64(_) => "int64",
        Value::Float(_) => "float64",
        Value::Bool(_) => "bool",
        Value::List(_) => "[]interface {}",
        Value::Map(_) => "map[string]interface {}",
        _ => "nil",
    }
}

fn set(data: &mut Map, key: &str, v: Value) {
    if !key.is_empty() {
        data.insert(key.to_string(), v);
    }
}

fn set_index(list: &mut Vec<Value>, i: i64, v: Value) -> R<()> {
    if i < 0 {
        return err(format!("negative {i} index not allowed"));
    }
    if i > MAX_INDEX {
        return err(format!(
            "index of {i} is greater than maximum supported index of {MAX_INDEX}"
        ));
    }
    let i = i as usize;
    while list.len() <= i {
        list.push(Value::Nil);
    }
    list[i] = v;
    Ok(())
}

/// typedVal: true/false/null (any case), 0, integers not starting with 0; else a string.
pub fn typed(v: &str) -> Value {
    if v.eq_ignore_ascii_case("true") {
        return Value::Bool(true);
    }
    if v.eq_ignore_ascii_case("false") {
        return Value::Bool(false);
    }
    if v.eq_ignore_ascii_case("null") {
        return Value::Nil;
    }
    if v == "0" {
        return Value::I64(0);
    }
    if !v.is_empty()
        && !v.starts_with('0')
        && let Ok(i) = v.parse::<i64>()
    {
        return Value::I64(i);
    }
    Value::String(v.to_string())
}

/// Parses one expression into `into` (a map).
pub fn parse_into(expr: &str, into: &mut Value, reader: Reader<'_>) -> Result<(), String> {
    let mut data = match into {
        Value::Map(m) => std::mem::take(Arc::make_mut(m)),
        _ => Map::new(),
    };
    let mut p = Parser {
        chars: expr.chars().collect(),
        pos: 0,
        reader,
    };
    let r = loop {
        match p.key(&mut data, 0) {
            Ok(()) => continue,
            Err(Stop::Eof) => break Ok(()),
            Err(Stop::Err(e)) => break Err(e),
        }
    };
    *into = Value::map(data);
    r
}

/// ParseLiteralInto: keys as in `--set` (no escapes), the value is the rest of the input.
pub fn parse_literal(expr: &str, into: &mut Value) -> Result<(), String> {
    let mut data = match into {
        Value::Map(m) => std::mem::take(Arc::make_mut(m)),
        _ => Map::new(),
    };
    let chars: Vec<char> = expr.chars().collect();
    let r = literal_key(&chars, &mut 0, &mut data, 0);
    *into = Value::map(data);
    r
}

fn literal_key(c: &[char], pos: &mut usize, data: &mut Map, level: usize) -> Result<(), String> {
    let start = *pos;
    while *pos < c.len() && !['=', '[', '.'].contains(&c[*pos]) {
        *pos += 1;
    }
    let key: String = c[start..*pos].iter().collect();
    let Some(&last) = c.get(*pos) else {
        return Ok(());
    };
    *pos += 1;
    match last {
        '=' => {
            let value: String = c[*pos..].iter().collect();
            *pos = c.len();
            set(data, &key, Value::String(value));
            Ok(())
        }
        '.' => {
            let level = level + 1;
            if level > MAX_NESTED_NAME_LEVEL {
                return Err(format!(
                    "value name nested level is greater than maximum supported nested level of {MAX_NESTED_NAME_LEVEL}"
                ));
            }
            let mut inner = match data.get(&key) {
                Some(Value::Map(m)) => (**m).clone(),
                _ => Map::new(),
            };
            let r = literal_key(c, pos, &mut inner, level);
            if r.is_ok() && inner.is_empty() {
                return Err(format!("key map {} has no value", quote(&key)));
            }
            if !inner.is_empty() {
                set(data, &key, Value::map(inner));
            }
            r
        }
        _ => {
            // a list index: `key[i]=value` and deeper
            let idx_start = *pos;
            while *pos < c.len() && c[*pos] != ']' {
                *pos += 1;
            }
            let idx: String = c[idx_start..*pos].iter().collect();
            *pos += 1;
            let i: i64 = idx.parse().map_err(|_| {
                format!(
                    "error parsing index: strconv.Atoi: parsing {}: invalid syntax",
                    quote(&idx)
                )
            })?;
            let mut list = match data.get(&key) {
                Some(Value::List(l)) => (**l).clone(),
                _ => Vec::new(),
            };
            match c.get(*pos) {
                Some('=') => {
                    *pos += 1;
                    let value: String = c[*pos..].iter().collect();
                    *pos = c.len();
                    set_index(&mut list, i, Value::String(value)).map_err(|e| match e {
                        Stop::Err(m) => m,
                        Stop::Eof => String::new(),
                    })?;
                }
                Some('.') => {
                    *pos += 1;
                    let mut inner = match list.get(i as usize) {
                        Some(Value::Map(m)) => (**m).clone(),
                        _ => Map::new(),
                    };
                    literal_key(c, pos, &mut inner, level)?;
                    set_index(&mut list, i, Value::map(inner)).map_err(|e| match e {
                        Stop::Err(m) => m,
                        Stop::Eof => String::new(),
                    })?;
                }
                _ => {}
            }
            set(data, &key, Value::list(list));
            Ok(())
        }
    }
}
