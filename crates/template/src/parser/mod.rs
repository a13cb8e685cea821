//! Go text/template's parser (parse.go), with its error messages.

use std::sync::Arc;

use crate::ast::{Branch, Node, Tree};
use crate::error::Error;
use crate::lexer::{Lexer, Tok, Token};

mod literal;
mod pipeline;

pub use literal::{parse_number, unquote};

pub struct Parser<'a> {
    name: String,
    source: Arc<str>,
    tokens: Vec<Token>,
    idx: usize,
    last_line: usize,
    vars: Vec<String>,
    range_depth: usize,
    /// Nesting of parenthesised pipelines and control blocks; bounded so hostile input cannot
    /// exhaust the stack (Go's growable stacks need no such bound).
    depth: usize,
    action_line: usize,
    has_func: &'a dyn Fn(&str) -> bool,
    pub trees: Vec<Tree>,
}

type PResult<T> = Result<T, Error>;

const MAX_NESTING: usize = 150;

/// Parses `source` into the file's main tree (first) and every `define`/`block` tree.
pub fn parse(
    name: &str,
    source: &str,
    has_func: &dyn Fn(&str) -> bool,
) -> Result<Vec<Tree>, Error> {
    let src: Arc<str> = Arc::from(source);
    let tokens = Lexer::lex(source);
    let mut p = Parser {
        name: name.to_string(),
        source: src.clone(),
        tokens,
        idx: 0,
        last_line: 1,
        vars: vec!["$".to_string()],
        range_depth: 0,
        depth: 0,
        action_line: 0,
        has_func,
        trees: Vec::new(),
    };
    let mut root = Vec::new();
    loop {
        if p.peek().typ == Tok::Eof {
            break;
        }
        if p.peek().typ == Tok::LeftDelim {
            let save = p.idx;
            p.next();
            if p.peek_non_space().typ == Tok::Define {
                p.next_non_space();
                p.parse_definition()?;
                continue;
            }
            p.idx = save;
        }
        match p.text_or_action()? {
            Some(Node::Text(t)) if matches!(root.last(), Some(Node::Text(_))) => {
                if let Some(Node::Text(prev)) = root.last_mut() {
                    prev.push_str(&t);
                }
            }
            Some(n) => root.push(n),
            None => {}
        }
    }
    let main = Tree {
        name: name.to_string(),
        parse_name: name.to_string(),
        source: src,
        root,
    };
    let mut out = vec![main];
    out.append(&mut p.trees);
    Ok(out)
}

enum Item {
    Node(Node),
    End,
    Else(usize),
}

impl Parser<'_> {
    fn peek(&self) -> &Token {
        &self.tokens[self.idx.min(self.tokens.len() - 1)]
    }

    fn next(&mut self) -> Token {
        let t = self.tokens[self.idx.min(self.tokens.len() - 1)].clone();
        if self.idx < self.tokens.len() {
            self.idx += 1;
        }
        self.last_line = t.line;
        t
    }

    fn backup(&mut self) {
        self.idx -= 1;
    }

    fn next_non_space(&mut self) -> Token {
        loop {
            let t = self.next();
            if t.typ != Tok::Space {
                return t;
            }
        }
    }

    fn peek_non_space(&mut self) -> Token {
        let t = self.next_non_space();
        self.backup();
        t
    }

    fn err<T>(&self, msg: impl Into<String>) -> PResult<T> {
        Err(Error::Parse {
            name: self.name.clone(),
            line: self.last_line,
            msg: msg.into(),
        })
    }

    fn unexpected<T>(&self, t: &Token, context: &str) -> PResult<T> {
        if t.typ == Tok::Error {
            let mut extra = String::new();
            if self.action_line != 0 && self.action_line != t.line {
                extra = format!(" in {context}");
                if t.val.ends_with(" action") {
                    extra = extra[" in action".len().min(extra.len())..].to_string();
                }
            }
            return self.err(format!("{}{}", t.val, extra));
        }
        self.err(format!("unexpected {} in {}", t.describe(), context))
    }

    fn expect(&mut self, typ: Tok, context: &str) -> PResult<Token> {
        let t = self.next_non_space();
        if t.typ != typ {
            return self.unexpected(&t, context);
        }
        Ok(t)
    }

    fn parse_definition(&mut self) -> PResult<()> {
        let context = "define clause";
        let t = self.next_non_space();
        if t.typ != Tok::String && t.typ != Tok::RawString {
            return self.unexpected(&t, context);
        }
        let name = self.unquote(&t.val)?;
        self.expect(Tok::RightDelim, context)?;
        let saved_vars = std::mem::replace(&mut self.vars, vec!["$".to_string()]);
        let (list, end) = self.item_list()?;
        self.vars = saved_vars;
        if !matches!(end, Item::End) {
            return self.err(format!("unexpected {} in {}", item_str(&end), context));
        }
        self.add_tree(name, list)
    }

    fn add_tree(&mut self, name: String, root: Vec<Node>) -> PResult<()> {
        let tree = Tree {
            name: name.clone(),
            parse_name: self.name.clone(),
            source: self.source.clone(),
            root,
        };
        if let Some(pos) = self.trees.iter().position(|t| t.name == name) {
            if self.trees[pos].is_empty() {
                self.trees[pos] = tree;
                return Ok(());
            }
            if !tree.is_empty() {
                return self.err(format!(
                    "template: multiple definition of template {}",
                    crate::gofmt::quote(&name)
                ));
            }
            return Ok(());
        }
        self.trees.push(tree);
        Ok(())
    }

    fn item_list(&mut self) -> PResult<(Vec<Node>, Item)> {
        let mut list = Vec::new();
        while self.peek_non_space().typ != Tok::Eof {
            match self.text_or_action_item()? {
                Some(Item::Node(n)) => list.push(n),
                Some(end) => return Ok((list, end)),
                None => {}
            }
        }
        self.err("unexpected EOF")
    }

    fn text_or_action(&mut self) -> PResult<Option<Node>> {
        match self.text_or_action_item()? {
            Some(Item::Node(n)) => Ok(Some(n)),
            Some(other) => self.err(format!("unexpected {}", item_str(&other))),
            None => Ok(None),
        }
    }

    fn text_or_action_item(&mut self) -> PResult<Option<Item>> {
        let t = self.next_non_space();
        match t.typ {
            Tok::Text => Ok(Some(Item::Node(Node::Text(t.val)))),
            Tok::LeftDelim => {
                self.action_line = t.line;
                let r = self.action();
                self.action_line = 0;
                r.map(Some)
            }
            Tok::Comment => Ok(None),
            _ => self.unexpected(&t, "input"),
        }
    }

    fn action(&mut self) -> PResult<Item> {
        let t = self.next_non_space();
        match t.typ {
            Tok::Block => return self.block_control(t.pos),
            Tok::Break | Tok::Continue => {
                let word = if t.typ == Tok::Break {
                    "break"
                } else {
                    "continue"
                };
                let ctx = format!("{{{{{word}}}}}");
                let n = self.next_non_space();
                if n.typ != Tok::RightDelim {
                    return self.unexpected(&n, &ctx);
                }
                if self.range_depth == 0 {
                    return self.err(format!("{ctx} outside {{{{range}}}}"));
                }
                return Ok(Item::Node(if t.typ == Tok::Break {
                    Node::Break(t.pos)
                } else {
                    Node::Continue(t.pos)
                }));
            }
            Tok::Else => {
                let p = self.peek_non_space();
                if p.typ == Tok::If || p.typ == Tok::With {
                    return Ok(Item::Else(p.pos));
                }
                self.expect(Tok::RightDelim, "else")?;
                return Ok(Item::Else(t.pos));
            }
            Tok::End => {
                self.expect(Tok::RightDelim, "end")?;
                return Ok(Item::End);
            }
            Tok::If => return self.control("if", t.pos).map(|b| Item::Node(Node::If(b))),
            Tok::Range => {
                return self
                    .control("range", t.pos)
                    .map(|b| Item::Node(Node::Range(b)));
            }
            Tok::With => {
                return self
                    .control("with", t.pos)
                    .map(|b| Item::Node(Node::With(b)));
            }
            Tok::Template => return self.template_control(t.pos),
            _ => {}
        }
        self.backup();
        let pipe = self.pipeline("command", Tok::RightDelim)?;
        Ok(Item::Node(Node::Action(pipe)))
    }

    fn control(&mut self, context: &str, pos: usize) -> PResult<Branch> {
        self.depth += 1;
        let r = if self.depth > MAX_NESTING {
            self.err(format!("nesting deeper than {MAX_NESTING} levels"))
        } else {
            self.control_inner(context, pos)
        };
        self.depth -= 1;
        r
    }

    fn control_inner(&mut self, context: &str, pos: usize) -> PResult<Branch> {
        let nvars = self.vars.len();
        let pipe = self.pipeline(context, Tok::RightDelim)?;
        if context == "range" {
            self.range_depth += 1;
        }
        let (list, next) = self.item_list()?;
        if context == "range" {
            self.range_depth -= 1;
        }
        let mut else_list = None;
        if let Item::Else(epos) = next {
            let p = self.peek_non_space();
            if context == "if" && p.typ == Tok::If {
                self.next_non_space();
                let inner = self.control("if", epos)?;
                else_list = Some(vec![Node::If(inner)]);
            } else if context == "with" && p.typ == Tok::With {
                self.next_non_space();
                let inner = self.control("with", epos)?;
                else_list = Some(vec![Node::With(inner)]);
            } else {
                let (l, end) = self.item_list()?;
                if !matches!(end, Item::End) {
                    return self.err(format!("expected end; found {}", item_str(&end)));
                }
                else_list = Some(l);
            }
        }
        self.vars.truncate(nvars);
        Ok(Branch {
            pos,
            pipe,
            list,
            else_list,
        })
    }

    fn template_name(&mut self, t: &Token, context: &str) -> PResult<String> {
        match t.typ {
            Tok::String | Tok::RawString => self.unquote(&t.val),
            _ => self.unexpected(t, context),
        }
    }

    fn template_control(&mut self, _pos: usize) -> PResult<Item> {
        let context = "template clause";
        let t = self.next_non_space();
        let pos = t.pos;
        let name = self.template_name(&t, context)?;
        let pipe = if self.next_non_space().typ != Tok::RightDelim {
            self.backup();
            Some(self.pipeline(context, Tok::RightDelim)?)
        } else {
            None
        };
        Ok(Item::Node(Node::Template { pos, name, pipe }))
    }

    fn block_control(&mut self, _pos: usize) -> PResult<Item> {
        let context = "block clause";
        let t = self.next_non_space();
        let pos = t.pos;
        let name = self.template_name(&t, context)?;
        let pipe = self.pipeline(context, Tok::RightDelim)?;
        let saved_vars = std::mem::replace(&mut self.vars, vec!["$".to_string()]);
        let saved_depth = std::mem::replace(&mut self.range_depth, 0);
        let (list, end) = self.item_list()?;
        self.vars = saved_vars;
        self.range_depth = saved_depth;
        if !matches!(end, Item::End) {
            return self.err(format!("unexpected {} in {}", item_str(&end), context));
        }
        self.add_tree(name.clone(), list)?;
        Ok(Item::Node(Node::Template {
            pos,
            name,
            pipe: Some(pipe),
        }))
    }
}

fn item_str(i: &Item) -> &'static str {
    match i {
        Item::End => "{{end}}",
        Item::Else(_) => "{{else}}",
        Item::Node(_) => "node",
    }
}
