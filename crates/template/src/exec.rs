//! Executes parse trees: Go text/template's walk (exec.go): actions, control flow, variables.

use std::collections::HashMap;
use std::fmt::Display;
use std::sync::Arc;

use crate::ast::{Branch, Node, Pipe, Tree};
use crate::error::Error;
use crate::gofmt;
use crate::value::Value;
use crate::{Limits, MissingKey, Templates};

/// A value plus whether Go would see it as an `interface{}` slot (map/list element) rather than a
/// concrete value: a nil there is a "nil interface", which errors on field access.
#[derive(Debug, Clone)]
pub struct Val {
    pub v: Value,
    pub iface: bool,
    /// A slice or map whose elements have concrete Go types (`[]string`, `[]int`,
    /// `map[string]string`): ranging over it yields concrete values, not `interface{}` slots.
    pub typed: bool,
}

impl Val {
    pub fn new(v: Value) -> Self {
        Val {
            v,
            iface: false,
            typed: false,
        }
    }
    pub fn iface(v: Value) -> Self {
        Val {
            v,
            iface: true,
            typed: false,
        }
    }
    fn elem(v: Value, typed: bool) -> Self {
        Val {
            v,
            iface: !typed,
            typed: false,
        }
    }
}

pub(crate) enum Flow {
    Break,
    Continue,
    Err(Box<Error>),
}

impl From<Error> for Flow {
    fn from(e: Error) -> Self {
        Flow::Err(Box::new(e))
    }
}

pub(crate) type R<T> = Result<T, Flow>;

pub struct Exec<'t> {
    pub(crate) set: &'t Templates,
    /// Templates `define`d by `tpl` strings, visible while that tpl runs.
    pub(crate) overlays: Vec<HashMap<String, Arc<Tree>>>,
    pub(crate) vars: Vec<(Arc<str>, Val)>,
    dollar: Arc<str>,
    pub(crate) out: String,
    pub(crate) depth: usize,
    pub(crate) include_depth: usize,
    /// Where Go's executor last stood (its `s.node`): the byte offset of the last argument or
    /// function evaluated; a type error after a parenthesised pipeline is reported there.
    pub(crate) last_pos: usize,
    /// Helm's includedNames: how deep each template name is nested in `include` calls.
    pub(crate) include_counts: HashMap<String, usize>,
    pub(crate) range_iters: u64,
    /// Maps replaced by mutating functions during this render: (old, new).
    pub(crate) replacements: Vec<(Value, Value)>,
    pub(crate) tree: Arc<Tree>,
    pub(crate) name: String,
}

impl<'t> Exec<'t> {
    pub(crate) fn new(set: &'t Templates, tree: Arc<Tree>) -> Self {
        Exec {
            set,
            overlays: Vec::new(),
            vars: Vec::new(),
            dollar: Arc::from("$"),
            out: String::new(),
            depth: 0,
            include_depth: 0,
            last_pos: 0,
            include_counts: HashMap::new(),
            range_iters: 0,
            replacements: Vec::new(),
            name: tree.name.clone(),
            tree,
        }
    }

    pub(crate) fn limits(&self) -> &Limits {
        &self.set.options.limits
    }

    pub(crate) fn missing_key(&self) -> MissingKey {
        self.set.options.missing_key
    }

    pub(crate) fn lookup_template(&self, name: &str) -> Option<Arc<Tree>> {
        for o in self.overlays.iter().rev() {
            if let Some(t) = o.get(name) {
                return Some(t.clone());
            }
        }
        self.set.trees.get(name).cloned()
    }

    /// An execution error at the byte offset `pos` of the current tree.
    pub(crate) fn err_at(&self, pos: usize, context: &dyn Display, msg: impl Into<String>) -> Flow {
        self.err_full(pos, context, msg.into(), None)
    }

    pub(crate) fn err_full(
        &self,
        pos: usize,
        context: &dyn Display,
        msg: String,
        user: Option<String>,
    ) -> Flow {
        let src = &self.tree.source;
        let pos = pos.min(src.len());
        let before = &src[..pos];
        let line = 1 + before.matches('\n').count();
        let col = match before.rfind('\n') {
            Some(nl) => pos - (nl + 1),
            None => pos,
        };
        Flow::Err(Box::new(Error::Exec(Box::new(crate::error::ExecError {
            name: self.name.clone(),
            file: self.tree.parse_name.clone(),
            line,
            col,
            context: context.to_string(),
            msg,
            user,
        }))))
    }

    pub(crate) fn write(&mut self, s: &str) -> R<()> {
        self.out.push_str(s);
        if let Some(max) = self.limits().max_output_bytes
            && self.out.len() > max
        {
            return Err(Flow::Err(Box::new(Error::ExecNoNode {
                name: self.name.clone(),
                msg: format!("output exceeds the limit of {max} bytes"),
            })));
        }
        Ok(())
    }

    pub(crate) fn run(&mut self, dot: Val) -> Result<(), Error> {
        self.vars.push((self.dollar.clone(), dot.clone()));
        let tree = self.tree.clone();
        match self.walk_list(&dot, &tree.root) {
            Ok(()) => Ok(()),
            Err(Flow::Err(e)) => Err(*e),
            Err(_) => Err(Error::ExecNoNode {
                name: self.name.clone(),
                msg: "break or continue outside range".into(),
            }),
        }
    }

    pub(crate) fn walk_list(&mut self, dot: &Val, nodes: &[Node]) -> R<()> {
        // the dot follows maps that a `set`/`merge` in an earlier node replaced (shared.rs)
        let mut cur: Option<Val> = None;
        let mut seen = self.replacements.len();
        for n in nodes {
            self.walk(cur.as_ref().unwrap_or(dot), n)?;
            if self.replacements.len() != seen {
                let mut v = cur.take().unwrap_or_else(|| dot.clone());
                self.catch_up(&mut v.v, seen);
                seen = self.replacements.len();
                cur = Some(v);
            }
        }
        Ok(())
    }

    fn walk(&mut self, dot: &Val, node: &Node) -> R<()> {
        match node {
            Node::Text(t) => self.write(t),
            Node::Action(pipe) => {
                let v = self.eval_pipeline(dot, pipe)?;
                if pipe.decl.is_empty() {
                    self.print_value(&v.v)?;
                }
                Ok(())
            }
            Node::If(b) => self.walk_if_or_with(false, dot, b),
            Node::With(b) => self.walk_if_or_with(true, dot, b),
            Node::Range(b) => self.walk_range(dot, b),
            Node::Template { pos, name, pipe } => {
                self.walk_template(dot, *pos, name, pipe.as_ref())
            }
            Node::Break(_) => Err(Flow::Break),
            Node::Continue(_) => Err(Flow::Continue),
        }
    }

    fn print_value(&mut self, v: &Value) -> R<()> {
        match v {
            Value::Nil => self.write("<no value>"),
            Value::String(s) => self.write(s),
            // fields reached through a pointer are addressable: a pointer-receiver String() counts
            Value::Object(o)
                if let crate::object::Object::Struct(st) = &**o
                    && let Some(text) = &st.string =>
            {
                let text = text.clone();
                self.write(&text)
            }
            other => {
                let mut s = String::new();
                gofmt::write_v(&mut s, other);
                self.write(&s)
            }
        }
    }

    fn walk_if_or_with(&mut self, with: bool, dot: &Val, b: &Branch) -> R<()> {
        let mark = self.vars.len();
        let r = (|| {
            let val = self.eval_pipeline(dot, &b.pipe)?;
            if val.v.is_true() {
                if with {
                    let nd = Val::new(val.v);
                    self.walk_list(&nd, &b.list)
                } else {
                    self.walk_list(dot, &b.list)
                }
            } else if let Some(e) = &b.else_list {
                self.walk_list(dot, e)
            } else {
                Ok(())
            }
        })();
        self.vars.truncate(mark);
        r
    }

    fn walk_range(&mut self, dot: &Val, b: &Branch) -> R<()> {
        let mark = self.vars.len();
        let r = self.walk_range_inner(dot, b);
        self.vars.truncate(mark);
        r
    }

    fn walk_range_inner(&mut self, dot: &Val, b: &Branch) -> R<()> {
        let val = self.eval_pipeline(dot, &b.pipe)?;
        // the pipeline pushed the declared variables; the loop overwrites them per iteration
        let mark = self.vars.len();
        let items: Vec<(Value, Val)> = match &val.v {
            Value::List(l) => l
                .iter()
                .enumerate()
                .map(|(i, e)| (Value::Int(i as i64), Val::elem(e.clone(), val.typed)))
                .collect(),
            Value::Map(m) => m
                .iter()
                .map(|(k, e)| (Value::String(k.clone()), Val::elem(e.clone(), val.typed)))
                .collect(),
            // text/template ranges over integers since Go 1.24; Helm 3.17 is built with Go 1.23
            Value::Int(_) | Value::I64(_) if self.set.options.helm == crate::HelmMajor::V3 => {
                let (pos, ctx) = last_node(&b.pipe, b.pos);
                return Err(self.err_at(
                    pos,
                    &ctx,
                    format!("range can't iterate over {}", val.v.to_go_string()),
                ));
            }
            Value::Int(n) | Value::I64(n) => {
                if b.pipe.decl.len() > 1 {
                    let (pos, ctx) = last_node(&b.pipe, b.pos);
                    return Err(self.err_at(
                        pos,
                        &ctx,
                        format!("can't use {n} to iterate over more than one variable"),
                    ));
                }
                let wrap = |i: i64| match &val.v {
                    Value::I64(_) => Value::I64(i),
                    _ => Value::Int(i),
                };
                (0..*n).map(|i| (wrap(i), Val::new(wrap(i)))).collect()
            }
            Value::Object(o) => match &o.as_value() {
                Value::List(l) => l
                    .iter()
                    .enumerate()
                    .map(|(i, e)| (Value::Int(i as i64), Val::new(e.clone())))
                    .collect(),
                Value::Map(m) => m
                    .iter()
                    .map(|(k, e)| (Value::String(k.clone()), Val::new(e.clone())))
                    .collect(),
                _ => Vec::new(),
            },
            Value::Nil => Vec::new(),
            other => {
                let (pos, ctx) = last_node(&b.pipe, b.pos);
                return Err(self.err_at(
                    pos,
                    &ctx,
                    format!("range can't iterate over {}", other.to_go_string()),
                ));
            }
        };
        if items.is_empty() {
            if let Some(e) = &b.else_list {
                return self.walk_list(dot, e);
            }
            return Ok(());
        }
        for (key, elem) in items {
            self.range_iters += 1;
            if let Some(max) = self.limits().max_range_iterations
                && self.range_iters > max
            {
                return Err(self.err_at(
                    b.pos,
                    &b.pipe,
                    format!("range iterations exceed the limit of {max}"),
                ));
            }
            match b.pipe.decl.len() {
                0 => {}
                n if b.pipe.is_assign => {
                    if n > 1 {
                        self.set_var(&b.pipe.decl[0], Val::new(key));
                        self.set_var(&b.pipe.decl[1], elem.clone());
                    } else {
                        self.set_var(&b.pipe.decl[0], elem.clone());
                    }
                }
                1 => self.set_top_var(mark - 1, elem.clone()),
                _ => {
                    self.set_top_var(mark - 2, Val::new(key));
                    self.set_top_var(mark - 1, elem.clone());
                }
            }
            let inner = self.vars.len();
            let r = self.walk_list(&elem, &b.list);
            self.vars.truncate(inner);
            match r {
                Ok(()) | Err(Flow::Continue) => {}
                Err(Flow::Break) => break,
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    fn set_top_var(&mut self, idx: usize, v: Val) {
        if let Some(slot) = self.vars.get_mut(idx) {
            slot.1 = v;
        }
    }

    fn walk_template(&mut self, dot: &Val, pos: usize, name: &str, pipe: Option<&Pipe>) -> R<()> {
        let Some(tree) = self.lookup_template(name) else {
            let ctx = TemplateCtx(name, pipe);
            return Err(self.err_at(
                pos,
                &ctx,
                format!("template {} not defined", gofmt::quote(name)),
            ));
        };
        if let Some(max) = self.limits().max_template_depth
            && self.depth >= max
        {
            let ctx = TemplateCtx(name, pipe);
            return Err(self.err_at(
                pos,
                &ctx,
                format!("exceeded maximum template depth ({max})"),
            ));
        }
        let new_dot = match pipe {
            Some(p) => Val::new(self.eval_pipeline(dot, p)?.v),
            None => Val::new(Value::Nil),
        };
        self.call_tree(tree, new_dot)
    }

    /// Runs a tree with a fresh variable scope, as text/template's walkTemplate does.
    pub(crate) fn call_tree(&mut self, tree: Arc<Tree>, dot: Val) -> R<()> {
        let saved_vars =
            std::mem::replace(&mut self.vars, vec![(self.dollar.clone(), dot.clone())]);
        let saved_tree = std::mem::replace(&mut self.tree, tree.clone());
        let saved_name = std::mem::replace(&mut self.name, tree.name.clone());
        self.depth += 1;
        let seen = self.replacements.len();
        let r = self.walk_list(&dot, &tree.root);
        self.depth -= 1;
        self.vars = saved_vars;
        if self.replacements.len() != seen {
            let mut vars = std::mem::take(&mut self.vars);
            for (_, v) in &mut vars {
                self.catch_up(&mut v.v, seen);
            }
            self.vars = vars;
        }
        self.tree = saved_tree;
        self.name = saved_name;
        r
    }

    pub(crate) fn var_value(&self, name: &str) -> Option<&Val> {
        self.vars
            .iter()
            .rev()
            .find(|(n, _)| &**n == name)
            .map(|(_, v)| v)
    }

    pub(crate) fn set_var(&mut self, name: &str, v: Val) -> bool {
        if let Some(slot) = self.vars.iter_mut().rev().find(|(n, _)| &**n == name) {
            slot.1 = v;
            return true;
        }
        false
    }
}

/// Context string of a `{{template}}` node, as Go prints it.
struct TemplateCtx<'a>(&'a str, Option<&'a Pipe>);

impl Display for TemplateCtx<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.1 {
            Some(p) => write!(f, "{{{{template {} {}}}}}", gofmt::quote(self.0), p),
            None => write!(f, "{{{{template {}}}}}", gofmt::quote(self.0)),
        }
    }
}

/// The node Go's executor last visited in a pipeline (its error context).
fn last_node(p: &Pipe, fallback: usize) -> (usize, String) {
    match p.cmds.last() {
        Some(c) if c.args.len() == 1 => (c.args[0].pos(), c.args[0].to_string()),
        Some(c) => (c.pos, c.to_string()),
        None => (fallback, String::new()),
    }
}
