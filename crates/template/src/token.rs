//! Lexer items, as text/template/parse names them.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tok {
    Text,
    LeftDelim,
    RightDelim,
    Space,
    Identifier,
    Field,
    Variable,
    String,
    RawString,
    Char,
    Number,
    Bool,
    Nil,
    Dot,
    Pipe,
    LeftParen,
    RightParen,
    Assign,
    Declare,
    Comma,
    /// Any other printable ASCII character (Go's itemChar).
    Punct,
    Comment,
    // keywords
    Block,
    Break,
    Continue,
    Define,
    Else,
    End,
    If,
    Range,
    Template,
    With,
    Eof,
    Error,
}

#[derive(Debug, Clone)]
pub struct Token {
    pub typ: Tok,
    pub pos: usize,
    pub val: String,
    pub line: usize,
}

impl Token {
    /// Go's item.String(), used in "unexpected X in Y" messages.
    pub fn describe(&self) -> String {
        match self.typ {
            Tok::Eof => "EOF".to_string(),
            Tok::Error => self.val.clone(),
            Tok::Block
            | Tok::Break
            | Tok::Continue
            | Tok::Define
            | Tok::Else
            | Tok::End
            | Tok::If
            | Tok::Range
            | Tok::Template
            | Tok::With => format!("<{}>", self.val),
            _ => {
                if self.val.chars().count() > 10 {
                    let short: String = self.val.chars().take(10).collect();
                    let q = crate::gofmt::quote(&short);
                    format!("{q}...")
                } else {
                    crate::gofmt::quote(&self.val)
                }
            }
        }
    }
}
