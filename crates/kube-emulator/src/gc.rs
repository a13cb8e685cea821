//! The garbage collector and the other deletion controllers: ownerReference cascades
//! (background, foreground with `blockOwnerDeletion`, orphan), namespace termination, and CRD
//! cleanup. Event driven: each change queues the objects it may affect.

use std::collections::BTreeSet;
use std::sync::Arc;

use serde_json::{Value, json};

use crate::ops::{CRD_CLEANUP_FINALIZER, DeleteOpts};
use crate::registry::{GroupResource, ResourceType};
use crate::store::{EventType, Inner, ObjKey, Store, WatchEvent, key_of, meta_str};

fn ns_gr() -> GroupResource {
    GroupResource::new("", "namespaces")
}

fn crd_gr() -> GroupResource {
    GroupResource::new("apiextensions.k8s.io", "customresourcedefinitions")
}

fn has_finalizer(obj: &Value, f: &str) -> bool {
    obj["metadata"]["finalizers"]
        .as_array()
        .is_some_and(|a| a.iter().any(|x| x == f))
}

/// Remove one finalizer; the object goes when it was the last one during deletion.
pub fn drop_finalizer(inner: &mut Inner, rt: &ResourceType, obj: &Value, f: &str) {
    let mut o = obj.clone();
    if let Some(a) = o["metadata"]["finalizers"].as_array_mut() {
        a.retain(|x| x != f);
    }
    let empty = o["metadata"]["finalizers"]
        .as_array()
        .is_none_or(Vec::is_empty);
    if empty && let Some(m) = o["metadata"].as_object_mut() {
        m.remove("finalizers");
    }
    if empty && !o["metadata"]["deletionTimestamp"].is_null() {
        inner.remove(rt, o);
    } else {
        inner.commit_put(&rt.gr(), o);
    }
}

fn delete_with(inner: &mut Inner, key: &ObjKey, policy: &str) {
    let Some(rt) = inner.registry.get(&key.gr) else {
        return;
    };
    let d = DeleteOpts {
        propagation: Some(policy.into()),
        ..DeleteOpts::default()
    };
    if let Err(e) = inner.delete(&rt, &key.namespace, &key.name, &d) {
        tracing::debug!(error = %e, "garbage collector delete");
    }
}

fn refs_to<'a>(obj: &'a Value, uid: &'a str) -> impl Iterator<Item = &'a Value> + 'a {
    obj["metadata"]["ownerReferences"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(move |r| r["uid"] == uid)
}

/// Bring one object in line with its owners and its own deletion state.
fn check(inner: &mut Inner, key: &ObjKey) {
    let Some(obj) = inner.get_key(key) else {
        return;
    };
    let Some(rt) = inner.registry.get(&key.gr) else {
        return;
    };
    let uid = meta_str(&obj, "uid").to_string();
    if !obj["metadata"]["deletionTimestamp"].is_null() {
        if key.gr == ns_gr() {
            terminate_namespace(inner, &rt, &obj, &key.name);
            return;
        }
        if key.gr == crd_gr() && has_finalizer(&obj, CRD_CLEANUP_FINALIZER) {
            let defined = GroupResource::new(
                obj["spec"]["group"].as_str().unwrap_or_default(),
                obj["spec"]["names"]["plural"].as_str().unwrap_or_default(),
            );
            let keys: Vec<ObjKey> = inner
                .collection(&defined)
                .map(|c| {
                    c.keys()
                        .map(|(n, m)| ObjKey {
                            gr: defined.clone(),
                            namespace: n.clone(),
                            name: m.clone(),
                        })
                        .collect()
                })
                .unwrap_or_default();
            for k in &keys {
                delete_with(inner, k, "Background");
            }
            if inner
                .collection(&defined)
                .is_none_or(std::collections::BTreeMap::is_empty)
            {
                drop_finalizer(inner, &rt, &obj, CRD_CLEANUP_FINALIZER);
            }
            return;
        }
        let deps: Vec<ObjKey> = inner
            .dependents
            .get(&uid)
            .map(|s| s.iter().cloned().collect())
            .unwrap_or_default();
        if has_finalizer(&obj, "orphan") {
            for d in &deps {
                let Some(dobj) = inner.get_key(d) else {
                    continue;
                };
                let mut o = (*dobj).clone();
                if let Some(a) = o["metadata"]["ownerReferences"].as_array_mut() {
                    a.retain(|r| r["uid"] != uid.as_str());
                }
                inner.commit_put(&d.gr, o);
            }
            drop_finalizer(inner, &rt, &obj, "orphan");
            return;
        }
        if has_finalizer(&obj, "foregroundDeletion") {
            let mut blocking = false;
            for d in &deps {
                let Some(dobj) = inner.get_key(d) else {
                    continue;
                };
                let blocks = refs_to(&dobj, &uid).any(|r| r["blockOwnerDeletion"] == json!(true));
                blocking |= blocks;
                if dobj["metadata"]["deletionTimestamp"].is_null() {
                    delete_with(inner, d, if blocks { "Foreground" } else { "Background" });
                }
            }
            let still_blocking = deps.iter().any(|d| {
                inner.get_key(d).is_some_and(|o| {
                    refs_to(&o, &uid).any(|r| r["blockOwnerDeletion"] == json!(true))
                })
            });
            if !(blocking && still_blocking)
                && let Some(cur) = inner.get_key(key)
            {
                drop_finalizer(inner, &rt, &cur, "foregroundDeletion");
            }
            return;
        }
    }
    let refs: Vec<Value> = obj["metadata"]["ownerReferences"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    if refs.is_empty() {
        return;
    }
    let absent: Vec<&Value> = refs
        .iter()
        .filter(|r| {
            !inner
                .uids
                .contains_key(r["uid"].as_str().unwrap_or_default())
        })
        .collect();
    if absent.len() == refs.len() {
        if obj["metadata"]["deletionTimestamp"].is_null() {
            delete_with(inner, key, "Background");
        }
    } else if !absent.is_empty() {
        let gone: BTreeSet<String> = absent
            .iter()
            .filter_map(|r| r["uid"].as_str().map(String::from))
            .collect();
        let mut o = (*obj).clone();
        if let Some(a) = o["metadata"]["ownerReferences"].as_array_mut() {
            a.retain(|r| !gone.contains(r["uid"].as_str().unwrap_or_default()));
        }
        inner.commit_put(&key.gr, o);
    }
}

fn terminate_namespace(inner: &mut Inner, rt: &ResourceType, ns_obj: &Value, ns: &str) {
    let mut left = 0usize;
    let grs: Vec<GroupResource> = inner.objects.keys().cloned().collect();
    for gr in grs {
        let keys: Vec<ObjKey> = inner
            .collection(&gr)
            .map(|c| {
                c.keys()
                    .filter(|(n, _)| n == ns)
                    .map(|(n, m)| ObjKey {
                        gr: gr.clone(),
                        namespace: n.clone(),
                        name: m.clone(),
                    })
                    .collect()
            })
            .unwrap_or_default();
        for k in &keys {
            if inner
                .get_key(k)
                .is_some_and(|o| o["metadata"]["deletionTimestamp"].is_null())
            {
                delete_with(inner, k, "Background");
            }
            if inner.get_key(k).is_some() {
                left += 1;
            }
        }
    }
    let fins = ns_obj["metadata"]["finalizers"]
        .as_array()
        .is_some_and(|a| !a.is_empty());
    if left == 0 && !fins {
        inner.remove(rt, ns_obj.clone());
    }
}

fn queue_for(inner: &Inner, ev: &WatchEvent, work: &mut BTreeSet<ObjKey>) {
    let key = key_of(&ev.gr, &ev.object);
    work.insert(key.clone());
    if ev.etype != EventType::Deleted && ev.object["metadata"]["deletionTimestamp"].is_null() {
        return;
    }
    let uid = meta_str(&ev.object, "uid");
    if let Some(deps) = inner.dependents.get(uid) {
        work.extend(deps.iter().cloned());
    }
    if ev.etype == EventType::Deleted {
        // Owners waiting in foreground deletion re-check once a dependent goes.
        for r in ev.object["metadata"]["ownerReferences"]
            .as_array()
            .into_iter()
            .flatten()
        {
            if let Some(k) = r["uid"].as_str().and_then(|u| inner.uids.get(u)) {
                work.insert(k.clone());
            }
        }
        if !key.namespace.is_empty() {
            work.insert(ObjKey {
                gr: ns_gr(),
                namespace: String::new(),
                name: key.namespace.clone(),
            });
        }
        if let Some(rt) = inner.registry.get(&ev.gr)
            && rt.custom
        {
            work.insert(ObjKey {
                gr: crd_gr(),
                namespace: String::new(),
                name: format!("{}.{}", rt.plural, rt.group),
            });
        }
    }
}

/// Run until shutdown; each batch of changes is queued, then each object is checked under
/// its own short lock so API requests interleave.
pub async fn run(
    store: Arc<Store>,
    mut rx: tokio::sync::mpsc::UnboundedReceiver<Arc<WatchEvent>>,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) {
    loop {
        let first = tokio::select! {
            r = rx.recv() => r,
            _ = shutdown.changed() => return,
        };
        let Some(first) = first else { return };
        let mut events = vec![first];
        while let Ok(ev) = rx.try_recv() {
            events.push(ev);
        }
        let mut work = BTreeSet::new();
        {
            let inner = store.lock();
            for ev in &events {
                queue_for(&inner, ev, &mut work);
            }
        }
        for key in &work {
            check(&mut store.lock(), key);
        }
    }
}
