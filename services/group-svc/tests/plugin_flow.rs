//! The plugin hot update across the bus (seed §3.2), with the real RabbitMQ:
//! a plugin ConfigMap changes → plugin-svc validates it and publishes
//! `midplane.plugin.updated` → group-svc (which does not watch ConfigMaps
//! here) re-renders the Groups using it. A broken template publishes
//! `midplane.plugin.rejected`, records an Event, and re-renders nothing.

mod common;
use common::apply_cm;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::ResourceExt;
use kube::api::Api;
use midplane_api::Group;
use midplane_bus::{BusConfig, HandlerError, Publisher, Received, Subscriber, SubscriberConfig};
use midplane_operator::EventRecorder;
use midplane_operator::plugin_store::PluginStore;
use midplane_runtime::Shutdown;
use midplane_runtime::testing::eventually as until;
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plugin_update_flows_over_the_bus() {
    let url = std::env::var(midplane_bus::config::AMQP_URL_ENV)
        .unwrap_or_else(|_| midplane_bus::config::DEFAULT_AMQP_URL.to_owned());
    let suffix = uuid::Uuid::new_v4().simple().to_string();
    let bus = BusConfig {
        url,
        exchange: format!("midplane.test.flow.{}", &suffix[..10]),
        ..BusConfig::default()
    };
    if let Err(e) = midplane_bus::topology::queue_depth(&bus, "amq.nonexistent-probe").await {
        panic!("RabbitMQ is not reachable ({e}); start it with scripts/services/rabbitmq.sh");
    }

    let (_emu, client) = common::emulator().await;
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

    // group-svc: no ConfigMap watch, so only the bus can trigger the re-render.
    let shutdown = Shutdown::new();
    let mut ctx =
        midplane_group_svc::Context::new(client.clone(), PluginStore::new(bundled.clone()));
    ctx.watch_plugin_configmaps = false;
    let ctx = Arc::new(ctx);
    let group_sub = midplane_group_svc::plugin_events::subscribe(&bus, "group-svc", ctx.clone())
        .await
        .expect("group-svc subscriber");
    tokio::spawn(midplane_group_svc::run::run_controller(
        ctx,
        "midplane-system".into(),
        shutdown.clone(),
    ));

    // plugin-svc: the watcher publishes every change.
    let publisher = Publisher::connect(bus.clone().with_source("/midplane/plugin-svc"))
        .await
        .expect("publisher");
    tokio::spawn(midplane_plugin_svc::watch::run(
        client.clone(),
        "midplane-system".into(),
        PluginStore::new(bundled.clone()),
        EventRecorder::new(client.clone(), "midplane-plugin-svc"),
        Some(publisher),
    ));

    let groups = common::create_redis_group(&client).await;
    let plugin_hash = |groups: Api<Group>| async move {
        let st = groups.get("cache-0").await.ok()?.status?;
        (st.ready_replicas == 2).then_some(st.plugin_hash?)
    };
    let first = until("group ready", 30, || plugin_hash(groups.clone())).await;
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), "default");
    let content = |deployments: Api<Deployment>| async move {
        let d = deployments.get("cache-0-1").await.ok()?;
        d.annotations().get("midplane.dev/content-hash").cloned()
    };
    let first_content = content(deployments.clone()).await.expect("content hash");

    // A changed template default.
    let plugin = bundled.get("redis").expect("redis");
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "midplane-system");
    let mut cm = plugin.to_config_map("midplane-system");
    let values = cm
        .data
        .as_ref()
        .and_then(|d| d.get("values.yaml"))
        .cloned()
        .unwrap_or_default();
    cm.data.get_or_insert_with(Default::default).insert(
        "values.yaml".into(),
        values.replace(
            "terminationGracePeriodSeconds: 30",
            "terminationGracePeriodSeconds: 60",
        ),
    );
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
    let note = common::event_note(&client, "midplane-system", "PluginTemplateError").await;
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
    for name in ["group-svc", "tail"] {
        let delays = SubscriberConfig::new(name, &[]).retry_delays;
        let queues = midplane_bus::topology::SubscriberQueues::new(&bus.exchange, name, &delays);
        let _ = midplane_bus::topology::delete_subscriber(&bus, &queues).await;
    }
    let _ = midplane_bus::topology::delete_exchange(&bus).await;
}
