//! Helpers for process-pod tests: an emulator whose Pods are real processes, waits with
//! deadlines, and process checks by pid.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, DynamicObject, Patch, PatchParams};
use midplane_kube_emulator::{
    Emulator, EmulatorConfig, EmulatorHandle, ImageMap, PodMode, ProcessPods,
};
use serde_json::Value;

pub struct Node {
    pub emu: EmulatorHandle,
    pub client: kube::Client,
    pub state: tempfile::TempDir,
    pub kubeconfig: PathBuf,
}

/// An emulator with process pods; `tune` adjusts the node's settings.
pub async fn start(tune: impl FnOnce(&mut ProcessPods)) -> Node {
    start_with(tune, EmulatorConfig::default()).await
}

/// [`start`] from a base configuration (e.g. with `secure_addr`).
pub async fn start_with(tune: impl FnOnce(&mut ProcessPods), base: EmulatorConfig) -> Node {
    let state = tempfile::tempdir().expect("state dir");
    let mut p = ProcessPods {
        state_dir: Some(state.path().join("node")),
        ..ProcessPods::default()
    };
    tune(&mut p);
    let emu = Emulator::start(EmulatorConfig {
        pods: PodMode::Process(p),
        namespaces: vec!["apps".into()],
        ..base
    })
    .await
    .unwrap_or_else(|e| {
        panic!("the emulator with process pods does not start (these tests run as root): {e}")
    });
    let kubeconfig = state.path().join("kubeconfig");
    emu.write_kubeconfig(&kubeconfig).expect("kubeconfig");
    let url: http::Uri = emu.url().parse().expect("url");
    let client = kube::Client::try_from(kube::Config::new(url)).expect("client");
    Node {
        emu,
        client,
        state,
        kubeconfig,
    }
}

/// Fail with the command that builds them when the agent binaries cannot be found.
pub fn require_agents() {
    let map = ImageMap::builtin();
    let missing: Vec<String> = map
        .missing_programs()
        .into_iter()
        .filter(|m| m.image.contains("midplane/agent"))
        .map(|m| format!("{} (looked in {:?})", m.program, m.looked_in))
        .collect();
    assert!(
        missing.is_empty(),
        "the agent binaries are not built: run `cargo build -p midplane-lifecycle-agent -p midplane-adapter-agent` \
         (with the same CARGO_TARGET_DIR) first; missing: {missing:?}"
    );
}

/// Apply an object (server-side apply), whatever its kind.
pub async fn apply(client: &kube::Client, obj: &Value) {
    let gvk = kube::api::GroupVersionKind::try_from(&kube::api::TypeMeta {
        api_version: obj["apiVersion"].as_str().unwrap_or_default().into(),
        kind: obj["kind"].as_str().unwrap_or_default().into(),
    })
    .expect("gvk");
    let ar = kube::api::ApiResource::from_gvk(&gvk);
    let ns = obj["metadata"]["namespace"].as_str().unwrap_or("default");
    let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), ns, &ar);
    let name = obj["metadata"]["name"].as_str().expect("name");
    api.patch(
        name,
        &PatchParams::apply("test").force(),
        &Patch::Apply(obj),
    )
    .await
    .unwrap_or_else(|e| panic!("applying {} {name}: {e}", gvk.kind));
}

/// Poll until `f` yields `Some`, failing after `secs` with `what` and the last state.
pub async fn wait<T, F, Fut>(what: &str, secs: u64, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, String>>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    loop {
        let last = match f().await {
            Ok(v) => return v,
            Err(e) => e,
        };
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out after {secs}s waiting for {what}; last: {last}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The one Pod matching a label selector, once `ok` holds for it.
pub async fn pod_where(
    pods: &Api<Pod>,
    selector: &str,
    secs: u64,
    what: &str,
    ok: impl Fn(&Value) -> bool,
) -> Value {
    wait(what, secs, || async {
        let list = pods
            .list(&kube::api::ListParams::default().labels(selector))
            .await
            .map_err(|e| e.to_string())?;
        let live: Vec<Value> = list
            .items
            .iter()
            .filter(|p| p.metadata.deletion_timestamp.is_none())
            .map(|p| serde_json::to_value(p).unwrap_or_default())
            .collect();
        match live.as_slice() {
            [p] if ok(p) => Ok(p.clone()),
            [p] => Err(summary(p)),
            other => Err(format!("{} Pods", other.len())),
        }
    })
    .await
}

pub fn summary(p: &Value) -> String {
    let cs: Vec<String> = p["status"]["containerStatuses"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|c| {
            format!(
                "{}: ready={} restarts={} state={}",
                c["name"], c["ready"], c["restartCount"], c["state"]
            )
        })
        .collect();
    format!(
        "{} phase={} [{}]",
        p["metadata"]["name"],
        p["status"]["phase"],
        cs.join("; ")
    )
}

pub fn all_ready(p: &Value) -> bool {
    p["status"]["conditions"].as_array().is_some_and(|c| {
        c.iter()
            .any(|c| c["type"] == "Ready" && c["status"] == "True")
    })
}

pub fn container<'a>(p: &'a Value, name: &str) -> &'a Value {
    p["status"]["containerStatuses"]
        .as_array()
        .and_then(|a| a.iter().find(|c| c["name"] == name))
        .unwrap_or(&Value::Null)
}

/// The pid of a running container (`containerID: process://<pid>`).
pub fn pid(p: &Value, name: &str) -> u32 {
    container(p, name)["containerID"]
        .as_str()
        .and_then(|id| id.strip_prefix("process://"))
        .and_then(|pid| pid.parse().ok())
        .unwrap_or_else(|| panic!("container {name} has no process: {}", summary(p)))
}

/// Whether a process runs (not gone, not a zombie).
pub fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            s.rsplit(')')
                .next()
                .map(|r| r.trim_start().starts_with('Z'))
        })
        .is_some_and(|zombie| !zombie)
}

/// The command line of a process.
pub fn cmdline(pid: u32) -> String {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|b| String::from_utf8_lossy(&b).replace('\0', " "))
        .unwrap_or_default()
}

/// Wait until none of `pids` runs.
pub async fn all_gone(pids: &[u32], secs: u64) {
    wait("every process to be gone", secs, || async {
        let alive: Vec<u32> = pids.iter().copied().filter(|p| alive(*p)).collect();
        if alive.is_empty() {
            Ok(())
        } else {
            Err(format!("still running: {alive:?}"))
        }
    })
    .await;
}

/// Run kubectl against the node; (success, stdout + stderr).
pub async fn kubectl(kubeconfig: &Path, args: &[&str]) -> (bool, String) {
    let out = tokio::process::Command::new("kubectl")
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .args(args)
        .output()
        .await
        .unwrap_or_else(|e| {
            panic!("running kubectl ({e}): install it with scripts/services/kubectl.sh")
        });
    let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.push_str(&String::from_utf8_lossy(&out.stderr));
    (out.status.success(), text)
}

/// `redis-cli` with arguments; its output.
pub async fn redis_cli(args: &[&str]) -> String {
    let out = tokio::time::timeout(
        Duration::from_secs(5),
        tokio::process::Command::new("redis-cli")
            .args(args)
            .output(),
    )
    .await
    .expect("redis-cli answers within 5 s")
    .unwrap_or_else(|e| {
        panic!("running redis-cli ({e}): install it with scripts/services/redis.sh")
    });
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}
