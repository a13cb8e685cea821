//! Go's regexp (RE2) syntax, parsed as Go's regexp/syntax parses it and rewritten for the
//! `regex` crate: Go's `\d \s \w \b` are ASCII, `[\w-.]` puts a literal `-` after a class,
//! `{` that starts no repeat is a literal, Rust's class set operators are plain characters in
//! Go. Errors come back worded as Go's: `error parsing regexp: missing closing ): `(``.

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

/// A Go syntax error: Go's code text and the offending expression.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyntaxError {
    pub code: &'static str,
    pub expr: String,
}

impl std::fmt::Display for SyntaxError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "error parsing regexp: {}: `{}`", self.code, self.expr)
    }
}

mod class;
mod escape;

use class::{perl_class, push_escaped};

const MAX_REPEAT: u32 = 1000;

struct Tr<'a> {
    src: &'a str,
    chars: Vec<(usize, char)>,
    i: usize,
    out: String,
    depth: usize,
    /// Whether the last emitted item can take a repetition operator.
    can_repeat: bool,
    /// The last item was itself a repetition (Go rejects `**`, `+*`...).
    last_repeat: Option<usize>,
}

fn err(code: &'static str, expr: impl Into<String>) -> SyntaxError {
    SyntaxError {
        code,
        expr: expr.into(),
    }
}

impl Tr<'_> {
    fn peek(&self) -> Option<char> {
        self.chars.get(self.i).map(|&(_, c)| c)
    }

    fn peek_at(&self, k: usize) -> Option<char> {
        self.chars.get(self.i + k).map(|&(_, c)| c)
    }

    fn pos(&self) -> usize {
        self.chars.get(self.i).map_or(self.src.len(), |&(p, _)| p)
    }

    fn rest(&self) -> &str {
        &self.src[self.pos()..]
    }

    fn literal(&mut self, c: char) {
        push_escaped(&mut self.out, c);
        self.can_repeat = true;
        self.last_repeat = None;
    }

    fn item(&mut self, s: &str) {
        self.out.push_str(s);
        self.can_repeat = true;
        self.last_repeat = None;
    }

    fn parse(&mut self) -> Result<(), SyntaxError> {
        while let Some(c) = self.peek() {
            match c {
                '(' => self.group()?,
                ')' => {
                    if self.depth == 0 {
                        return Err(err("unexpected )", self.src));
                    }
                    return Ok(());
                }
                '|' => {
                    self.i += 1;
                    self.out.push('|');
                    self.can_repeat = false;
                    self.last_repeat = None;
                }
                '*' | '+' | '?' => {
                    let start = self.pos();
                    self.i += 1;
                    let mut op = c.to_string();
                    if self.peek() == Some('?') {
                        self.i += 1;
                        op.push('?');
                    }
                    self.repeat(start, &op)?;
                }
                '{' => {
                    let start = self.pos();
                    match self.counted() {
                        Some((min, max, used)) => {
                            let text: String = self.chars[self.i..self.i + used]
                                .iter()
                                .map(|&(_, c)| c)
                                .collect();
                            if min > MAX_REPEAT || max.is_some_and(|m| m > MAX_REPEAT || m < min) {
                                return Err(err("invalid repeat count", text));
                            }
                            self.i += used;
                            let mut op = text;
                            if self.peek() == Some('?') {
                                self.i += 1;
                                op.push('?');
                            }
                            self.repeat(start, &op)?;
                        }
                        None => {
                            self.i += 1;
                            self.literal('{');
                        }
                    }
                }
                '[' => self.class()?,
                '\\' => self.escape()?,
                '.' => {
                    self.i += 1;
                    self.item(".");
                }
                '^' | '$' => {
                    self.i += 1;
                    self.out.push(c);
                    self.can_repeat = true;
                    self.last_repeat = None;
                }
                c => {
                    self.i += 1;
                    self.literal(c);
                }
            }
        }
        Ok(())
    }

    fn repeat(&mut self, start: usize, op: &str) -> Result<(), SyntaxError> {
        if let Some(prev) = self.last_repeat {
            let end = self.pos();
            return Err(err(
                "invalid nested repetition operator",
                &self.src[prev..end],
            ));
        }
        if !self.can_repeat {
            return Err(err("missing argument to repetition operator", op));
        }
        self.out.push_str(op);
        self.last_repeat = Some(start);
        Ok(())
    }

    /// `{n}`, `{n,}`, `{n,m}` at the cursor: (min, max, chars used).
    fn counted(&self) -> Option<(u32, Option<u32>, usize)> {
        let mut k = 1;
        let num = |k: &mut usize| -> Option<u32> {
            let start = *k;
            while self.peek_at(*k).is_some_and(|c| c.is_ascii_digit()) {
                *k += 1;
            }
            if *k == start {
                return None;
            }
            let s: String = (start..*k).filter_map(|j| self.peek_at(j)).collect();
            Some(s.parse::<u32>().unwrap_or(u32::MAX))
        };
        let min = num(&mut k)?;
        let max = if self.peek_at(k) == Some(',') {
            k += 1;
            if self.peek_at(k) == Some('}') {
                None
            } else {
                Some(num(&mut k)?)
            }
        } else {
            Some(min)
        };
        if self.peek_at(k) != Some('}') {
            return None;
        }
        Some((min, max, k + 1))
    }

    fn group(&mut self) -> Result<(), SyntaxError> {
        let start = self.pos();
        self.i += 1;
        if self.peek() == Some('?') {
            let rest = self.rest().to_string();
            if let Some(after) = rest.strip_prefix("?P<").or_else(|| rest.strip_prefix("?<")) {
                let Some(end) = after.find('>') else {
                    return Err(err("invalid named capture", &self.src[start..]));
                };
                let name = &after[..end];
                let prefix_len = rest.len() - after.len();
                if name.is_empty() || !name.chars().all(|c| c.is_alphanumeric() || c == '_') {
                    let close = self.pos() + prefix_len + end + 1;
                    return Err(err("invalid named capture", &self.src[start..close]));
                }
                let used = rest[..prefix_len + end + 1].chars().count();
                self.i += used;
                self.out.push_str(&format!("(?P<{name}>"));
            } else {
                // flags: (?i) (?i:...) (?-s) ...
                let mut k = 1;
                let mut flags = String::new();
                let mut neg = false;
                loop {
                    match self.peek_at(k) {
                        Some(c @ ('i' | 'm' | 's' | 'U')) => {
                            flags.push(c);
                            k += 1;
                        }
                        Some('-') if !neg => {
                            neg = true;
                            flags.push('-');
                            k += 1;
                        }
                        Some(c @ (')' | ':')) => {
                            if flags.ends_with('-') {
                                let end = self
                                    .chars
                                    .get(self.i + k + 1)
                                    .map_or(self.src.len(), |&(p, _)| p);
                                return Err(err(
                                    "invalid or unsupported Perl syntax",
                                    &self.src[start..end],
                                ));
                            }
                            self.i += k + 1;
                            if c == ')' {
                                if !flags.is_empty() {
                                    self.out.push_str(&format!("(?{flags})"));
                                }
                                self.can_repeat = false;
                                self.last_repeat = None;
                                return Ok(());
                            }
                            self.out.push_str(&format!("(?{flags}:"));
                            break;
                        }
                        _ => {
                            let end = self
                                .chars
                                .get(self.i + k + 1)
                                .map_or(self.src.len(), |&(p, _)| p);
                            return Err(err(
                                "invalid or unsupported Perl syntax",
                                &self.src[start..end.min(self.src.len())],
                            ));
                        }
                    }
                }
            }
        } else {
            self.out.push('(');
        }
        self.depth += 1;
        self.can_repeat = false;
        self.last_repeat = None;
        self.parse()?;
        if self.peek() != Some(')') {
            return Err(err("missing closing )", self.src));
        }
        self.i += 1;
        self.depth -= 1;
        self.out.push(')');
        self.can_repeat = true;
        self.last_repeat = None;
        Ok(())
    }
}

/// Translates a Go regular expression to the `regex` crate's syntax.
pub fn translate(src: &str) -> Result<String, SyntaxError> {
    let mut t = Tr {
        src,
        chars: src.char_indices().collect(),
        i: 0,
        out: String::new(),
        depth: 0,
        can_repeat: false,
        last_repeat: None,
    };
    t.parse()?;
    if t.i < t.chars.len() {
        return Err(err("unexpected )", src));
    }
    Ok(t.out)
}

/// Compiles a Go regular expression (cached: templates call the same ones again and again).
pub fn compile(src: &str) -> Result<regex::Regex, String> {
    static CACHE: OnceLock<Mutex<HashMap<String, Result<regex::Regex, String>>>> = OnceLock::new();
    let cache = CACHE.get_or_init(|| Mutex::new(HashMap::new()));
    if let Ok(c) = cache.lock()
        && let Some(r) = c.get(src)
    {
        return r.clone();
    }
    let r = translate(src).map_err(|e| e.to_string()).and_then(|t| {
        regex::RegexBuilder::new(&t)
            .size_limit(1 << 24)
            .build()
            .map_err(|_| "error parsing regexp: expression too large".to_string())
    });
    if let Ok(mut c) = cache.lock() {
        if c.len() > 1024 {
            c.clear();
        }
        c.insert(src.to_string(), r.clone());
    }
    r
}

/// regexp.MustCompile's panic text, as Sprig's non-must functions surface it.
pub fn must_compile_message(src: &str, e: &str) -> String {
    let q = if src.contains('`') || src.chars().any(|c| c.is_control() && c != '\t') {
        crate::gofmt::quote(src)
    } else {
        format!("`{src}`")
    };
    format!("regexp: Compile({q}): {e}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(re: &str, s: &str) -> bool {
        compile(re).expect(re).is_match(s)
    }

    #[test]
    fn go_syntax_that_rust_refuses() {
        assert!(m("^[\\w-\\.]+$", "a-b.c"));
        assert!(!m("^\\w+$", "héllo"));
        assert!(m("a{", "a{"));
        assert!(m("[a&&b]", "&"));
        assert!(m("x{2}", "xx"));
        assert!(m("\\Qa.b\\E", "a.b"));
        assert!(!m("\\Qa.b\\E", "axb"));
    }

    #[test]
    fn go_error_texts() {
        let e = |re: &str| compile(re).expect_err(re);
        assert_eq!(e("("), "error parsing regexp: missing closing ): `(`");
        assert_eq!(e("a)"), "error parsing regexp: unexpected ): `a)`");
        assert_eq!(e("["), "error parsing regexp: missing closing ]: `[`");
        assert_eq!(
            e("[z-a]"),
            "error parsing regexp: invalid character class range: `z-a`"
        );
        assert_eq!(
            e("a**"),
            "error parsing regexp: invalid nested repetition operator: `**`"
        );
        assert_eq!(
            e("*"),
            "error parsing regexp: missing argument to repetition operator: `*`"
        );
        assert_eq!(
            e("\\q"),
            "error parsing regexp: invalid escape sequence: `\\q`"
        );
        assert_eq!(
            e("a{1001}"),
            "error parsing regexp: invalid repeat count: `{1001}`"
        );
    }
}
