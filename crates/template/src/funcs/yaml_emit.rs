//! `toYaml` bytes as Helm produces them: sigs.k8s.io/yaml (JSON round trip) then go-yaml v2's
//! emitter (block style, indentless sequences in maps, its key order and scalar quoting rules).

use std::cmp::Ordering;
use std::fmt::Write as _;
use std::sync::OnceLock;

use crate::gofmt;
use crate::value::Value;

thread_local! {
    /// Set while toYamlPretty runs (yaml.v3's encoder with a 2-space indent).
    static PRETTY: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

fn pretty() -> bool {
    PRETTY.with(|p| p.get())
}

/// toYamlPretty: yaml.v3 with indent 2 indents sequences under their key and never folds.
pub fn to_yaml_pretty(v: &Value) -> String {
    PRETTY.with(|p| p.set(true));
    let out = to_yaml(v);
    PRETTY.with(|p| p.set(false));
    out
}

/// yaml.Marshal output (ends with a newline).
pub fn to_yaml(v: &Value) -> String {
    let mut out = String::new();
    match v {
        Value::Map(m) if !m.is_empty() => emit_map(&mut out, m, 0, false),
        Value::List(l) if !l.is_empty() => emit_seq(&mut out, l, 0, false),
        Value::Object(o) => return to_yaml(&o.as_value()),
        other => {
            emit_inline(&mut out, other, 2, false);
            if !out.ends_with('\n') {
                out.push('\n');
            }
        }
    }
    out
}

/// go-yaml's best_width: plain and quoted scalars fold at a space past this column.
const BEST_WIDTH: usize = 80;

/// The column the next character lands in (characters since the last line break).
fn column(out: &str) -> usize {
    let line = out.rfind('\n').map_or(out, |p| &out[p + 1..]);
    if line.is_ascii() {
        line.len()
    } else {
        line.chars().count()
    }
}

fn pad(out: &mut String, n: usize) {
    for _ in 0..n {
        out.push(' ');
    }
}

fn sorted_entries(m: &std::collections::BTreeMap<String, Value>) -> Vec<(&String, &Value)> {
    let mut v: Vec<(&String, &Value)> = m.iter().collect();
    v.sort_by(|a, b| key_cmp(a.0, b.0));
    v
}

fn emit_map(
    out: &mut String,
    m: &std::collections::BTreeMap<String, Value>,
    indent: usize,
    first_inline: bool,
) {
    let Some(_level) = crate::guard::enter_text(out.len()) else {
        out.push_str("...");
        return;
    };
    for (i, (k, v)) in sorted_entries(m).into_iter().enumerate() {
        if i > 0 || !first_inline {
            pad(out, indent);
        }
        out.push_str(&scalar_string(k, indent + 2, true, indent));
        out.push(':');
        match v {
            Value::Map(sub) if !sub.is_empty() => {
                out.push('\n');
                emit_map(out, sub, indent + 2, false);
            }
            Value::List(l) if !l.is_empty() => {
                out.push('\n');
                let seq_indent = if pretty() { indent + 2 } else { indent };
                emit_seq(out, l, seq_indent, false);
            }
            Value::Object(o) => {
                let mut tmp = std::collections::BTreeMap::new();
                tmp.insert(k.clone(), o.as_value());
                // re-emit this single entry through the plain path
                let start = out.rfind('\n').map(|p| p + 1).unwrap_or(0);
                out.truncate(start);
                emit_map(out, &tmp, indent, i == 0 && first_inline);
            }
            other => {
                out.push(' ');
                emit_inline(out, other, indent + 2, false);
                if !out.ends_with('\n') {
                    out.push('\n');
                }
            }
        }
    }
}

fn emit_seq(out: &mut String, l: &[Value], indent: usize, first_inline: bool) {
    let Some(_level) = crate::guard::enter_text(out.len()) else {
        out.push_str("...");
        return;
    };
    for (i, v) in l.iter().enumerate() {
        if i > 0 || !first_inline {
            pad(out, indent);
        }
        out.push('-');
        let v = match v {
            Value::Object(o) => o.as_value(),
            other => other.clone(),
        };
        match &v {
            Value::Map(sub) if !sub.is_empty() => {
                out.push(' ');
                emit_map(out, sub, indent + 2, true);
            }
            Value::List(sub) if !sub.is_empty() => {
                out.push(' ');
                emit_seq(out, sub, indent + 2, true);
            }
            other => {
                out.push(' ');
                emit_inline(out, other, indent + 2, false);
                if !out.ends_with('\n') {
                    out.push('\n');
                }
            }
        }
    }
}

/// Scalars and empty collections.
fn emit_inline(out: &mut String, v: &Value, block_indent: usize, simple_key: bool) {
    let Some(_level) = crate::guard::enter_text(out.len()) else {
        out.push_str("...");
        return;
    };
    match v {
        Value::Nil => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Int(i) | Value::I64(i) => {
            let _ = write!(out, "{i}");
        }
        Value::Float(f) => out.push_str(&float_text(*f)),
        Value::String(s) => {
            let col = column(out);
            out.push_str(&scalar_string(s, block_indent, simple_key, col))
        }
        Value::List(_) => out.push_str("[]"),
        Value::Map(_) => out.push_str("{}"),
        Value::Object(o) => emit_inline(out, &o.as_value(), block_indent, simple_key),
    }
}

/// A float after the JSON round trip: integral values come back as YAML ints.
fn float_text(f: f64) -> String {
    if !f.is_finite() {
        return "null".into();
    }
    let j = gofmt::format_float_json(f);
    if !j.contains(['.', 'e', 'E']) && (j.parse::<i64>().is_ok() || j.parse::<u64>().is_ok()) {
        return j;
    }
    let parsed: f64 = j.parse().unwrap_or(f);
    gofmt::format_float_g(parsed)
}

/// go-yaml v2 keyList.Less for string keys.
pub fn key_cmp(a: &str, b: &str) -> Ordering {
    let ar: Vec<char> = a.chars().collect();
    let br: Vec<char> = b.chars().collect();
    let mut i = 0;
    while i < ar.len() && i < br.len() {
        if ar[i] == br[i] {
            i += 1;
            continue;
        }
        let al = ar[i].is_alphabetic();
        let bl = br[i].is_alphabetic();
        if al && bl {
            return ar[i].cmp(&br[i]);
        }
        if al || bl {
            return if bl {
                Ordering::Less
            } else {
                Ordering::Greater
            };
        }
        let (mut an, mut bn) = (0i64, 0i64);
        if ar[i] == '0' || br[i] == '0' {
            let mut j = i;
            while j > 0 && ar[j - 1].is_ascii_digit() {
                j -= 1;
                if ar[j] != '0' {
                    an = 1;
                    bn = 1;
                    break;
                }
            }
        }
        let mut ai = i;
        while ai < ar.len() && ar[ai].is_ascii_digit() {
            an = an.wrapping_mul(10).wrapping_add(ar[ai] as i64 - '0' as i64);
            ai += 1;
        }
        let mut bi = i;
        while bi < br.len() && br[bi].is_ascii_digit() {
            bn = bn.wrapping_mul(10).wrapping_add(br[bi] as i64 - '0' as i64);
            bi += 1;
        }
        if an != bn {
            return an.cmp(&bn);
        }
        if ai != bi {
            return ai.cmp(&bi);
        }
        return ar[i].cmp(&br[i]);
    }
    ar.len().cmp(&br.len())
}

fn float_re() -> &'static regex::Regex {
    static R: OnceLock<regex::Regex> = OnceLock::new();
    R.get_or_init(|| {
        regex::Regex::new(r"^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$")
            .expect("static regex")
    })
}

fn base60_re() -> &'static regex::Regex {
    static R: OnceLock<regex::Regex> = OnceLock::new();
    R.get_or_init(|| {
        regex::Regex::new(r"^[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+(?:\.[0-9_]*)?$")
            .expect("static regex")
    })
}

fn timestamp_re() -> &'static regex::Regex {
    static R: OnceLock<regex::Regex> = OnceLock::new();
    R.get_or_init(|| {
        regex::Regex::new(
            r"^[0-9]{4}-[0-9]{1,2}-[0-9]{1,2}(([Tt][0-9]{1,2}:[0-9]{1,2}:[0-9]{1,2}(\.[0-9]+)?(Z|[-+][0-9]{2}:[0-9]{2}))|( [0-9]{1,2}:[0-9]{1,2}:[0-9]{1,2}(\.[0-9]+)?))?$",
        )
        .expect("static regex")
    })
}

/// Whether go-yaml v2 would read the plain scalar as something other than a string.
fn resolves_non_str(s: &str) -> bool {
    const SPECIAL: &[&str] = &[
        "y", "Y", "yes", "Yes", "YES", "true", "True", "TRUE", "on", "On", "ON", "n", "N", "no",
        "No", "NO", "false", "False", "FALSE", "off", "Off", "OFF", "", "~", "null", "Null",
        "NULL", ".nan", ".NaN", ".NAN", ".inf", ".Inf", ".INF", "+.inf", "+.Inf", "+.INF", "-.inf",
        "-.Inf", "-.INF", "<<",
    ];
    if SPECIAL.contains(&s) {
        return true;
    }
    let Some(first) = s.chars().next() else {
        return true;
    };
    match first {
        '.' => s.parse::<f64>().is_ok() && !s.contains(['i', 'I', 'n', 'N']),
        '+' | '-' | '0'..='9' => {
            if timestamp_re().is_match(s) {
                return true;
            }
            let plain = s.replace('_', "");
            if crate::funcs::parse_go_int(&plain).is_some() || plain.parse::<u64>().is_ok() {
                return true;
            }
            if float_re().is_match(&plain) {
                return true;
            }
            let bin = plain
                .strip_prefix("-0b")
                .or_else(|| plain.strip_prefix("0b"));
            bin.is_some_and(|b| !b.is_empty() && b.chars().all(|c| c == '0' || c == '1'))
        }
        _ => false,
    }
}

fn is_printable(c: char) -> bool {
    let u = c as u32;
    u == 0x0A
        || (0x20..=0x7E).contains(&u)
        || (0xA0..=0xD7FF).contains(&u)
        || ((0xE000..=0xFFFD).contains(&u) && u != 0xFEFF)
}

fn is_break(c: char) -> bool {
    matches!(c, '\r' | '\n' | '\u{85}' | '\u{2028}' | '\u{2029}')
}

#[derive(PartialEq)]
enum Style {
    Plain,
    Single,
    Double,
    Literal,
}

/// Picks the scalar style exactly as go-yaml's encoder + emitter analysis do, then writes it
/// starting at column `col` (long plain and quoted scalars fold at spaces past column 80).
fn scalar_string(s: &str, block_indent: usize, simple_key: bool, col: usize) -> String {
    let can_plain = !resolves_non_str(s) && !base60_re().is_match(s);
    let mut style = if s.contains('\n') {
        Style::Literal
    } else if can_plain {
        Style::Plain
    } else {
        Style::Double
    };
    let a = analyze(s);
    if style == Style::Plain && (!a.block_plain || (s.is_empty() && simple_key)) {
        style = Style::Single;
    }
    if style == Style::Single && !a.single {
        style = Style::Double;
    }
    if style == Style::Literal && (!a.block || simple_key) {
        style = Style::Double;
    }
    let folds = !pretty() && !simple_key && col + s.chars().count() > BEST_WIDTH && s.contains(' ');
    match style {
        Style::Plain if folds => fold_plain(s, block_indent, col),
        Style::Plain => s.to_string(),
        Style::Single if folds => fold_single(s, block_indent, col),
        Style::Single => format!("'{}'", s.replace('\'', "''")),
        Style::Double => {
            double_quoted(s, (!simple_key && !pretty()).then_some((block_indent, col)))
        }
        Style::Literal => literal(s, block_indent),
    }
}

struct Analysis {
    block_plain: bool,
    single: bool,
    block: bool,
}

fn analyze(s: &str) -> Analysis {
    if s.is_empty() {
        return Analysis {
            block_plain: true,
            single: true,
            block: false,
        };
    }
    let chars: Vec<char> = s.chars().collect();
    let mut block_ind = s.starts_with("---") || s.starts_with("...");
    let (mut leading_space, mut leading_break, mut trailing_space, mut trailing_break) =
        (false, false, false, false);
    let (mut break_space, mut space_break, mut prev_space, mut prev_break) =
        (false, false, false, false);
    let (mut special, mut line_breaks) = (false, false);
    let mut preceded_ws = true;
    let n = chars.len();
    for (i, &c) in chars.iter().enumerate() {
        let followed_ws =
            i + 1 >= n || matches!(chars[i + 1], ' ' | '\t') || is_break(chars[i + 1]);
        if i == 0 {
            match c {
                '#' | ',' | '[' | ']' | '{' | '}' | '&' | '*' | '!' | '|' | '>' | '\'' | '"'
                | '%' | '@' | '`' => block_ind = true,
                '?' | ':' | '-' if followed_ws => block_ind = true,
                _ => {}
            }
        } else {
            match c {
                ':' if followed_ws => block_ind = true,
                '#' if preceded_ws => block_ind = true,
                _ => {}
            }
        }
        if !is_printable(c) {
            special = true;
        }
        if c == ' ' {
            if i == 0 {
                leading_space = true;
            }
            if i == n - 1 {
                trailing_space = true;
            }
            if prev_break {
                break_space = true;
            }
            prev_space = true;
            prev_break = false;
        } else if is_break(c) {
            line_breaks = true;
            if i == 0 {
                leading_break = true;
            }
            if i == n - 1 {
                trailing_break = true;
            }
            if prev_space {
                space_break = true;
            }
            prev_space = false;
            prev_break = true;
        } else {
            prev_space = false;
            prev_break = false;
        }
        preceded_ws = matches!(c, ' ' | '\t') || is_break(c);
    }
    let mut a = Analysis {
        block_plain: true,
        single: true,
        block: true,
    };
    if leading_space || leading_break || trailing_space || trailing_break {
        a.block_plain = false;
    }
    if trailing_space {
        a.block = false;
    }
    if break_space {
        a.block_plain = false;
        a.single = false;
    }
    if space_break || special {
        a.block_plain = false;
        a.single = false;
        a.block = false;
    }
    if line_breaks || block_ind {
        a.block_plain = false;
    }
    a
}

/// write_plain_scalar: a space past the width becomes a line break and indent.
fn fold_plain(s: &str, indent: usize, mut col: usize) -> String {
    let chars: Vec<char> = s.chars().collect();
    let mut out = String::new();
    let mut spaces = false;
    for (i, &c) in chars.iter().enumerate() {
        if c == ' ' {
            if !spaces && col > BEST_WIDTH && chars.get(i + 1) != Some(&' ') {
                out.push('\n');
                pad(&mut out, indent);
                col = indent;
            } else {
                out.push(c);
                col += 1;
            }
            spaces = true;
        } else {
            out.push(c);
            col += 1;
            spaces = false;
        }
    }
    out
}

/// write_single_quoted_scalar's folding.
fn fold_single(s: &str, indent: usize, col: usize) -> String {
    let chars: Vec<char> = s.chars().collect();
    let mut out = String::from("'");
    let mut col = col + 1;
    let mut spaces = false;
    let n = chars.len();
    for (i, &c) in chars.iter().enumerate() {
        if c == ' ' {
            if !spaces && col > BEST_WIDTH && i > 0 && i < n - 1 && chars[i + 1] != ' ' {
                out.push('\n');
                pad(&mut out, indent);
                col = indent;
            } else {
                out.push(c);
                col += 1;
            }
            spaces = true;
        } else {
            if c == '\'' {
                out.push('\'');
                col += 1;
            }
            out.push(c);
            col += 1;
            spaces = false;
        }
    }
    out.push('\'');
    out
}

/// write_double_quoted_scalar; `fold` = (indent, start column) when breaks are allowed.
fn double_quoted(s: &str, fold: Option<(usize, usize)>) -> String {
    let mut out = String::from("\"");
    let mut col = fold.map_or(0, |(_, c)| c + 1);
    let chars: Vec<char> = s.chars().collect();
    let n = chars.len();
    let mut spaces = false;
    for (i, &c) in chars.iter().enumerate() {
        let u = c as u32;
        if c == ' '
            && let Some((indent, _)) = fold
            && !spaces
            && col > BEST_WIDTH
            && i > 0
            && i < n - 1
        {
            out.push('\n');
            pad(&mut out, indent);
            col = indent;
            if chars[i + 1] == ' ' {
                out.push('\\');
                col += 1;
            }
            spaces = true;
            continue;
        }
        let before = out.len();
        if !is_printable(c) || u == 0xFEFF || is_break(c) || c == '"' || c == '\\' {
            out.push('\\');
            match u {
                0x00 => out.push('0'),
                0x07 => out.push('a'),
                0x08 => out.push('b'),
                0x09 => out.push('t'),
                0x0A => out.push('n'),
                0x0B => out.push('v'),
                0x0C => out.push('f'),
                0x0D => out.push('r'),
                0x1B => out.push('e'),
                0x22 => out.push('"'),
                0x5C => out.push('\\'),
                0x85 => out.push('N'),
                0xA0 => out.push('_'),
                0x2028 => out.push('L'),
                0x2029 => out.push('P'),
                u if u <= 0xFF => {
                    let _ = write!(out, "x{u:02X}");
                }
                u if u <= 0xFFFF => {
                    let _ = write!(out, "u{u:04X}");
                }
                u => {
                    let _ = write!(out, "U{u:08X}");
                }
            }
        } else {
            out.push(c);
        }
        col += out[before..].chars().count();
        spaces = c == ' ';
    }
    out.push('"');
    out
}

fn literal(s: &str, indent: usize) -> String {
    let mut out = String::from("|");
    let first = s.chars().next().unwrap_or('x');
    if first == ' ' || is_break(first) {
        out.push('2');
    }
    let chars: Vec<char> = s.chars().collect();
    let n = chars.len();
    if n == 0 || !is_break(chars[n - 1]) {
        out.push('-');
    } else if n == 1 || is_break(chars[n - 2]) {
        out.push('+');
    }
    out.push('\n');
    let mut breaks = true;
    for &c in &chars {
        if is_break(c) {
            out.push('\n');
            breaks = true;
        } else {
            if breaks {
                pad(&mut out, indent);
                breaks = false;
            }
            out.push(c);
        }
    }
    out
}
