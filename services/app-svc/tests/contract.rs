//! AppService as an outside team's generated client sees it (a plain HTTP/2
//! transport, no server internals): every method's error codes and
//! google.rpc details as app.proto documents them, health by service name and
//! reflection over both protocol versions, a start with MIDPLANE_KUBECONFIG
//! set, and the App validated the same way by the custom resource's schema,
//! AppService, `midplane render` and the App controller.

use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Api, Patch, PatchParams, PostParams};
use midplane_api::App;
use midplane_kube_emulator::{Emulator, EmulatorConfig, EmulatorHandle};
use midplane_proto::app::app_service_client::AppServiceClient;
use midplane_proto::app::{self as pb};
use midplane_proto::common::PageRequest;
use midplane_runtime::testing::SpawnedService;
use midplane_runtime::testing::contract::{
    PlainTransport, assert_error, assert_health, assert_reflection, error_info, error_reason,
    has_retry_info, object_ref, plain_transport, resource, violated_fields,
};
use midplane_runtime::testing::eventually as until;
use std::time::Duration;
use tonic::Code;

const SERVICE: &str = "midplane.app.v1.AppService";

struct Setup {
    emu: EmulatorHandle,
    svc: SpawnedService,
    kube: kube::Client,
    _dir: tempfile::TempDir,
}

async fn setup(config: EmulatorConfig, extra_env: &[(&str, &str)]) -> Setup {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let emu = Emulator::start(EmulatorConfig {
        crd_dir: Some(root.join("k8s/crds")),
        namespaces: vec!["midplane-system".into(), "shop".into()],
        ..config
    })
    .await
    .expect("emulator");
    let dir = tempfile::tempdir().expect("tempdir");
    let kubeconfig = dir.path().join("kubeconfig");
    emu.write_kubeconfig(&kubeconfig).expect("kubeconfig");
    let kc = kubeconfig.to_str().expect("utf8").to_string();
    let mut env = vec![
        ("MIDPLANE_KUBE__KUBECONFIG", kc.as_str()),
        ("MIDPLANE_SERVER__LOG__LEVEL", "warn"),
        ("MIDPLANE_LEADER_ELECTION__LEASE_SECONDS", "2"),
    ];
    env.extend_from_slice(extra_env);
    let svc = SpawnedService::start(env!("CARGO_BIN_EXE_app-svc"), &env).expect("app-svc");
    let kube =
        kube::Client::try_from(kube::Config::new(emu.url().parse().expect("url"))).expect("client");
    Setup {
        emu,
        svc,
        kube,
        _dir: dir,
    }
}

fn client(s: &Setup) -> AppServiceClient<PlainTransport> {
    let (transport, origin) = plain_transport(s.svc.grpc_addr);
    AppServiceClient::with_origin(transport, origin)
}

fn component(name: &str) -> pb::ComponentSpec {
    pb::ComponentSpec {
        name: name.into(),
        plugin: "redis".into(),
        ..pb::ComponentSpec::default()
    }
}

fn app(ns: &str, name: &str, components: Vec<pb::ComponentSpec>) -> pb::App {
    pb::App {
        namespace: ns.into(),
        name: name.into(),
        spec: Some(pb::AppSpec { components }),
        ..pb::App::default()
    }
}

fn apply(app: pb::App) -> pb::ApplyAppRequest {
    pb::ApplyAppRequest {
        app: Some(app),
        dry_run: false,
        force: false,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn starts_with_midplane_kubeconfig_set_and_answers_health_and_reflection() {
    // The CLI reads MIDPLANE_KUBECONFIG; the service warns about it and starts.
    let s = setup(
        EmulatorConfig::default(),
        &[("MIDPLANE_KUBECONFIG", "/nonexistent/kubeconfig")],
    )
    .await;
    assert_health(s.svc.grpc_addr, &[SERVICE]).await;
    assert_reflection(s.svc.grpc_addr, None, &[SERVICE]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_method_answers_its_documented_errors() {
    let s = setup(
        EmulatorConfig {
            continue_ttl: Duration::from_millis(1),
            event_window: 3,
            ..EmulatorConfig::default()
        },
        &[("MIDPLANE_SERVER__REQUEST_TIMEOUT_MS", "3000")],
    )
    .await;
    let mut api = client(&s);

    // ApplyApp
    let err = api
        .apply_app(pb::ApplyAppRequest::default())
        .await
        .expect_err("no app");
    assert_error(&err, Code::InvalidArgument, "APP_INVALID", &["app"]);
    let mut bad = component("cache");
    bad.replicas = Some(0);
    let err = api
        .apply_app(apply(app("", "shop", vec![bad])))
        .await
        .expect_err("invalid");
    assert_error(
        &err,
        Code::InvalidArgument,
        "APP_INVALID",
        &["metadata.namespace", "spec.components[0].replicas"],
    );
    let mut bad = component("cache");
    bad.service = Some(pb::ServiceSpec {
        r#type: 99,
        external_name: String::new(),
    });
    let mut req = apply(app("shop", "shop", vec![bad]));
    req.dry_run = true;
    let err = api.apply_app(req).await.expect_err("dry run validates too");
    assert_error(
        &err,
        Code::InvalidArgument,
        "APP_INVALID",
        &["spec.components[0].service.type"],
    );
    // Another field manager owns replicas: ABORTED until the caller forces.
    let apps: Api<App> = Api::namespaced(s.kube.clone(), "shop");
    let owned = serde_json::json!({
        "apiVersion": "midplane.dev/v1alpha1", "kind": "App",
        "metadata": {"name": "owned"},
        "spec": {"components": [{"name": "cache", "plugin": "redis", "replicas": 2}]}
    });
    apps.patch(
        "owned",
        &PatchParams::apply("team-gitops"),
        &Patch::Apply(&owned),
    )
    .await
    .expect("gitops apply");
    let mut mine = component("cache");
    mine.replicas = Some(3);
    let err = api
        .apply_app(apply(app("shop", "owned", vec![mine.clone()])))
        .await
        .expect_err("conflict");
    assert_error(&err, Code::Aborted, "FIELD_MANAGER_CONFLICT", &[]);
    let mut forced = apply(app("shop", "owned", vec![mine]));
    forced.force = true;
    let stored = api.apply_app(forced).await.expect("forced").into_inner();
    let stored = stored.app.expect("app");
    assert_eq!(stored.spec.expect("spec").components[0].replicas, Some(3));

    // GetApp
    let err = api
        .get_app(pb::GetAppRequest { r#ref: None })
        .await
        .expect_err("no ref");
    assert_error(&err, Code::InvalidArgument, "REQUEST_INVALID", &["ref"]);
    let err = api
        .get_app(pb::GetAppRequest {
            r#ref: object_ref("shop", ""),
        })
        .await
        .expect_err("no name");
    assert_error(
        &err,
        Code::InvalidArgument,
        "REQUEST_INVALID",
        &["ref.name"],
    );
    let err = api
        .get_app(pb::GetAppRequest {
            r#ref: object_ref("shop", "nope"),
        })
        .await
        .expect_err("missing");
    assert_error(&err, Code::NotFound, "APP_NOT_FOUND", &[]);
    assert_eq!(
        resource(&err),
        Some(("App".to_string(), "shop/nope".to_string()))
    );

    // ListApps
    let err = api
        .list_apps(pb::ListAppsRequest {
            label_selector: "a in (".into(),
            ..Default::default()
        })
        .await
        .expect_err("bad selector");
    assert_error(
        &err,
        Code::InvalidArgument,
        "REQUEST_INVALID",
        &["label_selector"],
    );
    api.apply_app(apply(app("shop", "second", vec![component("cache")])))
        .await
        .expect("second app");
    let page = api
        .list_apps(pb::ListAppsRequest {
            namespace: "shop".into(),
            page: Some(PageRequest {
                limit: 1,
                continue_token: String::new(),
            }),
            ..Default::default()
        })
        .await
        .expect("first page")
        .into_inner();
    let token = page.page.expect("page").continue_token;
    assert!(!token.is_empty(), "two Apps, pages of one");
    tokio::time::sleep(Duration::from_millis(20)).await;
    let err = api
        .list_apps(pb::ListAppsRequest {
            namespace: "shop".into(),
            page: Some(PageRequest {
                limit: 1,
                continue_token: token,
            }),
            ..Default::default()
        })
        .await
        .expect_err("expired token");
    assert_error(&err, Code::Aborted, "RESOURCE_VERSION_EXPIRED", &[]);

    // WatchApps
    let err = api
        .watch_apps(pb::WatchAppsRequest {
            label_selector: "a in (".into(),
            ..Default::default()
        })
        .await
        .expect_err("bad selector");
    assert_error(
        &err,
        Code::InvalidArgument,
        "REQUEST_INVALID",
        &["label_selector"],
    );
    // Enough writes that resource version 1 falls out of the watch window.
    let ns: Api<Namespace> = Api::all(s.kube.clone());
    for i in 0..6 {
        let n: Namespace = serde_json::from_value(
            serde_json::json!({"metadata": {"name": format!("filler-{i}")}}),
        )
        .expect("namespace");
        ns.create(&PostParams::default(), &n).await.expect("create");
    }
    let err = match api
        .watch_apps(pb::WatchAppsRequest {
            resource_version: "1".into(),
            ..Default::default()
        })
        .await
    {
        Err(e) => e,
        Ok(stream) => stream
            .into_inner()
            .message()
            .await
            .expect_err("the stream ends with the error"),
    };
    assert_error(&err, Code::Aborted, "RESOURCE_VERSION_EXPIRED", &[]);

    // DeleteApp
    let err = api
        .delete_app(pb::DeleteAppRequest {
            r#ref: object_ref("", "x"),
            wait: false,
        })
        .await
        .expect_err("no namespace");
    assert_error(
        &err,
        Code::InvalidArgument,
        "REQUEST_INVALID",
        &["ref.namespace"],
    );
    let err = api
        .delete_app(pb::DeleteAppRequest {
            r#ref: object_ref("shop", "nope"),
            wait: false,
        })
        .await
        .expect_err("missing");
    assert_error(&err, Code::NotFound, "APP_NOT_FOUND", &[]);
    // A finalizer nobody removes holds the App: the server's own limit ends the wait.
    apps.patch(
        "second",
        &PatchParams::default(),
        &Patch::Merge(&serde_json::json!({"metadata": {"finalizers": ["test.midplane.dev/hold"]}})),
    )
    .await
    .expect("hold");
    let err = api
        .delete_app(pb::DeleteAppRequest {
            r#ref: object_ref("shop", "second"),
            wait: true,
        })
        .await
        .expect_err("held");
    assert_error(&err, Code::DeadlineExceeded, "DEADLINE_EXCEEDED", &[]);
    let info = error_info(&err);
    assert_eq!(
        info.metadata.get("limit").map(String::as_str),
        Some("server")
    );
    apps.patch(
        "second",
        &PatchParams::default(),
        &Patch::Merge(&serde_json::json!({"metadata": {"finalizers": null}})),
    )
    .await
    .expect("release");

    // With the API server gone, every call is UNAVAILABLE and worth a retry.
    s.emu.shutdown().await;
    let err = api
        .get_app(pb::GetAppRequest {
            r#ref: object_ref("shop", "owned"),
        })
        .await
        .expect_err("no API server");
    assert_error(&err, Code::Unavailable, "KUBERNETES_UNAVAILABLE", &[]);
    assert!(has_retry_info(&err), "{err:?}");
}

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
            })
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
