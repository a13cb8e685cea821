//! Process pods one behaviour at a time, with small shell containers (the `busybox` image
//! maps to this machine's sh): unmapped images, crash loops, probes, graceful deletion with
//! preStop, volumes, environment and names, and no process left behind.

mod common;

use std::time::{Duration, Instant};

use common::pods::*;
use common::process::*;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, DeleteParams, Patch, PatchParams};
use serde_json::json;

#[test]
fn preflight_names_what_is_missing() {
    let dir = tempfile::tempdir().expect("dir");
    let map = dir.path().join("images.yaml");
    std::fs::write(
        &map,
        "images:\n  - {image: tool, programs: [no-such-program-anywhere]}\n",
    )
    .expect("map");
    let p = midplane_kube_emulator::ProcessPods {
        image_map: Some(map),
        ..Default::default()
    };
    let err = p.preflight().expect_err("a program is missing");
    assert!(
        err.contains("no-such-program-anywhere of image tool"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unmapped_image_stays_pending_with_a_warning_event() {
    let node = start(|_| {}).await;
    create(
        &node.client,
        "ghost",
        json!({"containers": [{"name": "app", "image": "registry.example.com/nothing:1"}]}),
    )
    .await;
    let p = pod_named(&node.client, "ghost", 10, "ErrImagePull", |p| {
        container(p, "app")["state"]["waiting"]["reason"] == "ErrImagePull"
    })
    .await;
    assert_eq!(p["status"]["phase"], "Pending");
    let events = events_of(&node.client, "ghost").await;
    let warning = events
        .iter()
        .find(|e| e.type_.as_deref() == Some("Warning") && e.reason.as_deref() == Some("Failed"))
        .expect("a Warning Event");
    let msg = warning.message.clone().unwrap_or_default();
    assert!(
        msg.contains("registry.example.com/nothing:1") && msg.contains("images.yaml"),
        "{msg}"
    );
    tokio::time::sleep(Duration::from_secs(1)).await;
    let still = pod_named(&node.client, "ghost", 5, "the Pod", |_| true).await;
    assert_eq!(
        still["status"]["phase"], "Pending",
        "it neither starts nor fails"
    );
    node.emu.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_container_that_exits_at_once_crash_loops_with_its_exit_code() {
    let node = start(|_| {}).await;
    create(&node.client, "quitter", json!({"containers": [{"name": "app", "image": "busybox", "command": sh("echo leaving; exit 3")}]})).await;
    let p = pod_named(&node.client, "quitter", 15, "CrashLoopBackOff", |p| {
        container(p, "app")["state"]["waiting"]["reason"] == "CrashLoopBackOff"
    })
    .await;
    let c = container(&p, "app");
    assert_eq!(c["lastState"]["terminated"]["exitCode"], 3, "{c}");
    assert_eq!(c["lastState"]["terminated"]["reason"], "Error");
    assert!(c["restartCount"].as_i64().is_some_and(|n| n >= 1), "{c}");
    assert_eq!(c["ready"], false);
    let (ok, out) = kubectl(&node.kubeconfig, &["logs", "-n", NS, "quitter"]).await;
    assert!(ok && out.contains("leaving"), "{out}");
    let events = events_of(&node.client, "quitter").await;
    assert!(
        events
            .iter()
            .any(|e| e.reason.as_deref() == Some("BackOff")),
        "a BackOff Event"
    );
    node.emu.shutdown().await;
}

/// The pids of a Pod's main process and of every process in its group.
fn group_pids(main: u32) -> Vec<u32> {
    let mut out = vec![main];
    for e in std::fs::read_dir("/proc").expect("/proc").flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        let fields: Vec<&str> = stat
            .rsplit(')')
            .next()
            .unwrap_or_default()
            .split_whitespace()
            .collect();
        if fields.get(2).and_then(|g| g.parse::<u32>().ok()) == Some(main) && pid != main {
            out.push(pid);
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_the_emulator_leaves_no_process() {
    let node = start(|_| {}).await;
    create(&node.client, "sleeper", json!({"containers": [{"name": "app", "image": "busybox", "command": sh("sleep 1000 & sleep 1000")}]})).await;
    let p = pod_named(&node.client, "sleeper", 15, "Running", |p| {
        container(p, "app")["state"]["running"].is_object()
    })
    .await;
    let main = pid(&p, "app");
    let pids = wait("the shell's children", 5, || async {
        let g = group_pids(main);
        if g.len() >= 3 {
            Ok(g)
        } else {
            Err(format!("{g:?}"))
        }
    })
    .await;
    assert!(pids.iter().all(|p| alive(*p)));
    // No shutdown: the handle is dropped, as when a test fails.
    drop(node);
    all_gone(&pids, 5).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stopping_the_emulator_stops_pods_that_ignore_sigterm() {
    let node = start(|p| p.shutdown_grace = Duration::from_secs(1)).await;
    create(
        &node.client,
        "stubborn",
        json!({"containers": [{"name": "app", "image": "busybox",
        "command": sh("trap '' TERM; while true; do sleep 0.2; done")}]}),
    )
    .await;
    let p = pod_named(&node.client, "stubborn", 15, "Running", |p| {
        container(p, "app")["state"]["running"].is_object()
    })
    .await;
    let main = pid(&p, "app");
    let t = Instant::now();
    node.emu.shutdown().await;
    assert!(!alive(main), "gone when shutdown returns");
    assert!(
        t.elapsed() < Duration::from_secs(8),
        "SIGKILL after the capped grace, took {:?}",
        t.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deletion_runs_pre_stop_then_sigterm_then_sigkill_after_the_grace_period() {
    let node = start(|_| {}).await;
    let hook_dir = tempfile::tempdir().expect("hook dir");
    create(&node.client, "graceful", json!({
        "terminationGracePeriodSeconds": 2,
        "volumes": [{"name": "hook", "hostPath": {"path": hook_dir.path()}}],
        "containers": [{"name": "app", "image": "busybox",
            "command": sh("trap 'echo got TERM >> /hook/log' TERM; while true; do sleep 0.1; done"),
            "lifecycle": {"preStop": {"exec": {"command": ["sh", "-c", "echo pre-stop >> /hook/log"]}}},
            "volumeMounts": [{"name": "hook", "mountPath": "/hook"}]}],
    }))
    .await;
    let p = pod_named(&node.client, "graceful", 15, "Running", |p| {
        container(p, "app")["state"]["running"].is_object()
    })
    .await;
    let main = pid(&p, "app");
    let pods: Api<Pod> = Api::namespaced(node.client.clone(), NS);
    let deleted = Instant::now();
    pods.delete("graceful", &DeleteParams::default())
        .await
        .expect("delete");
    let marked = pods
        .get("graceful")
        .await
        .expect("still there while terminating");
    assert!(marked.metadata.deletion_timestamp.is_some());
    assert_eq!(marked.metadata.deletion_grace_period_seconds, Some(2));
    wait("the Pod to be removed", 10, || async {
        match pods.get_opt("graceful").await {
            Ok(None) => Ok(()),
            other => Err(format!(
                "{:?}",
                other.map(|p| p.map(|p| p.metadata.deletion_timestamp))
            )),
        }
    })
    .await;
    let took = deleted.elapsed();
    assert!(
        took >= Duration::from_millis(1800),
        "removed after {took:?}, before the grace period ran out"
    );
    assert!(!alive(main));
    let log = read(&hook_dir.path().join("log"));
    assert!(
        log.starts_with("pre-stop") && log.contains("got TERM"),
        "the hook ran, then SIGTERM: {log:?}"
    );
    node.emu.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn probes_drive_ready_and_restarts() {
    let node = start(|p| p.crash_backoff = Duration::from_secs(1)).await;
    let state = tempfile::tempdir().expect("probe state");
    let probe = |script: &str, failures: u32| json!({"exec": {"command": ["sh", "-c", script]}, "periodSeconds": 1, "failureThreshold": failures});
    create(&node.client, "probed", json!({
        "volumes": [{"name": "state", "hostPath": {"path": state.path()}}],
        "containers": [
            {"name": "app", "image": "busybox", "command": sh("while true; do sleep 0.2; done"),
             "readinessProbe": probe("test -f /state/ready", 1),
             "livenessProbe": probe("test ! -f /state/dead", 2),
             "volumeMounts": [{"name": "state", "mountPath": "/state"}]},
            {"name": "web", "image": "busybox",
             "command": ["python3", "-m", "http.server", "8080", "--bind", "$(POD_IP)"],
             "env": [{"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}}],
             "ports": [{"name": "http", "containerPort": 8080}],
             "readinessProbe": {"httpGet": {"path": "/", "port": "http"}, "periodSeconds": 1},
             "livenessProbe": {"tcpSocket": {"port": 8080}, "periodSeconds": 1}},
        ],
    }))
    .await;
    let running = pod_named(&node.client, "probed", 15, "web Ready, app not", |p| {
        container(p, "web")["ready"] == true && container(p, "app")["state"]["running"].is_object()
    })
    .await;
    assert!(!all_ready(&running), "app has no /state/ready yet");
    std::fs::write(state.path().join("ready"), "").expect("ready");
    pod_named(&node.client, "probed", 10, "Ready", all_ready).await;
    // Ready Pods are endpoints: the proxy serves the Service at its ClusterIP and NodePort.
    apply(&node.client, &json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "probed", "namespace": NS},
        "spec": {"type": "NodePort", "selector": {"app": "probed"}, "ports": [{"port": 80, "targetPort": "http"}]}})).await;
    let svc: k8s_openapi::api::core::v1::Service = Api::namespaced(node.client.clone(), NS)
        .get("probed")
        .await
        .expect("svc");
    let spec = svc.spec.expect("spec");
    let node_port = spec
        .ports
        .as_ref()
        .and_then(|p| p[0].node_port)
        .expect("nodePort");
    for addr in [
        format!("{}:80", spec.cluster_ip.expect("ClusterIP")),
        format!("127.0.0.1:{node_port}"),
    ] {
        let status = wait("an HTTP answer through the Service", 10, || async {
            http_status(&addr)
                .await
                .ok_or_else(|| format!("no answer from {addr}"))
        })
        .await;
        assert_eq!(status, 200, "{addr}");
    }
    std::fs::remove_file(state.path().join("ready")).expect("not ready");
    pod_named(&node.client, "probed", 10, "not Ready again", |p| {
        !all_ready(p)
    })
    .await;
    std::fs::write(state.path().join("dead"), "").expect("dead");
    let restarted = pod_named(&node.client, "probed", 15, "a liveness restart", |p| {
        container(p, "app")["restartCount"]
            .as_i64()
            .is_some_and(|n| n >= 1)
    })
    .await;
    std::fs::remove_file(state.path().join("dead")).expect("alive");
    assert_eq!(
        container(&restarted, "web")["restartCount"],
        0,
        "only the failing container restarts"
    );
    let events = events_of(&node.client, "probed").await;
    let said = |reason: &str, text: &str| {
        events.iter().any(|e| {
            e.reason.as_deref() == Some(reason)
                && e.message.as_deref().is_some_and(|m| m.contains(text))
        })
    };
    assert!(said("Unhealthy", "Liveness probe failed"), "{events:?}");
    assert!(
        said("Killing", "failed liveness probe, will be restarted"),
        "{events:?}"
    );
    node.emu.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn volumes_environment_and_names_as_a_kubelet_provides_them() {
    let node = start(|p| p.pod_sync_period = Duration::from_secs(1)).await;
    let out = tempfile::tempdir().expect("out");
    let client = node.client.clone();
    for obj in [
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "settings", "namespace": NS}, "data": {"level": "one"}}),
        json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "creds", "namespace": NS}, "stringData": {"pw": "hunter2"}}),
        json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web", "namespace": NS},
               "spec": {"selector": {"app": "named"}, "ports": [{"port": 80}]}}),
    ] {
        apply(&client, &obj).await;
    }
    let script = "echo \"$ADDR $NAME $LEVEL $APP\" > /out/env; cat /etc/creds/pw > /out/pw; hostname > /out/hostname; \
                  getent hosts web > /out/dns; echo scratch > /scratch/f && cat /scratch/f > /out/scratch; \
                  while true; do cat /etc/app/level > /out/level.tmp && mv /out/level.tmp /out/level; sleep 0.1; done";
    create(&client, "named", json!({
        "hostname": "box", "subdomain": "web",
        "volumes": [
            {"name": "config", "configMap": {"name": "settings"}},
            {"name": "creds", "secret": {"secretName": "creds"}},
            {"name": "scratch", "emptyDir": {}},
            {"name": "out", "hostPath": {"path": out.path()}},
        ],
        "containers": [{"name": "app", "image": "busybox", "command": sh(script),
            "env": [
                {"name": "MY_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
                {"name": "ADDR", "value": "$(MY_IP):6379"},
                {"name": "NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
                {"name": "APP", "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels['app']"}}},
                {"name": "LEVEL", "valueFrom": {"configMapKeyRef": {"name": "settings", "key": "level"}}},
            ],
            "volumeMounts": [
                {"name": "config", "mountPath": "/etc/app", "readOnly": true},
                {"name": "creds", "mountPath": "/etc/creds", "readOnly": true},
                {"name": "scratch", "mountPath": "/scratch"},
                {"name": "out", "mountPath": "/out"},
            ]}],
    }))
    .await;
    let p = pod_named(&client, "named", 15, "Ready", all_ready).await;
    let ip = p["status"]["podIP"].as_str().expect("ip").to_string();
    let level = out.path().join("level");
    wait("the container's first writes", 10, || async {
        if read(&level) == "one" {
            Ok(())
        } else {
            Err(read(&level))
        }
    })
    .await;
    assert_eq!(
        read(&out.path().join("env")),
        format!("{ip}:6379 named one named")
    );
    assert_eq!(read(&out.path().join("pw")), "hunter2");
    assert_eq!(read(&out.path().join("hostname")), "box");
    assert_eq!(read(&out.path().join("scratch")), "scratch");
    let svc: k8s_openapi::api::core::v1::Service = Api::namespaced(client.clone(), NS)
        .get("web")
        .await
        .expect("svc");
    let cluster_ip = svc.spec.and_then(|s| s.cluster_ip).expect("ClusterIP");
    let dns = read(&out.path().join("dns"));
    assert!(
        dns.starts_with(&cluster_ip) && dns.contains("web.apps.svc.cluster.local"),
        "{dns}"
    );

    // A ConfigMap change reaches the mounted file at the next pod sync, by a ..data swap.
    let data_link = node
        .emu
        .process_pods()
        .expect("process pods")
        .state_dir()
        .join("pods")
        .join(p["metadata"]["uid"].as_str().expect("uid"))
        .join("volumes/config/..data");
    let before = std::fs::read_link(&data_link).expect("..data");
    let changed = Instant::now();
    Api::<k8s_openapi::api::core::v1::ConfigMap>::namespaced(client.clone(), NS)
        .patch(
            "settings",
            &PatchParams::default(),
            &Patch::Merge(json!({"data": {"level": "two"}})),
        )
        .await
        .expect("update the ConfigMap");
    wait("the new value in the container", 10, || async {
        if read(&level) == "two" {
            Ok(())
        } else {
            Err(read(&level))
        }
    })
    .await;
    println!(
        "ConfigMap change visible in the container after {:?} (sync period 1 s)",
        changed.elapsed()
    );
    assert_ne!(
        std::fs::read_link(&data_link).expect("..data"),
        before,
        "..data points at a new directory"
    );
    node.emu.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_startup_probe_restarts_and_holds_back_the_other_probes() {
    let node = start(|p| p.crash_backoff = Duration::from_secs(1)).await;
    create(&node.client, "slow", json!({"containers": [{"name": "app", "image": "busybox",
        "command": sh("while true; do sleep 0.2; done"),
        "startupProbe": {"exec": {"command": ["sh", "-c", "exit 1"]}, "periodSeconds": 1, "failureThreshold": 2},
        "readinessProbe": {"exec": {"command": ["true"]}, "periodSeconds": 1}}]})).await;
    let p = pod_named(&node.client, "slow", 20, "a startup-probe restart", |p| {
        container(p, "app")["restartCount"]
            .as_i64()
            .is_some_and(|n| n >= 1)
    })
    .await;
    let c = container(&p, "app");
    assert_eq!(
        (c["started"].clone(), c["ready"].clone()),
        (json!(false), json!(false)),
        "{c}"
    );
    let events = events_of(&node.client, "slow").await;
    assert!(
        events.iter().any(|e| e
            .message
            .as_deref()
            .is_some_and(|m| m.contains("failed startup probe, will be restarted"))),
        "{events:?}"
    );
    node.emu.shutdown().await;
}
