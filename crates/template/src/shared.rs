//! Go's maps are references: `set $d "k" v`, `set .Values "k" v`, `merge $dst $src` change the
//! map every holder sees, for the rest of the render. Our maps are copy-on-write values, so after
//! a mutating call we record (old map -> new map) and swap the new map in wherever the old one is
//! held: in every variable now, in each dot as its node list moves on, and in the caller's
//! variables when a template call returns.

use std::sync::Arc;

use crate::exec::Exec;
use crate::value::Value;

fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Map(x), Value::Map(y)) => Arc::ptr_eq(x, y),
        (Value::List(x), Value::List(y)) => Arc::ptr_eq(x, y),
        _ => false,
    }
}

fn contains(v: &Value, old: &Value) -> bool {
    if same(v, old) {
        return true;
    }
    let Some(_level) = crate::guard::enter() else {
        return false;
    };
    match v {
        Value::Map(m) => m.values().any(|c| contains(c, old)),
        Value::List(l) => l.iter().any(|c| contains(c, old)),
        _ => false,
    }
}

/// Replaces every occurrence of `old` (by identity) inside `target` with `new`.
pub(crate) fn replace_in(target: &mut Value, old: &Value, new: &Value) {
    if same(target, old) {
        *target = new.clone();
        return;
    }
    if !contains(target, old) {
        return;
    }
    let Some(_level) = crate::guard::enter() else {
        return;
    };
    match target {
        Value::Map(m) => Arc::make_mut(m)
            .values_mut()
            .for_each(|c| replace_in(c, old, new)),
        Value::List(l) => Arc::make_mut(l)
            .iter_mut()
            .for_each(|c| replace_in(c, old, new)),
        _ => {}
    }
}

impl Exec<'_> {
    /// After `set`/`unset`/`merge*` turned map `old` into `new`.
    pub(crate) fn propagate(&mut self, old: &Value, new: &Value) {
        if !matches!(old, Value::Map(_)) || same(old, new) {
            return;
        }
        for (_, var) in &mut self.vars {
            replace_in(&mut var.v, old, new);
        }
        self.replacements.push((old.clone(), new.clone()));
    }

    /// Applies the replacements recorded since `since` to `v`.
    pub(crate) fn catch_up(&self, v: &mut Value, since: usize) {
        for (old, new) in &self.replacements[since..] {
            replace_in(v, old, new);
        }
    }
}
