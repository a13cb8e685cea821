//! Repair and refusals on real Pods (`midplane dev --pods process`, real
//! redis-server): hand edits of owned objects are restored, a storage shrink
//! is refused up front with its field path, an object the API server refuses
//! does not block the rest of the Group, and a missing agent token never
//! stops Redis.
//!
//! Needs root, redis-server and the agent binaries beside `midplane`.

use k8s_openapi::api::core::v1::{Event, Pod};
use kube::api::{Api, ListParams};
use midplane_api::{App, Group};
use midplane_e2e::eventually;
use midplane_e2e::process::{pid, redis_cli};
use std::process::Command;
use std::time::{Duration, Instant};
mod common;
use common::loops::{config_get, events_with, pod_ip};
use common::{GROUP, apply, client, instance, ready_pod, start_dev};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hand_edits_are_repaired() {
    use k8s_openapi::api::apps::v1::Deployment;
    use k8s_openapi::api::core::v1::ConfigMap;
    use kube::api::{Patch, PatchParams};
    let state = tempfile::tempdir().expect("tempdir");
    let (_dev, _, kubeconfig) = start_dev(state.path());
    apply(&kubeconfig, "examples/redis-app.yaml");
    let kube = client(&kubeconfig).await;
    let pods: Api<Pod> = Api::namespaced(kube.clone(), "default");
    let events: Api<Event> = Api::namespaced(kube.clone(), "default");
    for i in 0..3 {
        ready_pod(&pods, i, 90).await;
    }
    // After the first reload verified the config (a reload in flight holds
    // the Group's reconcile for up to its wait).
    let groups: Api<Group> = Api::namespaced(kube.clone(), "default");
    eventually("the config verified once", 30, || async {
        groups.get(GROUP).await.ok()?.status?.config_hash
    })
    .await;
    let deployments: Api<Deployment> = Api::namespaced(kube.clone(), "default");
    let cms: Api<ConfigMap> = Api::namespaced(kube.clone(), "default");
    let cm = cms
        .list(&ListParams::default().labels(&format!("midplane.dev/group={GROUP}")))
        .await
        .expect("ConfigMaps")
        .items
        .into_iter()
        .next()
        .expect("the Group's ConfigMap");
    let cm_name = cm.metadata.name.clone().expect("name");
    let original = cm.data.clone().expect("data");

    let edited_at = Instant::now();
    let scale = serde_json::json!({"spec": {"replicas": 0}});
    deployments
        .patch(&instance(2), &PatchParams::default(), &Patch::Merge(&scale))
        .await
        .expect("scale to 0 by hand");
    let mut data = original.clone();
    for v in data.values_mut() {
        v.push_str("\n# edited by hand\n");
    }
    let edit = serde_json::json!({"data": data});
    cms.patch(&cm_name, &PatchParams::default(), &Patch::Merge(&edit))
        .await
        .expect("edit the ConfigMap by hand");

    let repaired = eventually("both restored", 20, || async {
        let d = deployments.get(&instance(2)).await.ok()?;
        let c = cms.get(&cm_name).await.ok()?;
        let replicas = d.spec.and_then(|s| s.replicas);
        (replicas == Some(1) && c.data.as_ref() == Some(&original)).then(|| edited_at.elapsed())
    })
    .await;
    eprintln!(
        "drift: a scaled Deployment and an edited ConfigMap restored {repaired:?} after the edits"
    );
    assert!(repaired < Duration::from_secs(5), "{repaired:?}");
    // A Warning Event names the object (repeats of the reason fold into
    // one Event, so the note is the last object's).
    let notes: Vec<String> = eventually("a DriftRepaired Event", 10, || async {
        let notes: Vec<String> = events_with(&events, "DriftRepaired")
            .await
            .into_iter()
            .filter_map(|e| e.message)
            .collect();
        (!notes.is_empty()).then_some(notes)
    })
    .await;
    let named = [
        format!("ConfigMap/{cm_name}"),
        format!("Deployment/{}", instance(2)),
    ];
    assert!(
        notes
            .iter()
            .all(|n| named.iter().any(|o| n.contains(o.as_str()))),
        "{notes:?}"
    );
    ready_pod(&pods, 2, 30).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_storage_shrink_is_refused_and_a_missing_token_never_stops_redis() {
    use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Secret};
    use kube::api::DeleteParams;
    let state = tempfile::tempdir().expect("tempdir");
    let (_dev, _, kubeconfig) = start_dev(state.path());
    apply(&kubeconfig, "examples/redis-app.yaml");
    let kube = client(&kubeconfig).await;
    let pods: Api<Pod> = Api::namespaced(kube.clone(), "default");
    let apps: Api<App> = Api::namespaced(kube.clone(), "default");
    for i in 0..3 {
        ready_pod(&pods, i, 90).await;
    }

    // A storage shrink: refused on the App with the field path; no PVC changes.
    let mut app = apps.get("shop").await.expect("App");
    if let Some(s) = app.spec.components[0].spec.storage.as_mut() {
        s.size = "1Gi".into();
    }
    app.metadata.managed_fields = None;
    apps.replace("shop", &Default::default(), &app)
        .await
        .expect("the API server takes the App");
    let message = eventually("the App refuses the shrink", 20, || async {
        let a = apps.get("shop").await.ok()?;
        let c = a
            .status?
            .conditions
            .into_iter()
            .find(|c| c.type_ == "Ready" && c.status == "False")?;
        c.message
            .contains("spec.components[0].storage.size")
            .then_some(c.message)
    })
    .await;
    assert!(
        message.contains("cannot shrink from 2Gi to 1Gi"),
        "{message}"
    );
    let pvcs: Api<PersistentVolumeClaim> = Api::namespaced(kube.clone(), "default");
    for i in 0..3 {
        let pvc = pvcs
            .get(&format!("{}-data", instance(i)))
            .await
            .expect("PVC");
        let size = pvc
            .spec
            .and_then(|s| s.resources)
            .and_then(|r| r.requests)
            .and_then(|r| r.get("storage").map(|q| q.0.clone()));
        assert_eq!(size.as_deref(), Some("2Gi"), "{} untouched", instance(i));
    }

    // The agent token Secret goes; the agents restart without it: they stop
    // with a clear error, and Redis keeps running.
    Api::<Secret>::namespaced(kube.clone(), "default")
        .delete("midplane-agent-token", &DeleteParams::default())
        .await
        .expect("delete the agent token Secret");
    tokio::time::sleep(Duration::from_secs(4)).await; // the kubelet's volume sync (2 s + jitter)
    let p = ready_pod(&pods, 1, 10).await;
    let redis = pid(&p, "redis").expect("redis");
    for container in ["agent-lifecycle", "agent-adapter"] {
        let agent = pid(&p, container).expect("an agent");
        let _ = Command::new("kill")
            .args(["-9", &agent.to_string()])
            .status();
    }
    let name = p.metadata.name.clone().expect("name");
    let log = eventually("agent 1 says the token is missing", 20, || async {
        let out = Command::new("kubectl")
            .args([
                "--kubeconfig",
                &kubeconfig,
                "logs",
                &name,
                "-c",
                "agent-lifecycle",
            ])
            .output()
            .ok()?;
        let log = String::from_utf8_lossy(&out.stdout).to_string();
        log.contains("server.auth_token_file").then_some(log)
    })
    .await;
    assert!(log.contains("keeps running"), "{log}");
    tokio::time::sleep(Duration::from_secs(3)).await;
    let now = pods.get(&name).await.expect("the Pod");
    assert_eq!(pid(&now, "redis"), Some(redis), "Redis was not restarted");
    assert!(midplane_e2e::process::alive(redis));
    let (_, pong) = redis_cli(&["-h", &pod_ip(&now), "PING"]).await;
    assert_eq!(pong, "PONG");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_object_the_api_refuses_does_not_block_the_group() {
    use k8s_openapi::api::apps::v1::Deployment;
    use kube::api::{Patch, PatchParams};
    let state = tempfile::tempdir().expect("tempdir");
    let (_dev, _, kubeconfig) = start_dev(state.path());
    apply(&kubeconfig, "examples/redis-app.yaml");
    let kube = client(&kubeconfig).await;
    let pods: Api<Pod> = Api::namespaced(kube.clone(), "default");
    let groups: Api<Group> = Api::namespaced(kube.clone(), "default");
    for i in 0..3 {
        ready_pod(&pods, i, 90).await;
    }
    // Past app-svc's check, straight on the Group: a PVC shrink (immutable
    // on the API server) and a dynamic parameter change together.
    let patch = serde_json::json!({"spec": {
        "storage": {"size": "1Gi"},
        "parameters": {"maxmemory": "300mb", "maxmemory-policy": "allkeys-lru"}
    }});
    groups
        .patch(GROUP, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .expect("patch the Group");
    let st = eventually("the refusals in the Group's status", 20, || async {
        let st = groups.get(GROUP).await.ok()?.status?;
        (st.rejected.len() == 3).then_some(st)
    })
    .await;
    assert!(
        st.rejected
            .iter()
            .all(|r| r.object.starts_with("PersistentVolumeClaim/") && !r.message.is_empty()),
        "{:?}",
        st.rejected
    );
    let degraded = st
        .conditions
        .iter()
        .find(|c| c.type_ == "Degraded")
        .expect("Degraded");
    assert_eq!(degraded.status, "True", "{degraded:?}");
    // The rest of the Group was applied: the new maxmemory is live.
    let ip = pod_ip(&ready_pod(&pods, 0, 10).await);
    eventually("maxmemory applied despite the refused PVCs", 20, || async {
        (config_get(&ip, "maxmemory").await == "314572800").then_some(())
    })
    .await;
    let deployments: Api<Deployment> = Api::namespaced(kube.clone(), "default");
    assert!(deployments.get(&instance(0)).await.is_ok());
}
