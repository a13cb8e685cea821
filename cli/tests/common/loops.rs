//! Helpers of the loops tests (dev_loops.rs, dev_repair.rs) on process Pods.

use k8s_openapi::api::core::v1::{Event, Pod};
use kube::api::{Api, ListParams};
use midplane_api::App;
use midplane_e2e::process::redis_cli;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::ready_pod;

pub fn role_label(p: &Pod) -> Option<String> {
    p.metadata
        .labels
        .as_ref()
        .and_then(|l| l.get("midplane.dev/role").cloned())
}

pub fn pod_ip(p: &Pod) -> String {
    p.status
        .as_ref()
        .and_then(|s| s.pod_ip.clone())
        .expect("a Pod IP")
}

/// Writes through `ip` every 20 ms until stopped; records (when, acked).
pub fn write_load(
    ip: String,
    stop: Arc<Mutex<bool>>,
) -> tokio::task::JoinHandle<Vec<(Instant, bool)>> {
    tokio::spawn(async move {
        let mut seen = Vec::new();
        let mut n = 0u64;
        while !*stop.lock().expect("lock") {
            n += 1;
            let at = Instant::now();
            let (ok, out) = redis_cli(&["-h", &ip, "SET", &format!("k{n}"), "v"]).await;
            seen.push((at, ok && out == "OK"));
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        seen
    })
}

/// `CONFIG GET <name>` on a Redis.
pub async fn config_get(ip: &str, name: &str) -> String {
    let (_, out) = redis_cli(&["-h", ip, "CONFIG", "GET", name]).await;
    out.lines().nth(1).unwrap_or_default().to_string()
}

/// Sets a parameter of the example App's component.
pub async fn set_parameter(apps: &Api<App>, name: &str, value: &str) {
    let mut app = apps.get("shop").await.expect("App");
    app.spec.components[0]
        .spec
        .parameters
        .insert(name.to_string(), value.to_string());
    app.metadata.managed_fields = None;
    apps.replace("shop", &Default::default(), &app)
        .await
        .expect("update the App");
}

pub async fn events_with(events: &Api<Event>, reason: &str) -> Vec<Event> {
    events
        .list(&ListParams::default())
        .await
        .expect("events")
        .items
        .into_iter()
        .filter(|e| e.reason.as_deref() == Some(reason))
        .collect()
}

/// Sets the middleware version of the example App's component.
pub async fn set_version(apps: &Api<App>, version: &str) {
    let mut app = apps.get("shop").await.expect("App");
    app.spec.components[0].spec.version = version.to_string();
    app.metadata.managed_fields = None;
    apps.replace("shop", &Default::default(), &app)
        .await
        .expect("update the App");
}

pub async fn group_ips(pods: &Api<Pod>) -> Vec<String> {
    let mut ips = Vec::new();
    for i in 0..3 {
        ips.push(pod_ip(&ready_pod(pods, i, 30).await));
    }
    ips
}
