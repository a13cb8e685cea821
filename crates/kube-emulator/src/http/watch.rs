//! Watches: a chunked stream of `{"type", "object"}` lines from a resourceVersion, with
//! selector-aware ADDED/DELETED translation, periodic BOOKMARKs, `sendInitialEvents`, and an
//! ERROR event carrying 410 Expired when the requested version left the retained window
//! (as the apiserver's watch cache answers).

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::http::header;
use axum::response::Response;
use serde_json::{Value, json};
use tokio::sync::broadcast::error::RecvError;

use super::Shared;
use crate::error::{ApiError, ApiResult};
use crate::logged::LoggedEvent;
use crate::ops::{present_cow, served_as_stored};
use crate::registry::ResourceType;
use crate::selector::{FieldSelector, LabelSelector};
use crate::store::{EventReceiver, EventType, Store, meta_str};

struct Filter {
    rt: Arc<ResourceType>,
    version: String,
    /// `rt.api_version(version)`, once.
    api_version: String,
    namespace: Option<String>,
    labels: LabelSelector,
    fields: FieldSelector,
}

impl Filter {
    fn matches(&self, obj: &Value) -> bool {
        if let Some(ns) = &self.namespace
            && meta_str(obj, "namespace") != ns
        {
            return false;
        }
        self.labels.matches(obj) && self.fields.matches(obj)
    }

    fn line(&self, etype: &str, obj: &Value) -> Bytes {
        // Written by hand so the stored object is serialized in place, not copied.
        let object = present_cow(&self.rt, &self.version, obj);
        let mut buf = Vec::with_capacity(4096);
        // Serializing a Value into a Vec cannot fail.
        let _ = serde_json::to_writer(&mut buf, object.as_ref());
        event_line(etype, &buf)
    }

    /// A retained change as this watcher sees it: the event's shared serialization when the
    /// object needs no conversion for this watcher's version.
    fn logged_line(&self, etype: &str, ev: &LoggedEvent) -> Bytes {
        if served_as_stored(&self.rt, &self.api_version, &ev.view) {
            event_line(etype, &ev.json())
        } else {
            self.line(etype, &ev.object())
        }
    }

    fn bookmark(&self, rv: u64, initial_end: bool) -> Bytes {
        let mut meta = json!({"resourceVersion": rv.to_string()});
        if initial_end {
            meta["annotations"] = json!({"k8s.io/initial-events-end": "true"});
        }
        let mut s = json!({"type": "BOOKMARK", "object": {
            "kind": self.rt.kind, "apiVersion": self.rt.api_version(&self.version), "metadata": meta}})
        .to_string();
        s.push('\n');
        Bytes::from(s)
    }

    /// Translate a stored change into what this watcher sees, following its selectors.
    fn translate(&self, ev: &LoggedEvent) -> Option<Bytes> {
        if ev.gr != self.rt.gr() {
            return None;
        }
        let now = self.matches(&ev.view);
        let before = ev.old.as_ref().is_some_and(|o| self.matches(o));
        let etype = match ev.etype {
            EventType::Added if now => "ADDED",
            EventType::Modified if now && before => "MODIFIED",
            EventType::Modified if now => "ADDED",
            EventType::Modified if before => "DELETED",
            EventType::Deleted if before || now => "DELETED",
            _ => return None,
        };
        Some(self.logged_line(etype, ev))
    }
}

/// `{"type":…,"object":…}` and a newline, around an object already serialized.
fn event_line(etype: &str, object: &[u8]) -> Bytes {
    let mut buf = Vec::with_capacity(object.len() + etype.len() + 24);
    buf.extend_from_slice(b"{\"type\":\"");
    buf.extend_from_slice(etype.as_bytes());
    buf.extend_from_slice(b"\",\"object\":");
    buf.extend_from_slice(object);
    buf.extend_from_slice(b"}\n");
    Bytes::from(buf)
}

fn error_line(e: &ApiError) -> Bytes {
    let mut s = json!({"type": "ERROR", "object": e.status()}).to_string();
    s.push('\n');
    Bytes::from(s)
}

pub(super) fn serve(
    shared: &Arc<Shared>,
    rt: &Arc<ResourceType>,
    version: &str,
    namespace: Option<String>,
    query: &HashMap<String, String>,
) -> ApiResult<Response> {
    let filter = Filter {
        rt: rt.clone(),
        version: version.to_string(),
        api_version: rt.api_version(version),
        namespace,
        labels: LabelSelector::parse(
            query
                .get("labelSelector")
                .map(String::as_str)
                .unwrap_or_default(),
        )?,
        fields: FieldSelector::parse(
            &crate::events::storage_field_selector(
                rt,
                query
                    .get("fieldSelector")
                    .map(String::as_str)
                    .unwrap_or_default(),
            ),
            &rt.selectable_fields,
        )?,
    };
    let bookmarks = query
        .get("allowWatchBookmarks")
        .is_some_and(|v| v == "true" || v == "1");
    let send_initial = query
        .get("sendInitialEvents")
        .is_some_and(|v| v == "true" || v == "1");
    let timeout = query
        .get("timeoutSeconds")
        .and_then(|t| t.parse::<u64>().ok())
        .map(Duration::from_secs)
        .unwrap_or(Duration::from_secs(1800));
    let rv = query.get("resourceVersion").cloned().unwrap_or_default();
    let mut queue: VecDeque<Bytes> = VecDeque::new();
    let mut last_rv;
    let mut initial_end = false;
    let rx = if rv.is_empty() || rv == "0" || send_initial {
        // Start from the current state: synthetic ADDED for what exists now.
        let inner = shared.store.lock();
        last_rv = inner.rv;
        if let Some(coll) = inner.collection(&rt.gr()) {
            for obj in coll.values().filter(|o| filter.matches(o)) {
                queue.push_back(filter.line("ADDED", obj));
            }
        }
        initial_end = send_initial;
        inner.subscribe()
    } else {
        let from: u64 = rv
            .parse()
            .map_err(|_| ApiError::bad_request(format!("invalid resourceVersion \"{rv}\"")))?;
        last_rv = from;
        match shared.store.watch_from(&rt.gr(), from) {
            Ok((backlog, rx)) => {
                for ev in backlog {
                    last_rv = ev.rv;
                    if let Some(l) = filter.translate(&ev) {
                        queue.push_back(l);
                    }
                }
                rx
            }
            Err(e) => {
                let body = Body::from(error_line(&e));
                return Ok(stream_response(body));
            }
        }
    };
    if initial_end && bookmarks {
        queue.push_back(filter.bookmark(last_rv, true));
    }
    let state = StreamState {
        filter,
        rx,
        queue,
        last_rv,
        bookmarks,
        interval: tokio::time::interval_at(
            tokio::time::Instant::now() + shared.bookmark_interval,
            shared.bookmark_interval,
        ),
        deadline: Box::pin(tokio::time::sleep(timeout)),
        shutdown: shared.shutdown.clone(),
        store: shared.store.clone(),
        done: false,
    };
    let stream = futures::stream::unfold(state, |mut st| async move {
        loop {
            if let Some(b) = st.queue.pop_front() {
                return Some((Ok::<Bytes, std::convert::Infallible>(b), st));
            }
            if st.done || *st.shutdown.borrow() {
                return None;
            }
            tokio::select! {
                r = st.rx.recv() => match r {
                    Ok(ev) => {
                        if ev.rv <= st.last_rv { continue; }
                        st.last_rv = ev.rv;
                        if let Some(l) = st.filter.translate(&ev) { st.queue.push_back(l); }
                    }
                    // Too slow to keep up: end the watch without an error, as the
                    // apiserver closes an unresponsive watcher. The client watches again
                    // from its last version, which the retained window still serves.
                    Err(RecvError::Lagged(_)) => {
                        st.store
                            .watches_closed_lagging
                            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        st.done = true;
                    }
                    Err(RecvError::Closed) => st.done = true,
                },
                _ = st.interval.tick() => {
                    if st.bookmarks { let b = st.filter.bookmark(st.last_rv, false); st.queue.push_back(b); }
                }
                _ = &mut st.deadline => st.done = true,
                _ = st.shutdown.changed() => st.done = true,
            }
        }
    });
    Ok(stream_response(Body::from_stream(stream)))
}

struct StreamState {
    filter: Filter,
    rx: EventReceiver,
    queue: VecDeque<Bytes>,
    last_rv: u64,
    bookmarks: bool,
    interval: tokio::time::Interval,
    deadline: std::pin::Pin<Box<tokio::time::Sleep>>,
    shutdown: tokio::sync::watch::Receiver<bool>,
    /// Where watches closed for lagging are counted.
    store: Arc<Store>,
    done: bool,
}

fn stream_response(body: Body) -> Response {
    let mut r = Response::new(body);
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/json"),
    );
    r.headers_mut().insert(
        header::CACHE_CONTROL,
        header::HeaderValue::from_static("no-cache, private"),
    );
    r
}
