//! For tests on process pods (Pods whose containers run as local processes):
//! the process of a container, whether it still runs, and `redis-cli`.

use k8s_openapi::api::core::v1::Pod;
use std::time::Duration;

/// The pid of a running container of `pod` (`containerID: process://<pid>`).
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

/// The restart count of a container of `pod`.
pub fn restarts(pod: &Pod, container: &str) -> i32 {
    pod.status
        .as_ref()
        .and_then(|s| s.container_statuses.as_ref())
        .and_then(|cs| cs.iter().find(|c| c.name == container))
        .map(|c| c.restart_count)
        .unwrap_or_default()
}

/// Whether the Pod's Ready condition is True.
pub fn ready(pod: &Pod) -> bool {
    pod.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
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

/// `redis-cli` with `args`: (success, stdout). Fails the test if redis-cli
/// is not installed or does not answer within 5 s.
pub async fn redis_cli(args: &[&str]) -> (bool, String) {
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
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).trim().to_string(),
    )
}
