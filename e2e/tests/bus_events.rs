//! The catalogue's App, Component and Group events, published by app-svc's
//! and group-svc's controllers on the real RabbitMQ while an App is created,
//! changed and deleted on the Kubernetes API emulator — what an outside
//! subscriber bound to `midplane.#` sees.

use kube::api::{Api, DeleteParams, Patch, PatchParams};
use midplane_api::App;
use midplane_bus::catalogue::{
    AppApplied, AppDeleted, AppReady, ComponentApplied, ComponentReady, GroupRendered,
    GroupRolloutCompleted, GroupRolloutStarted,
};
use midplane_bus::{Envelope, HandlerError, Received, Subscriber, SubscriberConfig};
use midplane_e2e::{NS, drop_bus, eventually, platform, test_bus};
use std::sync::{Arc, Mutex};

/// The App with `databases` (a restart-required parameter: a change rolls
/// every instance; a dynamic one such as maxmemory is reloaded live).
fn app(databases: &str) -> serde_json::Value {
    serde_json::json!({
        "apiVersion": "midplane.dev/v1alpha1", "kind": "App",
        "metadata": {"name": "shop", "namespace": NS},
        "spec": {"components": [{"name": "cache", "plugin": "redis", "replicas": 2, "shards": 1,
                  "parameters": {"databases": databases}}]}
    })
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
    let bus = test_bus("lifecycle").await;
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

    let platform = platform(Some(bus.clone())).await;
    let client = platform.client();

    // Created: applied → rendered → ready, each once.
    let apps: Api<App> = Api::namespaced(client.clone(), NS);
    let pp = PatchParams::apply("test").force();
    apps.patch("shop", &pp, &Patch::Apply(&app("16")))
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

    // Changed: a restart-required parameter moves every instance's pod
    // template → one rollout, started then completed.
    apps.patch("shop", &pp, &Patch::Apply(&app("32")))
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

    let drained = tokio::time::timeout(std::time::Duration::from_secs(20), platform.stop()).await;
    assert!(
        drained.is_ok(),
        "controllers and their event sinks stop on shutdown"
    );
    sub.shutdown().await.expect("drain subscriber");
    drop_bus(&bus, &["watcher"]).await;
}
