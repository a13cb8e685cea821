//! group-svc as deployed against the emulator, without a bus: a Group
//! appears, its workloads follow; a plugin ConfigMap change re-renders it; a
//! broken one is not loaded and the last good version keeps serving (the
//! Warning Event is plugin-svc's to record); SIGTERM stops it.

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, ListParams};
use midplane_api::Group;
use midplane_e2e::apply_cm;
use midplane_runtime::testing::SpawnedService;
use midplane_runtime::testing::eventually as until;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn renders_groups_follows_plugin_changes_and_stops() {
    // Only the API and the plugins: the controller under test is the binary.
    let mut cfg = midplane_platform::PlatformConfig::emulator(Default::default()).expect("plugins");
    cfg.controllers = false;
    let platform = midplane_platform::Platform::start(cfg)
        .await
        .expect("platform");
    let (emu, client) = (
        platform.emulator().expect("in-process emulator"),
        platform.client(),
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let kubeconfig = dir.path().join("kubeconfig");
    emu.write_kubeconfig(&kubeconfig).expect("kubeconfig");
    let mut svc = SpawnedService::start(
        env!("CARGO_BIN_EXE_group-svc"),
        &[
            (
                "MIDPLANE_KUBE__KUBECONFIG",
                kubeconfig.to_str().expect("utf8"),
            ),
            ("MIDPLANE_LEADER_ELECTION__ENABLED", "false"),
            ("MIDPLANE_SERVER__LOG__LEVEL", "warn"),
        ],
    )
    .expect("start group-svc");

    let groups = midplane_e2e::create_redis_group(&client).await;
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), "default");
    let ready_hash = |groups: Api<Group>| async move {
        let g = groups.get("cache-0").await.ok()?;
        let st = g.status?;
        (st.ready_replicas == 2).then_some(st.plugin_hash?)
    };
    let first_hash = until("group ready", 30, || ready_hash(groups.clone())).await;
    assert_eq!(
        deployments
            .list(&ListParams::default())
            .await
            .expect("list")
            .items
            .len(),
        2
    );

    // A changed template default in the plugin ConfigMap re-renders the Group.
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "midplane-system");
    let grace_key = "terminationGracePeriodSeconds:";
    let mut cm = midplane_e2e::redis_plugin_config_map(|files| {
        midplane_e2e::replace_in(
            files,
            "values.yaml",
            &format!("{grace_key} 30"),
            &format!("{grace_key} 45"),
        );
    });
    apply_cm(&cms, &cm).await;
    let second_hash = until("re-rendered with the new plugin", 30, || {
        let groups = groups.clone();
        let first = first_hash.clone();
        async move { ready_hash(groups).await.filter(|h| *h != first) }
    })
    .await;
    let grace = until("new pod template", 30, || {
        let deployments = deployments.clone();
        async move {
            let d = deployments.get("cache-0-0").await.ok()?;
            let g = d.spec?.template.spec?.termination_grace_period_seconds?;
            (g == 45).then_some(g)
        }
    })
    .await;
    assert_eq!(grace, 45);

    // A broken template is not loaded: nothing re-rendered.
    let good = cm.clone();
    cm.data.get_or_insert_with(Default::default).insert(
        "templates.service.yaml".into(),
        "kind: Service\nmetadata:\n  name: {{ .Group.Name | nosuchfunc }}\n".into(),
    );
    apply_cm(&cms, &cm).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        ready_hash(groups.clone()).await,
        Some(second_hash.clone()),
        "last good version keeps serving"
    );
    // A good version again is loaded and rendered.
    let mut fixed = good;
    if let Some(files) = fixed.data.as_mut() {
        midplane_e2e::replace_in(
            files,
            "values.yaml",
            &format!("{grace_key} 45"),
            &format!("{grace_key} 50"),
        );
    }
    apply_cm(&cms, &fixed).await;
    until("re-rendered after the fix", 30, || {
        let (groups, second) = (groups.clone(), second_hash.clone());
        async move { ready_hash(groups).await.filter(|h| *h != second) }
    })
    .await;

    let status = svc.terminate(Duration::from_secs(15)).expect("stops");
    assert!(status.success(), "{status}");
}
