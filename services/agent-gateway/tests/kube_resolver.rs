//! The Kubernetes resolver against the project's Kubernetes API emulator:
//! pods labelled with the Group (ready or not) become targets with their IP
//! and named agent ports; other groups' pods do not.

use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, PostParams};
use midplane_agent_gateway::kube_resolver::KubeResolver;
use midplane_agent_gateway::resolver::{PodResolver, ResolveError};
use midplane_kube_emulator::{Emulator, EmulatorConfig};
use serde_json::json;

fn pod(name: &str, group: &str, instance: &str) -> Pod {
    serde_json::from_value(json!({
        "metadata": {"name": name, "labels": {"midplane.dev/group": group, "midplane.dev/instance": instance}},
        "spec": {"containers": [
            {"name": "redis", "image": "redis:7", "ports": [{"name": "redis", "containerPort": 6379}]},
            {"name": "agent-lifecycle", "image": "agent", "ports": [{"name": "agent-lifecycle", "containerPort": 50051}]},
            {"name": "agent-adapter", "image": "agent", "ports": [{"name": "agent-adapter", "containerPort": 50052}]}
        ]}
    }))
    .expect("pod")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn group_pods_resolve_to_their_agents() {
    let emu = Emulator::start(EmulatorConfig {
        namespaces: vec!["shop".into()],
        ..EmulatorConfig::default()
    })
    .await
    .expect("emulator");
    let client = kube::Client::try_from(kube::Config::new(emu.url().parse().expect("url")))
        .expect("kube client");
    let pods: Api<Pod> = Api::namespaced(client.clone(), "shop");
    for (name, group, instance) in [
        ("cache-0-0-a1", "shop-cache-0", "cache-0-0"),
        ("cache-0-1-b2", "shop-cache-0", "cache-0-1"),
        ("other-0-0-c3", "shop-other-0", "other-0-0"),
    ] {
        pods.create(&PostParams::default(), &pod(name, group, instance))
            .await
            .expect("create pod");
    }
    let resolver = KubeResolver::new(client);
    let started = Instant::now();
    let targets = loop {
        let t = resolver
            .resolve("shop", "shop-cache-0")
            .await
            .expect("resolve");
        if t.len() == 2 {
            break t;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "pods never got IPs: {t:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(targets[0].instance, "cache-0-0");
    assert_eq!(targets[1].instance, "cache-0-1");
    for t in &targets {
        let (ip, port) = t.address.rsplit_once(':').expect("host:port");
        assert!(ip.parse::<std::net::IpAddr>().is_ok(), "{t:?}");
        assert_eq!(port, "50052");
        assert_eq!(t.lifecycle_address, format!("{ip}:50051"));
    }
    let err = resolver
        .resolve("shop", "missing")
        .await
        .expect_err("no pods");
    assert!(matches!(err, ResolveError::UnknownGroup { .. }), "{err}");
    emu.shutdown().await;
}
