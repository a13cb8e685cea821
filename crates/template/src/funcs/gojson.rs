//! Go's encoding/json syntax errors (its scanner's wording): `fromJson` puts them under `Error`,
//! `mustFromJson` returns them.

/// Checks `s` as encoding/json's scanner does; `Err` holds Go's message.
pub fn check(s: &str) -> Result<(), String> {
    let b = s.as_bytes();
    let mut i = 0;
    skip_ws(b, &mut i);
    value(b, &mut i, "looking for beginning of value")?;
    skip_ws(b, &mut i);
    if i < b.len() {
        return Err(bad(b, i, "after top-level value"));
    }
    Ok(())
}

fn skip_ws(b: &[u8], i: &mut usize) {
    while *i < b.len() && matches!(b[*i], b' ' | b'\t' | b'\n' | b'\r') {
        *i += 1;
    }
}

/// quoteChar: `'x'`, `'\''`, `'"'`, `'\x01'`.
fn quote_char(b: &[u8], i: usize) -> String {
    let c = std::str::from_utf8(&b[i..])
        .ok()
        .and_then(|s| s.chars().next())
        .unwrap_or(b[i] as char);
    match c {
        '\'' => "'\\''".into(),
        '"' => "'\"'".into(),
        c if (c as u32) < 0x20 || c == '\u{7f}' => format!("'\\x{:02x}'", c as u32),
        c => format!("'{c}'"),
    }
}

fn bad(b: &[u8], i: usize, ctx: &str) -> String {
    if i >= b.len() {
        return "unexpected end of JSON input".into();
    }
    format!("invalid character {} {ctx}", quote_char(b, i))
}

fn value(b: &[u8], i: &mut usize, ctx: &str) -> Result<(), String> {
    let Some(&c) = b.get(*i) else {
        return Err("unexpected end of JSON input".into());
    };
    match c {
        b'{' => object(b, i),
        b'[' => array(b, i),
        b'"' => string(b, i),
        b'-' | b'0'..=b'9' => number(b, i),
        b't' => literal(b, i, "true"),
        b'f' => literal(b, i, "false"),
        b'n' => literal(b, i, "null"),
        _ => Err(bad(b, *i, ctx)),
    }
}

fn literal(b: &[u8], i: &mut usize, word: &str) -> Result<(), String> {
    for (k, want) in word.bytes().enumerate() {
        match b.get(*i + k) {
            None => return Err("unexpected end of JSON input".into()),
            Some(&c) if c == want => {}
            Some(_) => {
                return Err(bad(
                    b,
                    *i + k,
                    &format!("in literal {word} (expecting '{}')", want as char),
                ));
            }
        }
    }
    *i += word.len();
    Ok(())
}

fn object(b: &[u8], i: &mut usize) -> Result<(), String> {
    *i += 1;
    skip_ws(b, i);
    if b.get(*i) == Some(&b'}') {
        *i += 1;
        return Ok(());
    }
    loop {
        match b.get(*i) {
            Some(b'"') => string(b, i)?,
            _ => return Err(bad(b, *i, "looking for beginning of object key string")),
        }
        skip_ws(b, i);
        if b.get(*i) != Some(&b':') {
            return Err(bad(b, *i, "after object key"));
        }
        *i += 1;
        skip_ws(b, i);
        value(b, i, "looking for beginning of value")?;
        skip_ws(b, i);
        match b.get(*i) {
            Some(b',') => {
                *i += 1;
                skip_ws(b, i);
            }
            Some(b'}') => {
                *i += 1;
                return Ok(());
            }
            _ => return Err(bad(b, *i, "after object key:value pair")),
        }
    }
}

fn array(b: &[u8], i: &mut usize) -> Result<(), String> {
    *i += 1;
    skip_ws(b, i);
    if b.get(*i) == Some(&b']') {
        *i += 1;
        return Ok(());
    }
    loop {
        value(b, i, "looking for beginning of value")?;
        skip_ws(b, i);
        match b.get(*i) {
            Some(b',') => {
                *i += 1;
                skip_ws(b, i);
            }
            Some(b']') => {
                *i += 1;
                return Ok(());
            }
            _ => return Err(bad(b, *i, "after array element")),
        }
    }
}

fn string(b: &[u8], i: &mut usize) -> Result<(), String> {
    *i += 1;
    loop {
        let Some(&c) = b.get(*i) else {
            return Err("unexpected end of JSON input".into());
        };
        match c {
            b'"' => {
                *i += 1;
                return Ok(());
            }
            b'\\' => {
                *i += 1;
                match b.get(*i) {
                    None => return Err("unexpected end of JSON input".into()),
                    Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => *i += 1,
                    Some(b'u') => {
                        *i += 1;
                        for _ in 0..4 {
                            match b.get(*i) {
                                None => return Err("unexpected end of JSON input".into()),
                                Some(h) if h.is_ascii_hexdigit() => *i += 1,
                                Some(_) => {
                                    return Err(bad(
                                        b,
                                        *i,
                                        "in \\\\u hexadecimal character escape",
                                    ));
                                }
                            }
                        }
                    }
                    Some(_) => return Err(bad(b, *i, "in string escape code")),
                }
            }
            c if c < 0x20 => return Err(bad(b, *i, "in string literal")),
            _ => *i += 1,
        }
    }
}

fn number(b: &[u8], i: &mut usize) -> Result<(), String> {
    if b[*i] == b'-' {
        *i += 1;
        match b.get(*i) {
            Some(b'0'..=b'9') => {}
            None => return Err("unexpected end of JSON input".into()),
            Some(_) => return Err(bad(b, *i, "in numeric literal")),
        }
    }
    if b.get(*i) == Some(&b'0') {
        *i += 1;
    } else {
        while b.get(*i).is_some_and(u8::is_ascii_digit) {
            *i += 1;
        }
    }
    if b.get(*i) == Some(&b'.') {
        *i += 1;
        match b.get(*i) {
            Some(c) if c.is_ascii_digit() => {}
            None => return Err("unexpected end of JSON input".into()),
            Some(_) => return Err(bad(b, *i, "after decimal point in numeric literal")),
        }
        while b.get(*i).is_some_and(u8::is_ascii_digit) {
            *i += 1;
        }
    }
    if matches!(b.get(*i), Some(b'e' | b'E')) {
        *i += 1;
        if matches!(b.get(*i), Some(b'+' | b'-')) {
            *i += 1;
        }
        match b.get(*i) {
            Some(c) if c.is_ascii_digit() => {}
            None => return Err("unexpected end of JSON input".into()),
            Some(_) => return Err(bad(b, *i, "in exponent of numeric literal")),
        }
        while b.get(*i).is_some_and(u8::is_ascii_digit) {
            *i += 1;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::check;

    #[test]
    fn go_messages() {
        assert_eq!(
            check("{bad"),
            Err("invalid character 'b' looking for beginning of object key string".into())
        );
        assert_eq!(check("[1,"), Err("unexpected end of JSON input".into()));
        assert_eq!(
            check("{\"a\" 1}"),
            Err("invalid character '1' after object key".into())
        );
        assert_eq!(check("tru"), Err("unexpected end of JSON input".into()));
        assert_eq!(
            check("1 2"),
            Err("invalid character '2' after top-level value".into())
        );
        assert!(check(" {\"a\": [1, 2.5e-3, \"x\\u00e9\"]} ").is_ok());
    }
}
