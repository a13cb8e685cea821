//! Function calls: argument counts, and/or short-circuiting, len's nil cases, results.

use super::*;

impl Exec<'_> {
    pub(super) fn eval_function(
        &mut self,
        dot: &Val,
        (name, resolved): (&str, Option<&'static funcs::Func>),
        pos: usize,
        cmd: &Command,
        args: &[Arg],
        fin: Option<Val>,
    ) -> R<Val> {
        self.last_pos = pos;
        let Some(def) = resolved.or_else(|| funcs::lookup(name)) else {
            return Err(self.err_at(
                pos,
                &name,
                format!("{} is not a defined function", gofmt::quote(name)),
            ));
        };
        if name == "and" || name == "or" {
            let want = name == "or";
            let mut v = Value::Nil;
            if args.is_empty() && fin.is_none() {
                return Err(self.err_at(
                    pos,
                    &name,
                    format!("wrong number of args for {name}: want at least 1 got 0"),
                ));
            }
            for a in args {
                v = self.eval_arg(dot, P::Any, a)?;
                if v.is_true() == want {
                    return Ok(Val::new(v));
                }
            }
            if let Some(f) = fin {
                v = f.v;
            }
            return Ok(Val::new(v));
        }
        let num_in = args.len() + usize::from(fin.is_some());
        let fixed = def.params.len();
        if def.variadic.is_some() {
            if num_in < fixed {
                return Err(self.err_at(
                    pos,
                    &name,
                    format!(
                        "wrong number of args for {name}: want at least {fixed} got {}",
                        args.len()
                    ),
                ));
            }
        } else if num_in != fixed {
            return Err(self.err_at(
                pos,
                &name,
                format!("wrong number of args for {name}: want {fixed} got {num_in}"),
            ));
        }
        if name == "len" && num_in == 1 {
            // Go's len on a nil: an interface slot (a map entry, a field) is a "nil pointer"; a
            // pipeline result or variable has been unwrapped to an invalid value
            let arg = match (args.first(), &fin) {
                (Some(a), _) => self.eval_arg_val(dot, a)?,
                (None, Some(f)) => Val::new(f.v.clone()),
                (None, None) => Val::new(Value::Nil),
            };
            if matches!(arg.v, Value::Nil) {
                let m = if arg.iface {
                    "len of nil pointer"
                } else {
                    "reflect: call of reflect.Value.Type on zero Value"
                };
                return Err(self.err_at(cmd.pos, cmd, format!("error calling len: {m}")));
            }
            return match (def.f)(self, vec![arg.v]) {
                Ok(v) => Ok(Val::new(v)),
                Err(FnErr::Msg(m)) => {
                    Err(self.err_at(cmd.pos, cmd, format!("error calling {name}: {m}")))
                }
                Err(_) => Err(self.err_at(cmd.pos, cmd, "error calling len")),
            };
        }
        let mut argv = Vec::with_capacity(num_in);
        for (i, a) in args.iter().enumerate() {
            let t = def
                .params
                .get(i)
                .copied()
                .or(def.variadic)
                .unwrap_or(P::Any);
            argv.push(self.eval_arg(dot, t, a)?);
        }
        if let Some(f) = fin {
            let t = if def.variadic.is_some() && argv.len() >= fixed {
                def.variadic.unwrap_or(P::Any)
            } else {
                def.params.get(argv.len()).copied().unwrap_or(P::Any)
            };
            argv.push(self.validate(f, t, pos, &name)?);
        }
        let mutated = if funcs::MUTATING.contains(&name) {
            argv.first().cloned()
        } else {
            None
        };
        match (def.f)(self, argv) {
            Ok(v) => {
                if let Some(old) = mutated {
                    self.propagate(&old, &v);
                }
                let mut v = Val::new(v);
                v.typed = funcs::TYPED_ELEMS.contains(&name);
                Ok(v)
            }
            Err(FnErr::Msg(m)) => {
                Err(self.err_at(cmd.pos, cmd, format!("error calling {name}: {m}")))
            }
            Err(FnErr::User(m)) => {
                Err(self.err_full(cmd.pos, cmd, format!("error calling {name}: {m}"), Some(m)))
            }
            Err(FnErr::Wrapped(m, user)) => {
                Err(self.err_full(cmd.pos, cmd, format!("error calling {name}: {m}"), user))
            }
            Err(FnErr::Nested(e)) => {
                let user = e.user_message().map(str::to_string);
                Err(self.err_full(cmd.pos, cmd, format!("error calling {name}: {e}"), user))
            }
        }
    }
}
