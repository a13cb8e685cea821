//! The kwok-like controllers: Deployment → Pods → Running/Ready, Deployment status, rollouts,
//! fault hooks (Rust API and HTTP admin), PVC binding, Endpoints/EndpointSlices, cascading.

mod common;

use std::time::Duration;

use common::*;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Endpoints, PersistentVolumeClaim, Pod, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::ResourceExt;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use midplane_kube_emulator::{EmulatorConfig, Fault};
use serde_json::json;

fn deployment(name: &str, replicas: i32, image: &str) -> Deployment {
    serde_json::from_value(json!({
        "metadata": {"name": name},
        "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
            "template": {"metadata": {"labels": {"app": name, "role": "primary"}},
                "spec": {"containers": [{"name": "redis", "image": image,
                    "ports": [{"name": "redis", "containerPort": 6379}]}]}}}}))
    .expect("deployment")
}

async fn ready_pods(pods: &Api<Pod>, app: &str) -> Vec<Pod> {
    pods.list(&ListParams::default().labels(&format!("app={app}")))
        .await
        .expect("list")
        .items
        .into_iter()
        .filter(|p| {
            p.status
                .as_ref()
                .and_then(|s| s.conditions.as_ref())
                .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
        })
        .collect()
}

async fn wait_ready(deps: &Api<Deployment>, name: &str, n: i32) -> Deployment {
    eventually(&format!("{name} ready {n}"), 10, || {
        let deps = deps.clone();
        let name = name.to_string();
        async move {
            let d = deps.get(&name).await.expect("get");
            let st = d.status.clone()?;
            let done = st.ready_replicas.unwrap_or(0) == n
                && st.replicas.unwrap_or(0) == n
                && st.updated_replicas.unwrap_or(0) == n
                && st.observed_generation == d.metadata.generation;
            done.then_some(d)
        }
    })
    .await
}

#[tokio::test]
async fn deployment_pods_become_ready_and_status_follows() {
    let (emu, client) = start_with(EmulatorConfig {
        pod_ready_delay: Duration::from_millis(300),
        ..Default::default()
    })
    .await;
    let deps: Api<Deployment> = Api::namespaced(client.clone(), "default");
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    let d = deps
        .create(&PostParams::default(), &deployment("r", 2, "redis:7"))
        .await
        .expect("create");
    // Before the delay the pods exist but are not ready.
    let listed = eventually("pods created", 5, || {
        let pods = pods.clone();
        async move {
            let l = pods
                .list(&ListParams::default().labels("app=r"))
                .await
                .ok()?;
            (l.items.len() == 2).then_some(l.items)
        }
    })
    .await;
    for p in &listed {
        assert!(
            p.name_any().starts_with("r-"),
            "pod named after its deployment"
        );
        assert_eq!(
            p.labels().get("role").map(String::as_str),
            Some("primary"),
            "template labels copied"
        );
        assert!(p.labels().contains_key("pod-template-hash"));
        let owner = &p.owner_references()[0];
        assert_eq!(
            (owner.kind.as_str(), owner.uid.as_str()),
            ("Deployment", d.uid().as_deref().unwrap_or_default())
        );
        assert_eq!(owner.controller, Some(true));
    }
    assert!(
        ready_pods(&pods, "r").await.len() < 2,
        "pods are not ready before the delay"
    );
    let d = wait_ready(&deps, "r", 2).await;
    let st = d.status.expect("status");
    assert_eq!(st.available_replicas, Some(2));
    let conds = st.conditions.unwrap_or_default();
    assert!(
        conds
            .iter()
            .any(|c| c.type_ == "Available" && c.status == "True")
    );
    assert!(
        conds
            .iter()
            .any(|c| c.type_ == "Progressing"
                && c.reason.as_deref() == Some("NewReplicaSetAvailable"))
    );
    let p = &ready_pods(&pods, "r").await[0];
    assert_eq!(
        p.status.as_ref().and_then(|s| s.phase.as_deref()),
        Some("Running")
    );
    assert!(p.status.as_ref().and_then(|s| s.pod_ip.as_ref()).is_some());

    // Scale up and down.
    deps.patch(
        "r",
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"replicas": 3}})),
    )
    .await
    .expect("scale up");
    wait_ready(&deps, "r", 3).await;
    deps.patch(
        "r",
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"replicas": 1}})),
    )
    .await
    .expect("scale down");
    wait_ready(&deps, "r", 1).await;
    // A template change rolls the pod: a new hash replaces the old one.
    let old = ready_pods(&pods, "r").await[0].labels()["pod-template-hash"].clone();
    deps.patch("r", &PatchParams::default(), &Patch::Merge(json!({"spec": {"template": {"spec": {"containers": [{"name": "redis", "image": "redis:7.2"}]}}}})))
        .await
        .expect("rollout");
    eventually("rolled", 10, || {
        let pods = pods.clone();
        let old = old.clone();
        async move {
            let all = pods
                .list(&ListParams::default().labels("app=r"))
                .await
                .ok()?
                .items;
            (all.len() == 1
                && all[0].labels()["pod-template-hash"] != old
                && ready_pods(&pods, "r").await.len() == 1)
                .then_some(())
        }
    })
    .await;
    // Deleting the deployment removes its pods (garbage collection).
    deps.delete("r", &DeleteParams::default())
        .await
        .expect("delete");
    eventually("pods gone", 5, || {
        let pods = pods.clone();
        async move {
            pods.list(&ListParams::default().labels("app=r"))
                .await
                .ok()?
                .items
                .is_empty()
                .then_some(())
        }
    })
    .await;
    emu.shutdown().await;
}

#[tokio::test]
async fn pod_faults_through_the_rust_api_and_the_http_admin_endpoint() {
    let (emu, client) = start_with(EmulatorConfig {
        pod_ready_delay: Duration::from_millis(100),
        ..Default::default()
    })
    .await;
    let deps: Api<Deployment> = Api::namespaced(client.clone(), "default");
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    deps.create(&PostParams::default(), &deployment("f", 1, "redis:7"))
        .await
        .expect("create");
    wait_ready(&deps, "f", 1).await;
    let name = ready_pods(&pods, "f").await[0].name_any();

    // Not ready → the deployment reports it, and Ready restores it.
    emu.pod_fault("default", &name, Fault::NotReady)
        .expect("not ready");
    eventually("deployment sees unready pod", 5, || {
        let deps = deps.clone();
        async move {
            let d = deps.get("f").await.ok()?;
            (d.status?.ready_replicas.unwrap_or(0) == 0).then_some(())
        }
    })
    .await;
    emu.pod_fault("default", &name, Fault::Ready)
        .expect("ready");
    wait_ready(&deps, "f", 1).await;

    // Crash: restartCount goes up and the pod comes back ready after the delay.
    let crashed = emu
        .pod_fault("default", &name, Fault::Crash)
        .expect("crash");
    assert_eq!(crashed["status"]["containerStatuses"][0]["restartCount"], 1);
    assert_eq!(
        crashed["status"]["containerStatuses"][0]["state"]["waiting"]["reason"],
        "CrashLoopBackOff"
    );
    eventually("crashed pod ready again", 5, || {
        let pods = pods.clone();
        async move { (ready_pods(&pods, "f").await.len() == 1).then_some(()) }
    })
    .await;

    // Over HTTP: fail the pod; the deployment replaces it.
    let url = format!("{}/_emulator/pods/default/{name}/fail", emu.url());
    let body = http_post(&url).await;
    assert!(body.contains("\"Failed\""), "{body}");
    let replaced = eventually("replacement pod ready", 5, || {
        let pods = pods.clone();
        let name = name.clone();
        async move {
            ready_pods(&pods, "f")
                .await
                .into_iter()
                .find(|p| p.name_any() != name)
        }
    })
    .await;
    // Delete hook: the pod goes and another replaces it.
    emu.pod_fault("default", &replaced.name_any(), Fault::Delete)
        .expect("delete");
    eventually("new pod after delete", 5, || {
        let pods = pods.clone();
        let gone = replaced.name_any();
        async move {
            ready_pods(&pods, "f")
                .await
                .into_iter()
                .find(|p| p.name_any() != gone)
        }
    })
    .await;
    let unknown = http_post(&format!(
        "{}/_emulator/pods/default/{name}/explode",
        emu.url()
    ))
    .await;
    assert!(unknown.contains("unknown pod action"), "{unknown}");
    emu.shutdown().await;
}

/// A bare HTTP/1.1 POST over TCP (keeps the test free of an HTTP client dependency).
async fn http_post(url: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let rest = url.strip_prefix("http://").expect("http url");
    let (host, path) = rest.split_once('/').expect("path");
    let mut s = tokio::net::TcpStream::connect(host).await.expect("connect");
    let req = format!(
        "POST /{path} HTTP/1.1\r\nHost: {host}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    );
    s.write_all(req.as_bytes()).await.expect("write");
    let mut out = String::new();
    s.read_to_string(&mut out).await.expect("read");
    out
}

#[tokio::test]
async fn pvcs_bind_and_endpoints_follow_ready_pods() {
    let (emu, client) = start_with(EmulatorConfig {
        pod_ready_delay: Duration::from_millis(100),
        ..Default::default()
    })
    .await;
    let pvcs: Api<PersistentVolumeClaim> = Api::namespaced(client.clone(), "default");
    let pvc: PersistentVolumeClaim = serde_json::from_value(json!({"metadata": {"name": "data"},
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}}))
    .expect("pvc");
    pvcs.create(&PostParams::default(), &pvc)
        .await
        .expect("pvc");
    let bound = eventually("pvc bound", 5, || {
        let pvcs = pvcs.clone();
        async move {
            let p = pvcs.get("data").await.ok()?;
            (p.status.as_ref()?.phase.as_deref() == Some("Bound")).then_some(p)
        }
    })
    .await;
    assert!(bound.spec.and_then(|s| s.volume_name).is_some());
    assert_eq!(
        bound
            .status
            .and_then(|s| s.capacity)
            .and_then(|c| c.get("storage").map(|q| q.0.clone()))
            .as_deref(),
        Some("1Gi")
    );

    let svcs: Api<Service> = Api::namespaced(client.clone(), "default");
    let svc: Service = serde_json::from_value(json!({"metadata": {"name": "e"},
        "spec": {"selector": {"app": "e"}, "ports": [{"name": "redis", "port": 6379, "targetPort": "redis"}]}}))
    .expect("svc");
    let svc = svcs
        .create(&PostParams::default(), &svc)
        .await
        .expect("svc");
    assert!(
        svc.spec
            .as_ref()
            .and_then(|s| s.cluster_ip.as_ref())
            .is_some(),
        "cluster IP allocated"
    );
    let deps: Api<Deployment> = Api::namespaced(client.clone(), "default");
    deps.create(&PostParams::default(), &deployment("e", 2, "redis:7"))
        .await
        .expect("deploy");
    let eps: Api<Endpoints> = Api::namespaced(client.clone(), "default");
    let ep = eventually("two ready endpoints", 5, || {
        let eps = eps.clone();
        async move {
            let e = eps.get("e").await.ok()?;
            let n = e.subsets.as_ref()?.first()?.addresses.as_ref()?.len();
            (n == 2).then_some(e)
        }
    })
    .await;
    let subset = &ep.subsets.expect("subsets")[0];
    assert_eq!(
        subset.ports.as_ref().expect("ports")[0].port,
        6379,
        "named targetPort resolved"
    );
    let slices: Api<EndpointSlice> = Api::namespaced(client.clone(), "default");
    let sl = slices
        .list(&ListParams::default().labels("kubernetes.io/service-name=e"))
        .await
        .expect("slices");
    assert_eq!(sl.items.len(), 1);
    assert_eq!(sl.items[0].endpoints.len(), 2);
    // An unready pod moves to notReadyAddresses.
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    let name = ready_pods(&pods, "e").await[0].name_any();
    emu.pod_fault("default", &name, Fault::NotReady)
        .expect("not ready");
    eventually("one ready, one not", 5, || {
        let eps = eps.clone();
        async move {
            let e = eps.get("e").await.ok()?;
            let s = e.subsets.as_ref()?.first()?.clone();
            (s.addresses.map(|a| a.len()) == Some(1)
                && s.not_ready_addresses.map(|a| a.len()) == Some(1))
            .then_some(())
        }
    })
    .await;
    // Deleting the Service removes its Endpoints and EndpointSlice.
    svcs.delete("e", &DeleteParams::default())
        .await
        .expect("delete svc");
    eventually("endpoints gone", 5, || {
        let eps = eps.clone();
        let slices = slices.clone();
        async move {
            let none = eps.get_opt("e").await.ok()?.is_none()
                && slices
                    .list(&ListParams::default().labels("kubernetes.io/service-name=e"))
                    .await
                    .ok()?
                    .items
                    .is_empty();
            none.then_some(())
        }
    })
    .await;
    emu.shutdown().await;
}

/// Committed Endpoints writes of one kind, from `GET /_emulator/stats`.
async fn endpoints_writes(client: &kube::Client, kind: &str) -> u64 {
    let stats: serde_json::Value = client
        .request(
            http::Request::get("/_emulator/stats")
                .body(Vec::new())
                .expect("request"),
        )
        .await
        .expect("stats");
    stats["writes"]
        .as_array()
        .expect("writes")
        .iter()
        .find(|w| w["group"] == "" && w["resource"] == "endpoints")
        .and_then(|w| w[kind].as_u64())
        .unwrap_or(0)
}

#[tokio::test]
async fn an_endpoint_batch_period_folds_pod_changes_into_one_write() {
    // Three Pods are scheduled (IP assigned) and turn Ready within 100 ms: six Pod changes.
    // With a 600 ms batch period they reach the Endpoints in one write.
    let (emu, client) = start_with(EmulatorConfig {
        pod_ready_delay: Duration::from_millis(100),
        endpoint_updates_batch_period: Duration::from_millis(600),
        ..Default::default()
    })
    .await;
    let svcs: Api<Service> = Api::namespaced(client.clone(), "default");
    let svc: Service = serde_json::from_value(json!({"metadata": {"name": "b"},
        "spec": {"selector": {"app": "b"}, "ports": [{"port": 6379}]}}))
    .expect("svc");
    svcs.create(&PostParams::default(), &svc)
        .await
        .expect("svc");
    let eps: Api<Endpoints> = Api::namespaced(client.clone(), "default");
    // The Service itself is not batched: its (empty) Endpoints appear at once.
    eventually("empty endpoints", 2, || {
        let eps = eps.clone();
        async move { eps.get_opt("b").await.ok()?.map(|_| ()) }
    })
    .await;
    assert_eq!(endpoints_writes(&client, "modified").await, 0);
    let deps: Api<Deployment> = Api::namespaced(client.clone(), "default");
    deps.create(&PostParams::default(), &deployment("b", 3, "redis:7"))
        .await
        .expect("deploy");
    eventually("three ready endpoints", 5, || {
        let eps = eps.clone();
        async move {
            let e = eps.get("b").await.ok()?;
            let n = e.subsets.as_ref()?.first()?.addresses.as_ref()?.len();
            (n == 3).then_some(())
        }
    })
    .await;
    assert_eq!(
        endpoints_writes(&client, "modified").await,
        1,
        "every Pod change of the period lands in one Endpoints write"
    );
    // A later change waits for its own period, then lands.
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    let name = ready_pods(&pods, "b").await[0].name_any();
    emu.pod_fault("default", &name, Fault::NotReady)
        .expect("not ready");
    tokio::time::sleep(Duration::from_millis(200)).await;
    let e = eps.get("b").await.expect("endpoints");
    let ready = |e: &Endpoints| {
        e.subsets
            .as_ref()
            .and_then(|s| s.first())
            .and_then(|s| s.addresses.as_ref())
            .map_or(0, Vec::len)
    };
    assert_eq!(ready(&e), 3, "still inside the batch period");
    eventually("one address not ready", 3, || {
        let eps = eps.clone();
        async move { (ready(&eps.get("b").await.ok()?) == 2).then_some(()) }
    })
    .await;
    assert_eq!(endpoints_writes(&client, "modified").await, 2);
    emu.shutdown().await;
}
