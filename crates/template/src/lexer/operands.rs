//! The lexer's operand scanners: identifiers, fields and variables, quoted and
//! raw strings, character constants and numbers (Go's text/template rules).

use super::*;

impl Lexer<'_> {
    pub(super) fn at_terminator(&self) -> bool {
        let Some(c) = self.peek() else { return true };
        if matches!(
            c,
            ' ' | '\t' | '\r' | '\n' | '.' | ',' | '|' | ':' | ')' | '('
        ) {
            return true;
        }
        self.rest().starts_with(RIGHT)
    }

    pub(super) fn lex_identifier(&mut self) -> bool {
        while let Some(c) = self.peek() {
            if is_alnum(c) {
                self.next();
            } else {
                break;
            }
        }
        if !self.at_terminator() {
            let c = self.peek().unwrap_or(' ');
            self.error(format!("bad character U+{:04X} '{}'", c as u32, c));
            return false;
        }
        let word = &self.src[self.start..self.pos];
        let typ = match word {
            "block" => Tok::Block,
            "break" => Tok::Break,
            "continue" => Tok::Continue,
            "define" => Tok::Define,
            "else" => Tok::Else,
            "end" => Tok::End,
            "if" => Tok::If,
            "range" => Tok::Range,
            "nil" => Tok::Nil,
            "template" => Tok::Template,
            "with" => Tok::With,
            "true" | "false" => Tok::Bool,
            _ => Tok::Identifier,
        };
        self.emit(typ);
        true
    }

    /// Returns false after reporting a bad character (Go's lexFieldOrVariable).
    pub(super) fn lex_field_or_variable(&mut self, typ: Tok) -> bool {
        if self.at_terminator() {
            if typ == Tok::Variable {
                self.emit(Tok::Variable);
            } else {
                self.emit(Tok::Dot);
            }
            return true;
        }
        while let Some(c) = self.peek() {
            if is_alnum(c) {
                self.next();
            } else {
                break;
            }
        }
        if !self.at_terminator() {
            let c = self.peek().unwrap_or(' ');
            self.error(format!("bad character U+{:04X} '{}'", c as u32, c));
            return false;
        }
        self.emit(typ);
        true
    }

    pub(super) fn lex_quote(&mut self) -> bool {
        loop {
            match self.next() {
                Some('\\') => {
                    if let Some(c) = self.next()
                        && c != '\n'
                    {
                        continue;
                    }
                    self.error("unterminated quoted string".to_string());
                    return false;
                }
                Some('\n') | None => {
                    self.error("unterminated quoted string".to_string());
                    return false;
                }
                Some('"') => break,
                Some(_) => {}
            }
        }
        self.emit(Tok::String);
        true
    }

    pub(super) fn lex_char(&mut self) -> bool {
        loop {
            match self.next() {
                Some('\\') => {
                    if let Some(c) = self.next()
                        && c != '\n'
                    {
                        continue;
                    }
                    self.error("unterminated character constant".to_string());
                    return false;
                }
                Some('\n') | None => {
                    self.error("unterminated character constant".to_string());
                    return false;
                }
                Some('\'') => break,
                Some(_) => {}
            }
        }
        self.emit(Tok::Char);
        true
    }

    pub(super) fn accept(&mut self, valid: &str) -> bool {
        if let Some(c) = self.peek()
            && valid.contains(c)
        {
            self.next();
            return true;
        }
        false
    }

    pub(super) fn accept_run(&mut self, valid: &str) {
        while self.accept(valid) {}
    }

    pub(super) fn lex_number(&mut self) -> bool {
        self.accept("+-");
        let mut digits = "0123456789_";
        if self.accept("0") {
            if self.accept("xX") {
                digits = "0123456789abcdefABCDEF_";
            } else if self.accept("oO") {
                digits = "01234567_";
            } else if self.accept("bB") {
                digits = "01_";
            }
        }
        self.accept_run(digits);
        if self.accept(".") {
            self.accept_run(digits);
        }
        if digits.len() == 11 && self.accept("eE") {
            self.accept("+-");
            self.accept_run("0123456789_");
        }
        if digits.len() == 23 && self.accept("pP") {
            self.accept("+-");
            self.accept_run("0123456789_");
        }
        self.accept("i");
        if let Some(c) = self.peek()
            && is_alnum(c)
        {
            self.next();
            let val = self.src[self.start..self.pos].to_string();
            self.error(format!("bad number syntax: {}", crate::gofmt::quote(&val)));
            return false;
        }
        let val = self.src[self.start..self.pos].to_string();
        self.emit_val(Tok::Number, val);
        true
    }
}
