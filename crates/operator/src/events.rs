//! Kubernetes Events for every condition change and every failed action, so
//! nothing fails silently. Publishing problems are logged, never fatal.

use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use kube::{Client, Resource};

#[derive(Clone)]
pub struct EventRecorder {
    recorder: Recorder,
}

impl EventRecorder {
    pub fn new(client: Client, controller: &str) -> Self {
        let reporter = Reporter {
            controller: controller.to_string(),
            instance: std::env::var("POD_NAME").ok(),
        };
        Self {
            recorder: Recorder::new(client, reporter),
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
        // The API limits an Event note to 1 kB.
        let note = if note.len() > 1000 {
            let mut end = 997;
            while !note.is_char_boundary(end) {
                end -= 1;
            }
            format!("{}...", &note[..end])
        } else {
            note
        };
        let ev = Event {
            type_,
            reason: reason.to_string(),
            note: Some(note),
            action: action.to_string(),
            secondary: None,
        };
        if let Err(e) = self.recorder.publish(&ev, &obj.object_ref(&())).await {
            tracing::warn!(error = %e, reason, "could not publish Event");
        }
    }
}
