//! Scalars as go-yaml v2 writes them: style analysis, folding at the best width, quoting.

use super::*;

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
pub(super) fn scalar_string(s: &str, block_indent: usize, simple_key: bool, col: usize) -> String {
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
