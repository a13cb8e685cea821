//! One invalid App, refused the same way, at the same field path, by every
//! entry point: `midplane render`, the custom resource's schema (what
//! `midplane apply` meets), AppService, and the App controller's condition
//! for rules the schema cannot express.

mod support;
use kube::api::{Api, Patch, PatchParams};
use midplane_api::App;
use midplane_kube_emulator::EmulatorConfig;
use midplane_proto::app::{self as pb};
use midplane_runtime::testing::contract::{error_reason, violated_fields};
use midplane_runtime::testing::eventually as until;
use support::{app, apply, client, component, setup};

/// One invalid value, as a change to the first component in the custom
/// resource (JSON) and in the proto, and the path every entry point names.
struct Case {
    path: &'static str,
    json: serde_json::Value,
    proto: fn(&mut pb::ComponentSpec),
}

fn cases_the_schema_refuses() -> Vec<Case> {
    vec![
        Case {
            path: "spec.components[0].replicas",
            json: serde_json::json!({"replicas": 0}),
            proto: |c| c.replicas = Some(0),
        },
        Case {
            path: "spec.components[0].replicas",
            json: serde_json::json!({"replicas": 101}),
            proto: |c| c.replicas = Some(101),
        },
        Case {
            path: "spec.components[0].shards",
            json: serde_json::json!({"shards": 0}),
            proto: |c| c.shards = Some(0),
        },
        Case {
            path: "spec.components[0].plugin",
            json: serde_json::json!({"plugin": ""}),
            proto: |c| c.plugin = String::new(),
        },
        Case {
            path: "spec.components[0].name",
            json: serde_json::json!({"name": "c".repeat(64)}),
            proto: |c| c.name = "c".repeat(64),
        },
    ]
}

fn cases_only_validation_catches() -> Vec<Case> {
    vec![Case {
        path: "spec.components[0].backup.schedule",
        json: serde_json::json!({"backup": {"enabled": true, "schedule": "daily", "storage": "s3"}}),
        proto: |c| {
            c.backup = Some(pb::BackupPolicy {
                enabled: true,
                schedule: "daily".into(),
                storage: "s3".into(),
                ..Default::default()
            });
        },
    }]
}

fn app_json(name: &str, change: &serde_json::Value) -> serde_json::Value {
    let mut component = serde_json::json!({"name": "cache", "plugin": "redis"});
    for (k, v) in change.as_object().expect("object") {
        component[k] = v.clone();
    }
    serde_json::json!({
        "apiVersion": "midplane.dev/v1alpha1", "kind": "App",
        "metadata": {"name": name, "namespace": "shop"},
        "spec": {"components": [component]}
    })
}

/// `midplane render` (and RenderPreview) validate through this function.
fn render_paths(app: &serde_json::Value) -> Vec<String> {
    let app: App = serde_json::from_value(app.clone()).expect("App");
    let registry = midplane_plugin::registry::bundled().expect("bundled plugins");
    match midplane_plugin::validate_app::validate(&app, &registry, &Default::default()) {
        Ok(()) => vec![],
        Err(errs) => errs.0.into_iter().map(|f| f.field).collect(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_entry_point_refuses_an_invalid_app_at_the_same_path() {
    let s = setup(EmulatorConfig::default(), &[]).await;
    let mut api = client(&s);
    let apps: Api<App> = Api::namespaced(s.kube.clone(), "shop");
    let cli_apply = PatchParams::apply("midplane-cli").force();

    for (i, case) in cases_the_schema_refuses().into_iter().enumerate() {
        let name = format!("bad-{i}");
        let json = app_json(&name, &case.json);
        // The CLI's `render`.
        let paths = render_paths(&json);
        assert!(
            paths.iter().any(|p| p == case.path),
            "render: {paths:?} lacks {}",
            case.path
        );
        // The CLI's `apply`: the custom resource's schema.
        let err = apps
            .patch(&name, &cli_apply, &Patch::Apply(&json))
            .await
            .expect_err("the schema refuses it");
        let kube::Error::Api(st) = err else {
            panic!("not an API answer: {err}")
        };
        assert_eq!(st.code, 422, "{st:?}");
        let fields: Vec<_> = st
            .details
            .iter()
            .flat_map(|d| &d.causes)
            .map(|c| c.field.clone())
            .collect();
        assert!(
            fields.iter().any(|f| f == case.path),
            "schema: {fields:?} lacks {}",
            case.path
        );
        // AppService.
        let mut c = component("cache");
        (case.proto)(&mut c);
        let err = api
            .apply_app(apply(app("shop", &name, vec![c])))
            .await
            .expect_err("AppService refuses it");
        assert_eq!(error_reason(&err), "APP_INVALID");
        assert!(
            violated_fields(&err).iter().any(|f| f == case.path),
            "AppService: {:?} lacks {}",
            violated_fields(&err),
            case.path
        );
    }

    for (i, case) in cases_only_validation_catches().into_iter().enumerate() {
        let name = format!("invalid-{i}");
        let json = app_json(&name, &case.json);
        let paths = render_paths(&json);
        assert!(
            paths.iter().any(|p| p == case.path),
            "render: {paths:?} lacks {}",
            case.path
        );
        let mut c = component("cache");
        (case.proto)(&mut c);
        let err = api
            .apply_app(apply(app("shop", &name, vec![c])))
            .await
            .expect_err("AppService refuses it");
        assert!(
            violated_fields(&err).iter().any(|f| f == case.path),
            "{err:?}"
        );
        // Stored through the Kubernetes API, the App controller names the same path.
        apps.patch(&name, &cli_apply, &Patch::Apply(&json))
            .await
            .expect("the schema cannot express this rule");
        let message = until("the App's Ready condition", 20, || {
            let apps = apps.clone();
            let name = name.clone();
            async move {
                let app = apps.get(&name).await.ok()?;
                let ready =
                    app.status?.conditions.into_iter().find(|c| {
                        c.type_ == "Ready" && c.status == "False" && c.reason == "Invalid"
                    })?;
                Some(ready.message)
            }
        })
        .await;
        assert!(message.contains(&format!("{}: ", case.path)), "{message}");
    }
}
