//! Go literal syntax: quoted strings and number constants.

use crate::ast::Number;
/// strconv.Unquote for "..." and `...` literals.
pub fn unquote(s: &str) -> Option<String> {
    if let Some(raw) = s.strip_prefix('`') {
        return raw.strip_suffix('`').map(|r| r.replace('\r', ""));
    }
    let quote = s.chars().next()?;
    let inner = s.strip_prefix(quote)?.strip_suffix(quote)?;
    let mut out = String::new();
    let mut chars = inner.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '\\' {
            if c == quote {
                return None;
            }
            out.push(c);
            continue;
        }
        let e = chars.next()?;
        match e {
            'n' => out.push('\n'),
            't' => out.push('\t'),
            'r' => out.push('\r'),
            'a' => out.push('\u{7}'),
            'b' => out.push('\u{8}'),
            'f' => out.push('\u{c}'),
            'v' => out.push('\u{b}'),
            '\\' => out.push('\\'),
            '\'' if quote == '\'' => out.push('\''),
            '"' if quote == '"' => out.push('"'),
            'x' | 'u' | 'U' => {
                let n = match e {
                    'x' => 2,
                    'u' => 4,
                    _ => 8,
                };
                let hex: String = (0..n).filter_map(|_| chars.next()).collect();
                let v = u32::from_str_radix(&hex, 16).ok()?;
                if hex.len() != n {
                    return None;
                }
                if e == 'x' {
                    // a byte; Go strings may hold invalid UTF-8, we keep valid chars only
                    out.push(char::from_u32(v)?);
                } else {
                    out.push(char::from_u32(v)?);
                }
            }
            '0'..='7' => {
                let mut v = e.to_digit(8)?;
                for _ in 0..2 {
                    v = v * 8 + chars.next()?.to_digit(8)?;
                }
                out.push(char::from_u32(v)?);
            }
            _ => return None,
        }
    }
    Some(out)
}

/// parse.NumberNode: decides IsInt/IsFloat and the value, with Go's error texts.
pub fn parse_number(text: &str, is_char: bool) -> Result<Number, String> {
    if is_char {
        let s = unquote(text).ok_or_else(|| "malformed character constant".to_string())?;
        let mut it = s.chars();
        let c = it
            .next()
            .ok_or_else(|| format!("malformed character constant: {text}"))?;
        if it.next().is_some() {
            return Err(format!("malformed character constant: {text}"));
        }
        let v = c as i64;
        return Ok(Number {
            is_int: true,
            is_float: true,
            int: v,
            float: v as f64,
            float_literal: false,
        });
    }
    if text.ends_with('i') {
        return Err(format!(
            "illegal number syntax: {}",
            crate::gofmt::quote(text)
        ));
    }
    let clean = text.replace('_', "");
    let (neg, body) = match clean.strip_prefix('-') {
        Some(b) => (true, b.to_string()),
        None => (false, clean.strip_prefix('+').unwrap_or(&clean).to_string()),
    };
    let lower = body.to_ascii_lowercase();
    if let Some(h) = lower.strip_prefix("0x")
        && let Some((mant, exp)) = h.split_once('p')
    {
        let (ip, fp) = mant.split_once('.').unwrap_or((mant, ""));
        let mut m = 0f64;
        for c in ip.chars().chain(fp.chars()) {
            m = m * 16.0
                + f64::from(c.to_digit(16).ok_or_else(|| {
                    format!("illegal number syntax: {}", crate::gofmt::quote(text))
                })?);
        }
        let e: i32 = exp
            .parse()
            .map_err(|_| format!("illegal number syntax: {}", crate::gofmt::quote(text)))?;
        let f = m * 2f64.powi(e - 4 * fp.len() as i32);
        let f = if neg { -f } else { f };
        let is_int = f.fract() == 0.0 && f.abs() < 9.2e18;
        return Ok(Number {
            is_int,
            is_float: true,
            int: f as i64,
            float: f,
            float_literal: false,
        });
    }
    let prefixed = lower.starts_with("0x") || lower.starts_with("0o") || lower.starts_with("0b");
    let octal =
        lower.len() > 1 && lower.starts_with('0') && lower.chars().all(|c| c.is_ascii_digit());
    if !prefixed
        && !octal
        && let Ok(i) = clean.parse::<i64>()
    {
        return Ok(Number {
            is_int: true,
            is_float: true,
            int: i,
            float: i as f64,
            float_literal: false,
        });
    }
    let int_val: Option<i64> = if let Some(h) = lower.strip_prefix("0x") {
        i64::from_str_radix(h, 16).ok()
    } else if let Some(o) = lower.strip_prefix("0o") {
        i64::from_str_radix(o, 8).ok()
    } else if let Some(b) = lower.strip_prefix("0b") {
        i64::from_str_radix(b, 2).ok()
    } else if lower.len() > 1 && lower.starts_with('0') && lower.chars().all(|c| c.is_ascii_digit())
    {
        i64::from_str_radix(&lower[1..], 8).ok()
    } else {
        lower.parse::<i64>().ok()
    };
    let is_hex = lower.starts_with("0x");
    let mut n = Number {
        is_int: false,
        is_float: false,
        int: 0,
        float: 0.0,
        float_literal: false,
    };
    if let Some(i) = int_val {
        let i = if neg { -i } else { i };
        n.is_int = true;
        n.int = i;
        n.is_float = true;
        n.float = i as f64;
        return Ok(n);
    }
    if !is_hex && let Ok(f) = lower.parse::<f64>() {
        if !text.contains(['.', 'e', 'E', 'p', 'P']) {
            return Err(format!("integer overflow: {}", crate::gofmt::quote(text)));
        }
        if lower.contains("inf") || lower.contains("nan") {
            return Err(format!(
                "illegal number syntax: {}",
                crate::gofmt::quote(text)
            ));
        }
        let f = if neg { -f } else { f };
        n.is_float = true;
        n.float = f;
        n.float_literal = true;
        if f.fract() == 0.0 && f.abs() < 9.2e18 {
            n.is_int = true;
            n.int = f as i64;
        }
        return Ok(n);
    }
    Err(format!(
        "illegal number syntax: {}",
        crate::gofmt::quote(text)
    ))
}
