//! `midplane dev --pods process` as a new user meets it: apply the example App
//! and get a Redis anyone can connect to. Three real redis-server processes
//! with both agents beside each; SET and GET through the client Service's
//! ClusterIP; the replicas attached; `kubectl logs`; a deleted Pod comes back
//! with its data; a killed redis-server is restarted and Ready follows its
//! probe; stopping `midplane dev` stops every Pod process.
//!
//! Needs root (the Pods' names resolve through per-Pod mount namespaces),
//! redis-server and the agent binaries beside `midplane` (`cargo build
//! --workspace`, as `scripts/test.sh` does).

use k8s_openapi::api::core::v1::{Pod, Service};
use kube::api::{Api, DeleteParams};
use midplane_e2e::eventually;
use midplane_e2e::process::{alive, cmdline, pid, redis_cli, restarts};
mod common;
use common::{GROUP, client, ready_pod, root, start_dev};
use std::process::Command;
use std::time::Duration;

fn pod_ip(p: &Pod) -> String {
    p.status
        .as_ref()
        .and_then(|s| s.pod_ip.clone())
        .expect("a Pod IP")
}

fn kubectl(kubeconfig: &str, args: &[&str]) -> (bool, String) {
    let out = Command::new("kubectl")
        .args(["--kubeconfig", kubeconfig])
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("kubectl ({e}): install it with scripts/services/kubectl.sh"));
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_anyone_can_connect_to() {
    let state = tempfile::tempdir().expect("tempdir");
    let (mut dev, first, kubeconfig) = start_dev(state.path());
    assert!(
        first[0].starts_with("pods: real processes"),
        "the first line says the mode: {first:?}"
    );
    let applied = Command::new(env!("CARGO_BIN_EXE_midplane"))
        .args([
            "apply",
            "-f",
            "examples/redis-app.yaml",
            "--kubeconfig",
            &kubeconfig,
        ])
        .current_dir(root())
        .status()
        .expect("midplane apply");
    assert!(applied.success(), "midplane apply failed: {applied}");
    let kube = client(&kubeconfig).await;
    let pods: Api<Pod> = Api::namespaced(kube.clone(), "default");

    // Three real redis-server processes, each with both agents.
    let mut group = Vec::new();
    let mut pids = Vec::new();
    for i in 0..3 {
        let p = ready_pod(&pods, i, 90).await;
        for (container, program) in [
            ("redis", "redis-server"),
            ("agent-lifecycle", "lifecycle-agent"),
            ("agent-adapter", "adapter-agent"),
        ] {
            let pid = pid(&p, container).expect("a process");
            assert!(
                alive(pid) && cmdline(pid).contains(program),
                "{container}: pid {pid} runs {:?}",
                cmdline(pid)
            );
            pids.push(pid);
        }
        group.push(p);
    }

    // SET and GET through the client Service's ClusterIP (it selects the primary).
    let svc = Api::<Service>::namespaced(kube.clone(), "default")
        .get(GROUP)
        .await
        .expect("client Service");
    let ip = svc.spec.and_then(|s| s.cluster_ip).expect("a ClusterIP");
    let set = eventually("SET through the ClusterIP", 30, || async {
        let (ok, out) = redis_cli(&["-h", &ip, "SET", "greeting", "hello"]).await;
        (ok && out == "OK").then_some(out)
    })
    .await;
    assert_eq!(set, "OK");
    let (_, got) = redis_cli(&["-h", &ip, "GET", "greeting"]).await;
    assert_eq!(got, "hello");

    // The replicas are attached to the primary.
    for p in &group[1..] {
        let ip = pod_ip(p);
        eventually("a replica attached", 30, || async {
            let (_, info) = redis_cli(&["-h", &ip, "INFO", "replication"]).await;
            (info.contains("role:slave") && info.contains("master_link_status:up")).then_some(())
        })
        .await;
    }

    // kubectl logs prints Redis' log.
    let name = group[0].metadata.name.clone().expect("name");
    let (ok, log) = kubectl(&kubeconfig, &["logs", &name, "-c", "redis"]);
    assert!(ok && log.contains("Ready to accept connections"), "{log}");

    // A deleted Pod (the primary) comes back with its data.
    pods.delete(&name, &DeleteParams::default())
        .await
        .expect("delete the primary's Pod");
    let back = eventually("a new primary Pod Ready", 90, || async {
        let p = ready_pod(&pods, 0, 90).await;
        (p.metadata.name.as_deref() != Some(name.as_str())).then_some(p)
    })
    .await;
    pids.extend(pid(&back, "redis"));
    let value = eventually("the data back through the ClusterIP", 60, || async {
        let (ok, out) = redis_cli(&["-h", &ip, "GET", "greeting"]).await;
        (ok && out == "hello").then_some(out)
    })
    .await;
    assert_eq!(value, "hello");

    // kill -9 of a replica's redis-server: restarted, Ready follows the probe.
    let victim = pid(&group[1], "redis").expect("replica redis pid");
    let before = restarts(&group[1], "redis");
    let killed = Command::new("kill")
        .args(["-9", &victim.to_string()])
        .status()
        .expect("kill");
    assert!(killed.success());
    let restarted = eventually(
        "the killed redis-server restarted and Ready",
        90,
        || async {
            let p = ready_pod(&pods, 1, 90).await;
            let new = pid(&p, "redis")?;
            (new != victim && restarts(&p, "redis") > before).then_some(p)
        },
    )
    .await;
    pids.extend(pid(&restarted, "redis"));

    // Stopping midplane dev stops every Pod process.
    let term = Command::new("kill")
        .args(["-TERM", &dev.0.id().to_string()])
        .status()
        .expect("kill -TERM");
    assert!(term.success());
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let exited = loop {
        if let Some(status) = dev.0.try_wait().expect("poll midplane dev") {
            break status;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "midplane dev did not exit within 60 s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(exited.success(), "{exited}");
    let left = eventually("every Pod process gone", 30, || async {
        let left: Vec<u32> = pids.iter().copied().filter(|p| alive(*p)).collect();
        left.is_empty().then_some(left)
    })
    .await;
    assert!(left.is_empty());
}
