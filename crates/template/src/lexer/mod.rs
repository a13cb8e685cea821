//! Go text/template's lexer: text, `{{ }}` actions with `{{-`/`-}}` trimming, comments, tokens.

pub use crate::token::{Tok, Token};

mod operands;

const LEFT: &str = "{{";
const RIGHT: &str = "}}";

fn is_space(c: u8) -> bool {
    matches!(c, b' ' | b'\t' | b'\r' | b'\n')
}

fn is_alnum(c: char) -> bool {
    c == '_' || c.is_alphanumeric()
}

pub struct Lexer<'a> {
    src: &'a str,
    pos: usize,
    start: usize,
    line: usize,
    start_line: usize,
    paren_depth: i32,
    pub tokens: Vec<Token>,
}

impl<'a> Lexer<'a> {
    pub fn lex(src: &'a str) -> Vec<Token> {
        let mut l = Lexer {
            src,
            pos: 0,
            start: 0,
            line: 1,
            start_line: 1,
            paren_depth: 0,
            tokens: Vec::new(),
        };
        l.run();
        l.tokens
    }

    fn emit(&mut self, typ: Tok) {
        let val = self.src[self.start..self.pos].to_string();
        self.tokens.push(Token {
            typ,
            pos: self.start,
            val,
            line: self.start_line,
        });
        self.start = self.pos;
        self.start_line = self.line;
    }

    fn emit_val(&mut self, typ: Tok, val: String) {
        self.tokens.push(Token {
            typ,
            pos: self.start,
            val,
            line: self.start_line,
        });
        self.start = self.pos;
        self.start_line = self.line;
    }

    fn error(&mut self, msg: String) {
        self.tokens.push(Token {
            typ: Tok::Error,
            pos: self.start,
            val: msg,
            line: self.start_line,
        });
    }

    fn ignore(&mut self) {
        self.line += self.src[self.start..self.pos].matches('\n').count();
        self.start = self.pos;
        self.start_line = self.line;
    }

    fn peek(&self) -> Option<char> {
        self.src[self.pos..].chars().next()
    }

    fn next(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.pos += c.len_utf8();
        if c == '\n' {
            self.line += 1;
        }
        Some(c)
    }

    fn backup(&mut self, c: char) {
        self.pos -= c.len_utf8();
        if c == '\n' {
            self.line -= 1;
        }
    }

    fn rest(&self) -> &str {
        &self.src[self.pos..]
    }

    /// `{{- ` (trim marker plus a space) right after the left delimiter.
    fn left_trim_len(s: &str) -> bool {
        let b = s.as_bytes();
        b.len() >= 2 && b[0] == b'-' && is_space(b[1])
    }

    /// ` -}}` at s: returns true when a right trim marker begins here.
    fn at_right_trim(s: &str) -> bool {
        let b = s.as_bytes();
        b.len() >= 4 && is_space(b[0]) && b[1] == b'-' && b[2] == b'}' && b[3] == b'}'
    }

    fn run(&mut self) {
        loop {
            // text
            match self.rest().find(LEFT) {
                Some(off) => {
                    let delim_pos = self.pos + off;
                    let after = &self.src[delim_pos + LEFT.len()..];
                    let trim = Self::left_trim_len(after);
                    let mut text_end = delim_pos;
                    if trim {
                        text_end = self.src[..delim_pos]
                            .trim_end_matches([' ', '\t', '\r', '\n'])
                            .len()
                            .max(self.start);
                    }
                    self.pos = text_end;
                    if self.pos > self.start {
                        let text = self.src[self.start..self.pos].to_string();
                        let lines = text.matches('\n').count();
                        self.tokens.push(Token {
                            typ: Tok::Text,
                            pos: self.start,
                            val: text,
                            line: self.start_line,
                        });
                        self.line += lines;
                        self.start = self.pos;
                        self.start_line = self.line;
                    }
                    self.pos = delim_pos;
                    self.ignore();
                    if !self.lex_left_delim(trim) {
                        return;
                    }
                }
                None => {
                    self.pos = self.src.len();
                    let mut eof_line = self.line;
                    if self.pos > self.start {
                        let text = self.src[self.start..].to_string();
                        // Go's lexer counts the text's newlines before it emits EOF
                        eof_line = self.start_line + text.matches('\n').count();
                        self.tokens.push(Token {
                            typ: Tok::Text,
                            pos: self.start,
                            val: text,
                            line: self.start_line,
                        });
                    }
                    self.start = self.pos;
                    self.tokens.push(Token {
                        typ: Tok::Eof,
                        pos: self.pos,
                        val: String::new(),
                        line: eof_line.max(self.line),
                    });
                    return;
                }
            }
        }
    }

    /// Returns false when lexing must stop (error or EOF emitted).
    fn lex_left_delim(&mut self, trim: bool) -> bool {
        self.pos += LEFT.len();
        let trim_len = if trim { 2 } else { 0 };
        let after = &self.src[self.pos + trim_len..];
        if after.starts_with("/*") {
            self.pos += trim_len;
            self.ignore();
            return self.lex_comment();
        }
        self.emit(Tok::LeftDelim);
        self.pos += trim_len;
        self.ignore();
        self.paren_depth = 0;
        self.lex_inside()
    }

    fn lex_comment(&mut self) -> bool {
        self.pos += 2;
        let Some(end) = self.rest().find("*/") else {
            self.error("unclosed comment".to_string());
            return false;
        };
        self.pos += end + 2;
        let (delim, trim) = self.at_right_delim();
        if !delim {
            self.error("comment ends before closing delimiter".to_string());
            return false;
        }
        self.emit(Tok::Comment);
        if trim {
            self.pos += 2;
        }
        self.pos += RIGHT.len();
        if trim {
            self.trim_following();
        }
        self.ignore();
        true
    }

    fn at_right_delim(&self) -> (bool, bool) {
        let r = self.rest();
        if Self::at_right_trim(r) {
            return (true, true);
        }
        (r.starts_with(RIGHT), false)
    }

    fn trim_following(&mut self) {
        let r = self.rest();
        let n = r.len() - r.trim_start_matches([' ', '\t', '\r', '\n']).len();
        for _ in 0..n {
            self.next();
        }
    }

    fn lex_inside(&mut self) -> bool {
        loop {
            let (delim, trim) = self.at_right_delim();
            if delim && self.paren_depth == 0 {
                if trim {
                    // the space before " -}}"
                    self.pos += 1;
                    self.emit(Tok::Space);
                    self.pos += 1;
                    self.ignore();
                }
                self.pos += RIGHT.len();
                self.emit(Tok::RightDelim);
                if trim {
                    self.trim_following();
                    self.ignore();
                }
                return true;
            }
            if delim && self.paren_depth > 0 {
                // Go reports the unclosed paren when the action closes
                self.error("unclosed left paren".to_string());
                return false;
            }
            let Some(c) = self.next() else {
                self.error("unclosed action".to_string());
                return false;
            };
            match c {
                ' ' | '\t' | '\r' | '\n' => {
                    while let Some(c) = self.peek() {
                        if !matches!(c, ' ' | '\t' | '\r' | '\n')
                            || Self::at_right_trim(self.rest())
                        {
                            break;
                        }
                        self.next();
                    }
                    self.emit(Tok::Space);
                }
                '=' => self.emit(Tok::Assign),
                ':' => {
                    if self.peek() != Some('=') {
                        self.error("expected :=".to_string());
                        return false;
                    }
                    self.next();
                    self.emit(Tok::Declare);
                }
                '|' => self.emit(Tok::Pipe),
                '"' => {
                    if !self.lex_quote() {
                        return false;
                    }
                }
                '`' => match self.rest().find('`') {
                    Some(end) => {
                        for _ in 0..self.src[self.pos..self.pos + end + 1].chars().count() {
                            self.next();
                        }
                        self.emit(Tok::RawString);
                    }
                    None => {
                        self.error("unterminated raw quoted string".to_string());
                        return false;
                    }
                },
                '$' => {
                    if !self.lex_field_or_variable(Tok::Variable) {
                        return false;
                    }
                }
                '\'' => {
                    if !self.lex_char() {
                        return false;
                    }
                }
                '.' => {
                    if let Some(d) = self.peek()
                        && d.is_ascii_digit()
                    {
                        self.backup(c);
                        if !self.lex_number() {
                            return false;
                        }
                        continue;
                    }
                    if !self.lex_field_or_variable(Tok::Field) {
                        return false;
                    }
                }
                '+' | '-' | '0'..='9' => {
                    self.backup(c);
                    if !self.lex_number() {
                        return false;
                    }
                }
                '(' => {
                    self.paren_depth += 1;
                    self.emit(Tok::LeftParen);
                }
                ')' => {
                    self.paren_depth -= 1;
                    if self.paren_depth < 0 {
                        self.error("unexpected right paren".to_string());
                        return false;
                    }
                    self.emit(Tok::RightParen);
                }
                ',' => self.emit(Tok::Comma),
                c if is_alnum(c) => {
                    self.backup(c);
                    if !self.lex_identifier() {
                        return false;
                    }
                }
                // Go's itemChar: printable ASCII the parser will reject in context
                c if c.is_ascii() && !c.is_ascii_control() => self.emit(Tok::Punct),
                c => {
                    self.error(format!(
                        "unrecognized character in action: U+{:04X}",
                        c as u32
                    ));
                    return false;
                }
            }
        }
    }
}
