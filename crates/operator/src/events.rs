//! Kubernetes Events for every condition change and every failed action, so
//! nothing fails silently. Publishing problems are logged, never fatal.
//!
//! Events are `events.k8s.io/v1` objects, published as kube-runtime's
//! `Recorder` does: the first occurrence of (type, reason, action, object) is
//! created, repeats within six minutes patch its `series` (count and last
//! time) instead of piling up new objects. Unlike that recorder, the cache is
//! swept at most once a minute, not scanned whole on every publish (at 16,000
//! Events that scan was 6 % of the controllers' CPU), and the API server's
//! answer is not decoded: nothing reads it.

use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::api::events::v1::{Event, EventSeries};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::api::{ObjectMeta, Patch, PatchParams, PostParams};
use kube::{Client, Resource};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// How long a repeat still joins the first occurrence's series.
const SERIES_TTL: SignedDuration = SignedDuration::from_mins(6);
/// How often expired series are dropped from memory.
const SWEEP_EVERY: SignedDuration = SignedDuration::from_mins(1);

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EventType {
    Normal,
    Warning,
}

impl EventType {
    fn as_str(self) -> &'static str {
        match self {
            EventType::Normal => "Normal",
            EventType::Warning => "Warning",
        }
    }
}

/// One thing to report about an object.
struct Occurrence {
    type_: EventType,
    reason: String,
    action: String,
    note: String,
    regarding: ObjectReference,
}

/// What makes two Events the same occurrence: as kube-runtime's key, the whole
/// reference (resourceVersion included), so a repeat joins a series only while
/// the object it is about has not changed.
#[derive(Clone, PartialEq, Eq, Hash)]
struct Key {
    type_: EventType,
    reason: String,
    action: String,
    regarding: [String; 7],
}

/// A published Event and when it was last seen.
struct Published {
    event: Event,
    last: Timestamp,
}

#[derive(Default)]
struct Cache {
    by_key: HashMap<Key, Published>,
    swept: Option<Timestamp>,
}

#[derive(Clone)]
pub struct EventRecorder {
    client: Client,
    controller: String,
    instance: String,
    cache: Arc<Mutex<Cache>>,
}

impl EventRecorder {
    pub fn new(client: Client, controller: &str) -> Self {
        Self {
            client,
            controller: controller.to_string(),
            instance: std::env::var("POD_NAME").unwrap_or_else(|_| controller.to_string()),
            cache: Arc::default(),
        }
    }

    pub async fn normal<K: Resource<DynamicType = ()>>(
        &self,
        obj: &K,
        reason: &str,
        action: &str,
        note: impl Into<String>,
    ) {
        self.publish(obj, EventType::Normal, reason, action, note.into())
            .await;
    }

    pub async fn warning<K: Resource<DynamicType = ()>>(
        &self,
        obj: &K,
        reason: &str,
        action: &str,
        note: impl Into<String>,
    ) {
        self.publish(obj, EventType::Warning, reason, action, note.into())
            .await;
    }

    async fn publish<K: Resource<DynamicType = ()>>(
        &self,
        obj: &K,
        type_: EventType,
        reason: &str,
        action: &str,
        note: String,
    ) {
        let occurrence = Occurrence {
            type_,
            reason: reason.to_string(),
            action: action.to_string(),
            note: truncate(note),
            regarding: obj.object_ref(&()),
        };
        let (key, event, repeat) = self.record(occurrence);
        if let Err(e) = self.send(&event, repeat).await {
            // Not published (or, for a repeat, gone from the API server): the next
            // occurrence starts a new Event rather than patching a missing one.
            self.cache
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .by_key
                .remove(&key);
            tracing::warn!(error = %e, reason, "could not publish Event");
        }
    }

    /// The Event to send: a new one, or (`true`) the cached one with its series
    /// moved on. Cached either way, as sent, under the returned key.
    fn record(&self, occurrence: Occurrence) -> (Key, Event, bool) {
        let now = Timestamp::now();
        let r = &occurrence.regarding;
        let key = Key {
            type_: occurrence.type_,
            reason: occurrence.reason.clone(),
            action: occurrence.action.clone(),
            regarding: [
                &r.api_version,
                &r.kind,
                &r.namespace,
                &r.name,
                &r.uid,
                &r.resource_version,
                &r.field_path,
            ]
            .map(|f| f.clone().unwrap_or_default()),
        };
        let mut cache = self
            .cache
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if cache.swept.is_none_or(|t| t + SWEEP_EVERY <= now) {
            cache.by_key.retain(|_, p| p.last + SERIES_TTL > now);
            cache.swept = Some(now);
        }
        let (event, repeat) = match cache.by_key.get(&key) {
            Some(p) if p.last + SERIES_TTL > now => {
                let mut event = p.event.clone();
                let count = event.series.as_ref().map_or(2, |s| s.count + 1);
                event.series = Some(EventSeries {
                    count,
                    last_observed_time: MicroTime(now),
                });
                (event, true)
            }
            _ => (self.new_event(occurrence, now), false),
        };
        cache.by_key.insert(
            key.clone(),
            Published {
                event: event.clone(),
                last: now,
            },
        );
        (key, event, repeat)
    }

    fn new_event(&self, o: Occurrence, now: Timestamp) -> Event {
        let name = format!(
            "{}.{:x}",
            o.regarding.name.as_deref().unwrap_or(&self.controller),
            now.as_nanosecond()
        );
        Event {
            action: Some(o.action),
            reason: Some(o.reason),
            event_time: Some(MicroTime(now)),
            note: Some(o.note),
            metadata: ObjectMeta {
                // Cluster-scoped objects' Events go to "default", as kube-runtime's.
                namespace: Some(
                    o.regarding
                        .namespace
                        .clone()
                        .unwrap_or_else(|| "default".into()),
                ),
                name: Some(name),
                ..Default::default()
            },
            type_: Some(o.type_.as_str().to_string()),
            regarding: Some(o.regarding),
            reporting_controller: Some(self.controller.clone()),
            reporting_instance: Some(self.instance.clone()),
            ..Default::default()
        }
    }

    async fn send(&self, event: &Event, repeat: bool) -> Result<(), kube::Error> {
        let ns = event.metadata.namespace.as_deref().unwrap_or("default");
        let req = kube::core::Request::new(Event::url_path(&(), Some(ns)));
        let req = if repeat {
            let name = event.metadata.name.as_deref().unwrap_or_default();
            req.patch(name, &PatchParams::default(), &Patch::Merge(event))
        } else {
            serde_json::to_vec(event)
                .map_err(kube::core::request::Error::SerializeBody)
                .and_then(|body| req.create(&PostParams::default(), body))
        };
        crate::apply::send_unread(&self.client, req).await
    }
}

/// The API limits an Event note to 1 kB.
fn truncate(note: String) -> String {
    if note.len() <= 1000 {
        return note;
    }
    let mut end = 997;
    while !note.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...", &note[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn recorder() -> EventRecorder {
        // Never used to send: `record` is pure bookkeeping.
        let config = kube::Config::new("http://127.0.0.1:1".parse().expect("uri"));
        EventRecorder::new(Client::try_from(config).expect("client"), "test-svc")
    }

    fn record(
        r: &EventRecorder,
        type_: EventType,
        reason: &str,
        action: &str,
        note: String,
        regarding: ObjectReference,
    ) -> (Key, Event, bool) {
        r.record(Occurrence {
            type_,
            reason: reason.into(),
            action: action.into(),
            note,
            regarding,
        })
    }

    fn pod(name: &str) -> ObjectReference {
        ObjectReference {
            api_version: Some("v1".into()),
            kind: Some("Pod".into()),
            name: Some(name.into()),
            namespace: Some("ns".into()),
            uid: Some(format!("uid-{name}")),
            ..Default::default()
        }
    }

    #[tokio::test]
    async fn repeats_join_a_series_and_others_start_their_own() {
        let r = recorder();
        let (_, first, repeat) = record(
            &r,
            EventType::Normal,
            "Started",
            "Lifecycle",
            "a".into(),
            pod("p"),
        );
        assert!(!repeat);
        assert!(first.series.is_none());
        assert_eq!(first.metadata.namespace.as_deref(), Some("ns"));
        assert_eq!(first.reporting_controller.as_deref(), Some("test-svc"));
        assert_eq!(first.type_.as_deref(), Some("Normal"));
        let (_, second, repeat) = record(
            &r,
            EventType::Normal,
            "Started",
            "Lifecycle",
            "b".into(),
            pod("p"),
        );
        assert!(repeat);
        assert_eq!(second.metadata.name, first.metadata.name, "the same object");
        assert_eq!(second.series.as_ref().map(|s| s.count), Some(2));
        let (_, third, _) = record(
            &r,
            EventType::Normal,
            "Started",
            "Lifecycle",
            "c".into(),
            pod("p"),
        );
        assert_eq!(third.series.as_ref().map(|s| s.count), Some(3));
        // Another reason, type or object, or the object changed since, is another Event.
        let mut changed = pod("p");
        changed.resource_version = Some("2".into());
        for (t, reason, obj) in [
            (EventType::Normal, "Started", changed),
            (EventType::Normal, "Ready", pod("p")),
            (EventType::Warning, "Started", pod("p")),
            (EventType::Normal, "Started", pod("q")),
        ] {
            let (_, _, repeat) = record(&r, t, reason, "Lifecycle", "x".into(), obj);
            assert!(!repeat);
        }
    }

    #[tokio::test]
    async fn an_expired_series_starts_over_and_is_swept() {
        let r = recorder();
        record(
            &r,
            EventType::Normal,
            "Started",
            "Lifecycle",
            "a".into(),
            pod("p"),
        );
        {
            let mut cache = r.cache.lock().expect("lock");
            for p in cache.by_key.values_mut() {
                p.last -= SERIES_TTL;
            }
            cache.swept = Some(Timestamp::now() - SWEEP_EVERY);
        }
        let (_, again, repeat) = record(
            &r,
            EventType::Normal,
            "Started",
            "Lifecycle",
            "a".into(),
            pod("p"),
        );
        assert!(!repeat, "older than the TTL: a new Event");
        assert!(again.series.is_none());
        record(
            &r,
            EventType::Normal,
            "Other",
            "Lifecycle",
            "a".into(),
            pod("q"),
        );
        assert_eq!(
            r.cache.lock().expect("lock").by_key.len(),
            2,
            "the expired entry was swept"
        );
    }

    #[test]
    fn long_notes_are_cut_at_a_char_boundary() {
        let note = "é".repeat(600);
        let cut = truncate(note);
        assert!(cut.len() <= 1000);
        assert!(cut.ends_with("..."));
        assert_eq!(truncate("short".into()), "short");
    }
}
