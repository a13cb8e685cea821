//! Process pods reach the API server as in-cluster clients do: their ServiceAccount's
//! token, the CA and the namespace under /var/run/secrets/kubernetes.io/serviceaccount,
//! and `KUBERNETES_SERVICE_HOST`/`PORT` naming the emulator's HTTPS endpoint.

mod common;

use common::process::*;
use k8s_openapi::api::authentication::v1::{TokenReview, TokenReviewSpec};
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, LogParams, PostParams};
use midplane_kube_emulator::EmulatorConfig;
use serde_json::json;

const SCRIPT: &str = "echo \"$KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT\"; \
    d=/var/run/secrets/kubernetes.io/serviceaccount; \
    if [ -f $d/token ]; then cat $d/namespace; echo; cat $d/token; echo; head -1 $d/ca.crt; \
    else echo no-token; fi; sleep 1000";

async fn log_of(client: &kube::Client, pod: &str) -> Vec<String> {
    let pods: Api<Pod> = Api::namespaced(client.clone(), "apps");
    wait("the container's output", 20, || async {
        let log = pods
            .logs(pod, &LogParams::default())
            .await
            .map_err(|e| e.to_string())?;
        let lines: Vec<String> = log.lines().map(String::from).collect();
        // All four lines of SCRIPT (address, namespace, token, CA), or its refusal: the
        // log can be read between two of its commands.
        if lines.len() >= 4 || lines.iter().any(|l| l == "no-token") {
            Ok(lines)
        } else {
            Err(format!("log so far: {log:?}"))
        }
    })
    .await
}

async fn create_pod(client: &kube::Client, name: &str, automount: Option<bool>) {
    let mut spec = json!({"serviceAccountName": "probe",
        "containers": [{"name": "app", "image": "busybox", "command": ["sh", "-c", SCRIPT]}]});
    if let Some(a) = automount {
        spec["automountServiceAccountToken"] = json!(a);
    }
    let pod: Pod = serde_json::from_value(json!({"apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": "apps", "labels": {"app": name}}, "spec": spec}))
    .expect("pod");
    Api::<Pod>::namespaced(client.clone(), "apps")
        .create(&PostParams::default(), &pod)
        .await
        .expect("create pod");
}

#[tokio::test]
async fn pods_get_their_service_accounts_token_and_the_api_endpoint() {
    let node = start_with(
        |_| {},
        EmulatorConfig {
            secure_addr: Some("127.0.0.1:0".parse().expect("addr")),
            ..EmulatorConfig::default()
        },
    )
    .await;
    let secure = node.emu.secure().expect("HTTPS endpoint");
    apply(
        &node.client,
        &json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "probe", "namespace": "apps"}}),
    )
    .await;
    create_pod(&node.client, "mounted", None).await;
    create_pod(&node.client, "opted-out", Some(false)).await;

    let lines = log_of(&node.client, "mounted").await;
    assert_eq!(lines[0], secure.addr.to_string(), "{lines:?}");
    assert_eq!(lines.get(1).map(String::as_str), Some("apps"), "{lines:?}");
    assert_eq!(
        lines.get(3).map(String::as_str),
        Some("-----BEGIN CERTIFICATE-----"),
        "{lines:?}"
    );
    let token = lines.get(2).cloned().unwrap_or_default();
    let review = Api::<TokenReview>::all(node.client.clone())
        .create(
            &PostParams::default(),
            &TokenReview {
                spec: TokenReviewSpec {
                    token: Some(token),
                    ..TokenReviewSpec::default()
                },
                ..TokenReview::default()
            },
        )
        .await
        .expect("token review");
    let status = review.status.expect("status");
    assert_eq!(status.authenticated, Some(true));
    assert_eq!(
        status.user.and_then(|u| u.username).as_deref(),
        Some("system:serviceaccount:apps:probe")
    );

    let lines = log_of(&node.client, "opted-out").await;
    assert!(lines.iter().any(|l| l == "no-token"), "{lines:?}");
    node.emu.shutdown().await;
}
