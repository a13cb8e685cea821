//! One plugin route through the platform: plugin-svc's watcher validates a
//! plugin ConfigMap once and the controllers are woken in-process, so an App
//! waiting for its plugin becomes Ready when it arrives, and a broken plugin
//! is reported once.

use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::Api;
use midplane_api::App;
use midplane_e2e::{NS, app_ready, apply_app, apply_cm, events, eventually, platform};
use midplane_operator::condition;
use std::collections::BTreeMap;
use std::time::Duration;

fn app(name: &str, plugin: &str, version: Option<&str>) -> App {
    let mut component = serde_json::json!({"name": "cache", "plugin": plugin, "replicas": 2});
    if let Some(v) = version {
        component["version"] = v.into();
    }
    serde_json::from_value(serde_json::json!({
        "apiVersion": "midplane.dev/v1alpha1", "kind": "App",
        "metadata": {"name": name, "namespace": NS},
        "spec": {"components": [component]}
    }))
    .expect("App")
}

/// The App's Ready condition: (status, reason, message).
async fn readiness(client: &kube::Client, name: &str) -> Option<(String, String, String)> {
    let a = Api::<App>::namespaced(client.clone(), NS)
        .get(name)
        .await
        .ok()?;
    let st = a.status?;
    let c = condition::get(&st.conditions, condition::READY)?;
    (c.observed_generation == a.metadata.generation)
        .then(|| (c.status.clone(), c.reason.clone(), c.message.clone()))
}

/// The bundled Redis plugin's ConfigMap, with its plugin.yaml edited.
fn redis_config_map(edit: impl Fn(&str) -> String) -> ConfigMap {
    midplane_e2e::redis_plugin_config_map(|files| {
        let meta = files.get("plugin.yaml").cloned().unwrap_or_default();
        files.insert("plugin.yaml".into(), edit(&meta));
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_app_waiting_for_its_plugin_becomes_ready_when_it_arrives() {
    let platform = platform(None).await;
    let client = platform.client();
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "midplane-system");

    // A plugin nobody installed yet, and a middleware version the installed
    // plugin does not offer yet: both Apps are Invalid, naming the field.
    apply_app(&client, &app("later", "cachedb", None)).await;
    apply_app(&client, &app("newer", "redis", Some("7.9"))).await;
    for (name, field) in [("later", "plugin"), ("newer", "version")] {
        let (status, reason, message) = eventually(&format!("{name} Invalid"), 30, || async {
            readiness(&client, name)
                .await
                .filter(|(_, reason, _)| reason == "Invalid")
        })
        .await;
        assert_eq!((status.as_str(), reason.as_str()), ("False", "Invalid"));
        assert!(
            message.contains(&format!("spec.components[0].{field}")),
            "{name}: {message}"
        );
    }

    // The plugin arrives (a new one, and a new version of redis): the Apps
    // are not touched, yet both become Ready.
    let mut cachedb = redis_config_map(|meta| meta.replacen("name: redis", "name: cachedb", 1));
    cachedb.metadata.name = Some(midplane_plugin::configmap::configmap_name("cachedb"));
    cachedb
        .metadata
        .labels
        .get_or_insert_with(BTreeMap::new)
        .insert(midplane_api::labels::PLUGIN.into(), "cachedb".into());
    apply_cm(&cms, &cachedb).await;
    let redis79 = redis_config_map(|meta| {
        meta.replace(
            r#"versions: ["6.2", "7.0", "7.2", "7.4"]"#,
            r#"versions: ["6.2", "7.0", "7.2", "7.4", "7.9"]"#,
        )
    });
    apply_cm(&cms, &redis79).await;
    for name in ["later", "newer"] {
        let ready = eventually(&format!("{name} Ready"), 30, || app_ready(&client, name)).await;
        assert_eq!(
            ready.metadata.generation,
            Some(1),
            "{name} was never changed"
        );
    }
    platform.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broken_plugin_is_reported_once() {
    let platform = platform(None).await;
    let client = platform.client();
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "midplane-system");
    apply_app(&client, &app("shop", "redis", None)).await;
    eventually("App Ready", 30, || app_ready(&client, "shop")).await;
    let served = platform
        .plugins
        .get("redis")
        .expect("redis")
        .content_hash
        .clone();

    let mut broken = redis_config_map(std::string::ToString::to_string);
    broken.data.get_or_insert_with(BTreeMap::new).insert(
        "templates.service.yaml".into(),
        "kind: Service\nmetadata:\n  name: {{ .Group.Name | nosuchfunc }}\n".into(),
    );
    apply_cm(&cms, &broken).await;
    let first = eventually("the Warning Event", 30, || async {
        let found = events(&client, "midplane-system", "PluginTemplateError").await;
        (!found.is_empty()).then_some(found)
    })
    .await;
    // Every controller has long seen the change by now.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let all = events(&client, "midplane-system", "PluginTemplateError").await;
    assert_eq!(
        all.len(),
        1,
        "one Warning Event, not one per process: {all:?}"
    );
    assert_eq!(all[0].type_.as_deref(), Some("Warning"));
    assert!(
        all[0].series.is_none(),
        "reported once: {:?}",
        all[0].series
    );
    assert_eq!(
        all[0].reporting_controller.as_deref(),
        first[0].reporting_controller.as_deref()
    );
    let note = all[0].note.clone().unwrap_or_default();
    assert!(note.contains("redis/templates/service.yaml:3"), "{note}");
    assert_eq!(
        platform.plugins.get("redis").expect("redis").content_hash,
        served,
        "the last good version keeps serving"
    );
    assert!(
        app_ready(&client, "shop").await.is_some(),
        "the App is untouched"
    );
    platform.stop().await;
}
