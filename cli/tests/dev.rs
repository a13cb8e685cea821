//! `midplane dev` as a new user meets it: start it, apply the example with
//! `midplane apply`, watch it with `midplane get` and stock kubectl, delete it.

mod common;
use common::{Dev, root};
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn midplane(kubeconfig: &str, args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_midplane"))
        .args(args)
        .env("KUBECONFIG", kubeconfig)
        .current_dir(root())
        .output()
        .expect("run midplane");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn wait(secs: u64, mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !f() {
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    true
}

fn until(what: &str, secs: u64, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn dev_apply_get_kubectl_delete() {
    let state = tempfile::tempdir().expect("tempdir");
    let mut child = Command::new(env!("CARGO_BIN_EXE_midplane"))
        .args([
            "dev",
            "--pods",
            "simulated",
            "--pod-ready-delay-ms",
            "100",
            "--state",
        ])
        .arg(state.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start midplane dev");
    let stdout = child.stdout.take().expect("stdout");
    let _dev = Dev(child);
    let mut kubeconfig = String::new();
    let mut lines = BufReader::new(stdout).lines();
    for line in lines.by_ref() {
        let line = line.expect("line");
        if let Some(path) = line.strip_prefix("kubeconfig: ") {
            kubeconfig = path.to_string();
            break;
        }
    }
    // Keep reading: a closed pipe would fail the child's next write.
    std::thread::spawn(move || lines.for_each(drop));
    assert!(
        !kubeconfig.is_empty(),
        "midplane dev printed no kubeconfig path"
    );
    assert!(std::path::Path::new(&kubeconfig).exists());

    let (ok, out, err) = midplane(&kubeconfig, &["apply", "-f", "examples/redis-app.yaml"]);
    assert!(ok, "{err}");
    assert!(out.contains("app.midplane.dev/shop applied"), "{out}");
    let ready = wait(90, || {
        let (_, out, _) = midplane(&kubeconfig, &["get", "apps"]);
        out.lines()
            .any(|l| l.contains("shop") && l.contains("True") && l.contains("Ready"))
    });
    if !ready {
        // Everything a person would look at, so a failure explains itself.
        let mut report = String::new();
        for kind in ["apps", "components", "groups"] {
            report.push_str(&midplane(&kubeconfig, &["get", kind]).1);
        }
        let kubectl = |args: &[&str]| {
            Command::new("kubectl")
                .args(["--kubeconfig", &kubeconfig])
                .args(args)
                .output()
                .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
                .unwrap_or_default()
        };
        let pods = kubectl(&["get", "deploy,pods", "-o", "wide"]);
        let objects = kubectl(&[
            "get",
            "groups.midplane.dev,components.midplane.dev,apps.midplane.dev",
            "-o",
            "yaml",
        ]);
        let events = kubectl(&["get", "events", "-A"]);
        panic!("the App never turned Ready:\n{report}\n{pods}\n{objects}\n{events}");
    }
    let (_, groups, _) = midplane(&kubeconfig, &["get", "groups"]);
    assert!(
        groups.contains("shop-cache-0") && groups.contains("3/3"),
        "{groups}"
    );

    let kubectl = Command::new("kubectl")
        .args([
            "--kubeconfig",
            &kubeconfig,
            "get",
            "deployments",
            "-o",
            "name",
        ])
        .output()
        .unwrap_or_else(|e| {
            panic!("kubectl not runnable ({e}); install it with scripts/services/kubectl.sh")
        });
    let names = String::from_utf8_lossy(&kubectl.stdout);
    assert!(
        kubectl.status.success(),
        "{}",
        String::from_utf8_lossy(&kubectl.stderr)
    );
    assert_eq!(names.lines().count(), 3, "{names}");

    let (ok, _, err) = midplane(
        &kubeconfig,
        &["delete", "-f", "examples/redis-app.yaml", "--wait"],
    );
    assert!(ok, "{err}");
    until("the workloads gone", 30, || {
        let out = Command::new("kubectl")
            .args([
                "--kubeconfig",
                &kubeconfig,
                "get",
                "deployments,pvc,services",
                "-o",
                "name",
            ])
            .output()
            .expect("kubectl");
        out.status.success() && String::from_utf8_lossy(&out.stdout).trim().is_empty()
    });
}
