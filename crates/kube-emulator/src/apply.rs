//! Field management: `managedFields` bookkeeping for updates and server-side apply
//! (`application/apply-patch+yaml`) with conflicts and `force`.

use serde_json::{Map, Value, json};

use crate::error::{ApiError, ApiResult, Cause};
use crate::fields::{
    Diff, FieldSet, ListType, Pe, Scope, diff, display_path, field_set, fields_v1_contains,
    from_fields_v1, get_path, item_key, list_type, remove_path, to_fields_v1,
};
use crate::registry::ResourceType;

/// One `metadata.managedFields[]` entry.
#[derive(Clone, Debug)]
struct Entry {
    manager: String,
    operation: String,
    api_version: String,
    time: String,
    subresource: String,
    set: FieldSet,
    /// Whether `set` holds the entry's fields; read_owned leaves stored entries encoded
    /// until a write needs them.
    decoded: bool,
    /// The entry as stored, while nothing in it changed: written back as is
    /// instead of being serialized again (most writes touch one manager).
    raw: Option<Value>,
}

fn subresource_name(scope: Scope) -> &'static str {
    if scope == Scope::Status { "status" } else { "" }
}

/// An entry's manager, operation, version, time and subresource; its fields still encoded.
fn entry(e: &Value) -> Entry {
    Entry {
        manager: e["manager"].as_str().unwrap_or_default().into(),
        operation: e["operation"].as_str().unwrap_or("Update").into(),
        api_version: e["apiVersion"].as_str().unwrap_or_default().into(),
        time: e["time"].as_str().unwrap_or_default().into(),
        subresource: e["subresource"].as_str().unwrap_or_default().into(),
        set: FieldSet::new(),
        decoded: false,
        raw: None,
    }
}

/// Every entry of `obj`, decoded, to be written back anew.
fn read(obj: Option<&Value>) -> Vec<Entry> {
    let Some(list) = obj.and_then(|o| o["metadata"]["managedFields"].as_array()) else {
        return Vec::new();
    };
    list.iter()
        .map(|e| Entry {
            set: from_fields_v1(&e["fieldsV1"]),
            decoded: true,
            ..entry(e)
        })
        .collect()
}

/// Like [`read`], but owning the stored entries so unchanged ones go back untouched, and
/// leaving their fields encoded until [`decode_entry`].
fn read_owned(list: Vec<Value>) -> Vec<Entry> {
    list.into_iter()
        .map(|e| {
            let mut x = entry(&e);
            x.raw = Some(e);
            x
        })
        .collect()
}

fn decode_entry(e: &mut Entry) {
    if !e.decoded {
        if let Some(raw) = &e.raw {
            e.set = from_fields_v1(&raw["fieldsV1"]);
        }
        e.decoded = true;
    }
}

fn write(obj: &mut Value, entries: Vec<Entry>) {
    let list: Vec<Value> = entries
        .into_iter()
        // An entry still encoded is unchanged (and stored entries are never empty).
        .filter(|e| !e.set.is_empty() || (!e.decoded && e.raw.is_some()))
        .map(|e| {
            if let Some(raw) = e.raw {
                return raw;
            }
            let mut v = json!({
                "manager": e.manager,
                "operation": e.operation,
                "apiVersion": e.api_version,
                "time": e.time,
                "fieldsType": "FieldsV1",
                "fieldsV1": to_fields_v1(&e.set),
            });
            if !e.subresource.is_empty() {
                v["subresource"] = json!(e.subresource);
            }
            v
        })
        .collect();
    if let Some(meta) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
        if list.is_empty() {
            meta.remove("managedFields");
        } else {
            meta.insert("managedFields".into(), Value::Array(list));
        }
    }
}

fn is_leaf(path: &[Pe]) -> bool {
    !matches!(path.last(), Some(Pe::K(_) | Pe::V(_)))
}

/// Record a non-apply write (create, update, patch): the writer takes the fields it changed,
/// every other manager loses them.
pub fn track_update(
    rt: &ResourceType,
    old: Option<&Value>,
    new: &mut Value,
    manager: &str,
    scope: Scope,
    api_version: &str,
    now: &str,
) {
    // A patch starts from the stored object, so `new` usually carries the same
    // entries as `old`: take them over instead of copying.
    let carried = new
        .get_mut("metadata")
        .and_then(Value::as_object_mut)
        .and_then(|m| m.remove("managedFields"));
    let mut entries = match carried {
        Some(Value::Array(list))
            if old.is_some_and(|o| o["metadata"]["managedFields"].as_array() == Some(&list)) =>
        {
            read_owned(list)
        }
        _ => read(old),
    };
    // Only the parts that differ can change ownership: a status update of a
    // Pod need not walk its spec.
    let Diff { changed, removed } = diff(rt, old, new, scope);
    let sub = subresource_name(scope);
    let mut found = false;
    for e in &mut entries {
        let writer = e.manager == manager && e.operation == "Update" && e.subresource == sub;
        if !e.decoded {
            // Another manager's entry loses fields only if it holds one that changed.
            let touched = match &e.raw {
                Some(raw) if !writer => changed
                    .iter()
                    .chain(removed.iter())
                    .any(|p| fields_v1_contains(&raw["fieldsV1"], p)),
                _ => !changed.is_empty() || !removed.is_empty(),
            };
            if !touched {
                found |= writer;
                continue;
            }
            decode_entry(e);
        }
        let before = e.set.len();
        if writer {
            found = true;
            e.set.retain(|p| !removed.contains(p));
            e.set.extend(changed.iter().cloned());
            if !changed.is_empty() {
                e.time = now.into();
                e.api_version = api_version.into();
                e.raw = None;
            }
        } else {
            e.set
                .retain(|p| !changed.contains(p) && !removed.contains(p));
        }
        if e.set.len() != before {
            e.raw = None;
        }
    }
    if !found && !changed.is_empty() {
        entries.push(Entry {
            manager: manager.into(),
            operation: "Update".into(),
            api_version: api_version.into(),
            time: now.into(),
            subresource: sub.into(),
            set: changed,
            decoded: true,
            raw: None,
        });
    }
    write(new, entries);
}

/// Merge an applied configuration into the live object as structured-merge-diff does.
fn merge_applied(rt: &ResourceType, names: &mut Vec<String>, live: &mut Value, applied: &Value) {
    let (Some(a), true) = (applied.as_object(), live.is_object()) else {
        *live = applied.clone();
        return;
    };
    let Some(l) = live.as_object_mut() else {
        return;
    };
    for (k, av) in a {
        if av.is_null() {
            l.remove(k);
            continue;
        }
        names.push(k.clone());
        match (l.get_mut(k), av) {
            (Some(lv @ Value::Object(_)), Value::Object(_)) => merge_applied(rt, names, lv, av),
            (Some(Value::Array(ll)), Value::Array(al)) => {
                let refs: Vec<&str> = names.iter().map(String::as_str).collect();
                match list_type(rt, &refs) {
                    ListType::Atomic => *ll = al.clone(),
                    ListType::Set => {
                        for i in al {
                            if !ll.contains(i) {
                                ll.push(i.clone());
                            }
                        }
                    }
                    ListType::Map(keys) => {
                        for item in al {
                            let key = item_key(item, &keys);
                            match ll.iter_mut().find(|x| item_key(x, &keys) == key) {
                                Some(existing) => merge_applied(rt, names, existing, item),
                                None => ll.push(item.clone()),
                            }
                        }
                    }
                }
            }
            _ => {
                l.insert(k.clone(), av.clone());
            }
        }
        names.pop();
    }
}

/// What server-side apply needs to know about the request.
pub struct ApplyRequest<'a> {
    pub manager: &'a str,
    pub force: bool,
    pub scope: Scope,
    pub api_version: &'a str,
    pub now: &'a str,
}

/// Server-side apply: returns the merged object with updated `managedFields`, or a 409 listing
/// each conflicting manager and field.
pub fn apply(
    rt: &ResourceType,
    live: Option<&Value>,
    applied: &Value,
    req: &ApplyRequest<'_>,
) -> ApiResult<Value> {
    let name = applied["metadata"]["name"].as_str().unwrap_or_default();
    let mut entries = read(live);
    let new_set = field_set(rt, applied, req.scope);
    let sub = subresource_name(req.scope);
    let mine =
        |e: &Entry| e.manager == req.manager && e.operation == "Apply" && e.subresource == sub;
    let old_set = entries
        .iter()
        .find(|e| mine(e))
        .map(|e| e.set.clone())
        .unwrap_or_default();
    let mut conflicts = Vec::new();
    let mut conflicting = FieldSet::new();
    if let Some(live) = live {
        for e in entries.iter().filter(|e| e.manager != req.manager) {
            for p in e.set.intersection(&new_set) {
                if is_leaf(p) && get_path(applied, p) != get_path(live, p) {
                    let using = if e.operation == "Update" {
                        format!(" using {}", e.api_version)
                    } else {
                        String::new()
                    };
                    conflicts.push(Cause {
                        reason: "FieldManagerConflict".into(),
                        field: display_path(p),
                        message: format!(
                            "conflict with \"{}\"{using}: {}",
                            e.manager,
                            display_path(p)
                        ),
                    });
                    conflicting.insert(p.clone());
                }
            }
        }
    }
    if !conflicts.is_empty() && !req.force {
        return Err(ApiError::apply_conflict(
            &rt.group, &rt.plural, name, conflicts,
        ));
    }
    let mut merged = live.cloned().unwrap_or_else(|| json!({"metadata": {}}));
    let mut filtered = Map::new();
    for (k, v) in applied.as_object().into_iter().flatten() {
        let keep = match req.scope {
            Scope::All => true,
            Scope::Main => k != "status",
            Scope::Status => k == "status" || k == "apiVersion" || k == "kind",
        };
        if keep {
            filtered.insert(k.clone(), v.clone());
        }
    }
    let mut names = Vec::new();
    merge_applied(rt, &mut names, &mut merged, &Value::Object(filtered));
    // Fields this manager applied before but not now go away unless someone else owns them.
    let mut dropped: Vec<&Vec<Pe>> = old_set
        .difference(&new_set)
        .filter(|p| !entries.iter().any(|e| !mine(e) && e.set.contains(*p)))
        .collect();
    dropped.sort_by_key(|p| std::cmp::Reverse(p.len()));
    for p in dropped {
        remove_path(&mut merged, p);
    }
    for e in &mut entries {
        if !mine(e) {
            e.set.retain(|p| !conflicting.contains(p));
        }
    }
    match entries.iter_mut().find(|e| mine(e)) {
        Some(e) => {
            e.set = new_set;
            e.time = req.now.into();
            e.api_version = req.api_version.into();
        }
        None => entries.push(Entry {
            manager: req.manager.into(),
            operation: "Apply".into(),
            api_version: req.api_version.into(),
            time: req.now.into(),
            subresource: sub.into(),
            set: new_set,
            decoded: true,
            raw: None,
        }),
    }
    write(&mut merged, entries);
    Ok(merged)
}
