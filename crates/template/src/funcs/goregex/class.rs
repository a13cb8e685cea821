//! Bracketed character classes, rewritten for the `regex` crate item by item.

use super::*;

impl Tr<'_> {
    /// A bracketed class, rewritten item by item.
    pub(super) fn class(&mut self) -> Result<(), SyntaxError> {
        let start = self.pos();
        self.i += 1;
        let mut out = String::from("[");
        if self.peek() == Some('^') {
            self.i += 1;
            out.push('^');
        }
        let mut first = true;
        loop {
            let Some(c) = self.peek() else {
                return Err(err("missing closing ]", &self.src[start..]));
            };
            if c == ']' && !first {
                self.i += 1;
                break;
            }
            first = false;
            // [:alpha:]
            if c == '['
                && self.peek_at(1) == Some(':')
                && let Some(end) = self.rest().find(":]")
            {
                let raw = self.rest()[..end + 2].to_string();
                let name = raw[2..raw.len() - 2].trim_start_matches('^');
                if !POSIX.contains(&name) {
                    return Err(err("invalid character class range", raw));
                }
                out.push_str(&raw);
                self.i += raw.chars().count();
                continue;
            }
            let item_start = self.pos();
            let lo = match c {
                '\\' => {
                    self.i += 1;
                    match self.peek() {
                        Some(k @ ('d' | 'D' | 's' | 'S' | 'w' | 'W')) => {
                            self.i += 1;
                            out.push_str(perl_class_inner(k));
                            continue;
                        }
                        Some('p' | 'P') => {
                            let cls = self.unicode_class(item_start)?;
                            out.push_str(&cls);
                            continue;
                        }
                        None => return Err(err("missing closing ]", &self.src[start..])),
                        _ => self.escaped_char(item_start)?,
                    }
                }
                c => {
                    self.i += 1;
                    c
                }
            };
            // a range lo-hi (a '-' before ']' is literal)
            if self.peek() == Some('-') && self.peek_at(1).is_some_and(|n| n != ']') {
                self.i += 1;
                let hi = match self.peek() {
                    Some('\\') => {
                        let s2 = self.pos();
                        self.i += 1;
                        self.escaped_char(s2)?
                    }
                    Some(h) => {
                        self.i += 1;
                        h
                    }
                    None => return Err(err("missing closing ]", &self.src[start..])),
                };
                if hi < lo {
                    return Err(err(
                        "invalid character class range",
                        &self.src[item_start..self.pos()],
                    ));
                }
                push_class_char(&mut out, lo);
                out.push('-');
                push_class_char(&mut out, hi);
            } else {
                push_class_char(&mut out, lo);
            }
        }
        out.push(']');
        self.item(&out);
        Ok(())
    }
}

const POSIX: &[&str] = &[
    "alnum", "alpha", "ascii", "blank", "cntrl", "digit", "graph", "lower", "print", "punct",
    "space", "upper", "word", "xdigit",
];

pub(super) fn perl_class(c: char) -> &'static str {
    match c {
        'd' => "[0-9]",
        'D' => "[^0-9]",
        's' => "[\\t\\n\\x0C\\r ]",
        'S' => "[^\\t\\n\\x0C\\r ]",
        'w' => "[0-9A-Za-z_]",
        _ => "[^0-9A-Za-z_]",
    }
}

pub(super) fn perl_class_inner(c: char) -> &'static str {
    match c {
        'd' => "0-9",
        'D' => "[^0-9]",
        's' => "\\t\\n\\x0C\\r ",
        'S' => "[^\\t\\n\\x0C\\r ]",
        'w' => "0-9A-Za-z_",
        _ => "[^0-9A-Za-z_]",
    }
}

pub(super) fn push_escaped(out: &mut String, c: char) {
    if c.is_ascii_punctuation() || c == ' ' {
        if "\\.+*?()|[]{}^$#&-~".contains(c) {
            out.push('\\');
        }
        out.push(c);
    } else if c.is_control() || c.is_whitespace() {
        out.push_str(&format!("\\x{{{:X}}}", c as u32));
    } else {
        out.push(c);
    }
}

/// Inside a class every punctuation character that Rust treats specially is escaped.
pub(super) fn push_class_char(out: &mut String, c: char) {
    if "\\[]^-&~".contains(c) {
        out.push('\\');
        out.push(c);
    } else if c.is_control() || c.is_whitespace() {
        out.push_str(&format!("\\x{{{:X}}}", c as u32));
    } else {
        out.push(c);
    }
}
