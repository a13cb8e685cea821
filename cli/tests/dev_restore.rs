//! An in-place restore on real Pods (`midplane dev --pods process`, real redis-server): a
//! `Restore` resource holds the running Group (every instance stops), a Job per instance
//! replaces its volume with the backup, and the Group starts again on the restored data,
//! its replicas in sync with the primary. What was written after the backup is gone.
//!
//! Needs root, redis-server and the agent binaries beside `midplane`.

use k8s_openapi::api::core::v1::{Pod, Service};
use kube::api::{Api, ListParams};
use midplane_api::{Group, Restore};
use midplane_e2e::eventually;
use midplane_e2e::process::redis_cli;
use std::process::Command;
mod common;
use common::{GROUP, apply, client, ready_pod, root, start_dev};

const KEYS: usize = 200;

async fn cluster_ip(kube: &kube::Client, name: &str) -> String {
    let svc = eventually(&format!("Service {name}"), 60, || async {
        Api::<Service>::namespaced(kube.clone(), "default")
            .get(name)
            .await
            .ok()
    })
    .await;
    svc.spec.and_then(|s| s.cluster_ip).expect("a ClusterIP")
}

async fn set(ip: &str, key: &str, value: &str) {
    let (ok, out) = redis_cli(&["-h", ip, "SET", key, value]).await;
    assert!(ok && out == "OK", "SET {key}: {out}");
}

/// Every instance Pod's address, once each is Ready.
async fn pod_ips(pods: &Api<Pod>) -> Vec<String> {
    let mut ips = Vec::new();
    for i in 0..3 {
        let p = ready_pod(pods, i, 120).await;
        ips.push(p.status.and_then(|s| s.pod_ip).expect("a Pod IP"));
    }
    ips
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restore_puts_a_backup_back_into_the_running_group() {
    let state = tempfile::tempdir().expect("tempdir");
    let (_dev, _, kubeconfig) = start_dev(state.path());
    apply(&kubeconfig, "examples/redis-app.yaml");
    let kube = client(&kubeconfig).await;
    let pods: Api<Pod> = Api::namespaced(kube.clone(), "default");
    pod_ips(&pods).await;
    let ip = cluster_ip(&kube, GROUP).await;
    eventually("SET through the client Service", 30, || async {
        let (ok, out) = redis_cli(&["-h", &ip, "SET", "hello", "world"]).await;
        (ok && out == "OK").then_some(())
    })
    .await;
    for i in 0..KEYS {
        set(&ip, &format!("key:{i}"), &format!("v{i}")).await;
    }
    eventually("replicas caught up", 30, || async {
        let (_, out) = redis_cli(&["-h", &ip, "WAIT", "2", "1000"]).await;
        (out.trim() == "2").then_some(())
    })
    .await;
    let out = Command::new(env!("CARGO_BIN_EXE_midplane"))
        .args(["backup", "create", "--app", "shop", "--component", "cache"])
        .args(["--kubeconfig", &kubeconfig, "--timeout-secs", "120"])
        .current_dir(root())
        .output()
        .expect("midplane backup create");
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(out.status.success(), "backup create: {stdout}");
    let backup = kube::ResourceExt::name_any(
        &Api::<midplane_api::Backup>::namespaced(kube.clone(), "default")
            .list(&ListParams::default())
            .await
            .expect("list")
            .items[0],
    );

    // Written after the backup: the restore takes these away.
    set(&ip, "key:0", "changed").await;
    for i in 0..50 {
        set(&ip, &format!("later:{i}"), "x").await;
    }

    // The Restore, created and followed by the CLI in the background.
    let cli = Command::new(env!("CARGO_BIN_EXE_midplane"))
        .args(["backup", "restore", "--app", "shop", "--component", "cache"])
        .args(["--backup", &backup, "--kubeconfig", &kubeconfig])
        .args(["--timeout-secs", "180"])
        .current_dir(root())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("midplane backup restore");
    let restores: Api<Restore> = Api::namespaced(kube.clone(), "default");
    let groups: Api<Group> = Api::namespaced(kube.clone(), "default");
    // The Group is held while its volumes are replaced.
    eventually("the Group held", 60, || async {
        let g = groups.get(GROUP).await.ok()?;
        g.status?
            .held
            .filter(|h| h.starts_with("restore/shop-cache-restore-"))
    })
    .await;
    let done = eventually("the Restore Completed", 180, || async {
        let r = restores
            .list(&ListParams::default())
            .await
            .ok()?
            .items
            .pop()?;
        let st = r.status?;
        assert_ne!(st.phase, "Failed", "{st:?}");
        (st.phase == "Completed").then_some(st)
    })
    .await;
    eprintln!(
        "restore {} took {:?}",
        done.backup_id.clone().unwrap_or_default(),
        done.duration
    );
    assert_eq!(done.instances.len(), 3, "{done:?}");
    assert_eq!(done.jobs.len(), 3, "{done:?}");
    assert!(done.duration.is_some(), "{done:?}");
    let listed = Command::new(env!("CARGO_BIN_EXE_midplane"))
        .args(["get", "restores", "--kubeconfig", &kubeconfig])
        .output()
        .expect("midplane get restores");
    let listed = String::from_utf8_lossy(&listed.stdout).to_string();
    assert!(
        listed.contains("shop-cache-restore-") && listed.contains("Completed"),
        "{listed}"
    );
    let out = cli
        .wait_with_output()
        .expect("midplane backup restore ends");
    let printed = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(out.status.success(), "{printed}");
    assert!(
        printed.contains("Stopping") && printed.contains("completed in"),
        "{printed}"
    );
    let g = groups.get(GROUP).await.expect("Group");
    assert!(g.status.clone().unwrap_or_default().held.is_none());
    assert!(
        !g.metadata
            .annotations
            .unwrap_or_default()
            .contains_key(midplane_api::labels::HOLD),
        "the hold annotation is gone"
    );

    // The data is the backup's on the primary, and every replica syncs to it.
    let (_, size) = redis_cli(&["-h", &ip, "DBSIZE"]).await;
    assert_eq!(
        size.trim(),
        (KEYS + 1).to_string(),
        "exactly the backed-up keys"
    );
    let (_, v) = redis_cli(&["-h", &ip, "GET", "key:0"]).await;
    assert_eq!(v.trim(), "v0");
    let (_, later) = redis_cli(&["-h", &ip, "EXISTS", "later:1"]).await;
    assert_eq!(later.trim(), "0");
    for pod_ip in pod_ips(&pods).await {
        eventually(&format!("{pod_ip} holds the restored data"), 60, || async {
            let (_, n) = redis_cli(&["-h", &pod_ip, "DBSIZE"]).await;
            let (_, v) = redis_cli(&["-h", &pod_ip, "GET", "key:0"]).await;
            (n.trim() == (KEYS + 1).to_string() && v.trim() == "v0").then_some(())
        })
        .await;
    }
    eventually("replicas in sync after the restore", 30, || async {
        set(&ip, "after", "restore").await;
        let (_, out) = redis_cli(&["-h", &ip, "WAIT", "2", "1000"]).await;
        (out.trim() == "2").then_some(())
    })
    .await;
}
