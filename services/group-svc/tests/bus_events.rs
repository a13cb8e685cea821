//! The catalogue's App, Component and Group events, published by app-svc's
//! and group-svc's controllers on the real RabbitMQ while an App is created,
//! changed and deleted on the Kubernetes API emulator — what an outside
//! subscriber bound to `midplane.#` sees.

mod common;

use kube::api::{Api, DeleteParams, Patch, PatchParams};
use midplane_api::App;
use midplane_bus::catalogue::{
    AppApplied, AppDeleted, AppReady, ComponentApplied, ComponentReady, GroupRendered,
    GroupRolloutCompleted, GroupRolloutStarted,
};
use midplane_bus::{
    BusConfig, Envelope, EventSink, HandlerError, Publisher, Received, Subscriber, SubscriberConfig,
};
use midplane_operator::plugin_store::PluginStore;
use midplane_runtime::Shutdown;
use midplane_runtime::testing::eventually;
use std::sync::{Arc, Mutex};

const NS: &str = "default";

fn app(maxmemory: &str) -> serde_json::Value {
    serde_json::json!({
        "apiVersion": "midplane.dev/v1alpha1", "kind": "App",
        "metadata": {"name": "shop", "namespace": NS},
        "spec": {"components": [{"name": "cache", "plugin": "redis", "replicas": 2, "shards": 1,
                  "parameters": {"maxmemory": maxmemory}}]}
    })
}

async fn sink(bus: &BusConfig, source: &str) -> (EventSink, tokio::task::JoinHandle<()>) {
    let publisher = Publisher::connect(bus.clone().with_source(source))
        .await
        .expect("publisher");
    EventSink::start(publisher)
}

type Seen = Arc<Mutex<Vec<Envelope>>>;

async fn wait_for(seen: &Seen, event_type: &str, n: usize) -> Vec<Envelope> {
    eventually(&format!("{n} × {event_type}"), 60, || {
        let found: Vec<Envelope> = seen
            .lock()
            .map(|s| {
                s.iter()
                    .filter(|e| e.event_type == event_type)
                    .cloned()
                    .collect()
            })
            .unwrap_or_default();
        async move { (found.len() >= n).then_some(found) }
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn controllers_publish_the_lifecycle_of_an_app() {
    let url = std::env::var(midplane_bus::config::AMQP_URL_ENV)
        .unwrap_or_else(|_| midplane_bus::config::DEFAULT_AMQP_URL.to_owned());
    let suffix = uuid::Uuid::new_v4().simple().to_string();
    let bus = BusConfig {
        url,
        exchange: format!("midplane.test.lifecycle.{}", &suffix[..10]),
        ..BusConfig::default()
    };
    if let Err(e) = midplane_bus::topology::queue_depth(&bus, "amq.nonexistent-probe").await {
        panic!("RabbitMQ is not reachable ({e}); start it with scripts/services/rabbitmq.sh");
    }
    let seen: Seen = Arc::default();
    let seen_by_sub = seen.clone();
    let sub = Subscriber::start(
        &bus,
        SubscriberConfig::new(
            "watcher",
            &["midplane.app.#", "midplane.component.#", "midplane.group.#"],
        ),
        move |r: Received| {
            let seen = seen_by_sub.clone();
            async move {
                seen.lock()
                    .map_err(HandlerError::new)?
                    .push(r.event.clone());
                Ok::<(), HandlerError>(())
            }
        },
    )
    .await
    .expect("subscriber");

    let (_emu, client) = common::emulator().await;
    let bundled = midplane_plugin::registry::bundled().expect("bundled");
    let shutdown = Shutdown::new();
    let (app_sink, app_task) = sink(&bus, "/midplane/app-svc").await;
    let (group_sink, group_task) = sink(&bus, "/midplane/group-svc").await;
    let app_ctx = midplane_app_svc::Context::new(client.clone(), PluginStore::new(bundled.clone()))
        .with_bus(app_sink);
    let group_ctx = midplane_group_svc::Context::new(client.clone(), PluginStore::new(bundled))
        .with_bus(group_sink);
    let app_run = tokio::spawn(midplane_app_svc::run::run_controllers(
        Arc::new(app_ctx),
        "midplane-system".into(),
        shutdown.clone(),
    ));
    let group_run = tokio::spawn(midplane_group_svc::run::run_controller(
        Arc::new(group_ctx),
        "midplane-system".into(),
        shutdown.clone(),
    ));

    // Created: applied → rendered → ready, each once.
    let apps: Api<App> = Api::namespaced(client.clone(), NS);
    let pp = PatchParams::apply("test").force();
    apps.patch("shop", &pp, &Patch::Apply(&app("100mb")))
        .await
        .expect("apply App");
    let ready = wait_for(&seen, "midplane.app.ready", 1).await;
    let ready: AppReady = ready[0].decode().expect("app.ready payload");
    assert_eq!((ready.app.name.as_str(), ready.generation), ("shop", 1));
    assert_eq!(ready.components, ["cache"]);
    let applied: AppApplied = wait_for(&seen, "midplane.app.applied", 1).await[0]
        .decode()
        .expect("app.applied payload");
    assert_eq!(applied.components[0].plugin, "redis");
    assert_eq!(
        (applied.components[0].replicas, applied.components[0].shards),
        (2, 1)
    );
    let comp: ComponentApplied = wait_for(&seen, "midplane.component.applied", 1).await[0]
        .decode()
        .expect("component.applied payload");
    assert_eq!(comp.groups, ["shop-cache-0"]);
    let comp_ready: ComponentReady = wait_for(&seen, "midplane.component.ready", 1).await[0]
        .decode()
        .expect("component.ready payload");
    assert_eq!(comp_ready.app, "shop");
    let rendered: GroupRendered = wait_for(&seen, "midplane.group.rendered", 1).await[0]
        .decode()
        .expect("group.rendered payload");
    assert_eq!(rendered.group.name, "shop-cache-0");
    assert!(
        rendered
            .changed
            .iter()
            .any(|k| k == "ConfigMap/shop-cache-0-config"),
        "{:?}",
        rendered.changed
    );
    assert!(
        rendered.plugin_hash.starts_with("sha256:") && rendered.content_hash.starts_with("sha256:")
    );

    // Changed: a parameter moves every instance's content → one rollout, started then completed.
    apps.patch("shop", &pp, &Patch::Apply(&app("200mb")))
        .await
        .expect("change App");
    let started: GroupRolloutStarted = wait_for(&seen, "midplane.group.rollout.started", 1).await
        [0]
    .decode()
    .expect("rollout.started payload");
    assert_eq!(
        started.order.len(),
        2,
        "both instances roll: {:?}",
        started.order
    );
    let completed: GroupRolloutCompleted = wait_for(&seen, "midplane.group.rollout.completed", 1)
        .await[0]
        .decode()
        .expect("rollout.completed payload");
    assert_eq!(completed.content_hash, started.content_hash);
    assert_eq!(completed.rolled, started.order);
    wait_for(&seen, "midplane.app.applied", 2).await;
    wait_for(&seen, "midplane.app.ready", 2).await;

    // Deleted: the component goes, then the App.
    apps.delete("shop", &DeleteParams::default())
        .await
        .expect("delete App");
    let deleted: AppDeleted = wait_for(&seen, "midplane.app.deleted", 1).await[0]
        .decode()
        .expect("app.deleted payload");
    assert_eq!(deleted.components, ["cache"]);
    wait_for(&seen, "midplane.component.deleted", 1).await;

    // Once each: a status change or a resync is not an event.
    let count = |t: &str| {
        seen.lock()
            .map(|s| s.iter().filter(|e| e.event_type == t).count())
            .unwrap_or_default()
    };
    for (t, n) in [
        ("midplane.app.applied", 2),
        ("midplane.app.ready", 2),
        ("midplane.component.applied", 2),
        ("midplane.group.rollout.started", 1),
        ("midplane.group.rollout.completed", 1),
        ("midplane.app.deleted", 1),
    ] {
        assert_eq!(count(t), n, "{t}");
    }
    let sources: std::collections::BTreeSet<String> = seen
        .lock()
        .map(|s| s.iter().map(|e| e.source.clone()).collect())
        .unwrap_or_default();
    assert_eq!(
        sources,
        [
            "/midplane/app-svc".to_string(),
            "/midplane/group-svc".to_string()
        ]
        .into()
    );

    shutdown.trigger();
    let drained = tokio::time::timeout(std::time::Duration::from_secs(20), async {
        let _ = tokio::join!(app_run, group_run);
        let _ = tokio::join!(app_task, group_task);
    })
    .await;
    assert!(
        drained.is_ok(),
        "controllers and their event sinks stop on shutdown"
    );
    sub.shutdown().await.expect("drain subscriber");
    let delays = SubscriberConfig::new("watcher", &[]).retry_delays;
    let queues = midplane_bus::topology::SubscriberQueues::new(&bus.exchange, "watcher", &delays);
    let _ = midplane_bus::topology::delete_subscriber(&bus, &queues).await;
    let _ = midplane_bus::topology::delete_exchange(&bus).await;
}
