//! What the cross-service tests share: a platform on an in-process emulator,
//! a bus of their own on the real RabbitMQ, and the waits and lookups every
//! test needs. Each test isolates itself (its own emulator, its own bus
//! exchange) and every wait has a deadline.

use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::api::events::v1::Event;
use kube::api::{Api, ListParams, Patch, PatchParams};
use kube::{Client, ResourceExt};
use midplane_api::App;
use midplane_bus::{BusConfig, SubscriberConfig};
use midplane_kube_emulator::EmulatorConfig;
use midplane_operator::condition;
use midplane_platform::{Platform, PlatformConfig};
use std::path::PathBuf;
use std::time::Duration;

pub mod manifests;
pub mod monitoring;
pub mod process;
pub mod services;

pub use midplane_runtime::testing::eventually;

/// The namespace the tests' Apps live in.
pub const NS: &str = "default";

pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The platform on a fresh in-process emulator whose Pods turn Ready fast.
pub async fn platform(bus: Option<BusConfig>) -> Platform {
    let mut cfg = PlatformConfig::emulator(EmulatorConfig {
        pod_ready_delay: Duration::from_millis(100),
        ..EmulatorConfig::default()
    })
    .expect("bundled plugins");
    cfg.bus = bus;
    let p = Platform::start(cfg).await.expect("platform");
    p.ready(Duration::from_secs(30))
        .await
        .expect("caches synced");
    p
}

/// A bus of this test's own on the real RabbitMQ: an exchange nobody else
/// binds to, so leftover queues of other runs cannot take its events.
pub async fn test_bus(name: &str) -> BusConfig {
    let url = std::env::var(midplane_bus::config::AMQP_URL_ENV)
        .unwrap_or_else(|_| midplane_bus::config::DEFAULT_AMQP_URL.to_owned());
    let suffix = uuid::Uuid::new_v4().simple().to_string();
    let bus = BusConfig {
        url,
        exchange: format!("midplane.test.{name}.{}", &suffix[..10]),
        ..BusConfig::default()
    };
    if let Err(e) = midplane_bus::topology::queue_depth(&bus, "amq.nonexistent-probe").await {
        panic!("RabbitMQ is not reachable ({e}); start it with scripts/services/rabbitmq.sh");
    }
    bus
}

/// Deletes the test's subscriber queues and exchange.
pub async fn drop_bus(bus: &BusConfig, subscribers: &[&str]) {
    for name in subscribers {
        let delays = SubscriberConfig::new(*name, &[]).retry_delays;
        let queues = midplane_bus::topology::SubscriberQueues::new(&bus.exchange, name, &delays);
        let _ = midplane_bus::topology::delete_subscriber(bus, &queues).await;
    }
    let _ = midplane_bus::topology::delete_exchange(bus).await;
}

pub fn example_app() -> App {
    let text = std::fs::read_to_string(root().join("examples/redis-app.yaml")).expect("example");
    serde_yaml::from_str(&text).expect("parses")
}

/// Applies an App as a user would (server-side apply).
pub async fn apply_app(client: &Client, app: &App) {
    let api: Api<App> = Api::namespaced(client.clone(), NS);
    let mut body = serde_json::to_value(app).expect("json");
    body.as_object_mut().expect("object").remove("status");
    api.patch(
        &app.name_any(),
        &PatchParams::apply("e2e-test").force(),
        &Patch::Apply(&body),
    )
    .await
    .expect("apply App");
}

/// The App, if it is Ready at its current generation.
pub async fn app_ready(client: &Client, name: &str) -> Option<App> {
    let app = Api::<App>::namespaced(client.clone(), NS)
        .get(name)
        .await
        .ok()?;
    let st = app.status.clone()?;
    let ready = condition::get(&st.conditions, condition::READY)?;
    (ready.status == "True"
        && ready.observed_generation == app.metadata.generation
        && st.observed_generation == app.metadata.generation)
        .then_some(app)
}

/// Names of the objects of a kind in [`NS`] that are not being deleted, sorted.
pub async fn names<K>(client: &Client) -> Vec<String>
where
    K: kube::Resource<DynamicType = (), Scope = kube::core::NamespaceResourceScope>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug,
{
    let mut v: Vec<String> = Api::<K>::namespaced(client.clone(), NS)
        .list(&ListParams::default())
        .await
        .expect("list")
        .items
        .iter()
        .filter(|o| o.meta().deletion_timestamp.is_none())
        .map(kube::ResourceExt::name_any)
        .collect();
    v.sort();
    v
}

/// The bundled Redis plugin's ConfigMap for the plugin namespace, its files
/// (keys as in the ConfigMap: `plugin.yaml`, `values.yaml`,
/// `templates.<file>`) edited by `edit`.
pub fn redis_plugin_config_map(
    edit: impl FnOnce(&mut std::collections::BTreeMap<String, String>),
) -> ConfigMap {
    let plugin = midplane_plugin::registry::bundled()
        .expect("bundled plugins")
        .get("redis")
        .expect("the redis plugin");
    let mut cm = plugin.to_config_map("midplane-system");
    edit(cm.data.get_or_insert_with(Default::default));
    cm
}

/// Replaces `from` with `to` in the ConfigMap key `key` (which must hold it).
pub fn replace_in(
    files: &mut std::collections::BTreeMap<String, String>,
    key: &str,
    from: &str,
    to: &str,
) {
    let text = files.get(key).cloned().unwrap_or_default();
    assert!(text.contains(from), "{key} holds no {from:?}");
    files.insert(key.to_string(), text.replace(from, to));
}

/// Applies a plugin ConfigMap as an operator would (server-side apply).
pub async fn apply_cm(cms: &Api<ConfigMap>, cm: &ConfigMap) {
    let mut body = serde_json::to_value(cm).expect("json");
    let m = body.as_object_mut().expect("object");
    m.insert("apiVersion".into(), "v1".into());
    m.insert("kind".into(), "ConfigMap".into());
    cms.patch(
        &cm.name_any(),
        &PatchParams::apply("test").force(),
        &Patch::Apply(&body),
    )
    .await
    .expect("apply plugin ConfigMap");
}

/// Every Event with `reason` in `namespace`.
pub async fn events(client: &Client, namespace: &str, reason: &str) -> Vec<Event> {
    Api::<Event>::namespaced(client.clone(), namespace)
        .list(&ListParams::default())
        .await
        .expect("list Events")
        .items
        .into_iter()
        .filter(|e| e.reason.as_deref() == Some(reason))
        .collect()
}

/// Waits for an Event with `reason` in `namespace` and returns its note.
pub async fn event_note(client: &Client, namespace: &str, reason: &str) -> String {
    eventually(&format!("an Event {reason}"), 30, || async {
        events(client, namespace, reason)
            .await
            .into_iter()
            .next()
            .map(|e| e.note.unwrap_or_default())
    })
    .await
}

/// Creates the Group `default/cache-0`: two Redis instances of app `shop`.
pub async fn create_redis_group(client: &Client) -> Api<midplane_api::Group> {
    use midplane_api::{Group, GroupSpec, MiddlewareSpec};
    let group = Group::new(
        "cache-0",
        GroupSpec {
            app: "shop".into(),
            component: "cache".into(),
            shard: 0,
            middleware: MiddlewareSpec {
                plugin: "redis".into(),
                replicas: 2,
                shards: 1,
                ..MiddlewareSpec::default()
            },
            paused: false,
        },
    );
    let groups: Api<Group> = Api::namespaced(client.clone(), NS);
    let mut body = serde_json::to_value(&group).expect("json");
    body.as_object_mut().expect("object").remove("status");
    groups
        .patch("cache-0", &PatchParams::apply("test"), &Patch::Apply(&body))
        .await
        .expect("create group");
    groups
}
