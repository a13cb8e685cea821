//! Sprig's word-level string helpers (goutils/xstrings ports) and Masterminds' lenient semver parse.

use super::{FnErr, strings::byte_slice};
use crate::value::Value;

pub(super) fn abbrev(width: i64, v: &str) -> String {
    if width < 4 || v.len() as i64 <= width {
        return v.to_string();
    }
    format!("{}...", byte_slice(v, 0, (width - 3) as usize))
}

pub(super) fn abbrevboth(left: i64, right: i64, v: &str) -> String {
    if right < 4 || (left > 0 && right < 7) {
        return v.to_string();
    }
    let len = v.len() as i64;
    if len <= right {
        return v.to_string();
    }
    let mut offset = left.min(len);
    if len - offset < right - 3 {
        offset = len - (right - 3);
    }
    if offset <= 4 {
        return format!("{}...", byte_slice(v, 0, (right - 3) as usize));
    }
    if offset + right - 3 < len {
        let rest = byte_slice(v, offset as usize, v.len());
        return format!("...{}", abbrev(right - 3, &rest));
    }
    format!(
        "...{}",
        byte_slice(v, (len - (right - 3)) as usize, v.len())
    )
}

fn is_sep(c: char) -> bool {
    if c.is_ascii() {
        return !(c.is_ascii_alphanumeric() || c == '_');
    }
    if c.is_alphanumeric() {
        return false;
    }
    c.is_whitespace()
}

/// strings.Title.
pub(super) fn title(v: &str) -> String {
    let mut prev = ' ';
    v.chars()
        .map(|c| {
            let out = if is_sep(prev) {
                c.to_uppercase().next().unwrap_or(c)
            } else {
                c
            };
            prev = c;
            out
        })
        .collect()
}

pub(super) fn untitle(v: &str) -> String {
    let mut prev_space = true;
    v.chars()
        .map(|c| {
            let out = if prev_space {
                c.to_lowercase().next().unwrap_or(c)
            } else {
                c
            };
            prev_space = c.is_whitespace();
            out
        })
        .collect()
}

pub(super) fn swapcase(v: &str) -> String {
    let mut out = String::new();
    for c in v.chars() {
        if c.is_uppercase() {
            out.extend(c.to_lowercase());
        } else if c.is_lowercase() {
            out.extend(c.to_uppercase());
        } else {
            out.push(c);
        }
    }
    out
}

#[derive(Clone, Copy, PartialEq)]
enum Word {
    Invalid,
    Number,
    Upper,
    Alphabet,
    Connector,
    Punct,
    Other,
}

fn is_alphabet(c: char) -> bool {
    c.is_alphabetic()
}

/// Go's unicode.IsPunct (ASCII exactly; beyond ASCII the general punctuation blocks).
fn is_punct(c: char) -> bool {
    if c.is_ascii() {
        return "!\"#%&'()*,-./:;?@[\\]_{}".contains(c);
    }
    matches!(c as u32, 0x2010..=0x2027 | 0x2030..=0x205E | 0x3001..=0x3003 | 0x3008..=0x3011)
        || matches!(c, '¡' | '§' | '«' | '¶' | '·' | '»' | '¿')
}

/// xstrings nextWord: (kind, word, rest).
fn next_word(s: &str) -> (Word, &str, &str) {
    let mut it = s.char_indices().peekable();
    let Some((_, r)) = it.next() else {
        return (Word::Invalid, "", "");
    };
    let end_at = |it: &mut std::iter::Peekable<std::str::CharIndices<'_>>,
                  keep: &dyn Fn(char) -> bool| {
        while let Some(&(i, c)) = it.peek() {
            if !keep(c) {
                return i;
            }
            it.next();
        }
        s.len()
    };
    let (kind, end) = if is_connector(r) {
        (Word::Connector, end_at(&mut it, &is_connector))
    } else if is_punct(r) {
        (Word::Punct, end_at(&mut it, &is_punct))
    } else if r.is_uppercase() {
        match it.peek().copied() {
            None => (Word::Upper, s.len()),
            Some((_, n)) if n.is_uppercase() => {
                // a run of capitals; one followed by a letter starts the next word
                let mut prev_start = 0;
                let mut end = s.len();
                while let Some(&(i, c)) = it.peek() {
                    if !c.is_uppercase() {
                        end = i;
                        break;
                    }
                    prev_start = i;
                    it.next();
                }
                if end < s.len() && s[end..].chars().next().is_some_and(is_alphabet) {
                    end = prev_start;
                }
                (Word::Upper, end)
            }
            Some((_, n)) if is_alphabet(n) => {
                it.next();
                (
                    Word::Upper,
                    end_at(&mut it, &|c: char| is_alphabet(c) && !c.is_uppercase()),
                )
            }
            Some((i, _)) => (Word::Upper, i),
        }
    } else if is_alphabet(r) {
        (
            Word::Alphabet,
            end_at(&mut it, &|c: char| is_alphabet(c) && !c.is_uppercase()),
        )
    } else if r.is_numeric() {
        (Word::Number, end_at(&mut it, &|c: char| c.is_numeric()))
    } else {
        (
            Word::Other,
            end_at(&mut it, &|c: char| {
                !(is_connector(c) || is_alphabet(c) || c.is_numeric() || is_punct(c))
            }),
        )
    };
    (kind, &s[..end], &s[end..])
}

fn to_lower(out: &mut String, kind: Word, word: &str, sep: char) {
    if kind != Word::Upper && kind != Word::Connector {
        out.push_str(word);
        return;
    }
    for c in word.chars() {
        if is_connector(c) {
            out.push(sep);
        } else if c.is_uppercase() {
            out.push(lower_rune(c));
        } else {
            out.push(c);
        }
    }
}

/// xstrings (v1.5) ToSnakeCase / ToKebabCase: camelCaseToLowerCase.
pub(super) fn snake(v: &str, sep: char) -> String {
    if v.is_empty() {
        return String::new();
    }
    let mut out = String::new();
    let (mut wt, mut word, mut rest) = next_word(v);
    while !rest.is_empty() {
        if wt != Word::Connector {
            to_lower(&mut out, wt, word, sep);
        }
        let prev = wt;
        let last = word;
        (wt, word, rest) = next_word(rest);
        match prev {
            Word::Number => {
                while wt == Word::Alphabet || wt == Word::Number {
                    to_lower(&mut out, wt, word, sep);
                    (wt, word, rest) = next_word(rest);
                }
                if wt != Word::Invalid && wt != Word::Punct && wt != Word::Connector {
                    out.push(sep);
                }
            }
            Word::Connector => to_lower(&mut out, prev, last, sep),
            Word::Punct => {}
            _ => {
                if wt != Word::Number {
                    if wt != Word::Connector && wt != Word::Punct {
                        out.push(sep);
                    }
                    continue;
                }
                if rest.is_empty() {
                    continue;
                }
                let last = word;
                (wt, word, rest) = next_word(rest);
                if wt != Word::Alphabet {
                    to_lower(&mut out, Word::Number, last, sep);
                    if wt != Word::Connector && wt != Word::Punct {
                        out.push(sep);
                    }
                    continue;
                }
                out.push(sep);
                to_lower(&mut out, Word::Number, last, sep);
                while wt == Word::Alphabet || wt == Word::Number {
                    to_lower(&mut out, wt, word, sep);
                    (wt, word, rest) = next_word(rest);
                }
                if wt != Word::Invalid && wt != Word::Connector && wt != Word::Punct {
                    out.push(sep);
                }
            }
        }
    }
    to_lower(&mut out, wt, word, sep);
    out
}

fn is_connector(c: char) -> bool {
    c == '-' || c == '_' || c.is_whitespace()
}

/// Go's unicode.ToUpper: one rune to one rune (`ß` stays `ß`).
pub(super) fn upper_rune(c: char) -> char {
    let mut u = c.to_uppercase();
    match (u.next(), u.next()) {
        (Some(x), None) => x,
        _ => c,
    }
}

/// Go's unicode.ToLower: one rune to one rune.
pub(super) fn lower_rune(c: char) -> char {
    c.to_lowercase().next().unwrap_or(c)
}

/// xstrings (v1.5) ToCamelCase: words split at `_`, `-` and spaces; leading connectors kept;
/// an upper-case word start lowers the capitals that follow it (`HTTPServer` -> `Httpserver`).
pub(super) fn camel(v: &str) -> String {
    let mut chars = v.chars();
    let mut out = String::new();
    let mut first_upper = false;
    let mut r0 = '\0';
    let mut got = false;
    for c in chars.by_ref() {
        r0 = c;
        got = true;
        if !is_connector(c) {
            first_upper = c.is_uppercase();
            r0 = upper_rune(c);
            break;
        }
        out.push(c);
    }
    let rest: Vec<char> = chars.collect();
    if rest.is_empty() {
        if got {
            out.push(r0);
        }
        return out;
    }
    for c in rest {
        let r1 = r0;
        r0 = c;
        if is_connector(r0) && is_connector(r1) {
            out.push(r1);
            continue;
        }
        if is_connector(r1) {
            first_upper = r0.is_uppercase();
            r0 = upper_rune(r0);
        } else {
            if first_upper {
                if r0.is_uppercase() {
                    r0 = lower_rune(r0);
                } else {
                    first_upper = false;
                }
            }
            out.push(r1);
        }
    }
    out.push(r0);
    out
}

/// goutils.WrapCustom(str, width, sep, false).
pub(super) fn wrap(v: &str, width: i64, sep: &str) -> String {
    let width = width.max(1) as usize;
    let mut out = String::new();
    for (li, line) in v.split('\n').enumerate() {
        if li > 0 {
            out.push('\n');
        }
        let mut rest = line.trim_start_matches(' ');
        let mut first = true;
        while rest.len() > width {
            let cut = rest[..=width.min(rest.len() - 1)].rfind(' ');
            let (head, tail) = match cut {
                Some(p) if p > 0 => (&rest[..p], &rest[p + 1..]),
                _ => match rest.find(' ') {
                    Some(p) => (&rest[..p], &rest[p + 1..]),
                    None => (rest, ""),
                },
            };
            if !first {
                out.push_str(sep);
            }
            out.push_str(head);
            first = false;
            rest = tail.trim_start_matches(' ');
        }
        if !rest.is_empty() {
            if !first {
                out.push_str(sep);
            }
            out.push_str(rest);
        }
    }
    out
}

/// Masterminds/semver's parse error: capitalised in v3.3 (Helm 3.17), not in v3.4 (Helm 4.1).
pub(crate) fn invalid_semver(helm: crate::HelmMajor) -> FnErr {
    FnErr::Msg(match helm {
        crate::HelmMajor::V3 => "Invalid Semantic Version".into(),
        crate::HelmMajor::V4 => "invalid semantic version".into(),
    })
}

/// `semver`: a *semver.Version.
pub(crate) fn semver_value(v: &str, helm: crate::HelmMajor) -> Result<Value, FnErr> {
    let p = parse_semver(v).ok_or_else(|| invalid_semver(helm))?;
    Ok(Value::Object(std::sync::Arc::new(
        crate::object::Object::Semver(p, v.to_string(), true),
    )))
}

/// Masterminds Version.Compare: precedence, build metadata ignored.
fn semver_cmp(a: &semver::Version, b: &semver::Version) -> std::cmp::Ordering {
    (a.major, a.minor, a.patch, &a.pre).cmp(&(b.major, b.minor, b.patch, &b.pre))
}

/// Methods of a *semver.Version.
pub(crate) fn semver_method(
    v: &semver::Version,
    original: &str,
    name: &str,
    args: &[Value],
) -> crate::object::Lookup {
    use crate::object::{Lookup, Object};
    let other = || match args.first() {
        Some(Value::Object(o)) => match &**o {
            Object::Semver(w, _, _) => Some(w.clone()),
            _ => None,
        },
        _ => None,
    };
    let want = match name {
        "Compare" | "LessThan" | "GreaterThan" | "Equal" => 1,
        _ => 0,
    };
    if args.len() != want {
        return Lookup::BadArgs(want);
    }
    let inc = |f: &dyn Fn(&mut semver::Version)| {
        let mut n = v.clone();
        n.pre = semver::Prerelease::EMPTY;
        n.build = semver::BuildMetadata::EMPTY;
        f(&mut n);
        Value::Object(std::sync::Arc::new(Object::Semver(
            n.clone(),
            n.to_string(),
            false,
        )))
    };
    Lookup::Found(match name {
        "Major" => Value::I64(v.major as i64),
        "Minor" => Value::I64(v.minor as i64),
        "Patch" => Value::I64(v.patch as i64),
        "Prerelease" => Value::String(v.pre.to_string()),
        "Metadata" => Value::String(v.build.to_string()),
        "Original" => Value::String(original.to_string()),
        "String" => Value::String(v.to_string()),
        "IncMajor" => inc(&|n| {
            n.major += 1;
            n.minor = 0;
            n.patch = 0;
        }),
        "IncMinor" => inc(&|n| {
            n.minor += 1;
            n.patch = 0;
        }),
        "IncPatch" => inc(&|n| n.patch += 1),
        "Compare" | "LessThan" | "GreaterThan" | "Equal" => {
            let Some(w) = other() else {
                return Lookup::Missing;
            };
            let o = semver_cmp(v, &w);
            match name {
                "Compare" => Value::Int(o as i64),
                "LessThan" => Value::Bool(o.is_lt()),
                "GreaterThan" => Value::Bool(o.is_gt()),
                _ => Value::Bool(o.is_eq()),
            }
        }
        _ => return Lookup::Missing,
    })
}

/// Masterminds/semver's lenient parse: optional `v`, missing minor/patch filled with 0.
pub fn parse_semver(v: &str) -> Option<semver::Version> {
    let t = v.trim().strip_prefix('v').unwrap_or(v.trim());
    let (core, rest) = match t.find(['-', '+']) {
        Some(i) => (&t[..i], &t[i..]),
        None => (t, ""),
    };
    let mut nums: Vec<&str> = core.split('.').collect();
    if nums.is_empty()
        || nums.len() > 3
        || nums
            .iter()
            .any(|n| n.is_empty() || !n.chars().all(|c| c.is_ascii_digit()))
    {
        return None;
    }
    while nums.len() < 3 {
        nums.push("0");
    }
    let norm: Vec<String> = nums
        .iter()
        .map(|n| n.trim_start_matches('0').to_string())
        .map(|n| if n.is_empty() { "0".into() } else { n })
        .collect();
    semver::Version::parse(&format!("{}{}", norm.join("."), rest)).ok()
}
