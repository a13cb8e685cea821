//! Sprig's dict functions (dict.go) with mergo's merge rules.

use std::collections::BTreeMap;

use super::{P, Table, is_empty, reg, s, strval};
use crate::value::Value;

type VMap = BTreeMap<String, Value>;

fn map_of(v: &Value) -> VMap {
    match v {
        Value::Map(m) => (**m).clone(),
        _ => VMap::new(),
    }
}

/// Functions whose first argument Go mutates in place (maps are references in Go).
pub const MUTATING: &[&str] = &[
    "set",
    "unset",
    "merge",
    "mergeOverwrite",
    "mustMerge",
    "mustMergeOverwrite",
];

pub(super) fn register(t: &mut Table) {
    use P::*;
    reg(t, "dict", &[], Some(Any), |_, a| {
        let mut m = VMap::new();
        let mut i = 0;
        while i < a.len() {
            let k = strval(&a[i]);
            let v = a
                .get(i + 1)
                .cloned()
                .unwrap_or(Value::String(String::new()));
            m.insert(k, v);
            i += 2;
        }
        Ok(Value::map(m))
    });
    reg(t, "get", &[Map, Str], None, |_, a| {
        Ok(map_of(&a[0])
            .get(&s(&a, 1))
            .cloned()
            .unwrap_or(Value::String(String::new())))
    });
    reg(t, "set", &[Map, Str, Any], None, |_, a| {
        let mut m = map_of(&a[0]);
        m.insert(s(&a, 1), a[2].clone());
        Ok(Value::map(m))
    });
    reg(t, "unset", &[Map, Str], None, |_, a| {
        let mut m = map_of(&a[0]);
        m.remove(&s(&a, 1));
        Ok(Value::map(m))
    });
    reg(t, "hasKey", &[Map, Str], None, |_, a| {
        Ok(Value::Bool(map_of(&a[0]).contains_key(&s(&a, 1))))
    });
    reg(t, "pluck", &[Str], Some(Map), |_, a| {
        let k = s(&a, 0);
        Ok(Value::list(
            a[1..]
                .iter()
                .filter_map(|d| map_of(d).get(&k).cloned())
                .collect(),
        ))
    });
    reg(t, "keys", &[], Some(Map), |_, a| {
        let mut out = Vec::new();
        for d in &a {
            out.extend(map_of(d).into_keys().map(Value::String));
        }
        Ok(Value::list(out))
    });
    reg(t, "values", &[Map], None, |_, a| {
        Ok(Value::list(map_of(&a[0]).into_values().collect()))
    });
    reg(t, "pick", &[Map], Some(Str), |_, a| {
        let m = map_of(&a[0]);
        let keys: Vec<String> = (1..a.len()).map(|i| s(&a, i)).collect();
        Ok(Value::map(
            m.into_iter().filter(|(k, _)| keys.contains(k)).collect(),
        ))
    });
    reg(t, "omit", &[Map], Some(Str), |_, a| {
        let m = map_of(&a[0]);
        let keys: Vec<String> = (1..a.len()).map(|i| s(&a, i)).collect();
        Ok(Value::map(
            m.into_iter().filter(|(k, _)| !keys.contains(k)).collect(),
        ))
    });
    for (name, overwrite) in [
        ("merge", false),
        ("mustMerge", false),
        ("mergeOverwrite", true),
        ("mustMergeOverwrite", true),
    ] {
        let f: super::FnImpl = if overwrite {
            |_, a| {
                let mut dst = map_of(&a[0]);
                for src in &a[1..] {
                    merge_into(&mut dst, &map_of(src), true);
                }
                Ok(Value::map(dst))
            }
        } else {
            |_, a| {
                let mut dst = map_of(&a[0]);
                for src in &a[1..] {
                    merge_into(&mut dst, &map_of(src), false);
                }
                Ok(Value::map(dst))
            }
        };
        reg(t, name, &[Map], Some(Map), f);
    }
    reg(t, "dig", &[Any], Some(Any), |_, a| {
        if a.len() < 3 {
            return Err(format!("dig needs at least three arguments, got {}", a.len()).into());
        }
        let dict = &a[a.len() - 1];
        let default = &a[a.len() - 2];
        let keys: Vec<String> = a[..a.len() - 2].iter().map(strval).collect();
        let mut cur = dict.clone();
        for k in keys {
            let next = match &cur {
                Value::Map(m) => m.get(&k).cloned(),
                _ => None,
            };
            match next {
                Some(v) => cur = v,
                None => return Ok(default.clone()),
            }
        }
        Ok(cur)
    });
    for name in ["deepCopy", "mustDeepCopy"] {
        reg(t, name, &[Any], None, |_, a| Ok(deep_copy(&a[0])));
    }
    reg(t, "deepEqual", &[Any, Any], None, |_, a| {
        Ok(Value::Bool(a[0] == a[1]))
    });
}

/// mergo.Merge / mergo.Merge(WithOverride) on map[string]interface{} trees.
pub(crate) fn merge_into(dst: &mut VMap, src: &VMap, overwrite: bool) {
    let Some(_level) = crate::guard::enter() else {
        return;
    };
    for (k, sv) in src {
        match (dst.get_mut(k), sv) {
            (Some(Value::Map(dm)), Value::Map(sm)) => {
                merge_into(std::sync::Arc::make_mut(dm), sm, overwrite);
            }
            (Some(dv), _) => {
                if matches!(sv, Value::Nil) {
                    if overwrite {
                        *dv = Value::Nil;
                    }
                    continue;
                }
                if overwrite || is_empty(dv) {
                    *dv = sv.clone();
                }
            }
            (None, _) => {
                if matches!(sv, Value::Nil) && !overwrite {
                    continue;
                }
                dst.insert(k.clone(), sv.clone());
            }
        }
    }
}

/// copystructure.Copy: fresh maps and lists at every level, so the copy shares nothing that a
/// later `set` could change through it.
pub(crate) fn deep_copy(v: &Value) -> Value {
    let Some(_level) = crate::guard::enter() else {
        return Value::Nil;
    };
    match v {
        Value::Map(m) => Value::map(m.iter().map(|(k, v)| (k.clone(), deep_copy(v))).collect()),
        Value::List(l) => Value::list(l.iter().map(deep_copy).collect()),
        other => other.clone(),
    }
}
