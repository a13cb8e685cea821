//! The plugin hot update across the bus (docs/design.md, "Plugins"), with the real RabbitMQ:
//! a plugin ConfigMap changes → plugin-svc validates it and publishes
//! `midplane.plugin.updated` → group-svc (which does not watch ConfigMaps
//! here) re-renders the Groups using it. A broken template publishes
//! `midplane.plugin.rejected`, records an Event, and re-renders nothing.

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::ResourceExt;
use kube::api::Api;
use midplane_api::Group;
use midplane_bus::{HandlerError, Received, Subscriber, SubscriberConfig};
use midplane_e2e::{apply_cm, drop_bus, eventually as until, test_bus};
use midplane_operator::plugins::{PluginStore, sources};
use midplane_platform::{Platform, PlatformConfig};
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plugin_update_flows_over_the_bus() {
    let bus = test_bus("flow").await;
    // The API, the plugins and plugin-svc's watcher publishing on the bus;
    // group-svc runs on its own below, with a plugin store of its own.
    let mut cfg = PlatformConfig::emulator(Default::default()).expect("plugins");
    cfg.bus = Some(bus.clone());
    cfg.controllers = false;
    let platform = Platform::start(cfg).await.expect("platform");
    let client = platform.client();
    let bundled = midplane_plugin::registry::bundled().expect("bundled");

    // An outside subscriber: what an operator's `events tail` would see.
    let seen: Arc<Mutex<Vec<String>>> = Arc::default();
    let seen_by_tail = seen.clone();
    let tail = Subscriber::start(
        &bus,
        SubscriberConfig::new("tail", &["midplane.plugin.#"]),
        move |r: Received| {
            let seen = seen_by_tail.clone();
            async move {
                seen.lock()
                    .map_err(HandlerError::new)?
                    .push(r.event.event_type.clone());
                Ok::<(), HandlerError>(())
            }
        },
    )
    .await
    .expect("tail subscriber");

    // group-svc: no ConfigMap watch, so only the bus can bring it the new plugin.
    let shutdown = midplane_runtime::Shutdown::new();
    let store = PluginStore::new(bundled.clone());
    let ctx = Arc::new(midplane_group_svc::Context::new(
        client.clone(),
        store.clone(),
    ));
    let group_sub = sources::follow_bus(&bus, "group-svc", client.clone(), store)
        .await
        .expect("group-svc subscriber");
    tokio::spawn(midplane_group_svc::run::run_controller(
        ctx,
        shutdown.clone(),
    ));

    let groups = midplane_e2e::create_redis_group(&client).await;
    // The plugin the Group runs, once it is Ready on it (rolled and settled).
    let plugin_hash = |groups: Api<Group>| async move {
        let st = groups.get("cache-0").await.ok()?.status?;
        let ready = midplane_operator::condition::is_true(&st.conditions, "Ready");
        (ready && st.ready_replicas == 2).then_some(st.plugin_hash?)
    };
    let first = until("group ready", 30, || plugin_hash(groups.clone())).await;
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), "default");
    let content = |deployments: Api<Deployment>| async move {
        let d = deployments.get("cache-0-1").await.ok()?;
        d.annotations().get("midplane.dev/content-hash").cloned()
    };
    let first_content = content(deployments.clone()).await.expect("content hash");

    // A changed template default.
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "midplane-system");
    let mut cm = midplane_e2e::redis_plugin_config_map(|files| {
        let grace = "terminationGracePeriodSeconds:";
        midplane_e2e::replace_in(
            files,
            "values.yaml",
            &format!("{grace} 30"),
            &format!("{grace} 60"),
        );
    });
    apply_cm(&cms, &cm).await;
    until("midplane.plugin.updated on the bus", 30, || {
        let seen = seen.clone();
        async move {
            seen.lock()
                .ok()?
                .iter()
                .any(|t| t == "midplane.plugin.updated")
                .then_some(())
        }
    })
    .await;
    let second = until("re-rendered with the new plugin hash", 30, || {
        let (groups, first) = (groups.clone(), first.clone());
        async move { plugin_hash(groups).await.filter(|h| *h != first) }
    })
    .await;
    let new_content = until("new instance content", 30, || {
        let (deployments, old) = (deployments.clone(), first_content.clone());
        async move { content(deployments).await.filter(|c| *c != old) }
    })
    .await;
    assert_ne!(new_content, first_content);

    // A broken template: rejected on the bus, an Event, nothing re-rendered.
    cm.data.get_or_insert_with(Default::default).insert(
        "templates.pvc.yaml".into(),
        "kind: PersistentVolumeClaim\nmetadata:\n  name: {{ .Instance.Name | nosuchfunc }}\n"
            .into(),
    );
    apply_cm(&cms, &cm).await;
    until("midplane.plugin.rejected on the bus", 30, || {
        let seen = seen.clone();
        async move {
            seen.lock()
                .ok()?
                .iter()
                .any(|t| t == "midplane.plugin.rejected")
                .then_some(())
        }
    })
    .await;
    let note = midplane_e2e::event_note(&client, "midplane-system", "PluginTemplateError").await;
    assert!(note.contains("redis/templates/pvc.yaml:3"), "{note}");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        plugin_hash(groups.clone()).await,
        Some(second),
        "last good version keeps serving"
    );
    assert_eq!(content(deployments.clone()).await, Some(new_content));

    shutdown.trigger();
    group_sub
        .shutdown()
        .await
        .expect("drain group-svc subscriber");
    tail.shutdown().await.expect("drain tail");
    platform.stop().await;
    drop_bus(&bus, &["group-svc", "tail"]).await;
}
