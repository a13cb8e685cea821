//! The platform's loops on real Pods (`midplane dev --pods process`, real
//! redis-server): the Group's primary is what the agents report, and a
//! lost primary is failed over automatically (writes through the client
//! Service again within 3 s; status, labels, the Event and the bus event
//! true), and the old primary rejoins as a replica; a dynamic parameter is
//! live within 2 s, with no restart and no rollout.
//!
//! Needs root, redis-server and the agent binaries beside `midplane`.

use k8s_openapi::api::core::v1::{Event, Pod, Service};
use kube::api::{Api, ListParams};
use midplane_api::{App, Group};
use midplane_e2e::eventually;
use midplane_e2e::process::{pid, redis_cli, restarts};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
mod common;
use common::loops::{
    config_get, events_with, group_ips, pod_ip, role_label, set_parameter, set_version, write_load,
};
use common::{GROUP, apply, client, instance, ready_pod, start_dev};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_primary_is_failed_over_and_rejoins() {
    let state = tempfile::tempdir().expect("tempdir");
    let (_dev, _, kubeconfig) = start_dev(state.path());
    apply(&kubeconfig, "examples/redis-app.yaml");
    let kube = client(&kubeconfig).await;
    let pods: Api<Pod> = Api::namespaced(kube.clone(), "default");
    let groups: Api<Group> = Api::namespaced(kube.clone(), "default");
    let mut group = Vec::new();
    for i in 0..3 {
        group.push(ready_pod(&pods, i, 90).await);
    }
    let svc = Api::<Service>::namespaced(kube.clone(), "default")
        .get(GROUP)
        .await
        .expect("client Service");
    let ip = svc.spec.and_then(|s| s.cluster_ip).expect("a ClusterIP");
    eventually("SET through the ClusterIP", 30, || async {
        let (ok, out) = redis_cli(&["-h", &ip, "SET", "before", "1"]).await;
        (ok && out == "OK").then_some(())
    })
    .await;

    // The primary is what the agents report.
    let primary = eventually("status.primary from the agents", 30, || async {
        let g = groups.get(GROUP).await.ok()?;
        let st = g.status?;
        let agents_heard = st
            .instances
            .iter()
            .all(|i| i.agent.as_deref() == Some("Ready"));
        (agents_heard).then_some(st.primary?)
    })
    .await;
    assert_eq!(primary, instance(0));
    let term_before = groups
        .get(GROUP)
        .await
        .expect("group")
        .status
        .expect("status")
        .term;

    // Kill the primary's redis-server and both its agents. The kubelet
    // restarts them at once the first time (back within the failover
    // threshold: no failover, the primary just comes back), so kill them
    // again once restarted: now its crash back-off (10 s) keeps them down.
    let kill_all = |p: &Pod| {
        for container in ["redis", "agent-lifecycle", "agent-adapter"] {
            if let Some(pid) = pid(p, container) {
                let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
            }
        }
    };
    kill_all(&group[0]);
    let restarted = eventually("the primary's processes restarted", 30, || async {
        let p = ready_pod(&pods, 0, 30).await;
        (pid(&p, "redis") != pid(&group[0], "redis")).then_some(p)
    })
    .await;
    let stop = Arc::new(Mutex::new(false));
    let load = write_load(ip.clone(), stop.clone());
    tokio::time::sleep(Duration::from_millis(500)).await;
    let killed_at = Instant::now();
    kill_all(&restarted);

    // A replica is promoted; status, labels and the Service follow.
    let (new_primary, term) = eventually("a failover in status", 20, || async {
        let st = groups.get(GROUP).await.ok()?.status?;
        let p = st.primary?;
        (p != instance(0)).then_some((p, st.term))
    })
    .await;
    assert!(term > term_before, "a failover raises the term");
    let written_again = eventually("writes through the Service again", 20, || async {
        let (ok, out) = redis_cli(&["-h", &ip, "SET", "after", "1"]).await;
        (ok && out == "OK").then_some(killed_at.elapsed())
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    *stop.lock().expect("lock") = true;
    let seen = load.await.expect("load");
    // The outage: from the first failed write to the next acknowledged one.
    let first_fail = seen.iter().find(|(_, ok)| !ok).map(|(at, _)| *at);
    let outage = first_fail.and_then(|f| {
        seen.iter()
            .find(|(at, ok)| *ok && *at > f)
            .map(|(at, _)| at.duration_since(f))
    });
    eprintln!(
        "failover: {instance0} -> {new_primary} (term {term}); writes again {written_again:?} after the kill; outage seen by the load {outage:?}",
        instance0 = instance(0)
    );
    assert!(
        written_again < Duration::from_secs(3),
        "writes through the client Service again in {written_again:?} (target < 3 s)"
    );

    let labelled = eventually("role labels follow", 10, || async {
        let list = pods
            .list(&ListParams::default().labels(&format!("midplane.dev/group={GROUP}")))
            .await
            .ok()?;
        let primaries: Vec<String> = list
            .items
            .iter()
            .filter(|p| role_label(p).as_deref() == Some("primary"))
            .filter_map(|p| {
                p.metadata
                    .labels
                    .as_ref()?
                    .get("midplane.dev/instance")
                    .cloned()
            })
            .collect();
        (primaries == [new_primary.clone()]).then_some(primaries)
    })
    .await;
    assert_eq!(labelled, std::slice::from_ref(&new_primary));
    let events: Api<Event> = Api::namespaced(kube.clone(), "default");
    eventually("a Warning Failover Event", 10, || async {
        let list = events.list(&ListParams::default()).await.ok()?;
        list.items.into_iter().find(|e| {
            e.reason.as_deref() == Some("Failover") && e.type_.as_deref() == Some("Warning")
        })
    })
    .await;
    let g = groups.get(GROUP).await.expect("group");
    let failed_over = g
        .status
        .as_ref()
        .and_then(|s| {
            s.conditions
                .iter()
                .find(|c| c.type_ == "FailedOver")
                .cloned()
        })
        .expect("the FailedOver condition");
    assert_eq!(failed_over.status, "True", "{failed_over:?}");

    // The old primary comes back (after the kubelet's back-off) as a replica
    // of the new primary, with the data written meanwhile.
    let new_ip = pod_ip(
        &pods
            .list(&ListParams::default().labels(&format!("midplane.dev/instance={new_primary}")))
            .await
            .expect("pods")
            .items[0],
    );
    let old_ip = pod_ip(&group[0]);
    eventually("the old primary follows the new one", 60, || async {
        let (_, info) = redis_cli(&["-h", &old_ip, "INFO", "replication"]).await;
        (info.contains("role:slave")
            && info.contains(&format!("master_host:{new_ip}"))
            && info.contains("master_link_status:up"))
        .then_some(())
    })
    .await;
    let (_, v) = redis_cli(&["-h", &old_ip, "GET", "after"]).await;
    assert_eq!(
        v, "1",
        "the old primary has the writes made after the failover"
    );
    let g = eventually("Ready again, FailedOver cleared", 30, || async {
        let g = groups.get(GROUP).await.ok()?;
        let st = g.status.as_ref()?;
        let ready = st
            .conditions
            .iter()
            .any(|c| c.type_ == "Ready" && c.status == "True");
        let cleared = st
            .conditions
            .iter()
            .any(|c| c.type_ == "FailedOver" && c.status == "False");
        (ready && cleared).then_some(g)
    })
    .await;
    assert_eq!(g.status.and_then(|s| s.primary), Some(new_primary));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dynamic_parameter_is_reloaded_live() {
    let state = tempfile::tempdir().expect("tempdir");
    let (_dev, _, kubeconfig) = start_dev(state.path());
    apply(&kubeconfig, "examples/redis-app.yaml");
    let kube = client(&kubeconfig).await;
    let pods: Api<Pod> = Api::namespaced(kube.clone(), "default");
    let groups: Api<Group> = Api::namespaced(kube.clone(), "default");
    let apps: Api<App> = Api::namespaced(kube.clone(), "default");
    let events: Api<Event> = Api::namespaced(kube.clone(), "default");
    let mut group = Vec::new();
    for i in 0..3 {
        group.push(ready_pod(&pods, i, 90).await);
    }
    let before = eventually("the config verified once", 30, || async {
        let st = groups.get(GROUP).await.ok()?.status?;
        st.config_hash
    })
    .await;
    let pids: Vec<Option<u32>> = group.iter().map(|p| pid(p, "redis")).collect();
    let ips: Vec<String> = group.iter().map(pod_ip).collect();
    assert_eq!(config_get(&ips[0], "maxmemory").await, "268435456");

    let changed_at = Instant::now();
    set_parameter(&apps, "maxmemory", "300mb").await;
    let live = eventually("maxmemory live on every instance", 20, || async {
        for ip in &ips {
            if config_get(ip, "maxmemory").await != "314572800" {
                return None;
            }
        }
        Some(changed_at.elapsed())
    })
    .await;
    eprintln!("reload: maxmemory live on every instance {live:?} after the App change");
    assert!(
        live < Duration::from_secs(2),
        "live in {live:?} (target < 2 s)"
    );

    let after = eventually("status.configHash moves on", 10, || async {
        let st = groups.get(GROUP).await.ok()?.status?;
        st.config_hash.filter(|h| *h != before)
    })
    .await;
    assert_ne!(after, before);
    // Same processes, no restart, no rollout, no switchover, one reload Event.
    for (i, p) in group.iter().enumerate() {
        let now = pods
            .get(p.metadata.name.as_deref().expect("name"))
            .await
            .expect("the same Pod");
        assert_eq!(
            pid(&now, "redis"),
            pids[i],
            "redis of {} restarted",
            instance(i)
        );
        assert_eq!(restarts(&now, "redis"), 0);
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(events_with(&events, "ConfigReloaded").await.len(), 1);
    for reason in ["Switchover", "ReplicasFirst", "Failover"] {
        assert!(
            events_with(&events, reason).await.is_empty(),
            "a {reason} Event"
        );
    }
    let st = groups
        .get(GROUP)
        .await
        .expect("group")
        .status
        .expect("status");
    assert_eq!(st.primary.as_deref(), Some(instance(0).as_str()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_rollout_stops_once_and_resumes_on_the_fix() {
    // An image map in which redis:7.4 has no redis-server: its Pods fail.
    let state = tempfile::tempdir().expect("tempdir");
    let builtin = std::fs::read_to_string(common::root().join("crates/kube-emulator/images.yaml"))
        .expect("the built-in image map");
    let broken = builtin.replacen(
        "images:\n",
        "images:\n  - image: \"redis:7.4\"\n    search: [/nonexistent/midplane-test]\n",
        1,
    );
    let map = state.path().join("images.yaml");
    std::fs::write(&map, broken).expect("write the image map");
    let map = map.to_string_lossy().to_string();
    let (_dev, _, kubeconfig) = common::start_dev_with(state.path(), &["--image-map", &map]);
    apply(&kubeconfig, "examples/redis-app.yaml");
    let kube = client(&kubeconfig).await;
    let pods: Api<Pod> = Api::namespaced(kube.clone(), "default");
    let groups: Api<Group> = Api::namespaced(kube.clone(), "default");
    let apps: Api<App> = Api::namespaced(kube.clone(), "default");
    let events: Api<Event> = Api::namespaced(kube.clone(), "default");
    let mut group = Vec::new();
    for i in 0..3 {
        group.push(ready_pod(&pods, i, 90).await);
    }
    let primary_pid = pid(&group[0], "redis");

    set_version(&apps, "7.4").await;
    let failed = eventually("the rollout Failed", 60, || async {
        let st = groups.get(GROUP).await.ok()?.status?;
        st.rollout.filter(|r| r.state == "Failed")
    })
    .await;
    let at = failed.instance.clone().expect("the failed instance");
    assert_ne!(at, instance(0), "replicas first: the primary is not rolled");
    // It stays stopped: one RolloutFailed, no retry, no switchover.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let failures = events_with(&events, "RolloutFailed").await;
    assert_eq!(failures.len(), 1, "{failures:?}");
    assert!(failures[0].count.unwrap_or(1) == 1, "{:?}", failures[0]);
    assert!(events_with(&events, "Switchover").await.is_empty());
    let g = groups.get(GROUP).await.expect("group");
    let st = g.status.expect("status");
    assert_eq!(st.primary.as_deref(), Some(instance(0).as_str()));
    let degraded = st
        .conditions
        .iter()
        .find(|c| c.type_ == "Degraded")
        .expect("Degraded");
    assert!(
        degraded.status == "True" && degraded.message.contains(&at),
        "{degraded:?}"
    );
    let other = (1..3)
        .map(instance)
        .find(|i| *i != at)
        .expect("the other replica");
    let p0 = ready_pod(&pods, 0, 5).await;
    assert_eq!(pid(&p0, "redis"), primary_pid, "the primary untouched");
    let other_index: usize = other
        .rsplit('-')
        .next()
        .and_then(|n| n.parse().ok())
        .expect("ordinal");
    let untouched = ready_pod(&pods, other_index, 5).await;
    assert_eq!(
        untouched.metadata.name, group[other_index].metadata.name,
        "the rollout went no further"
    );

    // The fix: back to 7.2. Ready again within seconds.
    let fixed_at = Instant::now();
    set_version(&apps, "7.2").await;
    let ready_after = eventually("Ready again after the fix", 60, || async {
        let st = groups.get(GROUP).await.ok()?.status?;
        let ready = st
            .conditions
            .iter()
            .any(|c| c.type_ == "Ready" && c.status == "True");
        ready.then(|| fixed_at.elapsed())
    })
    .await;
    eprintln!("rollout: stopped at {at}; Ready again {ready_after:?} after the fix");
    assert!(ready_after < Duration::from_secs(15), "{ready_after:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_required_parameter_rolls_one_at_a_time_without_losing_writes() {
    let state = tempfile::tempdir().expect("tempdir");
    let (_dev, _, kubeconfig) = start_dev(state.path());
    apply(&kubeconfig, "examples/redis-app.yaml");
    let kube = client(&kubeconfig).await;
    let pods: Api<Pod> = Api::namespaced(kube.clone(), "default");
    let groups: Api<Group> = Api::namespaced(kube.clone(), "default");
    let apps: Api<App> = Api::namespaced(kube.clone(), "default");
    let events: Api<Event> = Api::namespaced(kube.clone(), "default");
    for i in 0..3 {
        ready_pod(&pods, i, 90).await;
    }
    let svc = Api::<Service>::namespaced(kube.clone(), "default")
        .get(GROUP)
        .await
        .expect("client Service");
    let ip = svc.spec.and_then(|s| s.cluster_ip).expect("a ClusterIP");
    eventually("SET through the ClusterIP", 30, || async {
        let (ok, out) = redis_cli(&["-h", &ip, "SET", "before", "1"]).await;
        (ok && out == "OK").then_some(())
    })
    .await;
    eventually("the config verified once", 30, || async {
        groups.get(GROUP).await.ok()?.status?.config_hash
    })
    .await;

    let stop = Arc::new(Mutex::new(false));
    let load = write_load(ip.clone(), stop.clone());
    tokio::time::sleep(Duration::from_millis(500)).await;
    set_parameter(&apps, "databases", "32").await;
    let done = eventually("the rollout Complete", 120, || async {
        let st = groups.get(GROUP).await.ok()?.status?;
        st.rollout.filter(|r| r.state == "Complete")
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    *stop.lock().expect("lock") = true;
    let seen = load.await.expect("load");

    // The longest run of failed writes.
    let mut outage = Duration::ZERO;
    let mut failing_since: Option<Instant> = None;
    for (at, ok) in &seen {
        match (ok, failing_since) {
            (false, None) => failing_since = Some(*at),
            (true, Some(f)) => {
                outage = outage.max(at.duration_since(f));
                failing_since = None;
            }
            _ => {}
        }
    }
    // Every acknowledged write is on the primary afterwards.
    let acked: Vec<usize> = seen
        .iter()
        .enumerate()
        .filter(|(_, (_, ok))| *ok)
        .map(|(i, _)| i + 1)
        .collect();
    let mut lost = 0;
    for n in &acked {
        let (_, v) = redis_cli(&["-h", &ip, "GET", &format!("k{n}")]).await;
        if v != "v" {
            lost += 1;
        }
    }
    let switchovers = events_with(&events, "Switchover").await;
    let st = groups
        .get(GROUP)
        .await
        .expect("group")
        .status
        .expect("status");
    eprintln!(
        "rolling restart: {} writes, {} acked, {lost} acked lost, longest outage {outage:?}, primary {:?}, switchover Events {}",
        seen.len(),
        acked.len(),
        st.primary,
        switchovers.len()
    );
    assert_eq!(done.state, "Complete");
    assert_eq!(lost, 0, "acknowledged writes lost");
    assert_eq!(switchovers.len(), 1, "one switchover: {switchovers:?}");
    assert_eq!(
        st.rollout.as_ref().map(|r| r.switchovers),
        Some(1),
        "status.rollout counts the switchover"
    );
    assert_ne!(
        st.primary.as_deref(),
        Some(instance(0).as_str()),
        "the role moved"
    );
    assert!(
        outage < Duration::from_secs(1),
        "write outage {outage:?} (target < 1 s)"
    );
    for ip in group_ips(&pods).await {
        assert_eq!(config_get(&ip, "databases").await, "32");
    }
}
