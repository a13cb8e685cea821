//! What the `midplane dev` tests share.
#![allow(dead_code)]

pub mod loops;

use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ListParams};
use midplane_e2e::eventually;
use midplane_e2e::process::ready;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

/// The Group of the example App's one component.
pub const GROUP: &str = "shop-cache-0";

/// `midplane dev`, killed if the test ends early.
pub struct Dev(pub Child);

impl Drop for Dev {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Starts `midplane dev`; returns it with its first lines and the kubeconfig path.
pub fn start_dev(state: &std::path::Path) -> (Dev, Vec<String>, String) {
    start_dev_with(state, &[])
}

/// [`start_dev`] with more arguments to `midplane dev`.
pub fn start_dev_with(state: &std::path::Path, more: &[&str]) -> (Dev, Vec<String>, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_midplane"))
        .args(["dev", "--pods", "process", "--state"])
        .arg(state)
        .args(more)
        .current_dir(root())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start midplane dev");
    let stdout = child.stdout.take().expect("stdout");
    let dev = Dev(child);
    let mut first = Vec::new();
    let mut kubeconfig = String::new();
    let mut lines = BufReader::new(stdout).lines();
    for line in lines.by_ref() {
        let line = line.expect("line");
        first.push(line.clone());
        if let Some(path) = line.strip_prefix("kubeconfig: ") {
            kubeconfig = path.to_string();
            break;
        }
    }
    std::thread::spawn(move || lines.for_each(drop));
    assert!(
        !kubeconfig.is_empty(),
        "midplane dev printed no kubeconfig: {first:?} (agents built? cargo build --workspace)"
    );
    (dev, first, kubeconfig)
}

pub async fn client(kubeconfig: &str) -> kube::Client {
    let kc = kube::config::Kubeconfig::read_from(kubeconfig).expect("kubeconfig");
    let cfg = kube::Config::from_custom_kubeconfig(kc, &Default::default())
        .await
        .expect("config");
    kube::Client::try_from(cfg).expect("client")
}

pub fn instance(i: usize) -> String {
    format!("{GROUP}-{i}")
}

/// The Pod of an instance once it is Ready.
pub async fn ready_pod(pods: &Api<Pod>, i: usize, secs: u64) -> Pod {
    let sel = format!("midplane.dev/instance={}", instance(i));
    eventually(&format!("{} Ready", instance(i)), secs, || async {
        pods.list(&ListParams::default().labels(&sel))
            .await
            .ok()?
            .items
            .into_iter()
            .find(|p| p.metadata.deletion_timestamp.is_none() && ready(p))
    })
    .await
}

/// `midplane apply -f <file>` against `midplane dev`.
pub fn apply(kubeconfig: &str, file: &str) {
    let applied = Command::new(env!("CARGO_BIN_EXE_midplane"))
        .args(["apply", "-f", file, "--kubeconfig", kubeconfig])
        .current_dir(root())
        .status()
        .expect("midplane apply");
    assert!(applied.success(), "midplane apply failed: {applied}");
}
