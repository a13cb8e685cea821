//! What the retained watch window keeps of each change.
//!
//! Holding every changed object as a `serde_json::Value` tree kept 10,000 old versions per
//! resource alive (a Pod is ~13 KB as JSON and ~150 KB as a tree), and every watcher
//! serialized each object again. A [`LoggedEvent`] keeps what selectors read (a small view
//! of the object before and after) and the object itself only until a watcher first needs
//! it: then it is serialized once, every watcher shares those bytes, and the tree is let go.

use std::sync::{Arc, Mutex, OnceLock};

use axum::body::Bytes;
use serde_json::Value;

use crate::registry::GroupResource;
use crate::store::EventType;

/// One change as the watch window retains it.
#[derive(Debug)]
pub struct LoggedEvent {
    pub rv: u64,
    pub gr: GroupResource,
    pub etype: EventType,
    /// What label and field selectors (and version checks) read of the object after the
    /// change: see [`selector_view`].
    pub view: Value,
    /// The same, before the change.
    pub old: Option<Value>,
    /// The object until it is first serialized.
    object: Mutex<Option<Arc<Value>>>,
    json: OnceLock<Bytes>,
}

impl LoggedEvent {
    pub fn new(
        rv: u64,
        gr: GroupResource,
        etype: EventType,
        object: Arc<Value>,
        old: Option<&Value>,
        fields: &[String],
    ) -> Self {
        Self {
            rv,
            gr,
            etype,
            view: selector_view(&object, fields),
            old: old.map(|o| selector_view(o, fields)),
            object: Mutex::new(Some(object)),
            json: OnceLock::new(),
        }
    }

    /// The object as JSON, serialized by the first watcher that asks and shared by the rest;
    /// from then on the window holds these bytes instead of the tree.
    pub fn json(&self) -> Bytes {
        self.json
            .get_or_init(|| {
                let object = self.lock().take();
                let mut buf = Vec::with_capacity(4096);
                // Serializing a Value into a Vec cannot fail.
                let _ = serde_json::to_writer(&mut buf, object.as_deref().unwrap_or(&Value::Null));
                Bytes::from(buf)
            })
            .clone()
    }

    /// The object as a tree (for a watcher that needs it converted): the retained one, or
    /// parsed back from [`LoggedEvent::json`] once that has replaced it.
    pub fn object(&self) -> Arc<Value> {
        if let Some(o) = self.lock().as_ref() {
            return o.clone();
        }
        // The tree is only released by `json`, which has then set the bytes (or is setting
        // them: `json()` waits for it). Our own serialization always parses back.
        Arc::new(serde_json::from_slice(&self.json()).unwrap_or(Value::Null))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<Arc<Value>>> {
        self.object
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// The part of an object that label and field selectors look at, plus its kind and
/// apiVersion.
pub fn selector_view(obj: &Value, fields: &[String]) -> Value {
    let mut v = serde_json::json!({
        "apiVersion": obj["apiVersion"],
        "kind": obj["kind"],
        "metadata": {
            "name": obj["metadata"]["name"],
            "namespace": obj["metadata"]["namespace"],
            "labels": obj["metadata"]["labels"],
        }
    });
    for f in fields {
        let mut src = obj;
        for seg in f.split('.') {
            src = &src[seg];
        }
        if src.is_null() {
            continue;
        }
        let mut dst = &mut v;
        for seg in f.split('.') {
            // IndexMut turns null into an object; a scalar prefix would panic, so stop there.
            if !(dst.is_object() || dst.is_null()) {
                break;
            }
            dst = &mut dst[seg];
        }
        *dst = src.clone();
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn event() -> LoggedEvent {
        let pod = json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "p", "namespace": "ns", "labels": {"a": "b"}},
            "spec": {"nodeName": "n1", "containers": [{"name": "c"}]},
            "status": {"phase": "Running"}
        });
        LoggedEvent::new(
            7,
            GroupResource::new("", "pods"),
            EventType::Modified,
            Arc::new(pod),
            None,
            &["spec.nodeName".to_string(), "status.phase".to_string()],
        )
    }

    #[test]
    fn the_view_holds_what_selectors_read() {
        let ev = event();
        assert_eq!(ev.view["metadata"]["labels"]["a"], "b");
        assert_eq!(ev.view["spec"]["nodeName"], "n1");
        assert_eq!(ev.view["status"]["phase"], "Running");
        assert_eq!(ev.view["kind"], "Pod");
        assert!(ev.view["spec"]["containers"].is_null(), "nothing else");
    }

    #[test]
    fn the_object_is_serialized_once_and_then_kept_as_bytes() {
        let ev = event();
        let before = ev.object();
        let first = ev.json();
        assert!(ev.lock().is_none(), "the tree is released");
        let second = ev.json();
        assert_eq!(first.as_ptr(), second.as_ptr(), "one serialization, shared");
        let parsed: Value = serde_json::from_slice(&first).unwrap();
        assert_eq!(&parsed, before.as_ref());
        assert_eq!(
            ev.object().as_ref(),
            before.as_ref(),
            "parsed back on demand"
        );
    }
}
