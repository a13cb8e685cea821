//! AppService as an outside team's generated client sees it (a plain HTTP/2
//! transport, no server internals): every method's error codes and
//! google.rpc details as app.proto documents them, health by service name and
//! reflection over both protocol versions, and a start with MIDPLANE_KUBECONFIG
//! set.

mod support;
use support::{app, apply, client, component, setup};

use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Api, Patch, PatchParams, PostParams};
use midplane_api::App;
use midplane_kube_emulator::EmulatorConfig;
use midplane_proto::app::{self as pb};
use midplane_proto::common::PageRequest;
use midplane_runtime::testing::contract::{
    assert_error, assert_health, assert_reflection, error_info, has_retry_info, object_ref,
    resource,
};
use std::time::Duration;
use tonic::Code;

const SERVICE: &str = "midplane.app.v1.AppService";

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
