//! app-svc as deployed, against the Kubernetes API emulator: the AppService
//! gRPC API, its controllers, and leader election between two replicas.

use k8s_openapi::api::coordination::v1::Lease;
use kube::{Api, Resource, ResourceExt};
use midplane_api::Component;
use midplane_kube_emulator::{Emulator, EmulatorConfig};
use midplane_proto::app::app_service_client::AppServiceClient;
use midplane_proto::app::{self as pb};
use midplane_proto::common::ObjectRef;
use midplane_runtime::testing::SpawnedService;
use midplane_runtime::testing::eventually as until;
use std::time::Duration;

fn component(name: &str, replicas: i32) -> pb::ComponentSpec {
    pb::ComponentSpec {
        name: name.into(),
        plugin: "redis".into(),
        replicas: Some(replicas),
        ..pb::ComponentSpec::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn app_api_controllers_and_leader_election() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let emu = Emulator::start(EmulatorConfig {
        crd_dir: Some(root.join("k8s/crds")),
        namespaces: vec!["midplane-system".into()],
        ..EmulatorConfig::default()
    })
    .await
    .expect("emulator");
    let dir = tempfile::tempdir().expect("tempdir");
    let kubeconfig = dir.path().join("kubeconfig");
    emu.write_kubeconfig(&kubeconfig).expect("kubeconfig");
    let kc = kubeconfig.to_str().expect("utf8");
    let env = [
        ("MIDPLANE_KUBE__KUBECONFIG", kc),
        ("MIDPLANE_LEADER_ELECTION__LEASE_SECONDS", "2"),
        ("MIDPLANE_SERVER__LOG__LEVEL", "warn"),
    ];
    let mut first = SpawnedService::start(
        env!("CARGO_BIN_EXE_app-svc"),
        &[env[0], env[1], env[2], ("POD_NAME", "app-svc-a")],
    )
    .expect("first");
    let client = kube::Client::try_from(kube::Config::new(
        emu.url().parse::<http::Uri>().expect("url"),
    ))
    .expect("client");
    let leases: Api<Lease> = Api::namespaced(client.clone(), "midplane-system");
    let holder = |leases: Api<Lease>| async move {
        leases
            .get_opt("midplane-app-svc")
            .await
            .ok()
            .flatten()
            .and_then(|l| l.spec.and_then(|s| s.holder_identity))
    };
    let h = until("first replica leads", 20, || holder(leases.clone())).await;
    assert_eq!(h, "app-svc-a");
    let mut second = SpawnedService::start(
        env!("CARGO_BIN_EXE_app-svc"),
        &[env[0], env[1], env[2], ("POD_NAME", "app-svc-b")],
    )
    .expect("second");

    let channel = tonic::transport::Endpoint::from_shared(format!("http://{}", first.grpc_addr))
        .expect("endpoint")
        .connect()
        .await
        .expect("connect");
    let mut api = AppServiceClient::new(channel);

    // An invalid App is refused with every field named, and not stored.
    let bad = pb::App {
        namespace: "default".into(),
        name: "shop".into(),
        spec: Some(pb::AppSpec {
            components: vec![
                component("cache", -1),
                pb::ComponentSpec {
                    plugin: "mongodb".into(),
                    ..component("db", 1)
                },
            ],
        }),
        ..pb::App::default()
    };
    let err = api
        .apply_app(pb::ApplyAppRequest {
            app: Some(bad),
            dry_run: false,
            force: false,
        })
        .await
        .expect_err("invalid");
    assert_eq!(err.code(), tonic::Code::InvalidArgument);
    assert!(
        err.message()
            .contains("spec.components[0].replicas: must be at least 1"),
        "{}",
        err.message()
    );
    assert!(
        err.message()
            .contains("spec.components[1].plugin: unknown plugin \"mongodb\""),
        "{}",
        err.message()
    );
    assert_eq!(
        midplane_runtime::testing::contract::violated_fields(&err),
        ["spec.components[0].replicas", "spec.components[1].plugin"]
    );

    // A good one is stored, listed, watched, and its Component created by the controller.
    let good = pb::App {
        namespace: "default".into(),
        name: "shop".into(),
        spec: Some(pb::AppSpec {
            components: vec![component("cache", 3)],
        }),
        ..pb::App::default()
    };
    let stored = api
        .apply_app(pb::ApplyAppRequest {
            app: Some(good),
            dry_run: false,
            force: true,
        })
        .await
        .expect("apply")
        .into_inner()
        .app
        .expect("app");
    assert_eq!(stored.generation, 1);
    let mut watch = api
        .watch_apps(pb::WatchAppsRequest {
            namespace: "default".into(),
            ..Default::default()
        })
        .await
        .expect("watch")
        .into_inner();
    let ev = watch.message().await.expect("event").expect("some");
    assert_eq!(ev.r#type, pb::app_event::Type::Added as i32);
    assert_eq!(ev.app.expect("app").name, "shop");
    let list = api
        .list_apps(pb::ListAppsRequest::default())
        .await
        .expect("list")
        .into_inner();
    assert_eq!(list.apps.len(), 1);
    let comps: Api<Component> = Api::namespaced(client.clone(), "default");
    let c = until("Component created", 20, || {
        let comps = comps.clone();
        async move { comps.get_opt("shop-cache").await.ok().flatten() }
    })
    .await;
    assert_eq!(c.spec.middleware.replicas, 3);
    let got = api
        .get_app(pb::GetAppRequest {
            r#ref: Some(ObjectRef {
                namespace: "default".into(),
                name: "shop".into(),
            }),
        })
        .await
        .expect("get")
        .into_inner();
    assert!(got.status.is_some());

    // The standby never acted; stopping the leader hands the Lease over.
    assert_eq!(holder(leases.clone()).await.as_deref(), Some("app-svc-a"));
    let status = first.terminate(Duration::from_secs(15)).expect("stops");
    assert!(status.success(), "{status}");
    let h = until("standby takes over", 20, || async {
        holder(leases.clone()).await.filter(|h| h == "app-svc-b")
    })
    .await;
    assert_eq!(h, "app-svc-b");

    // The new leader keeps reconciling: a delete through the API removes the Component.
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{}", second.grpc_addr))
        .expect("endpoint")
        .connect()
        .await
        .expect("connect");
    AppServiceClient::new(channel)
        .delete_app(pb::DeleteAppRequest {
            r#ref: Some(ObjectRef {
                namespace: "default".into(),
                name: "shop".into(),
            }),
            wait: false,
        })
        .await
        .expect("delete");
    until("Component removed", 20, || {
        let comps = comps.clone();
        async move {
            comps
                .list(&Default::default())
                .await
                .ok()
                .filter(|l| {
                    l.items
                        .iter()
                        .all(|c| c.meta().deletion_timestamp.is_some())
                })
                .map(|_| ())
        }
    })
    .await;
    let _ = c.name_any();
    let status = second.terminate(Duration::from_secs(15)).expect("stops");
    assert!(status.success(), "{status}");
}
