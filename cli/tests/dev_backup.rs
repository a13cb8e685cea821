//! Backups as resources on real Pods (`midplane dev --pods process`, real redis-server):
//! `midplane backup create --app --component` creates a Backup that backup-svc's controller
//! runs as a Job archiving a snapshot Redis wrote on a replica (status: role, term, offset),
//! and a new App whose component names it in `restoreFrom` starts with every key.
//!
//! Needs root, redis-server and the agent binaries beside `midplane`.

use k8s_openapi::api::core::v1::{Pod, Service};
use kube::api::{Api, ListParams};
use midplane_api::Backup;
use midplane_e2e::eventually;
use midplane_e2e::process::redis_cli;
use std::process::Command;
mod common;
use common::{GROUP, apply, client, ready_pod, root, start_dev};

const KEYS: usize = 300;

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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_resource_restores_into_a_new_app() {
    let state = tempfile::tempdir().expect("tempdir");
    let (_dev, _, kubeconfig) = start_dev(state.path());
    apply(&kubeconfig, "examples/redis-app.yaml");
    let kube = client(&kubeconfig).await;
    let pods: Api<Pod> = Api::namespaced(kube.clone(), "default");
    for i in 0..3 {
        ready_pod(&pods, i, 90).await;
    }
    let ip = cluster_ip(&kube, GROUP).await;
    eventually("SET through the client Service", 30, || async {
        let (ok, out) = redis_cli(&["-h", &ip, "SET", "hello", "world"]).await;
        (ok && out == "OK").then_some(())
    })
    .await;
    for i in 0..KEYS {
        let (ok, out) = redis_cli(&["-h", &ip, "SET", &format!("key:{i}"), &format!("v{i}")]).await;
        assert!(ok && out == "OK", "SET key:{i}: {out}");
    }
    // The replicas have every key before the snapshot is asked of one of them.
    eventually("replicas caught up", 30, || async {
        let (_, out) = redis_cli(&["-h", &ip, "WAIT", "2", "1000"]).await;
        (out.trim() == "2").then_some(())
    })
    .await;

    let out = Command::new(env!("CARGO_BIN_EXE_midplane"))
        .args([
            "backup",
            "create",
            "--app",
            "shop",
            "--component",
            "cache",
            "--kubeconfig",
            &kubeconfig,
            "--timeout-secs",
            "120",
        ])
        .current_dir(root())
        .output()
        .expect("midplane backup create");
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "backup create failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("Completed"), "{stdout}");
    let backups: Api<Backup> = Api::namespaced(kube.clone(), "default");
    let list = backups.list(&ListParams::default()).await.expect("list");
    assert_eq!(list.items.len(), 1, "one Backup");
    let b = &list.items[0];
    let st = b.status.clone().expect("status");
    assert_eq!(st.phase, "Completed");
    assert_eq!(st.role.as_deref(), Some("replica"), "{st:?}");
    assert_ne!(st.instance.as_deref(), Some("shop-cache-0-0"), "{st:?}");
    assert!(st.replication_offset.unwrap_or(0) > 0, "{st:?}");
    assert!(
        st.snapshot
            .as_deref()
            .is_some_and(|p| p.starts_with(".midplane/snapshots/")),
        "{st:?}"
    );
    assert!(st.stored_bytes.unwrap_or(0) > 0, "{st:?}");
    let backup_name = kube::ResourceExt::name_any(b);

    // A new App from the backup.
    let app = format!(
        "apiVersion: midplane.dev/v1alpha1\nkind: App\nmetadata:\n  name: restored\n  namespace: default\n\
         spec:\n  components:\n    - name: cache\n      plugin: redis\n      version: \"7.2\"\n      replicas: 2\n\
         \x20     restoreFrom:\n        backup: {backup_name}\n"
    );
    let file = state.path().join("restored.yaml");
    std::fs::write(&file, app).expect("write App");
    apply(&kubeconfig, file.to_str().expect("path"));
    let restored_ip = cluster_ip(&kube, "restored-cache-0").await;
    let size = eventually("the restored App holds every key", 120, || async {
        let (ok, out) = redis_cli(&["-h", &restored_ip, "DBSIZE"]).await;
        let n: usize = out.trim().parse().ok()?;
        (ok && n == KEYS + 1).then_some(n)
    })
    .await;
    assert_eq!(size, KEYS + 1);
    let (_, v) = redis_cli(&["-h", &restored_ip, "GET", "key:123"]).await;
    assert_eq!(v.trim(), "v123");
}
