//! Sprig's string functions (strings.go, regex.go) and `semver`.

use super::text::{abbrev, abbrevboth, camel, snake, swapcase, title, untitle, wrap};
use super::{FnResult, P, Table, int, reg, s, strslice, strval};
use crate::gofmt;
use crate::value::Value;

fn st(v: String) -> FnResult {
    Ok(Value::String(v))
}

pub(super) fn register(t: &mut Table) {
    use P::*;
    reg(t, "hello", &[], None, |_, _| st("Hello!".into()));
    reg(t, "upper", &[Str], None, |_, a| {
        st(s(&a, 0).chars().map(super::text::upper_rune).collect())
    });
    reg(t, "lower", &[Str], None, |_, a| {
        st(s(&a, 0).chars().map(super::text::lower_rune).collect())
    });
    reg(t, "title", &[Str], None, |_, a| st(title(&s(&a, 0))));
    reg(t, "untitle", &[Str], None, |_, a| st(untitle(&s(&a, 0))));
    reg(t, "trim", &[Str], None, |_, a| {
        st(s(&a, 0).trim().to_string())
    });
    reg(t, "trimAll", &[Str, Str], None, |_, a| {
        st(trim_set(&s(&a, 1), &s(&a, 0)))
    });
    reg(t, "trimall", &[Str, Str], None, |_, a| {
        st(trim_set(&s(&a, 1), &s(&a, 0)))
    });
    reg(t, "trimSuffix", &[Str, Str], None, |_, a| {
        let (suf, v) = (s(&a, 0), s(&a, 1));
        st(v.strip_suffix(suf.as_str()).unwrap_or(&v).to_string())
    });
    reg(t, "trimPrefix", &[Str, Str], None, |_, a| {
        let (pre, v) = (s(&a, 0), s(&a, 1));
        st(v.strip_prefix(pre.as_str()).unwrap_or(&v).to_string())
    });
    reg(t, "nospace", &[Str], None, |_, a| {
        st(s(&a, 0).chars().filter(|c| !c.is_whitespace()).collect())
    });
    reg(t, "initials", &[Str], None, |_, a| {
        st(s(&a, 0)
            .split_whitespace()
            .filter_map(|w| w.chars().next())
            .collect())
    });
    reg(t, "swapcase", &[Str], None, |_, a| st(swapcase(&s(&a, 0))));
    reg(t, "snakecase", &[Str], None, |_, a| {
        st(snake(&s(&a, 0), '_'))
    });
    reg(t, "kebabcase", &[Str], None, |_, a| {
        st(snake(&s(&a, 0), '-'))
    });
    reg(t, "camelcase", &[Str], None, |_, a| st(camel(&s(&a, 0))));
    reg(t, "abbrev", &[Int, Str], None, |_, a| {
        st(abbrev(int(&a, 0), &s(&a, 1)))
    });
    reg(t, "abbrevboth", &[Int, Int, Str], None, |_, a| {
        st(abbrevboth(int(&a, 0), int(&a, 1), &s(&a, 2)))
    });
    reg(t, "trunc", &[Int, Str], None, |_, a| {
        st(trunc(int(&a, 0), &s(&a, 1)))
    });
    reg(t, "substr", &[Int, Int, Str], None, |_, a| {
        substr(int(&a, 0), int(&a, 1), &s(&a, 2))
    });
    reg(t, "repeat", &[Int, Str], None, |_, a| {
        let n = int(&a, 0);
        if n < 0 {
            return Err("strings: negative Repeat count".into());
        }
        let v = s(&a, 1);
        if v.len().saturating_mul(n as usize) > 64 << 20 {
            return Err("strings: Repeat output length overflow".into());
        }
        st(v.repeat(n as usize))
    });
    reg(t, "wrap", &[Int, Str], None, |_, a| {
        st(wrap(&s(&a, 1), int(&a, 0), "\n"))
    });
    reg(t, "wrapWith", &[Int, Str, Str], None, |_, a| {
        st(wrap(&s(&a, 2), int(&a, 0), &s(&a, 1)))
    });
    reg(t, "contains", &[Str, Str], None, |_, a| {
        Ok(Value::Bool(s(&a, 1).contains(&s(&a, 0))))
    });
    reg(t, "hasPrefix", &[Str, Str], None, |_, a| {
        Ok(Value::Bool(s(&a, 1).starts_with(&s(&a, 0))))
    });
    reg(t, "hasSuffix", &[Str, Str], None, |_, a| {
        Ok(Value::Bool(s(&a, 1).ends_with(&s(&a, 0))))
    });
    reg(t, "quote", &[], Some(Any), |_, a| {
        let parts: Vec<String> = a
            .iter()
            .filter(|v| !matches!(v, Value::Nil))
            .map(|v| gofmt::quote(&strval(v)))
            .collect();
        st(parts.join(" "))
    });
    reg(t, "squote", &[], Some(Any), |_, a| {
        let parts: Vec<String> = a
            .iter()
            .filter(|v| !matches!(v, Value::Nil))
            .map(|v| format!("'{}'", strval(v)))
            .collect();
        st(parts.join(" "))
    });
    reg(t, "cat", &[], Some(Any), |_, a| {
        let parts: Vec<String> = a
            .iter()
            .filter(|v| !matches!(v, Value::Nil))
            .map(Value::to_go_string)
            .collect();
        st(parts.join(" "))
    });
    reg(t, "indent", &[Int, Str], None, |_, a| {
        st(indent(checked_width(int(&a, 0))?, &s(&a, 1)))
    });
    reg(t, "nindent", &[Int, Str], None, |_, a| {
        st(format!(
            "\n{}",
            indent(checked_width(int(&a, 0))?, &s(&a, 1))
        ))
    });
    reg(t, "replace", &[Str, Str, Str], None, |_, a| {
        st(s(&a, 2).replace(&s(&a, 0), &s(&a, 1)))
    });
    reg(t, "plural", &[Str, Str, Int], None, |_, a| {
        st(if int(&a, 2) == 1 { s(&a, 0) } else { s(&a, 1) })
    });
    reg(t, "toString", &[Any], None, |_, a| st(strval(&a[0])));
    reg(t, "toStrings", &[Any], None, |_, a| {
        Ok(Value::list(
            strslice_all(&a[0]).into_iter().map(Value::String).collect(),
        ))
    });
    reg(t, "split", &[Str, Str], None, |_, a| {
        let (sep, v) = (s(&a, 0), s(&a, 1));
        Ok(Value::map(
            go_split(&v, &sep, -1)
                .into_iter()
                .enumerate()
                .map(|(i, p)| (format!("_{i}"), Value::String(p)))
                .collect(),
        ))
    });
    reg(t, "splitn", &[Str, Int, Str], None, |_, a| {
        let (sep, n, v) = (s(&a, 0), int(&a, 1), s(&a, 2));
        Ok(Value::map(
            go_split(&v, &sep, n)
                .into_iter()
                .enumerate()
                .map(|(i, p)| (format!("_{i}"), Value::String(p)))
                .collect(),
        ))
    });
    reg(t, "splitList", &[Str, Str], None, |_, a| {
        Ok(Value::list(
            go_split(&s(&a, 1), &s(&a, 0), -1)
                .into_iter()
                .map(Value::String)
                .collect(),
        ))
    });
    reg(t, "join", &[Str, Any], None, |_, a| {
        st(strslice(&a[1]).join(&s(&a, 0)))
    });
    reg(t, "sortAlpha", &[Any], None, |_, a| {
        let mut v = match &a[0] {
            Value::List(_) => strslice(&a[0]),
            other => vec![strval(other)],
        };
        v.sort();
        Ok(Value::list(v.into_iter().map(Value::String).collect()))
    });
    super::regexfns::register(t);
}

fn strslice_all(v: &Value) -> Vec<String> {
    match v {
        Value::List(l) => l.iter().map(strval).collect(),
        Value::Nil => Vec::new(),
        other => vec![strval(other)],
    }
}

/// strings.Split / SplitN (n < 0: all).
pub(crate) fn go_split(v: &str, sep: &str, n: i64) -> Vec<String> {
    if n == 0 {
        return Vec::new();
    }
    if sep.is_empty() {
        let chars: Vec<String> = v.chars().map(|c| c.to_string()).collect();
        if n > 0 && chars.len() > n as usize {
            let mut head: Vec<String> = chars[..n as usize - 1].to_vec();
            head.push(chars[n as usize - 1..].concat());
            return head;
        }
        return chars;
    }
    if n < 0 {
        v.split(sep).map(str::to_string).collect()
    } else {
        v.splitn(n as usize, sep).map(str::to_string).collect()
    }
}

fn trim_set(v: &str, cutset: &str) -> String {
    v.trim_matches(|c| cutset.contains(c)).to_string()
}

/// Widths past a million spaces only serve to exhaust memory.
fn checked_width(n: i64) -> Result<i64, super::FnErr> {
    if n > 1_000_000 {
        return Err(format!("indent width {n} exceeds the limit of 1000000").into());
    }
    Ok(n)
}

pub(crate) fn indent(n: i64, v: &str) -> String {
    let pad = " ".repeat(n.max(0) as usize);
    format!("{pad}{}", v.replace('\n', &format!("\n{pad}")))
}

fn trunc(c: i64, v: &str) -> String {
    let len = v.len() as i64;
    if c < 0 && len + c > 0 {
        return byte_slice(v, (len + c) as usize, v.len());
    }
    if c >= 0 && len > c {
        return byte_slice(v, 0, c as usize);
    }
    v.to_string()
}

pub(super) fn byte_slice(v: &str, a: usize, b: usize) -> String {
    String::from_utf8_lossy(&v.as_bytes()[a..b]).into_owned()
}

fn substr(start: i64, end: i64, v: &str) -> FnResult {
    let len = v.len() as i64;
    let bad = |m: String| -> FnResult {
        Err(format!("runtime error: slice bounds out of range {m}").into())
    };
    if start < 0 {
        if end < 0 || end > len {
            return bad(format!("[:{end}] with length {len}"));
        }
        return st(byte_slice(v, 0, end as usize));
    }
    if end < 0 || end > len {
        if start > len {
            return bad(format!("[{start}:{len}]"));
        }
        return st(byte_slice(v, start as usize, v.len()));
    }
    if start > end {
        return bad(format!("[{start}:{end}]"));
    }
    st(byte_slice(v, start as usize, end as usize))
}
