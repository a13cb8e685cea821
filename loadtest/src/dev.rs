//! `midplane dev --pods process` for the benchmarks, set up as the loops tests
//! set it up (cli/tests/common): a fresh state directory, the example App
//! applied with `midplane apply`, and lookups of the Group's Pods and their
//! processes (`containerID: process://<pid>`).

use anyhow::Context as _;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ListParams};
use midplane_api::{App, Group};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The Group of the example App's one component (examples/redis-app.yaml).
pub const GROUP: &str = "shop-cache-0";
/// The example App.
pub const APP: &str = "shop";

pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

pub fn instance(i: usize) -> String {
    format!("{GROUP}-{i}")
}

/// A running `midplane dev`; stopped with SIGTERM (which stops every Pod
/// process) when dropped, killed if it does not stop within 20 s.
pub struct Dev {
    child: Child,
    pub kubeconfig: String,
    pub log: PathBuf,
    _state: tempfile::TempDir,
}

impl Drop for Dev {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Dev {
    /// Starts `midplane dev --pods process` (its log in `log`) and applies
    /// examples/redis-app.yaml.
    pub fn start(midplane: &Path, log: &Path) -> anyhow::Result<Self> {
        let state = tempfile::tempdir()?;
        let mut child = Command::new(midplane)
            .args(["dev", "--pods", "process", "--state"])
            .arg(state.path())
            .current_dir(root())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(log)?)
            .spawn()
            .with_context(|| format!("starting {} dev", midplane.display()))?;
        let stdout = child.stdout.take().context("the dev's stdout")?;
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut lines = BufReader::new(stdout).lines();
            for line in lines.by_ref().map_while(Result::ok) {
                if let Some(path) = line.strip_prefix("kubeconfig: ") {
                    let _ = tx.send(path.to_string());
                    break;
                }
            }
            lines.for_each(drop);
        });
        let mut dev = Dev {
            child,
            kubeconfig: String::new(),
            log: log.to_path_buf(),
            _state: state,
        };
        dev.kubeconfig = rx.recv_timeout(Duration::from_secs(60)).with_context(|| {
            format!(
                "midplane dev printed no kubeconfig (agents built beside it? see {})",
                log.display()
            )
        })?;
        let applied = Command::new(midplane)
            .args(["apply", "-f", "examples/redis-app.yaml", "--kubeconfig"])
            .arg(&dev.kubeconfig)
            .current_dir(root())
            .stdout(Stdio::null())
            .status()?;
        anyhow::ensure!(applied.success(), "midplane apply failed: {applied}");
        Ok(dev)
    }

    pub async fn client(&self) -> anyhow::Result<kube::Client> {
        let kc = kube::config::Kubeconfig::read_from(&self.kubeconfig)?;
        let cfg = kube::Config::from_custom_kubeconfig(kc, &Default::default()).await?;
        Ok(kube::Client::try_from(cfg)?)
    }
}

/// Polls `f` every `every` until it gives a value, for at most `secs`.
pub async fn wait_for<T, F, Fut>(
    what: &str,
    secs: u64,
    every: Duration,
    mut f: F,
) -> anyhow::Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = f().await {
            return Ok(v);
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "timed out after {secs} s waiting for {what}"
        );
        tokio::time::sleep(every).await;
    }
}

/// The pid of a running container of `pod`.
pub fn pid(pod: &Pod, container: &str) -> Option<u32> {
    pod.status
        .as_ref()?
        .container_statuses
        .as_ref()?
        .iter()
        .find(|c| c.name == container)?
        .container_id
        .as_deref()?
        .strip_prefix("process://")?
        .parse()
        .ok()
}

/// `<pod IP>:6379`.
pub fn redis_addr(pod: &Pod) -> Option<String> {
    let ip = pod.status.as_ref()?.pod_ip.as_ref()?;
    Some(format!("{ip}:6379"))
}

fn ready(pod: &Pod) -> bool {
    pod.metadata.deletion_timestamp.is_none()
        && pod
            .status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

/// The Ready Pod of an instance (e.g. `shop-cache-0-1`), if there is one.
pub async fn ready_pod(pods: &Api<Pod>, instance: &str) -> Option<Pod> {
    let sel = format!("midplane.dev/instance={instance}");
    pods.list(&ListParams::default().labels(&sel))
        .await
        .ok()?
        .items
        .into_iter()
        .find(ready)
}

/// The three Ready Pods of the Group, in instance order.
pub async fn ready_pods(pods: &Api<Pod>, secs: u64) -> anyhow::Result<Vec<Pod>> {
    wait_for("3 Ready Pods", secs, Duration::from_millis(100), || async {
        let mut out = Vec::new();
        for i in 0..3 {
            out.push(ready_pod(pods, &instance(i)).await?);
        }
        Some(out)
    })
    .await
}

/// The Group's status once it is Ready with a verified config (a reload in
/// flight holds the Group's reconcile, so changes start from here).
pub async fn settled(groups: &Api<Group>, secs: u64) -> anyhow::Result<midplane_api::GroupStatus> {
    wait_for(
        "the Group Ready with its config verified",
        secs,
        Duration::from_millis(100),
        || async {
            let st = groups.get(GROUP).await.ok()?.status?;
            let ready = st
                .conditions
                .iter()
                .any(|c| c.type_ == "Ready" && c.status == "True");
            let rolling = st.rollout.as_ref().is_some_and(|r| r.state != "Complete");
            (ready && !rolling && st.config_hash.is_some() && st.primary.is_some()).then_some(st)
        },
    )
    .await
}

/// Sets a parameter of the example App's component.
pub async fn set_parameter(apps: &Api<App>, name: &str, value: &str) -> anyhow::Result<()> {
    let mut app = apps.get(APP).await?;
    let component = app
        .spec
        .components
        .first_mut()
        .context("the example App has a component")?;
    component
        .spec
        .parameters
        .insert(name.to_string(), value.to_string());
    app.metadata.managed_fields = None;
    apps.replace(APP, &Default::default(), &app).await?;
    Ok(())
}

/// `kill -9` every process of the Pod (redis-server and both agents).
pub fn kill_all(pod: &Pod) {
    for container in ["redis", "agent-lifecycle", "agent-adapter"] {
        if let Some(pid) = pid(pod, container) {
            let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
        }
    }
}
