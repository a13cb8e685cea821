//! PATCH bodies: JSON merge patch (RFC 7386), JSON patch (RFC 6902) and strategic merge patch
//! with the directives kubectl sends (`$patch`, `$retainKeys`, `$setElementOrder/…`,
//! `$deleteFromPrimitiveList/…`). Server-side apply lives in `apply.rs`.

use serde_json::{Map, Value};

use crate::error::{ApiError, ApiResult};
use crate::fields::{ListType, item_key, list_type};
use crate::registry::ResourceType;

/// RFC 7386: objects merge recursively, `null` deletes, everything else replaces.
pub fn merge_patch(target: &mut Value, patch: &Value) {
    let Some(p) = patch.as_object() else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = Value::Object(Map::new());
    }
    if let Some(t) = target.as_object_mut() {
        for (k, v) in p {
            if v.is_null() {
                t.remove(k);
            } else {
                merge_patch(t.entry(k.clone()).or_insert(Value::Null), v);
            }
        }
    }
}

fn unescape(token: &str) -> String {
    token.replace("~1", "/").replace("~0", "~")
}

fn pointer_parts(ptr: &str) -> ApiResult<Vec<String>> {
    if ptr.is_empty() {
        return Ok(Vec::new());
    }
    let rest = ptr
        .strip_prefix('/')
        .ok_or_else(|| ApiError::bad_request(format!("invalid JSON pointer \"{ptr}\"")))?;
    Ok(rest.split('/').map(unescape).collect())
}

fn add_at(doc: &mut Value, parts: &[String], value: Value, replace: bool) -> ApiResult<()> {
    let Some((last, parents)) = parts.split_last() else {
        *doc = value;
        return Ok(());
    };
    let mut cur = doc;
    for p in parents {
        cur = step_mut(cur, p)?;
    }
    match cur {
        Value::Object(m) => {
            if replace && !m.contains_key(last) {
                return Err(missing(last));
            }
            m.insert(last.clone(), value);
        }
        Value::Array(a) => {
            if last == "-" && !replace {
                a.push(value);
            } else {
                let i: usize = last.parse().map_err(|_| missing(last))?;
                if replace {
                    *a.get_mut(i).ok_or_else(|| missing(last))? = value;
                } else if i <= a.len() {
                    a.insert(i, value);
                } else {
                    return Err(missing(last));
                }
            }
        }
        _ => return Err(missing(last)),
    }
    Ok(())
}

fn missing(token: &str) -> ApiError {
    ApiError::invalid_field(
        "",
        "",
        "",
        token,
        &format!("json patch: path element \"{token}\" does not exist"),
    )
}

fn step_mut<'a>(cur: &'a mut Value, token: &str) -> ApiResult<&'a mut Value> {
    match cur {
        Value::Object(m) => m.get_mut(token).ok_or_else(|| missing(token)),
        Value::Array(a) => {
            let i: usize = token.parse().map_err(|_| missing(token))?;
            a.get_mut(i).ok_or_else(|| missing(token))
        }
        _ => Err(missing(token)),
    }
}

fn remove_at(doc: &mut Value, parts: &[String]) -> ApiResult<Value> {
    let Some((last, parents)) = parts.split_last() else {
        return Err(ApiError::bad_request(
            "json patch: cannot remove the whole document",
        ));
    };
    let mut cur = doc;
    for p in parents {
        cur = step_mut(cur, p)?;
    }
    match cur {
        Value::Object(m) => m.remove(last).ok_or_else(|| missing(last)),
        Value::Array(a) => {
            let i: usize = last.parse().map_err(|_| missing(last))?;
            if i < a.len() {
                Ok(a.remove(i))
            } else {
                Err(missing(last))
            }
        }
        _ => Err(missing(last)),
    }
}

fn get_at<'a>(doc: &'a Value, parts: &[String]) -> ApiResult<&'a Value> {
    let mut cur = doc;
    for p in parts {
        cur = match cur {
            Value::Object(m) => m.get(p).ok_or_else(|| missing(p))?,
            Value::Array(a) => {
                let i: usize = p.parse().map_err(|_| missing(p))?;
                a.get(i).ok_or_else(|| missing(p))?
            }
            _ => return Err(missing(p)),
        };
    }
    Ok(cur)
}

/// RFC 6902; a failing `test` op is a 422, as on the apiserver.
pub fn json_patch(doc: &mut Value, ops: &Value) -> ApiResult<()> {
    let ops = ops
        .as_array()
        .ok_or_else(|| ApiError::bad_request("json patch must be an array of operations"))?;
    for (i, op) in ops.iter().enumerate() {
        let kind = op["op"].as_str().unwrap_or_default();
        let path = pointer_parts(op["path"].as_str().unwrap_or_default())?;
        match kind {
            "add" => add_at(doc, &path, op["value"].clone(), false)?,
            "replace" => add_at(doc, &path, op["value"].clone(), true)?,
            "remove" => {
                remove_at(doc, &path)?;
            }
            "move" | "copy" => {
                let from = pointer_parts(op["from"].as_str().unwrap_or_default())?;
                let v = if kind == "move" {
                    remove_at(doc, &from)?
                } else {
                    get_at(doc, &from)?.clone()
                };
                add_at(doc, &path, v, false)?;
            }
            "test" => {
                // As in the apiserver's json-patch library, a missing path tests equal to null.
                let have = get_at(doc, &path).unwrap_or(&Value::Null);
                if have != &op["value"] {
                    return Err(ApiError::invalid_field(
                        "",
                        "",
                        "",
                        op["path"].as_str().unwrap_or_default(),
                        &format!("json patch operation {i}: test failed"),
                    ));
                }
            }
            other => {
                return Err(ApiError::bad_request(format!(
                    "json patch operation {i}: unknown op \"{other}\""
                )));
            }
        }
    }
    Ok(())
}

/// Strategic merge patch for the built-in kinds (CRDs get 415, as on the apiserver).
pub fn strategic_merge_patch(
    rt: &ResourceType,
    target: &mut Value,
    patch: &Value,
) -> ApiResult<()> {
    if rt.custom {
        return Err(ApiError::unsupported_media(
            "the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml",
        ));
    }
    let mut names = Vec::new();
    smp_map(rt, &mut names, target, patch);
    Ok(())
}

fn smp_map(rt: &ResourceType, names: &mut Vec<String>, target: &mut Value, patch: &Value) {
    let Some(p) = patch.as_object() else {
        *target = patch.clone();
        return;
    };
    match p.get("$patch").and_then(Value::as_str) {
        Some("replace") => {
            let mut clean = p.clone();
            clean.remove("$patch");
            *target = Value::Object(clean);
            return;
        }
        Some("delete") => {
            *target = Value::Null;
            return;
        }
        _ => {}
    }
    if !target.is_object() {
        *target = Value::Object(Map::new());
    }
    let Some(t) = target.as_object_mut() else {
        return;
    };
    for (k, v) in p {
        if k.starts_with("$setElementOrder/") || k == "$patch" || k == "$retainKeys" {
            continue;
        }
        if let Some(field) = k.strip_prefix("$deleteFromPrimitiveList/") {
            if let (Some(Value::Array(list)), Some(del)) = (t.get_mut(field), v.as_array()) {
                list.retain(|item| !del.contains(item));
            }
            continue;
        }
        if v.is_null() {
            t.remove(k);
            continue;
        }
        names.push(k.clone());
        let entry = t.entry(k.clone()).or_insert(Value::Null);
        match v {
            Value::Object(_) => {
                smp_map(rt, names, entry, v);
                if entry.is_null() {
                    t.remove(k);
                }
            }
            Value::Array(items) => smp_list(rt, names, entry, items),
            _ => *entry = v.clone(),
        }
        names.pop();
    }
    if let Some(keep) = p.get("$retainKeys").and_then(Value::as_array) {
        t.retain(|k, _| keep.iter().any(|r| r.as_str() == Some(k)));
    }
}

fn smp_list(rt: &ResourceType, names: &mut Vec<String>, target: &mut Value, items: &[Value]) {
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    let lt = list_type(rt, &refs);
    let replace = items
        .iter()
        .any(|i| i.get("$patch").and_then(Value::as_str) == Some("replace"));
    if replace || lt == ListType::Atomic || !target.is_array() {
        let clean: Vec<Value> = items
            .iter()
            .filter(|i| i.get("$patch").is_none())
            .cloned()
            .collect();
        *target = Value::Array(clean);
        return;
    }
    let Some(list) = target.as_array_mut() else {
        return;
    };
    match lt {
        ListType::Set => {
            for i in items {
                if !list.contains(i) {
                    list.push(i.clone());
                }
            }
        }
        ListType::Map(keys) => {
            for item in items {
                let key = item_key(item, &keys);
                let pos = list.iter().position(|l| item_key(l, &keys) == key);
                if item.get("$patch").and_then(Value::as_str) == Some("delete") {
                    if let Some(pos) = pos {
                        list.remove(pos);
                    }
                    continue;
                }
                match pos {
                    Some(pos) => smp_map(rt, names, &mut list[pos], item),
                    None => {
                        let mut fresh = Value::Object(Map::new());
                        smp_map(rt, names, &mut fresh, item);
                        list.push(fresh);
                    }
                }
            }
        }
        ListType::Atomic => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::builtins;
    use serde_json::json;

    #[test]
    fn merge_patch_deletes_nulls_and_replaces_lists() {
        let mut t = json!({"a": {"b": 1, "c": 2}, "l": [1, 2]});
        merge_patch(&mut t, &json!({"a": {"b": null, "d": 3}, "l": [9]}));
        assert_eq!(t, json!({"a": {"c": 2, "d": 3}, "l": [9]}));
    }

    #[test]
    fn json_patch_ops_and_failed_test() {
        let mut t = json!({"a": [1, 2], "b": {"c": "x"}});
        let ops = json!([
            {"op": "add", "path": "/a/-", "value": 3},
            {"op": "replace", "path": "/b/c", "value": "y"},
            {"op": "copy", "from": "/b/c", "path": "/d"},
            {"op": "remove", "path": "/a/0"},
            {"op": "test", "path": "/d", "value": "y"}
        ]);
        json_patch(&mut t, &ops).expect("patch applies");
        assert_eq!(t, json!({"a": [2, 3], "b": {"c": "y"}, "d": "y"}));
        let err = json_patch(&mut t, &json!([{"op": "test", "path": "/d", "value": "z"}]))
            .expect_err("test op fails");
        assert_eq!(err.code, 422);
    }

    #[test]
    fn strategic_merge_merges_containers_by_name_and_honours_directives() {
        let rt = builtins()
            .into_iter()
            .find(|t| t.kind == "Deployment")
            .expect("kind");
        let mut t = json!({"metadata": {"finalizers": ["a"]}, "spec": {"template": {"spec": {"containers": [
            {"name": "a", "image": "1", "env": [{"name": "X", "value": "1"}]},
            {"name": "b", "image": "1"}]}}}});
        let p = json!({"metadata": {"finalizers": ["b"]}, "spec": {"template": {"spec": {
            "$setElementOrder/containers": [{"name": "a"}, {"name": "b"}],
            "containers": [
                {"name": "a", "env": [{"name": "Y", "value": "2"}]},
                {"name": "b", "$patch": "delete"}]}}}});
        strategic_merge_patch(&rt, &mut t, &p).expect("smp");
        assert_eq!(
            t["spec"]["template"]["spec"]["containers"],
            json!([{"name": "a", "image": "1", "env": [
                {"name": "X", "value": "1"}, {"name": "Y", "value": "2"}]}])
        );
        assert_eq!(t["metadata"]["finalizers"], json!(["a", "b"]));
    }
}
