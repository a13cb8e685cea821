//! Sprig's regex functions over Go's RE2 syntax (goregex.rs). The non-`must` forms behave as
//! Sprig's do: `regexMatch` says false for a bad pattern, the others panic like
//! regexp.MustCompile, which templates see as an error.

use super::goregex::{compile, must_compile_message};
use super::{FnErr, FnResult, P, Table, int, reg, s};
use crate::value::Value;

/// `must`: errors as returned; otherwise MustCompile's panic text.
fn re(pat: &str, must: bool) -> Result<regex::Regex, FnErr> {
    compile(pat).map_err(|e| {
        if must {
            FnErr::Msg(e)
        } else {
            FnErr::Msg(must_compile_message(pat, &e))
        }
    })
}

fn strs(v: Vec<String>) -> Value {
    Value::list(v.into_iter().map(Value::String).collect())
}

/// regexp's FindAllString: at most `n` matches (`n < 0`: all), empty matches right after a
/// match skipped.
fn find_all(r: &regex::Regex, s: &str, n: i64) -> Vec<String> {
    let mut out = Vec::new();
    if n == 0 {
        return out;
    }
    for m in go_matches(r, s) {
        if n > 0 && out.len() as i64 >= n {
            break;
        }
        out.push(s[m.0..m.1].to_string());
    }
    out
}

/// Go's allMatches: successive leftmost-first matches; an empty match adjacent to the
/// previous match is not reported.
fn go_matches(r: &regex::Regex, s: &str) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut pos = 0;
    let mut prev_end: Option<usize> = None;
    while pos <= s.len() {
        let Some(m) = r.find_at(s, pos) else { break };
        let (a, b) = (m.start(), m.end());
        let accept = !(a == b && Some(a) == prev_end);
        if b == a {
            // step one character past an empty match
            pos = s[a..]
                .chars()
                .next()
                .map_or(s.len() + 1, |c| a + c.len_utf8());
        } else {
            pos = b;
        }
        if accept {
            out.push((a, b));
            prev_end = Some(b);
        }
    }
    out
}

/// regexp's Split.
fn split(r: &regex::Regex, s: &str, n: i64) -> Vec<String> {
    if n == 0 {
        return Vec::new();
    }
    if !r.as_str().is_empty() && s.is_empty() {
        return vec![String::new()];
    }
    let matches = go_matches(r, s);
    let mut out = Vec::new();
    let (mut beg, mut end) = (0, 0);
    for (a, b) in matches {
        if n > 0 && out.len() as i64 == n - 1 {
            break;
        }
        end = a;
        if b != 0 {
            out.push(s[beg..end].to_string());
        }
        beg = b;
    }
    if end != s.len() {
        out.push(s[beg..].to_string());
    }
    out
}

/// regexp.QuoteMeta: only `\.+*?()|[]{}^$` are escaped.
fn quote_meta(s: &str) -> String {
    let mut out = String::new();
    for c in s.chars() {
        if "\\.+*?()|[]{}^$".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

pub(super) fn register(t: &mut Table) {
    use P::*;
    reg(t, "regexMatch", &[Str, Str], None, |_, a| {
        Ok(Value::Bool(
            compile(&s(&a, 0)).is_ok_and(|r| r.is_match(&s(&a, 1))),
        ))
    });
    reg(t, "mustRegexMatch", &[Str, Str], None, |_, a| {
        Ok(Value::Bool(re(&s(&a, 0), true)?.is_match(&s(&a, 1))))
    });
    for (name, must) in [("regexFind", false), ("mustRegexFind", true)] {
        let f: super::FnImpl = if must {
            |_, a| find(a, true)
        } else {
            |_, a| find(a, false)
        };
        reg(t, name, &[Str, Str], None, f);
    }
    reg(t, "regexFindAll", &[Str, Str, Int], None, |_, a| {
        find_all_fn(a, false)
    });
    reg(t, "mustRegexFindAll", &[Str, Str, Int], None, |_, a| {
        find_all_fn(a, true)
    });
    reg(t, "regexReplaceAll", &[Str, Str, Str], None, |_, a| {
        replace(a, false, false)
    });
    reg(t, "mustRegexReplaceAll", &[Str, Str, Str], None, |_, a| {
        replace(a, true, false)
    });
    reg(
        t,
        "regexReplaceAllLiteral",
        &[Str, Str, Str],
        None,
        |_, a| replace(a, false, true),
    );
    reg(
        t,
        "mustRegexReplaceAllLiteral",
        &[Str, Str, Str],
        None,
        |_, a| replace(a, true, true),
    );
    reg(t, "regexSplit", &[Str, Str, Int], None, |_, a| {
        split_fn(a, false)
    });
    reg(t, "mustRegexSplit", &[Str, Str, Int], None, |_, a| {
        split_fn(a, true)
    });
    reg(t, "regexQuoteMeta", &[Str], None, |_, a| {
        Ok(Value::String(quote_meta(&s(&a, 0))))
    });
}

fn find(a: Vec<Value>, must: bool) -> FnResult {
    let r = re(&s(&a, 0), must)?;
    let text = s(&a, 1);
    Ok(Value::String(
        go_matches(&r, &text)
            .first()
            .map(|&(x, y)| text[x..y].to_string())
            .unwrap_or_default(),
    ))
}

fn find_all_fn(a: Vec<Value>, must: bool) -> FnResult {
    let r = re(&s(&a, 0), must)?;
    Ok(strs(find_all(&r, &s(&a, 1), int(&a, 2))))
}

fn split_fn(a: Vec<Value>, must: bool) -> FnResult {
    let r = re(&s(&a, 0), must)?;
    Ok(strs(split(&r, &s(&a, 1), int(&a, 2))))
}

fn replace(a: Vec<Value>, must: bool, literal: bool) -> FnResult {
    let r = re(&s(&a, 0), must)?;
    let text = s(&a, 1);
    let repl = s(&a, 2);
    let mut out = String::new();
    let mut last = 0;
    for (x, y) in go_matches(&r, &text) {
        out.push_str(&text[last..x]);
        if literal {
            out.push_str(&repl);
        } else if let Some(caps) = r.captures_at(&text, x)
            && caps.get(0).is_some_and(|m| m.start() == x && m.end() == y)
        {
            caps.expand(&repl, &mut out);
        }
        last = y;
    }
    out.push_str(&text[last..]);
    Ok(Value::String(out))
}
