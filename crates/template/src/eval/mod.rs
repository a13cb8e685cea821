//! Pipelines, commands, arguments, fields and function calls (exec.go's eval* family).

use crate::MissingKey;
use crate::ast::{Arg, Command, Pipe};
use crate::exec::{Exec, Flow, R, Val};
use crate::funcs::{self, FnErr, P};
use crate::gofmt;
use crate::object::Lookup;
use crate::value::Value;

mod call;

impl Exec<'_> {
    pub(crate) fn eval_pipeline(&mut self, dot: &Val, pipe: &Pipe) -> R<Val> {
        let mut value: Option<Val> = None;
        for cmd in &pipe.cmds {
            let mut v = self.eval_command(dot, cmd, value.take())?;
            // Go digs the concrete value out of an interface{} after each stage
            v.iface = false;
            value = Some(v);
        }
        let value = value.unwrap_or_else(|| Val::new(Value::Nil));
        for name in &pipe.decl {
            if pipe.is_assign {
                if !self.set_var(name, value.clone()) {
                    let last = pipe
                        .cmds
                        .last()
                        .map(|c| (c.pos, c.to_string()))
                        .unwrap_or_default();
                    return Err(self.err_at(
                        last.0,
                        &last.1,
                        format!("undefined variable: {name}"),
                    ));
                }
            } else {
                self.vars.push((name.clone(), value.clone()));
            }
        }
        Ok(value)
    }

    fn eval_command(&mut self, dot: &Val, cmd: &Command, fin: Option<Val>) -> R<Val> {
        let first = &cmd.args[0];
        match first {
            Arg::Field { idents, .. } => {
                self.eval_field_chain(dot, dot.clone(), first, idents, &cmd.args, fin)
            }
            Arg::Chain { node, fields, .. } => {
                if matches!(**node, Arg::Nil(_)) {
                    return Err(self.err_at(
                        first.pos(),
                        first,
                        format!("indirection through explicit nil in {first}"),
                    ));
                }
                let recv = Val::new(self.eval_arg(dot, P::Any, node)?);
                self.eval_field_chain(dot, recv, first, fields, &cmd.args, fin)
            }
            Arg::Identifier { name, pos, func } => {
                self.eval_function(dot, (name, *func), *pos, cmd, &cmd.args[1..], fin)
            }
            Arg::Variable { idents, .. } => {
                let v = self.variable(first, &idents[0])?;
                if idents.len() == 1 {
                    self.not_a_function(&cmd.args, &fin)?;
                    return Ok(v);
                }
                self.eval_field_chain(dot, v, first, &idents[1..], &cmd.args, fin)
            }
            Arg::Pipe(p) => {
                self.not_a_function(&cmd.args, &fin)?;
                self.eval_pipeline(dot, p)
            }
            Arg::Nil(pos) => Err(self.err_at(*pos, first, "nil is not a command")),
            Arg::Dot(_) => {
                self.not_a_function(&cmd.args, &fin)?;
                Ok(Val::new(dot.v.clone()))
            }
            _ => {
                self.not_a_function(&cmd.args, &fin)?;
                self.eval_constant(first).map(Val::new)
            }
        }
    }

    fn not_a_function(&self, args: &[Arg], fin: &Option<Val>) -> R<()> {
        if args.len() > 1 || fin.is_some() {
            return Err(self.err_at(
                args[0].pos(),
                &args[0],
                format!("can't give argument to non-function {}", args[0]),
            ));
        }
        Ok(())
    }

    fn eval_constant(&self, a: &Arg) -> R<Value> {
        Ok(match a {
            Arg::Bool(_, b) => Value::Bool(*b),
            Arg::Dot(_) => Value::Nil,
            Arg::String { text, .. } => Value::String(text.clone()),
            Arg::Number { num, text, pos } => {
                if num.float_literal {
                    Value::Float(num.float)
                } else if num.is_int {
                    Value::Int(num.int)
                } else {
                    return Err(self.err_at(*pos, a, format!("{text} overflows int")));
                }
            }
            _ => Value::Nil,
        })
    }

    fn variable(&self, node: &Arg, name: &str) -> R<Val> {
        match self.var_value(name) {
            Some(v) => Ok(v.clone()),
            None => Err(self.err_at(node.pos(), node, format!("undefined variable: {name}"))),
        }
    }

    fn eval_field_chain(
        &mut self,
        dot: &Val,
        mut recv: Val,
        node: &Arg,
        idents: &[String],
        args: &[Arg],
        fin: Option<Val>,
    ) -> R<Val> {
        let n = idents.len();
        for ident in &idents[..n - 1] {
            recv = self.eval_field(dot, ident, node, &[], None, recv)?;
        }
        self.eval_field(dot, &idents[n - 1], node, args, fin, recv)
    }

    fn eval_field(
        &mut self,
        dot: &Val,
        name: &str,
        node: &Arg,
        args: &[Arg],
        fin: Option<Val>,
        recv: Val,
    ) -> R<Val> {
        let has_args = args.len() > 1 || fin.is_some();
        match &recv.v {
            Value::Object(o) => {
                let o = o.clone();
                let mut argv = Vec::new();
                for a in args.iter().skip(1) {
                    argv.push(self.eval_arg(dot, P::Any, a)?);
                }
                if let Some(f) = fin {
                    argv.push(f.v);
                }
                match o.lookup(name, &argv) {
                    Lookup::Found(v) => Ok(Val::new(v)),
                    Lookup::BadArgs(want) => Err(self.err_at(
                        node.pos(),
                        node,
                        format!(
                            "wrong number of args for {name}: want {want} got {}",
                            argv.len()
                        ),
                    )),
                    Lookup::NotMethod => Err(self.err_at(
                        node.pos(),
                        node,
                        format!("{name} has arguments but cannot be invoked as function"),
                    )),
                    Lookup::Missing => Err(self.err_at(
                        node.pos(),
                        node,
                        format!("can't evaluate field {name} in type {}", o.type_name()),
                    )),
                }
            }
            Value::Map(m) => {
                if has_args {
                    return Err(self.err_at(
                        node.pos(),
                        node,
                        format!("{name} is not a method but has arguments"),
                    ));
                }
                match m.get(name) {
                    Some(v) => Ok(Val::iface(v.clone())),
                    None => match self.missing_key() {
                        MissingKey::Zero => Ok(Val::iface(Value::Nil)),
                        MissingKey::Invalid => Ok(Val::new(Value::Nil)),
                        MissingKey::Error => Err(self.err_at(
                            node.pos(),
                            node,
                            format!("map has no entry for key {}", gofmt::quote(name)),
                        )),
                    },
                }
            }
            Value::Nil if !recv.iface => {
                if self.missing_key() == MissingKey::Error {
                    return Err(self.err_at(
                        node.pos(),
                        node,
                        format!("nil data; no entry for key {}", gofmt::quote(name)),
                    ));
                }
                Ok(Val::new(Value::Nil))
            }
            Value::Nil => Err(self.err_at(
                node.pos(),
                node,
                format!("nil pointer evaluating interface {{}}.{name}"),
            )),
            other => {
                let t = if recv.iface {
                    "interface {}"
                } else {
                    other.type_name()
                };
                Err(self.err_at(
                    node.pos(),
                    node,
                    format!("can't evaluate field {name} in type {t}"),
                ))
            }
        }
    }

    /// evalArg: an argument converted to the parameter type `typ`.
    /// An argument with whether Go would hold it in an interface slot.
    fn eval_arg_val(&mut self, dot: &Val, a: &Arg) -> R<Val> {
        match a {
            Arg::Field { idents, .. } => {
                self.eval_field_chain(dot, dot.clone(), a, idents, std::slice::from_ref(a), None)
            }
            Arg::Variable { idents, .. } if idents.len() > 1 => {
                let v = self.variable(a, &idents[0])?;
                self.eval_field_chain(dot, v, a, &idents[1..], std::slice::from_ref(a), None)
            }
            _ => Ok(Val::new(self.eval_arg(dot, P::Any, a)?)),
        }
    }

    pub(crate) fn eval_arg(&mut self, dot: &Val, typ: P, a: &Arg) -> R<Value> {
        self.last_pos = a.pos();
        let v = match a {
            Arg::Dot(_) => dot.clone(),
            Arg::Nil(pos) => {
                if typ.can_be_nil() {
                    return Ok(Value::Nil);
                }
                return Err(self.err_at(
                    *pos,
                    a,
                    format!("cannot assign nil to {}", typ.go_name()),
                ));
            }
            Arg::Field { idents, .. } => {
                self.eval_field_chain(dot, dot.clone(), a, idents, std::slice::from_ref(a), None)?
            }
            Arg::Variable { idents, .. } => {
                let v = self.variable(a, &idents[0])?;
                if idents.len() == 1 {
                    v
                } else {
                    self.eval_field_chain(dot, v, a, &idents[1..], std::slice::from_ref(a), None)?
                }
            }
            Arg::Pipe(p) => {
                let v = self.eval_pipeline(dot, p)?;
                if typ == P::Any {
                    return Ok(v.v);
                }
                let at = self.last_pos;
                let node = find_arg(p, at)
                    .map(std::string::ToString::to_string)
                    .unwrap_or_else(|| p.to_string());
                return self.validate(v, typ, at, &node);
            }
            Arg::Identifier { name, pos, func } => {
                let cmd = Command {
                    pos: *pos,
                    args: Vec::new(),
                };
                self.eval_function(dot, (name, *func), *pos, &cmd, &[], None)?
            }
            Arg::Chain { node, fields, .. } => {
                if matches!(**node, Arg::Nil(_)) {
                    return Err(self.err_at(
                        a.pos(),
                        a,
                        format!("indirection through explicit nil in {a}"),
                    ));
                }
                let recv = Val::new(self.eval_arg(dot, P::Any, node)?);
                self.eval_field_chain(dot, recv, a, fields, std::slice::from_ref(a), None)?
            }
            Arg::Bool(pos, b) => {
                return match typ {
                    P::Bool | P::Any => Ok(Value::Bool(*b)),
                    _ => Err(self.const_mismatch(typ, *pos, a)),
                };
            }
            Arg::Number { pos, num, .. } => {
                return match typ {
                    P::Int if num.is_int => Ok(Value::Int(num.int)),
                    P::I64 if num.is_int => Ok(Value::I64(num.int)),
                    P::Float if num.is_float => Ok(Value::Float(num.float)),
                    P::Any => self.eval_constant(a),
                    _ => Err(self.const_mismatch(typ, *pos, a)),
                };
            }
            Arg::String { pos, text, .. } => {
                return match typ {
                    P::Str | P::Any => Ok(Value::String(text.clone())),
                    _ => Err(self.const_mismatch(typ, *pos, a)),
                };
            }
        };
        self.validate(v, typ, a.pos(), a)
    }

    fn const_mismatch(&self, typ: P, pos: usize, a: &Arg) -> Flow {
        let msg = match typ {
            P::Bool => format!("expected bool; found {a}"),
            P::Int | P::I64 => format!("expected integer; found {a}"),
            P::Float => format!("expected float; found {a}"),
            P::Str => format!("expected string; found {a}"),
            _ => format!("can't handle {a} for arg of type {}", typ.go_name()),
        };
        self.err_at(pos, a, msg)
    }

    /// validateType: Go's assignability check of a computed value to a parameter.
    fn validate(&self, v: Val, typ: P, pos: usize, ctx: &dyn std::fmt::Display) -> R<Value> {
        if typ == P::Any {
            return Ok(v.v);
        }
        if let Value::Nil = v.v {
            if v.iface {
                return Err(self.err_at(
                    pos,
                    ctx,
                    format!(
                        "wrong type for value; expected {}; got interface {{}}",
                        typ.go_name()
                    ),
                ));
            }
            if typ.can_be_nil() {
                return Ok(Value::Nil);
            }
            return Err(self.err_at(
                pos,
                ctx,
                format!("invalid value; expected {}", typ.go_name()),
            ));
        }
        let ok = matches!(
            (typ, &v.v),
            (P::Str, Value::String(_))
                | (P::Int, Value::Int(_))
                | (P::I64, Value::I64(_))
                | (P::Float, Value::Float(_))
                | (P::Bool, Value::Bool(_))
                | (P::List, Value::List(_))
                | (P::Map, Value::Map(_))
        );
        let ok = ok
            || typ == P::Time
                && matches!(&v.v, Value::Object(o) if matches!(&**o, crate::object::Object::Time(_)));
        if ok {
            return Ok(v.v);
        }
        Err(self.err_at(
            pos,
            ctx,
            format!(
                "wrong type for value; expected {}; got {}",
                typ.go_name(),
                v.v.type_name()
            ),
        ))
    }
}

/// The argument node at byte offset `pos` inside a pipeline.
fn find_arg(p: &Pipe, pos: usize) -> Option<&Arg> {
    for c in &p.cmds {
        for a in &c.args {
            if a.pos() == pos && !matches!(a, Arg::Pipe(_)) {
                return Some(a);
            }
            match a {
                Arg::Pipe(inner) => {
                    if let Some(f) = find_arg(inner, pos) {
                        return Some(f);
                    }
                }
                Arg::Chain { node, .. } => {
                    if let Arg::Pipe(inner) = &**node
                        && let Some(f) = find_arg(inner, pos)
                    {
                        return Some(f);
                    }
                }
                _ => {}
            }
        }
    }
    None
}
