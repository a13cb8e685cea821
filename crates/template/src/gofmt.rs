//! Go's `fmt` and `strconv` number/value printing, byte-for-byte where templates can see it.

use std::fmt::Write as _;

use crate::value::Value;

/// `%v` of a value, as fmt.Sprint prints `interface{}` trees.
pub fn write_v(out: &mut String, v: &Value) {
    let Some(_level) = crate::guard::enter_text(out.len()) else {
        out.push_str("...");
        return;
    };
    match v {
        Value::Nil => out.push_str("<nil>"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Int(i) | Value::I64(i) => {
            let _ = write!(out, "{i}");
        }
        Value::Float(f) => out.push_str(&format_float_g(*f)),
        Value::String(s) => out.push_str(s),
        Value::List(l) => {
            out.push('[');
            for (i, e) in l.iter().enumerate() {
                if i > 0 {
                    out.push(' ');
                }
                write_v(out, e);
            }
            out.push(']');
        }
        Value::Map(m) => {
            out.push_str("map[");
            for (i, (k, e)) in m.iter().enumerate() {
                if i > 0 {
                    out.push(' ');
                }
                out.push_str(k);
                out.push(':');
                write_v(out, e);
            }
            out.push(']');
        }
        Value::Object(o) => {
            let _ = write!(out, "{o}");
        }
    }
}

/// Shortest decimal digits and decimal exponent (value = 0.d1d2... * 10^dp) of a finite float.
fn shortest_digits(f: f64) -> (String, i32) {
    digits_of(&format!("{:e}", f.abs()))
}

fn digits_of(s: &str) -> (String, i32) {
    let (mant, exp) = s.split_once('e').unwrap_or((s, "0"));
    let digits: String = mant.chars().filter(char::is_ascii_digit).collect();
    let exp: i32 = exp.parse().unwrap_or(0);
    if digits.chars().all(|c| c == '0') {
        return ("0".to_string(), 1);
    }
    (digits, exp + 1)
}

/// Digits rounded to `prec` significant digits, trailing zeros trimmed.
fn prec_digits(f: f64, prec: usize) -> (String, i32) {
    let p = prec.max(1);
    let s = format!("{:.*e}", p - 1, f.abs());
    let (mant, exp) = s.split_once('e').unwrap_or((&s, "0"));
    let mut digits: String = mant.chars().filter(char::is_ascii_digit).collect();
    while digits.len() > 1 && digits.ends_with('0') {
        digits.pop();
    }
    let exp: i32 = exp.parse().unwrap_or(0);
    if f == 0.0 {
        return ("0".to_string(), 1);
    }
    (digits, exp + 1)
}

fn special(f: f64) -> Option<&'static str> {
    if f.is_nan() {
        Some("NaN")
    } else if f == f64::INFINITY {
        Some("+Inf")
    } else if f == f64::NEG_INFINITY {
        Some("-Inf")
    } else {
        None
    }
}

fn fmt_e(neg: bool, digits: &str, dp: i32, frac: Option<usize>, upper: bool) -> String {
    let mut out = String::new();
    if neg {
        out.push('-');
    }
    out.push_str(&digits[..1]);
    let rest = &digits[1..];
    let frac_len = frac.unwrap_or(rest.len());
    if frac_len > 0 {
        out.push('.');
        for i in 0..frac_len {
            out.push(rest.as_bytes().get(i).map(|b| *b as char).unwrap_or('0'));
        }
    }
    let exp = if digits == "0" { 0 } else { dp - 1 };
    out.push(if upper { 'E' } else { 'e' });
    out.push(if exp < 0 { '-' } else { '+' });
    let a = exp.abs();
    if a < 10 {
        out.push('0');
    }
    let _ = write!(out, "{a}");
    out
}

fn fmt_f(neg: bool, digits: &str, dp: i32, frac: usize) -> String {
    let mut out = String::new();
    if neg {
        out.push('-');
    }
    if dp <= 0 {
        out.push('0');
    } else {
        for i in 0..dp as usize {
            out.push(digits.as_bytes().get(i).map(|b| *b as char).unwrap_or('0'));
        }
    }
    if frac > 0 {
        out.push('.');
        for i in 0..frac as i32 {
            let idx = dp + i;
            let c = if idx < 0 {
                '0'
            } else {
                digits
                    .as_bytes()
                    .get(idx as usize)
                    .map(|b| *b as char)
                    .unwrap_or('0')
            };
            out.push(c);
        }
    }
    out
}

/// strconv.FormatFloat(f, 'g', -1, 64): what `%v`, `toString` and go-yaml print.
pub fn format_float_g(f: f64) -> String {
    format_g(f, None, false)
}

/// `strconv.FormatFloat(f, 'g', -1, 32)`: the shortest digits of the float32 nearest `f`.
pub fn format_float32_g(f: f64) -> String {
    if let Some(s) = special(f) {
        return s.to_string();
    }
    let (digits, dp) = digits_of(&format!("{:e}", (f as f32).abs()));
    let nd = digits.len() as i32;
    let exp = dp - 1;
    let neg = f.is_sign_negative() && f != 0.0;
    if !(-4..6).contains(&exp) {
        return fmt_e(neg, &digits, dp, Some((nd - 1) as usize), false);
    }
    fmt_f(neg, &digits, dp, (nd - dp).max(0) as usize)
}

pub fn format_g(f: f64, prec: Option<usize>, upper: bool) -> String {
    if let Some(s) = special(f) {
        return s.to_string();
    }
    let neg = f.is_sign_negative();
    let (digits, dp) = match prec {
        None => shortest_digits(f),
        Some(p) => prec_digits(f, if p == 0 { 1 } else { p }),
    };
    let nd = digits.len() as i32;
    let mut eprec = match prec {
        None => 6,
        Some(p) => p.max(1) as i32,
    };
    if prec.is_some() && eprec > nd && nd >= dp {
        eprec = nd;
    }
    let exp = dp - 1;
    if exp < -4 || exp >= eprec {
        return fmt_e(neg, &digits, dp, Some((nd - 1) as usize), upper);
    }
    fmt_f(neg, &digits, dp, (nd - dp).max(0) as usize)
}

/// `%e` with precision (default 6).
pub fn format_e(f: f64, prec: usize, upper: bool) -> String {
    if let Some(s) = special(f) {
        return s.to_string();
    }
    let s = format!("{:.*e}", prec, f.abs());
    let (mant, exp) = s.split_once('e').unwrap_or((&s, "0"));
    let digits: String = mant.chars().filter(char::is_ascii_digit).collect();
    let exp: i32 = exp.parse().unwrap_or(0);
    fmt_e(f.is_sign_negative(), &digits, exp + 1, Some(prec), upper)
}

/// `%f` with precision (default 6).
pub fn format_f(f: f64, prec: usize) -> String {
    if let Some(s) = special(f) {
        return s.to_string();
    }
    let s = format!("{:.*}", prec, f);
    if s.starts_with('-') && s[1..].chars().all(|c| c == '0' || c == '.') && !f.is_sign_negative() {
        return s[1..].to_string();
    }
    s
}

/// encoding/json's float64 encoding.
pub fn format_float_json(f: f64) -> String {
    let abs = f.abs();
    if abs != 0.0 && !(1e-6..1e21).contains(&abs) {
        let (digits, dp) = shortest_digits(f);
        let nd = digits.len();
        let s = fmt_e(f.is_sign_negative(), &digits, dp, Some(nd - 1), false);
        // encoding/json writes e-07 as e-7
        if let Some(pos) = s.find("e-0") {
            return format!("{}e-{}", &s[..pos], &s[pos + 3..]);
        }
        if let Some(pos) = s.find("e+0") {
            return format!("{}e+{}", &s[..pos], &s[pos + 3..]);
        }
        return s;
    }
    let (digits, dp) = shortest_digits(f);
    let nd = digits.len() as i32;
    fmt_f(
        f.is_sign_negative() && f != 0.0,
        &digits,
        dp,
        (nd - dp).max(0) as usize,
    )
}

/// strconv.Quote.
pub fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{7}' => out.push_str("\\a"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\u{b}' => out.push_str("\\v"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c if is_unprintable(c) => {
                if (c as u32) < 0x10000 {
                    let _ = write!(out, "\\u{:04x}", c as u32);
                } else {
                    let _ = write!(out, "\\U{:08x}", c as u32);
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn is_unprintable(c: char) -> bool {
    let u = c as u32;
    (0x80..0xa0).contains(&u)
        || u == 0xad
        || u == 0xfeff
        || (0x2028..=0x2029).contains(&u)
        || (0xfff9..=0xfffb).contains(&u)
}

/// Go's %q for a rune.
pub fn quote_rune(c: char) -> String {
    match c {
        '\'' => "'\\''".to_string(),
        '"' => "'\"'".to_string(),
        c => {
            let q = quote(&c.to_string());
            format!("'{}'", &q[1..q.len() - 1])
        }
    }
}
