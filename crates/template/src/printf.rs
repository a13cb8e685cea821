//! Go's fmt.Sprintf for template values, including its `%!verb(type=value)` error forms.

use std::fmt::Write as _;

use crate::gofmt::{self, write_v};
use crate::value::Value;

#[derive(Default, Clone, Copy)]
struct Spec {
    minus: bool,
    plus: bool,
    sharp: bool,
    space: bool,
    zero: bool,
    width: Option<usize>,
    prec: Option<usize>,
}

pub fn sprintf(format: &str, args: &[Value]) -> String {
    let mut out = String::new();
    let mut argi = 0;
    let mut chars = format.char_indices().peekable();
    while let Some((_, c)) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        let mut spec = Spec::default();
        // flags
        while let Some(&(_, f)) = chars.peek() {
            match f {
                '-' => spec.minus = true,
                '+' => spec.plus = true,
                '#' => spec.sharp = true,
                ' ' => spec.space = true,
                '0' => spec.zero = true,
                _ => break,
            }
            chars.next();
        }
        spec.width = read_num(&mut chars, args, &mut argi);
        if let Some(&(_, '.')) = chars.peek() {
            chars.next();
            spec.prec = Some(read_num(&mut chars, args, &mut argi).unwrap_or(0));
        }
        let Some((_, verb)) = chars.next() else {
            out.push_str("%!(NOVERB)");
            break;
        };
        if verb == '%' {
            out.push('%');
            continue;
        }
        let Some(arg) = args.get(argi) else {
            let _ = write!(out, "%!{verb}(MISSING)");
            continue;
        };
        argi += 1;
        let body = format_one(verb, &spec, arg);
        out.push_str(&pad(body, &spec, arg, verb));
    }
    if argi < args.len() {
        out.push_str("%!(EXTRA ");
        for (i, a) in args[argi..].iter().enumerate() {
            if i > 0 {
                out.push_str(", ");
            }
            match a {
                Value::Nil => out.push_str("<nil>"),
                _ => {
                    let _ = write!(out, "{}=", a.type_name());
                    write_v(&mut out, a);
                }
            }
        }
        out.push(')');
    }
    out
}

fn read_num(
    chars: &mut std::iter::Peekable<std::str::CharIndices<'_>>,
    args: &[Value],
    argi: &mut usize,
) -> Option<usize> {
    if let Some(&(_, '*')) = chars.peek() {
        chars.next();
        let v = match args.get(*argi) {
            Some(Value::Int(i)) => Some(((*i).unsigned_abs() as usize).min(1_000_000)),
            _ => None,
        };
        *argi += 1;
        return v;
    }
    let mut n: Option<usize> = None;
    while let Some(&(_, d)) = chars.peek() {
        if let Some(v) = d.to_digit(10) {
            n = Some(
                n.unwrap_or(0)
                    .saturating_mul(10)
                    .saturating_add(v as usize)
                    .min(1_000_000),
            );
            chars.next();
        } else {
            break;
        }
    }
    n
}

fn bad_verb(verb: char, v: &Value) -> String {
    match v {
        Value::Nil => format!("%!{verb}(<nil>)"),
        _ => {
            let mut s = format!("%!{verb}({}=", v.type_name());
            write_v(&mut s, v);
            s.push(')');
            s
        }
    }
}

fn format_one(verb: char, spec: &Spec, v: &Value) -> String {
    let Some(_level) = crate::guard::enter() else {
        return "...".to_string();
    };
    if let Value::I64(i) = v
        && matches!(verb, 'v' | 'd' | 'x' | 'X' | 'o' | 'b' | 'c' | 'q' | 'U')
    {
        return format_one(verb, spec, &Value::Int(*i));
    }
    match (verb, v) {
        ('T', _) => v.type_name().to_string(),
        ('v', Value::Float(f)) => float_sign(gofmt::format_g(*f, spec.prec, false), spec),
        ('v', Value::Int(i)) => int_sign(i.to_string(), *i, spec),
        ('v', _) => {
            let mut s = String::new();
            write_v(&mut s, v);
            s
        }
        (_, Value::List(l)) => {
            let parts: Vec<String> = l.iter().map(|e| format_one(verb, spec, e)).collect();
            format!("[{}]", parts.join(" "))
        }
        (_, Value::Map(m)) => {
            let parts: Vec<String> = m
                .iter()
                .map(|(k, e)| {
                    format!(
                        "{}:{}",
                        format_one(verb, spec, &Value::String(k.clone())),
                        format_one(verb, spec, e)
                    )
                })
                .collect();
            format!("map[{}]", parts.join(" "))
        }
        ('s', Value::String(s)) => truncate(s, spec.prec),
        ('s', Value::Object(o)) => o.to_string(),
        ('q', Value::String(s)) => gofmt::quote(s),
        ('x', Value::String(s)) => hex_bytes(s.as_bytes(), false),
        ('X', Value::String(s)) => hex_bytes(s.as_bytes(), true),
        ('t', Value::Bool(b)) => b.to_string(),
        ('d', Value::Int(i)) => int_prec(i.to_string(), *i, spec),
        ('x', Value::Int(i)) => int_prec(format!("{:x}", i.unsigned_abs()), *i, spec),
        ('X', Value::Int(i)) => int_prec(format!("{:X}", i.unsigned_abs()), *i, spec),
        ('o', Value::Int(i)) => int_prec(format!("{:o}", i.unsigned_abs()), *i, spec),
        ('b', Value::Int(i)) => int_prec(format!("{:b}", i.unsigned_abs()), *i, spec),
        ('c', Value::Int(i)) => char::from_u32(*i as u32).unwrap_or('\u{fffd}').to_string(),
        ('q', Value::Int(i)) => gofmt::quote_rune(char::from_u32(*i as u32).unwrap_or('\u{fffd}')),
        ('U', Value::Int(i)) => format!("U+{:04X}", i),
        ('e', Value::Float(f)) => {
            float_sign(gofmt::format_e(*f, spec.prec.unwrap_or(6), false), spec)
        }
        ('E', Value::Float(f)) => {
            float_sign(gofmt::format_e(*f, spec.prec.unwrap_or(6), true), spec)
        }
        ('f' | 'F', Value::Float(f)) => {
            float_sign(gofmt::format_f(*f, spec.prec.unwrap_or(6)), spec)
        }
        ('g', Value::Float(f)) => float_sign(gofmt::format_g(*f, spec.prec, false), spec),
        ('G', Value::Float(f)) => float_sign(gofmt::format_g(*f, spec.prec, true), spec),
        _ => bad_verb(verb, v),
    }
}

fn truncate(s: &str, prec: Option<usize>) -> String {
    match prec {
        Some(p) => s.chars().take(p).collect(),
        None => s.to_string(),
    }
}

fn hex_bytes(b: &[u8], upper: bool) -> String {
    let mut s = String::new();
    for x in b {
        if upper {
            let _ = write!(s, "{x:02X}");
        } else {
            let _ = write!(s, "{x:02x}");
        }
    }
    s
}

fn int_sign(digits: String, _i: i64, spec: &Spec) -> String {
    if spec.plus && !digits.starts_with('-') {
        format!("+{digits}")
    } else {
        digits
    }
}

fn int_prec(mut digits: String, i: i64, spec: &Spec) -> String {
    if let Some(p) = spec.prec {
        while digits.len() < p {
            digits.insert(0, '0');
        }
        if p == 0 && i == 0 {
            digits.clear();
        }
    }
    let neg = i < 0 && !digits.starts_with('-');
    let digits = if neg { format!("-{digits}") } else { digits };
    if i >= 0 && spec.plus {
        format!("+{digits}")
    } else if i >= 0 && spec.space {
        format!(" {digits}")
    } else {
        digits
    }
}

fn float_sign(s: String, spec: &Spec) -> String {
    if !s.starts_with('-') && spec.plus {
        format!("+{s}")
    } else if !s.starts_with('-') && spec.space {
        format!(" {s}")
    } else {
        s
    }
}

fn pad(body: String, spec: &Spec, arg: &Value, verb: char) -> String {
    let Some(w) = spec.width else { return body };
    let n = body.chars().count();
    if n >= w {
        return body;
    }
    let fill = w - n;
    if spec.minus {
        return format!("{body}{}", " ".repeat(fill));
    }
    let numeric = matches!(arg, Value::Int(_) | Value::I64(_) | Value::Float(_)) && verb != 'T';
    if spec.zero
        && (numeric || matches!(arg, Value::String(_)))
        && spec
            .prec
            .is_none_or(|_| !matches!(arg, Value::Int(_) | Value::I64(_)))
    {
        if numeric && (body.starts_with('-') || body.starts_with('+')) {
            let (sign, rest) = body.split_at(1);
            return format!("{sign}{}{rest}", "0".repeat(fill));
        }
        return format!("{}{body}", "0".repeat(fill));
    }
    format!("{}{body}", " ".repeat(fill))
}
