//! Process pods that run to an end: Jobs whose Pods end as their processes do, and init
//! containers run in order and retried until they succeed.

mod common;

use std::time::Duration;

use common::pods::*;
use common::process::*;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ListParams};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jobs_end_as_their_processes_do() {
    let node = start(|_| {}).await;
    for (name, script, limit) in [("works", "echo done", 6), ("fails", "exit 4", 0)] {
        apply(&node.client, &json!({"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": name, "namespace": NS},
            "spec": {"backoffLimit": limit, "template": {"spec": {"restartPolicy": "Never",
                "containers": [{"name": "job", "image": "busybox", "command": sh(script)}]}}}})).await;
    }
    let jobs: Api<k8s_openapi::api::batch::v1::Job> = Api::namespaced(node.client.clone(), NS);
    for (name, condition) in [("works", "Complete"), ("fails", "Failed")] {
        wait(&format!("Job {name} {condition}"), 20, || async {
            let j = jobs.get(name).await.map_err(|e| e.to_string())?;
            let conds = j.status.and_then(|s| s.conditions).unwrap_or_default();
            if conds
                .iter()
                .any(|c| c.type_ == condition && c.status == "True")
            {
                Ok(())
            } else {
                Err(format!("{conds:?}"))
            }
        })
        .await;
    }
    let pods: Api<Pod> = Api::namespaced(node.client.clone(), NS);
    let failed = pods
        .list(&ListParams::default().labels("job-name=fails"))
        .await
        .expect("pods");
    let status = serde_json::to_value(&failed.items[0]).expect("pod");
    assert_eq!(status["status"]["phase"], "Failed");
    assert_eq!(
        container(&status, "job")["state"]["terminated"]["exitCode"],
        4
    );
    node.emu.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn init_containers_run_in_order_and_are_retried_until_they_succeed() {
    let node = start(|p| p.crash_backoff = Duration::from_secs(1)).await;
    let marks = tempfile::tempdir().expect("marks");
    create(&node.client, "staged", json!({
        "volumes": [{"name": "work", "emptyDir": {}}, {"name": "marks", "hostPath": {"path": marks.path()}}],
        "initContainers": [
            // Fails on its first run, succeeds on the retry.
            {"name": "flaky", "image": "busybox", "command": sh("test -f /marks/tried || { touch /marks/tried; exit 1; }"),
             "volumeMounts": [{"name": "marks", "mountPath": "/marks"}]},
            {"name": "prepare", "image": "busybox", "command": sh("echo prepared > /work/state"),
             "volumeMounts": [{"name": "work", "mountPath": "/work"}]},
        ],
        "containers": [{"name": "app", "image": "busybox",
            "command": sh("cat /work/state > /marks/seen; while true; do sleep 0.2; done"),
            "volumeMounts": [{"name": "work", "mountPath": "/work"}, {"name": "marks", "mountPath": "/marks"}]}],
    }))
    .await;
    let p = pod_named(
        &node.client,
        "staged",
        20,
        "Ready after its init containers",
        all_ready,
    )
    .await;
    let inits = p["status"]["initContainerStatuses"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert_eq!(inits.len(), 2, "{inits:?}");
    assert_eq!(
        inits[0]["restartCount"], 1,
        "the failed init container ran again"
    );
    assert!(
        inits
            .iter()
            .all(|c| c["state"]["terminated"]["exitCode"] == 0),
        "{inits:?}"
    );
    wait("the app saw what the init container wrote", 10, || async {
        let seen = read(&marks.path().join("seen"));
        if seen == "prepared" {
            Ok(())
        } else {
            Err(seen)
        }
    })
    .await;
    node.emu.shutdown().await;
}
