//! Escapes outside a class: Perl classes, Unicode classes, escaped characters.

use super::*;

impl Tr<'_> {
    /// An escape outside a class; Perl classes come out ASCII.
    pub(super) fn escape(&mut self) -> Result<(), SyntaxError> {
        let start = self.pos();
        self.i += 1;
        let Some(c) = self.peek() else {
            return Err(err("trailing backslash at end of expression", ""));
        };
        match c {
            'd' | 'D' | 's' | 'S' | 'w' | 'W' => {
                self.i += 1;
                self.item(perl_class(c));
            }
            'b' | 'B' => {
                self.i += 1;
                self.out
                    .push_str(if c == 'b' { "(?-u:\\b)" } else { "(?-u:\\B)" });
                self.can_repeat = true;
                self.last_repeat = None;
            }
            'A' => {
                self.i += 1;
                self.item("\\A");
            }
            'z' => {
                self.i += 1;
                self.item("\\z");
            }
            'p' | 'P' => {
                let cls = self.unicode_class(start)?;
                self.item(&cls);
            }
            'Q' => {
                self.i += 1;
                let rest = self.rest().to_string();
                let (lit, used) = match rest.find("\\E") {
                    Some(e) => (&rest[..e], e + 2),
                    None => (rest.as_str(), rest.len()),
                };
                for ch in lit.chars() {
                    self.literal(ch);
                }
                self.i += rest[..used].chars().count();
            }
            _ => {
                let ch = self.escaped_char(start)?;
                self.literal(ch);
            }
        }
        Ok(())
    }

    /// `\pL`, `\p{Greek}`, `\PL`, `\p{^Greek}`.
    pub(super) fn unicode_class(&mut self, start: usize) -> Result<String, SyntaxError> {
        let neg = self.peek() == Some('P');
        self.i += 1;
        let name = match self.peek() {
            Some('{') => {
                let rest = self.rest().to_string();
                let Some(end) = rest.find('}') else {
                    return Err(err("invalid character class range", &self.src[start..]));
                };
                let n = rest[1..end].to_string();
                self.i += rest[..=end].chars().count();
                n
            }
            Some(c) => {
                self.i += 1;
                c.to_string()
            }
            None => return Err(err("invalid character class range", &self.src[start..])),
        };
        let (neg, name) = match name.strip_prefix('^') {
            Some(n) => (!neg, n.to_string()),
            None => (neg, name),
        };
        let ok = name == "Any"
            || regex::Regex::new(&format!("\\p{{{name}}}")).is_ok() && !name.contains('=');
        if !ok {
            let end = self.pos();
            return Err(err("invalid character class range", &self.src[start..end]));
        }
        let body = if name == "Any" {
            "\\x00-\\x{10FFFF}".to_string()
        } else {
            format!("\\p{{{name}}}")
        };
        Ok(if neg {
            format!("[^{body}]")
        } else {
            format!("[{body}]")
        })
    }

    /// A single-character escape (`\n`, `\x41`, `\x{263a}`, `\101`, `\.`).
    pub(super) fn escaped_char(&mut self, start: usize) -> Result<char, SyntaxError> {
        let c = self
            .peek()
            .ok_or_else(|| err("trailing backslash at end of expression", ""))?;
        self.i += 1;
        let bad = |me: &Self| err("invalid escape sequence", &me.src[start..me.pos()]);
        Ok(match c {
            'a' => '\u{7}',
            'f' => '\u{c}',
            't' => '\t',
            'n' => '\n',
            'r' => '\r',
            'v' => '\u{b}',
            '0'..='7' => {
                // a lone non-zero digit would be a backreference, which Go refuses
                if c != '0' && !self.peek().is_some_and(|d| ('0'..='7').contains(&d)) {
                    return Err(bad(self));
                }
                let mut v = c.to_digit(8).unwrap_or(0);
                for _ in 0..2 {
                    match self.peek() {
                        Some(d @ '0'..='7') => {
                            v = v * 8 + d.to_digit(8).unwrap_or(0);
                            self.i += 1;
                        }
                        _ => break,
                    }
                }
                char::from_u32(v).ok_or_else(|| bad(self))?
            }
            'x' => {
                if self.peek() == Some('{') {
                    self.i += 1;
                    let mut hex = String::new();
                    while let Some(d) = self.peek() {
                        self.i += 1;
                        if d == '}' {
                            break;
                        }
                        hex.push(d);
                    }
                    let v = u32::from_str_radix(&hex, 16).map_err(|_| bad(self))?;
                    char::from_u32(v)
                        .filter(|_| v <= 0x10FFFF)
                        .ok_or_else(|| bad(self))?
                } else {
                    let mut hex = String::new();
                    for _ in 0..2 {
                        match self.peek() {
                            Some(d) if d.is_ascii_hexdigit() => {
                                hex.push(d);
                                self.i += 1;
                            }
                            _ => return Err(bad(self)),
                        }
                    }
                    char::from_u32(u32::from_str_radix(&hex, 16).unwrap_or(0))
                        .ok_or_else(|| bad(self))?
                }
            }
            c if c.is_ascii_punctuation() => c,
            _ => return Err(bad(self)),
        })
    }
}
