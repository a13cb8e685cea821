//! CloudEvents 1.0 envelope in structured JSON mode, and the AMQP message properties that carry it.
//!
//! RabbitMQ speaks AMQP 0-9-1, for which CloudEvents has no binding of its own; we follow the AMQP
//! binding's structured mode (the whole event is the body, `content-type:
//! application/cloudevents+json`) and mirror `id`, `type`, `source` and `time` into the standard
//! message properties so stock tools (and dedup) can see them without parsing the body.

use chrono::{DateTime, SubsecRound, Utc};
use lapin::BasicProperties;
use serde::{Deserialize, Serialize};

use crate::catalogue::Event;
use crate::error::{BusError, Result};

/// Content type of a structured-mode CloudEvent.
pub const CLOUDEVENTS_CONTENT_TYPE: &str = "application/cloudevents+json; charset=utf-8";
/// Content type of the `data` member.
pub const DATA_CONTENT_TYPE: &str = "application/json";
/// The only CloudEvents version we produce and accept.
pub const SPEC_VERSION: &str = "1.0";

/// One event on the bus: CloudEvents context attributes plus the JSON payload.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Envelope {
    pub specversion: String,
    pub id: String,
    pub source: String,
    #[serde(rename = "type")]
    pub event_type: String,
    /// The object the event is about (`<kind>/<namespace>/<name>`). Required
    /// on the bus: [`Envelope::from_bytes`] refuses an event without one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    pub time: DateTime<Utc>,
    pub datacontenttype: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dataschema: Option<String>,
    pub data: serde_json::Value,
}

impl Envelope {
    /// Wraps a typed payload, with a fresh time-ordered id.
    pub fn new<E: Event>(source: &str, payload: &E) -> Result<Self> {
        let data = serde_json::to_value(payload).map_err(|source| BusError::Encode {
            event_type: E::TYPE.to_owned(),
            source,
        })?;
        Ok(Self {
            specversion: SPEC_VERSION.to_owned(),
            id: uuid::Uuid::now_v7().to_string(),
            source: source.to_owned(),
            event_type: E::TYPE.to_owned(),
            subject: Some(payload.subject()),
            // Microseconds are enough and keep RFC 3339 output stable across languages.
            time: Utc::now().trunc_subsecs(6),
            datacontenttype: DATA_CONTENT_TYPE.to_owned(),
            dataschema: Some(crate::catalogue::schema_uri(E::TYPE)),
            data,
        })
    }

    /// The typed payload; fails if this envelope is another event type or `data` does not fit.
    pub fn decode<E: Event>(&self) -> Result<E> {
        if self.event_type != E::TYPE {
            return Err(BusError::WrongEventType {
                id: self.id.clone(),
                expected: E::TYPE.to_owned(),
                actual: self.event_type.clone(),
            });
        }
        serde_json::from_value(self.data.clone()).map_err(|source| BusError::DecodeData {
            id: self.id.clone(),
            event_type: self.event_type.clone(),
            source,
        })
    }

    /// The wire form: one JSON document.
    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        serde_json::to_vec(self).map_err(|source| BusError::Encode {
            event_type: self.event_type.clone(),
            source,
        })
    }

    /// Parses and checks the required attributes: CloudEvents' own, and `subject`,
    /// which every Midplane event carries.
    pub fn from_bytes(body: &[u8]) -> Result<Self> {
        let env: Envelope = serde_json::from_slice(body).map_err(|e| BusError::MalformedEvent {
            reason: format!("line {} column {}: {e}", e.line(), e.column()),
        })?;
        if env.specversion != SPEC_VERSION {
            return Err(BusError::MalformedEvent {
                reason: format!(
                    "field `specversion` is `{}`, only `{SPEC_VERSION}` is supported",
                    env.specversion
                ),
            });
        }
        let subject = env.subject.clone().unwrap_or_default();
        for (field, value) in [
            ("id", &env.id),
            ("source", &env.source),
            ("type", &env.event_type),
            ("subject", &subject),
        ] {
            if value.is_empty() {
                return Err(BusError::MalformedEvent {
                    reason: format!("required field `{field}` is empty"),
                });
            }
        }
        Ok(env)
    }

    /// AMQP properties for this event: persistent, structured-mode content type, and the
    /// CloudEvents attributes mirrored into `message_id`, `type`, `app_id` and `timestamp`.
    pub fn amqp_properties(&self) -> BasicProperties {
        BasicProperties::default()
            .with_content_type(CLOUDEVENTS_CONTENT_TYPE.into())
            .with_delivery_mode(2)
            .with_message_id(self.id.as_str().into())
            .with_type(self.event_type.as_str().into())
            .with_app_id(truncate(&self.source, 255).into())
            .with_timestamp(u64::try_from(self.time.timestamp()).unwrap_or(0))
    }
}

fn truncate(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_event_without_a_subject_is_refused() {
        let body = |subject: &str| {
            format!(
                r#"{{"specversion":"1.0","id":"1","source":"/x","type":"midplane.app.ready",{subject}"time":"2026-01-01T00:00:00Z","datacontenttype":"application/json","data":{{}}}}"#
            )
        };
        let err = Envelope::from_bytes(body("").as_bytes())
            .expect_err("no subject")
            .to_string();
        assert!(err.contains("subject"), "{err}");
        let err = Envelope::from_bytes(body(r#""subject":"","#).as_bytes())
            .expect_err("empty subject")
            .to_string();
        assert!(err.contains("subject"), "{err}");
        let env = Envelope::from_bytes(body(r#""subject":"apps/shop/cache","#).as_bytes())
            .expect("with a subject");
        assert_eq!(env.subject.as_deref(), Some("apps/shop/cache"));
    }
}
