//! Comparing stored objects in place: these run on every write, so they
//! never copy the objects they compare.

use serde_json::Value;

use crate::registry::ResourceType;

/// Whether two objects differ outside metadata, apiVersion, kind (and status,
/// with a status subresource): what bumps `generation`. Compares in place.
pub(crate) fn spec_differs(rt: &ResourceType, a: &Value, b: &Value) -> bool {
    let skip = |k: &str| {
        matches!(k, "metadata" | "apiVersion" | "kind") || (rt.status_subresource && k == "status")
    };
    differs_except(a, b, skip)
}

/// Top-level fields of `a` and `b` differ, ignoring those `skip` names.
fn differs_except(a: &Value, b: &Value, skip: impl Fn(&str) -> bool) -> bool {
    let (Some(a), Some(b)) = (a.as_object(), b.as_object()) else {
        return a != b;
    };
    let null = Value::Null;
    a.keys()
        .chain(b.keys())
        .filter(|k| !skip(k))
        .any(|k| a.get(k).unwrap_or(&null) != b.get(k).unwrap_or(&null))
}

/// The same object but for managedFields and resourceVersion: a write that
/// changes nothing else is a no-op (no new resourceVersion, no watch event).
/// Compares in place: this runs on every write.
pub(crate) fn same_but_bookkeeping(a: &Value, b: &Value) -> bool {
    !differs_except(a, b, |k| k == "metadata")
        && !differs_except(&a["metadata"], &b["metadata"], |k| {
            matches!(k, "managedFields" | "resourceVersion")
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn bookkeeping_alone_is_no_change() {
        let a = json!({"metadata": {"name": "x", "resourceVersion": "1", "managedFields": [1]},
                       "spec": {"r": 1}});
        let b = json!({"metadata": {"name": "x", "resourceVersion": "2", "managedFields": [2]},
                       "spec": {"r": 1}});
        assert!(same_but_bookkeeping(&a, &b));
        let c = json!({"metadata": {"name": "x", "labels": {"l": "v"}}, "spec": {"r": 1}});
        assert!(!same_but_bookkeeping(&a, &c), "a label is a change");
        let d = json!({"metadata": {"name": "x"}, "spec": {"r": 2}});
        assert!(!same_but_bookkeeping(&a, &d));
        let e = json!({"metadata": {"name": "x"}, "spec": {"r": 1}, "status": {"p": "R"}});
        assert!(
            !same_but_bookkeeping(&a, &e),
            "a new top-level field is a change"
        );
    }
}
