//! Authentication and RBAC: ServiceAccount tokens the emulator issues, over HTTPS with the
//! CA it made; Roles and bindings decide; TokenReview and SubjectAccessReview answer; the
//! audit records each authenticated request. Requests without credentials stay the
//! administrator's.

mod common;

use k8s_openapi::api::authentication::v1::{TokenReview, TokenReviewSpec};
use k8s_openapi::api::authorization::v1::{
    ResourceAttributes, SubjectAccessReview, SubjectAccessReviewSpec,
};
use k8s_openapi::api::core::v1::{ConfigMap, ServiceAccount};
use kube::api::{Api, ListParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use midplane_kube_emulator::EmulatorConfig;
use serde_json::json;

async fn client_for(emu: &midplane_kube_emulator::EmulatorHandle, token: &str) -> kube::Client {
    let yaml = emu.kubeconfig_with_token(token);
    assert!(yaml.contains("https://"), "{yaml}");
    let config = kube::Config::from_custom_kubeconfig(
        Kubeconfig::from_yaml(&yaml).expect("kubeconfig"),
        &KubeConfigOptions::default(),
    )
    .await
    .expect("config");
    kube::Client::try_from(config).expect("client")
}

async fn apply(admin: &kube::Client, doc: serde_json::Value) {
    let obj: kube::api::DynamicObject = serde_json::from_value(doc.clone()).expect("object");
    let gvk =
        kube::api::GroupVersionKind::try_from(obj.types.as_ref().expect("types")).expect("gvk");
    let (ar, caps) = kube::discovery::pinned_kind(admin, &gvk)
        .await
        .expect("kind");
    let api: Api<kube::api::DynamicObject> = match (&caps.scope, obj.metadata.namespace.as_deref())
    {
        (kube::discovery::Scope::Namespaced, Some(ns)) => {
            Api::namespaced_with(admin.clone(), ns, &ar)
        }
        _ => Api::all_with(admin.clone(), &ar),
    };
    api.create(&PostParams::default(), &obj)
        .await
        .unwrap_or_else(|e| panic!("create {doc}: {e}"));
}

#[tokio::test]
async fn service_account_tokens_are_checked_by_rbac_and_audited() {
    let (emu, admin) = common::start_with(EmulatorConfig {
        namespaces: vec!["a".into(), "b".into()],
        secure_addr: Some("127.0.0.1:0".parse().expect("addr")),
        ..EmulatorConfig::default()
    })
    .await;
    apply(&admin, json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "reader", "namespace": "a"}})).await;
    apply(
        &admin,
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
        "metadata": {"name": "cm-reader", "namespace": "a"},
        "rules": [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get", "list"]}]}),
    )
    .await;
    apply(
        &admin,
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
        "metadata": {"name": "reader", "namespace": "a"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "cm-reader"},
        "subjects": [{"kind": "ServiceAccount", "name": "reader", "namespace": "a"}]}),
    )
    .await;
    apply(&admin, json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
        "metadata": {"name": "reviewer"},
        "rules": [{"apiGroups": ["authentication.k8s.io"], "resources": ["tokenreviews"], "verbs": ["create"]},
                  {"apiGroups": ["authorization.k8s.io"], "resources": ["subjectaccessreviews"], "verbs": ["create"]}]})).await;
    apply(&admin, json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
        "metadata": {"name": "reader-reviews"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "reviewer"},
        "subjects": [{"kind": "ServiceAccount", "name": "reader", "namespace": "a"}]})).await;

    // `kubectl create token reader -n a`, through the API.
    let sas: Api<ServiceAccount> = Api::namespaced(admin.clone(), "a");
    let req: k8s_openapi::api::authentication::v1::TokenRequest = serde_json::from_value(
        json!({"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": {"audiences": []}}),
    )
    .expect("token request");
    let issued = sas
        .create_token_request("reader", &PostParams::default(), &req)
        .await
        .expect("token request");
    let token = issued.status.expect("status").token;
    let reader = client_for(&emu, &token).await;

    let in_a: Api<ConfigMap> = Api::namespaced(reader.clone(), "a");
    in_a.list(&ListParams::default())
        .await
        .expect("list in a is granted");
    let in_b: Api<ConfigMap> = Api::namespaced(reader.clone(), "b");
    let err = in_b
        .list(&ListParams::default())
        .await
        .expect_err("b is not granted");
    let kube::Error::Api(status) = err else {
        panic!("expected a Status, got {err:?}")
    };
    assert_eq!(status.code, 403);
    assert_eq!(
        status.message,
        "configmaps is forbidden: User \"system:serviceaccount:a:reader\" cannot list resource \"configmaps\" in API group \"\" in the namespace \"b\""
    );
    let (code, _) = common::code(
        in_a.create(&PostParams::default(), &ConfigMap::default())
            .await,
    );
    assert_eq!(code, 403, "create is not granted");

    // A token the emulator never issued.
    let stranger = client_for(&emu, "not-a-token").await;
    let (code, reason) = common::code(
        Api::<ConfigMap>::namespaced(stranger, "a")
            .list(&ListParams::default())
            .await,
    );
    assert_eq!((code, reason.as_str()), (401, "Unauthorized"));

    // TokenReview and SubjectAccessReview, as a service checks its callers.
    let reviews: Api<TokenReview> = Api::all(reader.clone());
    let review = reviews
        .create(
            &PostParams::default(),
            &TokenReview {
                spec: TokenReviewSpec {
                    token: Some(token.clone()),
                    ..TokenReviewSpec::default()
                },
                ..TokenReview::default()
            },
        )
        .await
        .expect("token review");
    let status = review.status.expect("status");
    assert_eq!(status.authenticated, Some(true));
    let user = status.user.expect("user");
    assert_eq!(
        user.username.as_deref(),
        Some("system:serviceaccount:a:reader")
    );
    assert!(
        user.groups
            .unwrap_or_default()
            .contains(&"system:serviceaccounts:a".to_string())
    );
    let bad = reviews
        .create(
            &PostParams::default(),
            &TokenReview {
                spec: TokenReviewSpec {
                    token: Some("forged".into()),
                    ..TokenReviewSpec::default()
                },
                ..TokenReview::default()
            },
        )
        .await
        .expect("token review");
    assert_ne!(bad.status.and_then(|s| s.authenticated), Some(true));

    let sar = |ns: &str, verb: &str| SubjectAccessReview {
        spec: SubjectAccessReviewSpec {
            user: Some("system:serviceaccount:a:reader".into()),
            groups: Some(vec![
                "system:serviceaccounts".into(),
                "system:serviceaccounts:a".into(),
            ]),
            resource_attributes: Some(ResourceAttributes {
                namespace: Some(ns.into()),
                verb: Some(verb.into()),
                resource: Some("configmaps".into()),
                ..ResourceAttributes::default()
            }),
            ..SubjectAccessReviewSpec::default()
        },
        ..SubjectAccessReview::default()
    };
    let sars: Api<SubjectAccessReview> = Api::all(reader.clone());
    for (ns, verb, allowed) in [
        ("a", "get", true),
        ("b", "get", false),
        ("a", "delete", false),
    ] {
        let answer = sars
            .create(&PostParams::default(), &sar(ns, verb))
            .await
            .expect("access review");
        assert_eq!(
            answer.status.expect("status").allowed,
            allowed,
            "{verb} configmaps in {ns}"
        );
    }

    // Deleting the ServiceAccount invalidates its tokens.
    let audit = emu.audit();
    let mine: Vec<_> = audit
        .iter()
        .filter(|r| r.user == "system:serviceaccount:a:reader")
        .collect();
    assert!(
        mine.iter().any(|r| r.attributes.verb == "list"
            && r.attributes.resource == "configmaps"
            && r.attributes.namespace == "b"
            && r.code == 403),
        "{mine:?}"
    );
    assert!(
        mine.iter()
            .any(|r| r.attributes.resource == "subjectaccessreviews" && r.code == 201),
        "{mine:?}"
    );
    sas.delete("reader", &Default::default())
        .await
        .expect("delete");
    let (code, _) = common::code(in_a.list(&ListParams::default()).await);
    assert_eq!(
        code, 401,
        "a deleted ServiceAccount's token no longer authenticates"
    );

    // No credentials: the administrator, as before.
    Api::<ConfigMap>::namespaced(admin, "b")
        .list(&ListParams::default())
        .await
        .expect("admin lists anywhere");
    emu.shutdown().await;
}
