//! Stock kubectl (Debian's kubernetes-client) against the emulator: get, apply -f (create and
//! then a client-side-apply patch), delete -f, with built-in kinds and a CRD.

mod common;

use std::path::Path;
use std::time::Duration;

use midplane_kube_emulator::{Emulator, EmulatorConfig};

const MANIFEST: &str = r#"
apiVersion: v1
kind: ConfigMap
metadata: {name: settings, labels: {app: demo}}
data: {maxmemory: 100mb}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: demo}
spec:
  replicas: 2
  selector: {matchLabels: {app: demo}}
  template:
    metadata: {labels: {app: demo}}
    spec:
      containers:
      - {name: redis, image: "redis:7", ports: [{containerPort: 6379}], env: [{name: A, value: "1"}]}
---
apiVersion: v1
kind: Service
metadata: {name: demo}
spec:
  selector: {app: demo}
  ports: [{port: 6379}]
---
apiVersion: example.com/v1
kind: Widget
metadata: {name: w1}
spec: {size: 3}
"#;

async fn kubectl(kubeconfig: &Path, cache: &Path, args: &[&str]) -> (bool, String) {
    let out = tokio::process::Command::new("kubectl")
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .arg("--cache-dir")
        .arg(cache)
        .args(args)
        .output()
        .await;
    let out = match out {
        Ok(o) => o,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            panic!(
                "kubectl is not installed: run scripts/services/kubectl.sh (installs Debian's kubernetes-client)"
            )
        }
        Err(e) => panic!("running kubectl: {e}"),
    };
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[tokio::test]
async fn stock_kubectl_gets_applies_and_deletes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let crd_dir = dir.path().join("crds");
    std::fs::create_dir(&crd_dir).expect("mkdir");
    std::fs::write(
        crd_dir.join("widget.yaml"),
        serde_yaml::to_string(&common::widget_crd()).expect("yaml"),
    )
    .expect("write crd");
    let emu = Emulator::start(EmulatorConfig {
        crd_dir: Some(crd_dir),
        pod_ready_delay: Duration::from_millis(50),
        ..Default::default()
    })
    .await
    .expect("start");
    let kc = dir.path().join("kubeconfig");
    emu.write_kubeconfig(&kc).expect("kubeconfig");
    let cache = dir.path().join("cache");
    let manifest = dir.path().join("app.yaml");
    std::fs::write(&manifest, MANIFEST).expect("manifest");
    let m = manifest.to_str().expect("utf8 path");

    let (ok, out) = kubectl(&kc, &cache, &["get", "namespaces"]).await;
    assert!(
        ok && out.contains("kube-system") && out.contains("Active"),
        "{out}"
    );

    let (ok, out) = kubectl(&kc, &cache, &["apply", "-f", m]).await;
    assert!(ok, "{out}");
    for want in [
        "configmap/settings created",
        "deployment.apps/demo created",
        "service/demo created",
        "widget.example.com/w1 created",
    ] {
        assert!(out.contains(want), "missing {want:?} in {out}");
    }
    // Re-apply with changes: a strategic merge patch for built-ins, a merge patch for the CR.
    std::fs::write(
        &manifest,
        MANIFEST
            .replace("replicas: 2", "replicas: 3")
            .replace("size: 3", "size: 5"),
    )
    .expect("manifest");
    let (ok, out) = kubectl(&kc, &cache, &["apply", "-f", m]).await;
    assert!(ok, "{out}");
    assert!(
        out.contains("deployment.apps/demo configured")
            && out.contains("configmap/settings unchanged"),
        "{out}"
    );
    assert!(out.contains("widget.example.com/w1 configured"), "{out}");

    let (ok, out) = kubectl(
        &kc,
        &cache,
        &[
            "get",
            "deployment",
            "demo",
            "-o",
            "jsonpath={.spec.replicas} {.spec.template.spec.containers[0].env[0].value}",
        ],
    )
    .await;
    assert!(ok && out == "3 1", "{out}");
    let (ok, out) = kubectl(
        &kc,
        &cache,
        &["get", "widgets", "-o", "jsonpath={.items[0].spec.size}"],
    )
    .await;
    assert!(ok && out == "5", "{out}");
    let mut ready = String::new();
    for _ in 0..100 {
        let (_, out) = kubectl(&kc, &cache, &["get", "deploy", "demo"]).await;
        if out.contains("3/3") {
            ready = out;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        ready.contains("READY") && ready.contains("3/3"),
        "table output with readiness: {ready}"
    );
    let (ok, out) = kubectl(&kc, &cache, &["get", "pods", "-l", "app=demo"]).await;
    assert!(ok && out.matches("Running").count() == 3, "{out}");
    let (ok, out) = kubectl(&kc, &cache, &["get", "all"]).await;
    assert!(
        ok && out.contains("service/demo") && out.contains("deployment.apps/demo"),
        "{out}"
    );

    // Server-side apply from kubectl too: same values share ownership, a changed value
    // conflicts with client-side apply's manager until forced.
    let (ok, out) = kubectl(&kc, &cache, &["apply", "--server-side", "-f", m]).await;
    assert!(
        ok && out.contains("deployment.apps/demo serverside-applied"),
        "{out}"
    );
    std::fs::write(
        &manifest,
        MANIFEST
            .replace("replicas: 2", "replicas: 4")
            .replace("size: 3", "size: 5"),
    )
    .expect("manifest");
    let (ok, out) = kubectl(&kc, &cache, &["apply", "--server-side", "-f", m]).await;
    assert!(
        !ok && out.contains("conflict with \"kubectl-client-side-apply\"")
            && out.contains(".spec.replicas"),
        "{out}"
    );
    let (ok, out) = kubectl(
        &kc,
        &cache,
        &["apply", "--server-side", "--force-conflicts", "-f", m],
    )
    .await;
    assert!(ok && out.contains("serverside-applied"), "{out}");

    let (ok, out) = kubectl(&kc, &cache, &["delete", "-f", m]).await;
    assert!(
        ok && out.contains("deployment.apps \"demo\" deleted"),
        "{out}"
    );
    let (ok, out) = kubectl(&kc, &cache, &["get", "deploy,svc,cm,widgets", "-o", "name"]).await;
    assert!(ok && !out.contains("demo") && !out.contains("w1"), "{out}");
    let (ok, out) = kubectl(&kc, &cache, &["get", "configmap", "nope"]).await;
    assert!(
        !ok && out.contains("NotFound") && out.contains("\"nope\" not found"),
        "{out}"
    );
    emu.shutdown().await;
}
