//! The platform-wide event catalogue: one Rust type per event, its routing key, producer and
//! consumers. `docs/events.md` and `docs/asyncapi.yaml` are generated from this module.

use schemars::{JsonSchema, Schema, generate::SchemaSettings};
use serde::{Deserialize, Serialize, de::DeserializeOwned};

mod app;
mod backup;
pub mod compat;
mod group;
mod plugin;

pub use app::*;
pub use backup::*;
pub use group::*;
pub use plugin::*;

/// A typed event payload. `TYPE` is both the CloudEvents `type` and the AMQP routing key.
pub trait Event: Serialize + DeserializeOwned + JsonSchema + Send + Sync + 'static {
    /// `midplane.<area>.<what>`
    const TYPE: &'static str;
    /// The service that publishes it.
    const PRODUCER: &'static str;
    /// Midplane services that subscribe to it (outside subscribers come on top).
    const CONSUMERS: &'static [&'static str];
    /// One sentence for the catalogue.
    const SUMMARY: &'static str;
    /// CloudEvents `subject`: the object the event is about, `<kind>/<namespace>/<name>`.
    fn subject(&self) -> String;
    /// A realistic instance for the catalogue.
    fn example() -> Self;
}

/// A Kubernetes object the event is about.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ObjectRef {
    pub namespace: String,
    pub name: String,
}

impl ObjectRef {
    pub fn new(namespace: &str, name: &str) -> Self {
        Self {
            namespace: namespace.to_owned(),
            name: name.to_owned(),
        }
    }
}

/// URI of an event's data schema (the `dataschema` attribute); resolvable in docs/asyncapi.yaml.
pub fn schema_uri(event_type: &str) -> String {
    format!("https://midplane.dev/schemas/events/{event_type}.json")
}

/// One catalogue row, type-erased so docs can be generated from the list.
#[derive(Clone, Debug)]
pub struct EventSpec {
    pub event_type: &'static str,
    pub producer: &'static str,
    pub consumers: &'static [&'static str],
    pub summary: &'static str,
    /// Name of the Rust payload type.
    pub rust_type: &'static str,
    /// JSON Schema (draft-07, no `$ref`s) of `data`.
    pub schema: Schema,
    /// `data` of the example.
    pub example: serde_json::Value,
    pub example_subject: String,
}

/// JSON Schema of a payload: draft-07 with subschemas inlined, so it can be embedded anywhere.
pub fn payload_schema<E: JsonSchema>() -> Schema {
    SchemaSettings::draft07()
        .with(|s| s.inline_subschemas = true)
        .into_generator()
        .into_root_schema_for::<E>()
}

fn spec<E: Event>() -> EventSpec {
    let example = E::example();
    EventSpec {
        event_type: E::TYPE,
        producer: E::PRODUCER,
        consumers: E::CONSUMERS,
        summary: E::SUMMARY,
        rust_type: std::any::type_name::<E>()
            .rsplit("::")
            .next()
            .unwrap_or_default(),
        schema: payload_schema::<E>(),
        // Every payload is a plain struct of JSON-representable fields.
        example: serde_json::to_value(&example).unwrap_or(serde_json::Value::Null),
        example_subject: example.subject(),
    }
}

/// Every event of the platform, in catalogue order.
pub fn catalogue() -> Vec<EventSpec> {
    vec![
        spec::<AppApplied>(),
        spec::<AppDeleted>(),
        spec::<AppReady>(),
        spec::<AppDegraded>(),
        spec::<ComponentApplied>(),
        spec::<ComponentDeleted>(),
        spec::<ComponentReady>(),
        spec::<ComponentDegraded>(),
        spec::<GroupRendered>(),
        spec::<GroupRolloutStarted>(),
        spec::<GroupRolloutCompleted>(),
        spec::<GroupRolloutFailed>(),
        spec::<GroupSwitchover>(),
        spec::<GroupFailover>(),
        spec::<GroupConfigReloaded>(),
        spec::<PluginUpdated>(),
        spec::<PluginRejected>(),
        spec::<BackupStarted>(),
        spec::<BackupCompleted>(),
        spec::<BackupFailed>(),
        spec::<BackupDeleted>(),
        spec::<RestoreCompleted>(),
        spec::<RestoreFailed>(),
    ]
}

/// Declares the `Event` impl of a payload type.
macro_rules! event {
    ($ty:ty, $rk:literal, producer: $producer:literal, consumers: [$($c:literal),*], summary: $summary:literal, subject: |$s:ident| $subject:expr, example: $example:expr) => {
        impl $crate::catalogue::Event for $ty {
            const TYPE: &'static str = $rk;
            const PRODUCER: &'static str = $producer;
            const CONSUMERS: &'static [&'static str] = &[$($c),*];
            const SUMMARY: &'static str = $summary;
            fn subject(&self) -> String {
                let $s = self;
                $subject
            }
            fn example() -> Self {
                $example
            }
        }
    };
}
pub(crate) use event;
