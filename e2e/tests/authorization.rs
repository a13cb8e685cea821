//! Per-caller authorization (`server.authorization.mode: kubernetes`) on each public API,
//! served by the runtime exactly as the services serve it, against the emulator's
//! TokenReview and SubjectAccessReview: a caller allowed only in namespace `a` gets OK
//! there and PERMISSION_DENIED in `b` (naming the missing permission), a caller without a
//! cluster-wide grant is refused the cluster-wide calls, and an invalid or missing token
//! is UNAUTHENTICATED.

use k8s_openapi::api::core::v1::ServiceAccount;
use kube::Client;
use kube::api::{Api, DynamicObject, PostParams};
use midplane_kube_emulator::{Emulator, EmulatorConfig};
use midplane_operator::plugins::PluginStore;
use midplane_proto::app::app_service_client::AppServiceClient;
use midplane_proto::backup::backup_service_client::BackupServiceClient;
use midplane_proto::common::ObjectRef;
use midplane_proto::group::group_service_client::GroupServiceClient;
use midplane_proto::plugin::plugin_registry_client::PluginRegistryClient;
use midplane_proto::{app as apb, backup as bpb, group as gpb, plugin as ppb};
use midplane_runtime::{AuthorizationConfig, AuthorizationMode, Health, ServerConfig, Shutdown};
use serde_json::json;
use std::sync::Arc;
use tonic::transport::Channel;
use tonic::{Code, Request};

async fn create(admin: &Client, doc: serde_json::Value) {
    let obj: DynamicObject = serde_json::from_value(doc.clone()).expect("object");
    let gvk =
        kube::api::GroupVersionKind::try_from(obj.types.as_ref().expect("types")).expect("gvk");
    let (ar, caps) = kube::discovery::pinned_kind(admin, &gvk)
        .await
        .expect("kind");
    let api: Api<DynamicObject> = match (&caps.scope, obj.metadata.namespace.as_deref()) {
        (kube::discovery::Scope::Namespaced, Some(ns)) => {
            Api::namespaced_with(admin.clone(), ns, &ar)
        }
        _ => Api::all_with(admin.clone(), &ar),
    };
    api.create(&PostParams::default(), &obj)
        .await
        .unwrap_or_else(|e| panic!("create {doc}: {e}"));
}

fn with_token<T>(token: &str, msg: T) -> Request<T> {
    let mut r = Request::new(msg);
    r.metadata_mut().insert(
        "authorization",
        format!("Bearer {token}").parse().expect("header"),
    );
    r
}

/// The caller `alice` may write Apps and read Groups and Backups in namespace `a` only, and
/// list plugins cluster-wide; `bob` exists and may do nothing.
async fn callers(admin: &Client) {
    for sa in ["alice", "bob"] {
        Api::<ServiceAccount>::namespaced(admin.clone(), "callers")
            .create(
                &PostParams::default(),
                &serde_json::from_value(json!({"metadata": {"name": sa}})).expect("sa"),
            )
            .await
            .expect("service account");
    }
    let alice = json!([{"kind": "ServiceAccount", "name": "alice", "namespace": "callers"}]);
    create(admin, json!({
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
        "metadata": {"name": "midplane-user", "namespace": "a"},
        "rules": [
            {"apiGroups": ["midplane.dev"], "resources": ["apps"], "verbs": ["get", "patch"]},
            {"apiGroups": ["midplane.dev"], "resources": ["groups", "backups"], "verbs": ["list"]}
        ]
    }))
    .await;
    create(admin, json!({
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
        "metadata": {"name": "alice", "namespace": "a"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "midplane-user"},
        "subjects": alice
    }))
    .await;
    create(
        admin,
        json!({
            "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
            "metadata": {"name": "midplane-plugin-reader"},
            "rules": [{"apiGroups": ["midplane.dev"], "resources": ["plugins"], "verbs": ["list"]}]
        }),
    )
    .await;
    create(admin, json!({
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
        "metadata": {"name": "alice-plugins"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "midplane-plugin-reader"},
        "subjects": alice
    }))
    .await;
}

fn denied(status: &tonic::Status, verb: &str, resource: &str, namespace: &str) {
    assert_eq!(status.code(), Code::PermissionDenied, "{status:?}");
    let m = status.message();
    assert!(
        m.contains("system:serviceaccount:callers:")
            && m.contains(&format!("may not {verb} {resource}.midplane.dev")),
        "{m}"
    );
    if !namespace.is_empty() {
        assert!(m.contains(&format!("in namespace \"{namespace}\"")), "{m}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_public_api_lets_kubernetes_rbac_decide_per_caller() {
    let emu = Emulator::start(EmulatorConfig {
        namespaces: vec!["a".into(), "b".into(), "callers".into()],
        secure_addr: Some("127.0.0.1:0".parse().expect("addr")),
        crd_dir: Some(midplane_e2e::root().join("k8s/crds")),
        ..EmulatorConfig::default()
    })
    .await
    .expect("emulator");
    let dir = tempfile::tempdir().expect("temp dir");
    // The services' own account for the reviews (the administrator here).
    let kubeconfig = dir.path().join("service.kubeconfig");
    emu.write_kubeconfig(&kubeconfig).expect("kubeconfig");
    let admin = midplane_operator::kube_client(Some(&kubeconfig))
        .await
        .expect("admin");
    callers(&admin).await;
    let alice = emu
        .service_account_token("callers", "alice")
        .expect("token");
    let bob = emu.service_account_token("callers", "bob").expect("token");

    // The four public APIs on one port, authorization as configuration turns it on.
    let plugins = PluginStore::new(midplane_plugin::registry::bundled().expect("plugins"));
    let app_ctx = Arc::new(midplane_app_svc::Context::new(
        admin.clone(),
        plugins.clone(),
    ));
    let group_ctx = Arc::new(midplane_group_svc::Context::new(
        admin.clone(),
        plugins.clone(),
    ));
    let backups = midplane_backup_svc::BackupSvc::new(midplane_backup_svc::BackupSettings {
        storages: [(
            "local".to_string(),
            format!("file://{}", dir.path().join("store").display()),
        )]
        .into(),
        ..midplane_backup_svc::BackupSettings::default()
    });
    let routes = midplane_runtime::Routes::new(
        midplane_proto::app::app_service_server::AppServiceServer::new(
            midplane_app_svc::grpc::AppApi::new(app_ctx),
        ),
    )
    .add_service(
        midplane_proto::group::group_service_server::GroupServiceServer::new(
            midplane_group_svc::grpc::GroupApi::new(group_ctx),
        ),
    )
    .add_service(
        midplane_proto::plugin::plugin_registry_server::PluginRegistryServer::new(
            midplane_plugin_svc::PluginRegistryService::new(plugins),
        ),
    )
    .add_service(midplane_proto::backup::backup_service_server::BackupServiceServer::new(backups));
    let config = ServerConfig {
        authorization: AuthorizationConfig {
            mode: AuthorizationMode::Kubernetes,
            kubeconfig: Some(kubeconfig.clone()),
            cache_ttl_ms: 0,
        },
        ..ServerConfig::default()
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let shutdown = Shutdown::new();
    let (stop, health) = (shutdown.clone(), Health::new());
    let server = tokio::spawn(async move {
        midplane_runtime::grpc::serve(listener, &config, routes, health, stop).await
    });
    let channel: Channel = midplane_runtime::testing::eventually("the server", 10, || async {
        tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
            .expect("endpoint")
            .connect()
            .await
            .ok()
    })
    .await;

    // AppService: apply in `a` is OK, in `b` refused naming the permission.
    let mut apps = AppServiceClient::new(channel.clone());
    let app = |ns: &str| apb::ApplyAppRequest {
        app: Some(apb::App {
            namespace: ns.into(),
            name: "shop".into(),
            spec: Some(apb::AppSpec {
                components: vec![apb::ComponentSpec {
                    name: "cache".into(),
                    plugin: "redis".into(),
                    version: "7.2".into(),
                    ..apb::ComponentSpec::default()
                }],
            }),
            ..apb::App::default()
        }),
        ..apb::ApplyAppRequest::default()
    };
    let ok = apps
        .apply_app(with_token(&alice, app("a")))
        .await
        .expect("alice applies an App in a");
    assert_eq!(ok.into_inner().app.expect("app").namespace, "a");
    let no = apps
        .apply_app(with_token(&alice, app("b")))
        .await
        .expect_err("not in b");
    denied(&no, "patch", "apps", "b");
    let unauthenticated = apps
        .apply_app(with_token("not-a-token", app("a")))
        .await
        .expect_err("invalid token");
    assert_eq!(unauthenticated.code(), Code::Unauthenticated);
    let missing = apps
        .get_app(Request::new(apb::GetAppRequest {
            r#ref: Some(ObjectRef {
                namespace: "a".into(),
                name: "shop".into(),
            }),
        }))
        .await
        .expect_err("no token");
    assert_eq!(missing.code(), Code::Unauthenticated);

    // GroupService: list in `a` OK, in `b` refused.
    let mut groups = GroupServiceClient::new(channel.clone());
    let list = |ns: &str| gpb::ListGroupsRequest {
        namespace: ns.into(),
        ..gpb::ListGroupsRequest::default()
    };
    groups
        .list_groups(with_token(&alice, list("a")))
        .await
        .expect("alice lists Groups in a");
    denied(
        &groups
            .list_groups(with_token(&alice, list("b")))
            .await
            .expect_err("not in b"),
        "list",
        "groups",
        "b",
    );
    assert_eq!(
        groups
            .list_groups(with_token("not-a-token", list("a")))
            .await
            .expect_err("invalid token")
            .code(),
        Code::Unauthenticated
    );

    // PluginRegistry (cluster-wide): alice's ClusterRoleBinding lets her list, bob is refused.
    let mut registry = PluginRegistryClient::new(channel.clone());
    let listed = registry
        .list_plugins(with_token(&alice, ppb::ListPluginsRequest {}))
        .await
        .expect("alice lists plugins");
    assert!(!listed.into_inner().plugins.is_empty());
    denied(
        &registry
            .list_plugins(with_token(&bob, ppb::ListPluginsRequest {}))
            .await
            .expect_err("bob may not"),
        "list",
        "plugins",
        "",
    );
    assert_eq!(
        registry
            .list_plugins(with_token("not-a-token", ppb::ListPluginsRequest {}))
            .await
            .expect_err("invalid token")
            .code(),
        Code::Unauthenticated
    );

    // BackupService: list the backups of an App in `a` OK, in `b` refused.
    let mut backup = BackupServiceClient::new(channel);
    let list = |ns: &str| bpb::ListBackupsRequest {
        source: Some(ObjectRef {
            namespace: ns.into(),
            name: "shop".into(),
        }),
        storage: "local".into(),
    };
    backup
        .list_backups(with_token(&alice, list("a")))
        .await
        .expect("alice lists backups in a");
    denied(
        &backup
            .list_backups(with_token(&alice, list("b")))
            .await
            .expect_err("not in b"),
        "list",
        "backups",
        "b",
    );
    assert_eq!(
        backup
            .list_backups(with_token("not-a-token", list("a")))
            .await
            .expect_err("invalid token")
            .code(),
        Code::Unauthenticated
    );

    shutdown.trigger();
    let _ = tokio::time::timeout(std::time::Duration::from_secs(10), server).await;
    emu.shutdown().await;
}
