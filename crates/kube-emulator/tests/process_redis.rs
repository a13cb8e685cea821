//! The Redis plugin's rendered objects for a 3-instance group on process pods: real
//! redis-server processes and both agents per Pod, SET/GET through the client Service's
//! ClusterIP, replicas attached by the plugin's own headless-Service names, `kubectl logs`,
//! a kill -9 restarted with back-off, a deleted Pod back with its data, and no process left
//! once the emulator stops. Needs the agent binaries built (the test names the command).

mod common;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use common::process::*;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, DeleteParams, Patch, PatchParams};
use serde_json::{Value, json};

const NS: &str = "default";

/// Every object `midplane render -f examples/redis-app.yaml` makes but the custom resources,
/// without owner references (their Group is not in this API).
fn rendered_group() -> Vec<Value> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let plugins = midplane_plugin::Registry::load_dir(&root.join("plugins")).expect("plugins load");
    let text = std::fs::read_to_string(root.join("examples/redis-app.yaml")).expect("example app");
    let app: midplane_api::App = serde_yaml::from_str(&text).expect("example parses");
    midplane_render::render_app(&app, &plugins, &BTreeMap::new())
        .expect("renders")
        .into_iter()
        .filter(|o| !matches!(o.kind(), "Component" | "Group"))
        .map(|o| {
            let mut v = o.object;
            if let Some(m) = v["metadata"].as_object_mut() {
                m.remove("ownerReferences");
            }
            v
        })
        .collect()
}

fn instance(i: usize) -> String {
    format!("midplane.dev/instance=shop-cache-0-{i}")
}

async fn ready_pod(pods: &Api<Pod>, i: usize, secs: u64) -> Value {
    pod_where(
        pods,
        &instance(i),
        secs,
        &format!("instance {i} Ready"),
        all_ready,
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_group_runs_for_real() {
    require_agents();
    let node = start(|p| p.crash_backoff = Duration::from_secs(3)).await;
    let client = node.client.clone();
    let pods: Api<Pod> = Api::namespaced(client.clone(), NS);
    apply(
        &client,
        &json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "midplane-agent-token", "namespace": NS},
                "stringData": {"token": "test-token"}}),
    )
    .await;
    let created = Instant::now();
    for obj in rendered_group() {
        apply(&client, &obj).await;
    }
    let mut group = Vec::new();
    for i in 0..3 {
        group.push(ready_pod(&pods, i, 60).await);
    }
    println!(
        "3 Pods Ready with real processes {:.2} s after the first apply",
        created.elapsed().as_secs_f64()
    );

    // Three redis-server processes and both agents per Pod, on the Pod's own address.
    let mut pids = Vec::new();
    for p in &group {
        let ip = p["status"]["podIP"].as_str().expect("pod IP").to_string();
        assert!(ip.starts_with("127.") && ip != "127.0.0.1", "{ip}");
        for (c, program) in [
            ("redis", "redis-server"),
            ("agent-lifecycle", "lifecycle-agent"),
            ("agent-adapter", "adapter-agent"),
        ] {
            let pid = pid(p, c);
            assert!(
                alive(pid) && cmdline(pid).contains(program),
                "{c}: pid {pid} runs {:?}",
                cmdline(pid)
            );
            pids.push(pid);
        }
        assert_eq!(redis_cli(&["-h", &ip, "ping"]).await, "PONG");
    }

    // The controller labels the primary later; by hand here. The client Service follows it.
    let primary = group[0]["metadata"]["name"]
        .as_str()
        .expect("name")
        .to_string();
    pods.patch(
        &primary,
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"labels": {"midplane.dev/role": "primary"}}})),
    )
    .await
    .expect("label the primary");
    let svc: k8s_openapi::api::core::v1::Service = Api::namespaced(client.clone(), NS)
        .get("shop-cache-0")
        .await
        .expect("client Service");
    let cluster_ip = svc.spec.and_then(|s| s.cluster_ip).expect("ClusterIP");
    wait("SET through the client Service", 10, || async {
        match redis_cli(&["-h", &cluster_ip, "set", "greeting", "hello"])
            .await
            .as_str()
        {
            "OK" => Ok(()),
            other => Err(other.to_string()),
        }
    })
    .await;
    assert_eq!(
        redis_cli(&["-h", &cluster_ip, "get", "greeting"]).await,
        "hello"
    );

    // The replicas attached to the primary through <instance-0>.<group>-headless.<ns>.svc.
    for p in &group[1..] {
        let ip = p["status"]["podIP"].as_str().expect("ip").to_string();
        wait("a replica attached to its primary", 20, || async {
            let info = redis_cli(&["-h", &ip, "info", "replication"]).await;
            if info.contains("master_link_status:up") {
                Ok(())
            } else {
                Err(info)
            }
        })
        .await;
        // Replication is asynchronous: the write arrives shortly after.
        wait("the write on a replica", 10, || async {
            match redis_cli(&["-h", &ip, "get", "greeting"]).await.as_str() {
                "hello" => Ok(()),
                other => Err(other.to_string()),
            }
        })
        .await;
    }

    // kubectl logs prints Redis' log.
    let (ok, out) = kubectl(&node.kubeconfig, &["logs", &primary, "-c", "redis"]).await;
    assert!(
        ok && out.contains("Ready to accept connections"),
        "kubectl logs: {out}"
    );

    // kill -9 of a replica's redis-server: the container restarts, `kubectl logs -f` of the
    // killed instance ends, Ready follows the readiness probe.
    let replica = group[1]["metadata"]["name"]
        .as_str()
        .expect("name")
        .to_string();
    let old = pid(&group[1], "redis");
    let follow = tokio::spawn({
        let kc = node.kubeconfig.clone();
        let replica = replica.clone();
        async move { kubectl(&kc, &["logs", "-f", &replica, "-c", "redis"]).await }
    });
    tokio::time::sleep(Duration::from_millis(500)).await;
    // SAFETY: kill(2) of a process this test started through the emulator.
    #[allow(unsafe_code)]
    unsafe {
        libc::kill(old as i32, libc::SIGKILL)
    };
    let (ok, out) = tokio::time::timeout(Duration::from_secs(10), follow)
        .await
        .expect("kubectl logs -f ends when its container instance ends")
        .expect("kubectl task");
    assert!(
        ok && out.contains("Ready to accept connections"),
        "kubectl logs -f: {out}"
    );
    let restarted = pod_where(
        &pods,
        &instance(1),
        30,
        "the killed container restarted and Ready",
        |p| container(p, "redis")["restartCount"] == 1 && all_ready(p),
    )
    .await;
    let last = &container(&restarted, "redis")["lastState"]["terminated"];
    assert_eq!(last["exitCode"], 137, "{last}");
    let new = pid(&restarted, "redis");
    assert!(new != old && alive(new) && !alive(old));
    let (ok, out) = kubectl(
        &node.kubeconfig,
        &["logs", &replica, "-c", "redis", "--previous"],
    )
    .await;
    assert!(
        ok && out.contains(&format!("pid={old}")),
        "kubectl logs --previous: {out}"
    );
    // A second crash right after the restart waits for the back-off (3 s here), which the
    // kubelet counts from the restart before.
    // SAFETY: as above.
    #[allow(unsafe_code)]
    unsafe {
        libc::kill(new as i32, libc::SIGKILL)
    };
    let waiting = pod_where(&pods, &instance(1), 10, "CrashLoopBackOff", |p| {
        container(p, "redis")["state"]["waiting"]["reason"] == "CrashLoopBackOff"
    })
    .await;
    let message = container(&waiting, "redis")["state"]["waiting"]["message"].clone();
    assert!(
        message
            .as_str()
            .is_some_and(|m| m.starts_with("back-off 3s restarting failed container=redis")),
        "{message}"
    );
    let back = pod_where(&pods, &instance(1), 30, "the second restart", |p| {
        container(p, "redis")["restartCount"] == 2
            && container(p, "redis")["state"]["running"].is_object()
    })
    .await;
    let started = |p: &Value| {
        let t = container(p, "redis")["state"]["running"]["startedAt"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        chrono::DateTime::parse_from_rfc3339(&t).expect("startedAt")
    };
    let gap = started(&back) - started(&restarted);
    assert!(
        gap >= chrono::Duration::seconds(2),
        "restarted {gap} after the previous restart, within its 3 s back-off"
    );
    pids.push(pid(&back, "redis"));

    // Deleting the primary's Pod: it terminates gracefully and comes back with its data.
    let old_primary: Vec<u32> = ["redis", "agent-lifecycle", "agent-adapter"]
        .iter()
        .map(|c| pid(&group[0], c))
        .collect();
    pods.delete(&primary, &DeleteParams::default())
        .await
        .expect("delete the primary's Pod");
    all_gone(&old_primary, 40).await;
    let again = ready_pod(&pods, 0, 60).await;
    let name = again["metadata"]["name"]
        .as_str()
        .expect("name")
        .to_string();
    assert_ne!(name, primary);
    pods.patch(
        &name,
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"labels": {"midplane.dev/role": "primary"}}})),
    )
    .await
    .expect("label the new primary");
    wait("the data back through the client Service", 15, || async {
        match redis_cli(&["-h", &cluster_ip, "get", "greeting"])
            .await
            .as_str()
        {
            "hello" => Ok(()),
            other => Err(other.to_string()),
        }
    })
    .await;
    for c in ["redis", "agent-lifecycle", "agent-adapter"] {
        pids.push(pid(&again, c));
    }

    // Stopping the emulator stops every Pod process.
    node.emu.shutdown().await;
    all_gone(&pids, 20).await;
}
