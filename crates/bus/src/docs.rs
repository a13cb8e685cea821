//! Renders the event catalogue (`docs/events.md`, `docs/asyncapi.yaml`) from the Rust types, so
//! the documents cannot drift from the code (a test compares them).

use serde_json::{Map, Value, json};
use serde_yaml::Mapping;

use crate::catalogue::{EventSpec, catalogue, schema_uri};
use crate::config::DEFAULT_EXCHANGE;
use crate::envelope::{CLOUDEVENTS_CONTENT_TYPE, DATA_CONTENT_TYPE, SPEC_VERSION};
use crate::error::{BusError, Result};
use crate::topology::{ATTEMPT_HEADER, ERROR_HEADER, FAILED_AT_HEADER, ROUTING_KEY_HEADER};

/// Command that regenerates the documents.
pub const REGENERATE: &str = "MIDPLANE_BLESS=1 cargo test -p midplane-bus --test catalogue";

const EXAMPLE_TIME: &str = "2026-11-27T10:15:00.123456Z";

/// Sorts object keys recursively, so output is identical whether or not serde_json's
/// `preserve_order` is unified into the build.
fn canonical(v: &Value) -> Value {
    match v {
        Value::Object(m) => {
            let mut keys: Vec<_> = m.keys().collect();
            keys.sort();
            let mut out = Map::new();
            for k in keys {
                out.insert(k.clone(), canonical(&m[k]));
            }
            Value::Object(out)
        }
        Value::Array(a) => Value::Array(a.iter().map(canonical).collect()),
        other => other.clone(),
    }
}

/// `data` schema without the root-only keywords, ready to embed.
fn data_schema(spec: &EventSpec) -> Value {
    let mut schema = spec.schema.clone().to_value();
    if let Value::Object(m) = &mut schema {
        m.remove("$schema");
    }
    canonical(&schema)
}

/// JSON Schema (draft-07) of the whole CloudEvent carrying this event.
pub fn envelope_schema(spec: &EventSpec) -> Value {
    canonical(&json!({
        "$schema": "http://json-schema.org/draft-07/schema#",
        "title": format!("CloudEvent {}", spec.event_type),
        "type": "object",
        "required": ["specversion", "id", "source", "type", "subject", "time", "datacontenttype", "data"],
        "properties": {
            "specversion": { "const": SPEC_VERSION, "description": "CloudEvents version." },
            "id": { "type": "string", "minLength": 1, "description": "Unique per event (UUIDv7); retries and redeliveries keep it: deduplicate on it." },
            "source": { "type": "string", "format": "uri-reference", "description": "Publishing service, e.g. /midplane/plugin-svc." },
            "type": { "const": spec.event_type, "description": "Event type; also the AMQP routing key." },
            "subject": { "type": "string", "minLength": 1, "description": "Object the event is about: <kind>/<namespace>/<name>, or <kind>/<name> for plugins." },
            "time": { "type": "string", "format": "date-time", "description": "When it happened (RFC 3339, UTC)." },
            "datacontenttype": { "const": DATA_CONTENT_TYPE },
            "dataschema": { "type": "string", "format": "uri", "description": "Identifies the schema of data." },
            "data": data_schema(spec),
        },
        "additionalProperties": true,
    }))
}

/// The example as a complete CloudEvent (fixed id and time so the documents are stable).
pub fn example_event(spec: &EventSpec, index: usize) -> Value {
    canonical(&json!({
        "specversion": SPEC_VERSION,
        "id": format!("01936f4e-2b1a-7c3d-8e4f-{:012x}", index + 1),
        "source": format!("/midplane/{}", spec.producer),
        "type": spec.event_type,
        "subject": spec.example_subject,
        "time": EXAMPLE_TIME,
        "datacontenttype": DATA_CONTENT_TYPE,
        "dataschema": schema_uri(spec.event_type),
        "data": spec.example,
    }))
}

fn pretty(v: &Value) -> String {
    serde_json::to_string_pretty(v).unwrap_or_default()
}

fn consumers_text(spec: &EventSpec) -> String {
    if spec.consumers.is_empty() {
        "none inside Midplane (for operators and outside subscribers)".to_owned()
    } else {
        spec.consumers.join(", ")
    }
}

fn subject_pattern(spec: &EventSpec) -> String {
    // Example subject with the object-specific parts generalised: kind/ns/name or kind/name.
    let parts: Vec<&str> = spec.example_subject.split('/').collect();
    match parts.as_slice() {
        [kind, _ns, _name] => format!("{kind}/<namespace>/<name>"),
        [kind, _name] => format!("{kind}/<name>"),
        _ => spec.example_subject.clone(),
    }
}

/// `docs/events.md`
pub fn events_markdown() -> String {
    let specs = catalogue();
    let mut md = String::new();
    md.push_str(&format!(
        "# Midplane event catalogue\n\n\
<!-- Generated from crates/bus/src/catalogue by `{REGENERATE}`. Do not edit by hand. -->\n\n\
Everything that happens to an App, Component, Group, plugin, backup or restore is published on\n\
RabbitMQ. This page is enough to write a subscriber in any language; the same content in\n\
machine-readable form is [`asyncapi.yaml`](asyncapi.yaml) (AsyncAPI 3.0).\n\n\
## Subscribing\n\n\
- **Exchange**: `{DEFAULT_EXCHANGE}`, type `topic`, durable, vhost `/`.\n\
- **Routing key** = the event type, e.g. `midplane.plugin.updated`. Bind with topic patterns:\n  \
`midplane.group.#` (every Group event), `midplane.*.failed` (every failure of one level).\n\
- **Your queue**: declare your own durable queue (`x-queue-type: quorum` recommended), bind it,\n  \
consume with manual acknowledgements and ack only after you handled the event.\n\
- **Delivery** is at-least-once: publishers retry until the broker confirms, so the same event\n  \
can arrive twice. Deduplicate on the CloudEvents `id`. Order is not guaranteed.\n\
- **Unbound types**: Midplane publishes with `mandatory`; an event type nobody binds is\n  \
reported to the producer as unroutable, so bind before you rely on an event.\n\
- **Live view**: `midplane events tail --type 'midplane.group.#'` prints events as they pass.\n\n\
## Message format\n\n\
CloudEvents 1.0, structured JSON mode, one event per AMQP message:\n\n\
| AMQP property | value |\n| --- | --- |\n\
| `content-type` | `{CLOUDEVENTS_CONTENT_TYPE}` |\n\
| `delivery-mode` | `2` (persistent) |\n\
| `message-id` | the CloudEvents `id` |\n\
| `type` | the CloudEvents `type` |\n\
| `app-id` | the CloudEvents `source` |\n\
| `timestamp` | the CloudEvents `time`, seconds |\n\n\
Body attributes: `specversion` (`{SPEC_VERSION}`), `id`, `source`, `type`, `subject`\n\
(`<kind>/<namespace>/<name>`, or `<kind>/<name>` for plugins), `time` (RFC 3339 UTC),\n\
`datacontenttype` (`{DATA_CONTENT_TYPE}`), `dataschema` and `data` (the payload below); all but\n\
`dataschema` are always present. Field names in `data` are camelCase. Versions and hashes use one\n\
vocabulary (as the gRPC API, see [`api.md`](api.md#vocabulary)): `pluginVersion` is the plugin's own\n\
version, `middlewareVersion` the middleware's, `pluginHash` the plugin's content hash and\n\
`contentHash` the hash of rendered objects.\n\n\
Compatibility: within one event type fields are only added, never removed, retyped or made\n\
optional; ignore fields you do not know. A breaking change gets a new event type. CI checks this:\n\
`asyncapi.yaml` is compared with the last released document, `released/asyncapi.yaml`.\n\n\
## Midplane's own subscribers\n\n\
Each Midplane subscriber has a durable quorum queue `{DEFAULT_EXCHANGE}.<subscriber>`. A failed\n\
handler is retried through delay queues `{DEFAULT_EXCHANGE}.<subscriber>.retry.<ms>ms` (TTL,\n\
dead-lettered back), then parked in `{DEFAULT_EXCHANGE}.<subscriber>.dlq` with headers\n\
`{ATTEMPT_HEADER}`, `{ERROR_HEADER}`, `{ROUTING_KEY_HEADER}`, `{FAILED_AT_HEADER}`.\n\
Operators inspect and replay with `midplane events dlq list|replay <subscriber>`.\n\n\
## Events\n\n\
| type | producer | consumers | summary |\n| --- | --- | --- | --- |\n"
    ));
    for s in &specs {
        md.push_str(&format!(
            "| [`{t}`](#{anchor}) | {p} | {c} | {sum} |\n",
            t = s.event_type,
            anchor = s.event_type.replace('.', ""),
            p = s.producer,
            c = if s.consumers.is_empty() {
                "—".to_owned()
            } else {
                s.consumers.join(", ")
            },
            sum = s.summary
        ));
    }
    for (i, s) in specs.iter().enumerate() {
        md.push_str(&format!(
            "\n### {t}\n\n{sum}\n\n\
- Routing key: `{t}`\n\
- Producer: {p} (`source: /midplane/{p}`)\n\
- Consumers: {c}\n\
- Subject: `{subj}`\n\
- Rust type: `midplane_bus::catalogue::{rt}`\n\n\
Schema of `data` (JSON Schema draft-07):\n\n```json\n{schema}\n```\n\n\
Example message body:\n\n```json\n{example}\n```\n",
            t = s.event_type,
            sum = s.summary,
            p = s.producer,
            c = consumers_text(s),
            subj = subject_pattern(s),
            rt = s.rust_type,
            schema = pretty(&data_schema(s)),
            example = pretty(&example_event(s, i)),
        ));
    }
    md
}

fn channel_id(event_type: &str) -> String {
    let mut out = String::new();
    for (i, word) in event_type
        .trim_start_matches("midplane.")
        .split('.')
        .enumerate()
    {
        let mut chars = word.chars();
        if let Some(first) = chars.next() {
            if i == 0 {
                out.push(first);
            } else {
                out.extend(first.to_uppercase());
            }
            out.push_str(chars.as_str());
        }
    }
    out
}

fn yaml(v: &Value) -> Result<serde_yaml::Value> {
    serde_yaml::to_value(v).map_err(|e| BusError::Catalogue(format!("json → yaml: {e}")))
}

fn map(pairs: Vec<(&str, serde_yaml::Value)>) -> serde_yaml::Value {
    let mut m = Mapping::new();
    for (k, v) in pairs {
        m.insert(serde_yaml::Value::String(k.to_owned()), v);
    }
    serde_yaml::Value::Mapping(m)
}

fn s(v: &str) -> serde_yaml::Value {
    serde_yaml::Value::String(v.to_owned())
}

/// `docs/asyncapi.yaml` (AsyncAPI 3.0, AMQP 0-9-1 bindings 0.3.0).
pub fn asyncapi_yaml() -> Result<String> {
    let specs = catalogue();
    let mut channels = Mapping::new();
    let mut operations = Mapping::new();
    let mut messages = Mapping::new();
    let exchange = map(vec![
        ("name", s(DEFAULT_EXCHANGE)),
        ("type", s("topic")),
        ("durable", serde_yaml::Value::Bool(true)),
        ("autoDelete", serde_yaml::Value::Bool(false)),
        ("vhost", s("/")),
    ]);
    for (i, spec) in specs.iter().enumerate() {
        let id = channel_id(spec.event_type);
        let msg_ref = map(vec![("$ref", s(&format!("#/components/messages/{id}")))]);
        channels.insert(
            s(&id),
            map(vec![
                ("address", s(spec.event_type)),
                ("title", s(spec.event_type)),
                ("description", s(spec.summary)),
                ("messages", map(vec![(id.as_str(), msg_ref)])),
                (
                    "bindings",
                    map(vec![(
                        "amqp",
                        map(vec![
                            ("is", s("routingKey")),
                            ("exchange", exchange.clone()),
                            ("bindingVersion", s("0.3.0")),
                        ]),
                    )]),
                ),
            ]),
        );
        let consumers = serde_yaml::Value::Sequence(spec.consumers.iter().map(|c| s(c)).collect());
        operations.insert(
            s(&format!("receive{}{}", id[..1].to_uppercase(), &id[1..])),
            map(vec![
                ("action", s("receive")),
                (
                    "channel",
                    map(vec![("$ref", s(&format!("#/channels/{id}")))]),
                ),
                (
                    "summary",
                    s(&format!(
                        "Receive {} (published by {}).",
                        spec.event_type, spec.producer
                    )),
                ),
                (
                    "messages",
                    serde_yaml::Value::Sequence(vec![map(vec![(
                        "$ref",
                        s(&format!("#/channels/{id}/messages/{id}")),
                    )])]),
                ),
                (
                    "bindings",
                    map(vec![(
                        "amqp",
                        map(vec![
                            ("ack", serde_yaml::Value::Bool(true)),
                            ("bindingVersion", s("0.3.0")),
                        ]),
                    )]),
                ),
                ("x-producer", s(spec.producer)),
                ("x-consumers", consumers),
            ]),
        );
        messages.insert(
            s(&id),
            map(vec![
                ("name", s(spec.event_type)),
                ("title", s(spec.rust_type)),
                ("summary", s(spec.summary)),
                ("contentType", s(CLOUDEVENTS_CONTENT_TYPE)),
                (
                    "payload",
                    map(vec![
                        (
                            "schemaFormat",
                            s("application/schema+json;version=draft-07"),
                        ),
                        ("schema", yaml(&envelope_schema(spec))?),
                    ]),
                ),
                (
                    "bindings",
                    map(vec![(
                        "amqp",
                        map(vec![
                            ("messageType", s(spec.event_type)),
                            ("bindingVersion", s("0.3.0")),
                        ]),
                    )]),
                ),
                (
                    "examples",
                    serde_yaml::Value::Sequence(vec![map(vec![
                        ("name", s("example")),
                        ("payload", yaml(&example_event(spec, i))?),
                    ])]),
                ),
            ]),
        );
    }
    let doc = map(vec![
        ("asyncapi", s("3.0.0")),
        (
            "info",
            map(vec![
                ("title", s("Midplane events")),
                ("version", s("1.0.0")),
                (
                    "description",
                    s(&format!(
                        "Every Midplane event, as CloudEvents 1.0 in structured JSON mode on the durable topic exchange `{DEFAULT_EXCHANGE}`; routing key = event type. Delivery is at-least-once: deduplicate on the CloudEvents `id`. Generated from crates/bus/src/catalogue by `{REGENERATE}`; see docs/events.md."
                    )),
                ),
            ]),
        ),
        ("defaultContentType", s(CLOUDEVENTS_CONTENT_TYPE)),
        (
            "servers",
            map(vec![(
                "local",
                map(vec![
                    ("host", s("127.0.0.1:5672")),
                    ("protocol", s("amqp")),
                    ("protocolVersion", s("0.9.1")),
                    (
                        "description",
                        s(
                            "RabbitMQ. Midplane services publish to the broker in their `bus.url` setting (environment MIDPLANE_BUS__URL); `midplane events` and the test suite read MIDPLANE_AMQP_URL.",
                        ),
                    ),
                ]),
            )]),
        ),
        ("channels", serde_yaml::Value::Mapping(channels)),
        ("operations", serde_yaml::Value::Mapping(operations)),
        (
            "components",
            map(vec![("messages", serde_yaml::Value::Mapping(messages))]),
        ),
    ]);
    let body =
        serde_yaml::to_string(&doc).map_err(|e| BusError::Catalogue(format!("yaml: {e}")))?;
    Ok(format!(
        "# Generated from crates/bus/src/catalogue by `{REGENERATE}`. Do not edit by hand.\n{body}"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn channel_ids_are_camel_case() {
        assert_eq!(
            channel_id("midplane.group.rollout.completed"),
            "groupRolloutCompleted"
        );
        assert_eq!(channel_id("midplane.plugin.updated"), "pluginUpdated");
    }
}
