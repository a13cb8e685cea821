//! Pause and resume on real Pods (`midplane dev --pods process`): with the Group paused, a
//! restart-required change restarts no instance and starts no rollout; resuming rolls it
//! through, every instance restarted once and running the new value.
//!
//! Needs root, redis-server and the agent binaries beside `midplane`.

use k8s_openapi::api::core::v1::{Event, Pod};
use kube::api::{Api, Patch, PatchParams};
use midplane_api::{App, Group};
use midplane_e2e::eventually;
use midplane_e2e::process::pid;
use std::time::Duration;
mod common;
use common::loops::{config_get, events_with, pod_ip, set_parameter};
use common::{GROUP, apply, client, ready_pod, start_dev};

async fn pause(groups: &Api<Group>, paused: bool) {
    groups
        .patch(
            GROUP,
            &PatchParams::default(),
            &Patch::Merge(&serde_json::json!({"spec": {"paused": paused}})),
        )
        .await
        .expect("patch spec.paused");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_group_holds_its_rollout_until_resumed() {
    let state = tempfile::tempdir().expect("tempdir");
    let (_dev, _, kubeconfig) = start_dev(state.path());
    apply(&kubeconfig, "examples/redis-app.yaml");
    let kube = client(&kubeconfig).await;
    let pods: Api<Pod> = Api::namespaced(kube.clone(), "default");
    let groups: Api<Group> = Api::namespaced(kube.clone(), "default");
    let apps: Api<App> = Api::namespaced(kube.clone(), "default");
    let events: Api<Event> = Api::namespaced(kube.clone(), "default");
    let mut before = Vec::new();
    for i in 0..3 {
        before.push(pid(&ready_pod(&pods, i, 90).await, "redis"));
    }
    eventually("the config verified once", 30, || async {
        groups.get(GROUP).await.ok()?.status?.config_hash
    })
    .await;
    let rollout_before = groups
        .get(GROUP)
        .await
        .expect("group")
        .status
        .expect("status")
        .rollout;

    pause(&groups, true).await;
    set_parameter(&apps, "databases", "32").await;
    // The Group has the change (its spec) but holds it.
    eventually("the Group carries the change", 30, || async {
        let g = groups.get(GROUP).await.ok()?;
        (g.spec
            .middleware
            .parameters
            .get("databases")
            .map(String::as_str)
            == Some("32")
            && g.spec.paused)
            .then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_secs(4)).await;
    for (i, p) in before.iter().enumerate() {
        let now = pid(&ready_pod(&pods, i, 5).await, "redis");
        assert_eq!(now, *p, "instance {i} restarted while paused");
    }
    let held = groups
        .get(GROUP)
        .await
        .expect("group")
        .status
        .expect("status")
        .rollout;
    assert!(
        held == rollout_before || held.as_ref().is_some_and(|r| r.state == "Paused"),
        "no rollout while paused: {held:?}"
    );
    assert!(events_with(&events, "Switchover").await.is_empty());

    pause(&groups, false).await;
    eventually("the rollout Complete after resume", 120, || async {
        let st = groups.get(GROUP).await.ok()?.status?;
        st.rollout
            .filter(|r| r.state == "Complete" && r.rolled.len() == 3)
    })
    .await;
    for (i, p) in before.iter().enumerate() {
        let pod = ready_pod(&pods, i, 30).await;
        assert_ne!(
            pid(&pod, "redis"),
            *p,
            "instance {i} restarted after resume"
        );
        assert_eq!(config_get(&pod_ip(&pod), "databases").await, "32");
    }
}
