//! The gateway and both agents against a real Redis replication group:
//! one primary and two replicas (redis-server processes), an agent pair per
//! pod, the gateway with the static resolver, bearer auth everywhere.

mod support;

use std::time::{Duration, Instant};

use midplane_agent_gateway::config::AgentsConfig;
use midplane_proto::agent::Role;
use midplane_proto::agent::agent_client::AgentClient;
use midplane_proto::gateway as gw;
use support::*;

async fn roles(client: &mut GatewayClient) -> gw::GetRolesResponse {
    client
        .get_roles(gw::GroupRequest {
            group: group_ref(),
            timeout_ms: 2_000,
            fresh: true,
        })
        .await
        .expect("GetRoles")
        .into_inner()
}

fn role_of(
    resp: &gw::GetRolesResponse,
    instance: &str,
) -> Option<midplane_proto::agent::RoleReport> {
    resp.pods
        .iter()
        .find(|p| p.target.as_ref().is_some_and(|t| t.instance == instance))
        .and_then(|p| p.role.clone())
}

/// Waits until every listed replica follows `primary` with its link up.
async fn wait_followers(
    client: &mut GatewayClient,
    primary: &str,
    replicas: &[&str],
) -> gw::GetRolesResponse {
    let started = Instant::now();
    loop {
        let r = roles(client).await;
        let primary_addr = role_of(&r, primary).map(|x| x.address).unwrap_or_default();
        let ok = r.primary_instance == primary
            && replicas.iter().all(|i| {
                role_of(&r, i).is_some_and(|x| {
                    x.role == Role::Replica as i32
                        && x.primary_link_up
                        && x.primary_address == primary_addr
                })
            });
        if ok {
            return r;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "replicas {replicas:?} never followed {primary}: {r:#?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn roles_and_planned_switchover() {
    let cluster = Cluster::start(2).await;
    let mut client = cluster.client().await;
    let r = roles(&mut client).await;
    assert_eq!(r.primary_instance, "cache-0-0", "{r:#?}");
    assert_eq!(r.pods.len(), 3);
    for i in ["cache-0-1", "cache-0-2"] {
        let x = role_of(&r, i).expect("report");
        assert_eq!(x.role, Role::Replica as i32);
        assert!(x.primary_link_up);
        assert_eq!(x.primary_address, cluster.pods[0].redis.address());
    }

    let mut c = cluster.pods[0].redis.connect().await.expect("connect");
    for i in 0..500 {
        c.cmd(&["SET", &format!("k{i}"), "v"]).await.expect("set");
    }
    let out = client
        .switchover(gw::SwitchoverRequest {
            group: group_ref(),
            candidate_instance: String::new(),
            timeout_ms: 5_000,
        })
        .await
        .expect("Switchover")
        .into_inner();
    assert!(out.success, "{out:#?}");
    assert_eq!(out.old_primary_instance, "cache-0-0");
    assert!(out.term >= 1);
    let new = out.new_primary_instance.clone();
    assert!(new == "cache-0-1" || new == "cache-0-2", "{out:#?}");
    let others: Vec<&str> = ["cache-0-0", "cache-0-1", "cache-0-2"]
        .into_iter()
        .filter(|i| *i != new)
        .collect();
    let r = wait_followers(&mut client, &new, &others).await;
    assert_eq!(r.term, out.term);
    // Nothing acknowledged was lost.
    let mut c = cluster.pod(&new).redis.connect().await.expect("connect");
    assert_eq!(
        c.cmd(&["DBSIZE"])
            .await
            .expect("dbsize")
            .as_text()
            .as_deref(),
        Some("500")
    );

    // A named candidate: hand it back to the original primary.
    let out = client
        .switchover(gw::SwitchoverRequest {
            group: group_ref(),
            candidate_instance: "cache-0-0".into(),
            timeout_ms: 5_000,
        })
        .await
        .expect("Switchover")
        .into_inner();
    assert!(out.success, "{out:#?}");
    assert_eq!(out.new_primary_instance, "cache-0-0");
    wait_followers(&mut client, "cache-0-0", &["cache-0-1", "cache-0-2"]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn primary_loss_forces_failover_and_the_old_primary_is_fenced() {
    let mut cluster = Cluster::start(2).await;
    let mut client = cluster.client().await;
    let mut c = cluster.pods[0].redis.connect().await.expect("connect");
    for i in 0..200 {
        c.cmd(&["SET", &format!("k{i}"), "v"]).await.expect("set");
    }
    // The replicas must have everything before the primary dies.
    c.cmd(&["WAIT", "2", "2000"]).await.expect("wait");
    // Give one replica a lead in offset: the other one stops replicating.
    let mut c2 = cluster.pods[2].redis.connect().await.expect("connect");
    c2.cmd(&["REPLICAOF", "127.0.0.1", "1"])
        .await
        .expect("detach");
    for i in 0..50 {
        c.cmd(&["SET", &format!("late{i}"), "v"])
            .await
            .expect("set");
    }
    c.cmd(&["WAIT", "1", "2000"]).await.expect("wait");
    cluster.pod_mut("cache-0-0").redis.kill();

    // Switchover needs a live primary.
    let refused = client
        .switchover(gw::SwitchoverRequest {
            group: group_ref(),
            candidate_instance: String::new(),
            timeout_ms: 1_000,
        })
        .await
        .expect("Switchover")
        .into_inner();
    assert!(!refused.success);

    let out = client
        .failover(gw::FailoverRequest {
            group: group_ref(),
            candidate_instance: String::new(),
            timeout_ms: 2_000,
            failed_primary_instance: String::new(),
        })
        .await
        .expect("Failover")
        .into_inner();
    assert!(out.success, "{out:#?}");
    assert_eq!(
        out.new_primary_instance, "cache-0-1",
        "highest offset wins: {out:#?}"
    );
    assert!(out.detection_to_promotion_ms < 3_000, "{out:#?}");
    let fence = out
        .steps
        .iter()
        .find(|s| s.target.as_ref().is_some_and(|t| t.instance == "cache-0-0"))
        .expect("a step for the old primary");
    assert_eq!(fence.action, "fence");
    assert!(
        !fence.success,
        "its Redis is down, so the fence is only recorded"
    );

    wait_followers(&mut client, "cache-0-1", &["cache-0-2"]).await;
    let mut c1 = cluster
        .pod("cache-0-1")
        .redis
        .connect()
        .await
        .expect("connect");
    assert_eq!(
        c1.cmd(&["DBSIZE"])
            .await
            .expect("dbsize")
            .as_text()
            .as_deref(),
        Some("250")
    );

    // The old primary comes back as a primary; its agent demotes it.
    cluster
        .pod_mut("cache-0-0")
        .redis
        .restart()
        .await
        .expect("restart");
    let r = wait_followers(&mut client, "cache-0-1", &["cache-0-0", "cache-0-2"]).await;
    assert_eq!(role_of(&r, "cache-0-0").expect("report").term, out.term);
    let mut c0 = cluster
        .pod("cache-0-0")
        .redis
        .connect()
        .await
        .expect("connect");
    let err = c0
        .cmd(&["SET", "split-brain", "1"])
        .await
        .expect_err("read-only");
    assert!(err.to_string().contains("READONLY"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reload_config_applies_dynamic_changes_and_reports_static_ones() {
    let cluster = Cluster::start(2).await;
    let mut client = cluster.client().await;
    let write = |text: &str| {
        std::fs::write(&cluster.config_path, text).expect("write conf");
        midplane_agent_core::redis::config::file_hash(&cluster.config_path).expect("hash")
    };
    let get = |v: midplane_agent_core::resp::Value| {
        v.into_array()
            .get(1)
            .and_then(midplane_agent_core::resp::Value::as_text)
            .unwrap_or_default()
    };

    let hash = write("hz 25\nmaxmemory-policy allkeys-lru\ndatabases 16\nmaxmemory 32mb\n");
    let out = client
        .reload_config(gw::ReloadConfigRequest {
            group: group_ref(),
            config_path: cluster.config_path.display().to_string(),
            content_hash: hash.clone(),
            restart_required_parameters: vec![],
            wait_timeout_ms: 2_000,
        })
        .await
        .expect("ReloadConfig")
        .into_inner();
    assert!(out.all_applied, "{out:#?}");
    assert!(out.restart_required.is_empty());
    assert_eq!(out.pods.len(), 3);
    for p in &cluster.pods {
        let mut c = p.redis.connect().await.expect("connect");
        assert_eq!(
            get(c.cmd(&["CONFIG", "GET", "hz"]).await.expect("get")),
            "25"
        );
        assert_eq!(
            get(c
                .cmd(&["CONFIG", "GET", "maxmemory-policy"])
                .await
                .expect("get")),
            "allkeys-lru"
        );
    }
    // Agent 1 reports the hash now in use.
    let statuses = client
        .get_statuses(gw::GroupRequest {
            group: group_ref(),
            timeout_ms: 2_000,
            fresh: false,
        })
        .await
        .expect("GetStatuses")
        .into_inner();
    for p in &statuses.pods {
        let s = p
            .status
            .as_ref()
            .unwrap_or_else(|| panic!("status: {p:#?}"));
        assert_eq!(s.config_hash, hash);
        assert!(s.process_up && s.middleware_reachable && s.ready, "{s:#?}");
        assert!(
            s.disk_total_bytes > 0 && s.middleware_version.starts_with('7'),
            "{s:#?}"
        );
    }

    // A static change next to a dynamic one: restart required, nothing applied.
    let hash2 = write("hz 50\nmaxmemory-policy allkeys-lru\ndatabases 32\nmaxmemory 32mb\n");
    let out = client
        .reload_config(gw::ReloadConfigRequest {
            group: group_ref(),
            config_path: cluster.config_path.display().to_string(),
            content_hash: hash2,
            restart_required_parameters: vec![],
            wait_timeout_ms: 2_000,
        })
        .await
        .expect("ReloadConfig")
        .into_inner();
    assert!(!out.all_applied, "{out:#?}");
    assert_eq!(out.restart_required, vec!["databases".to_string()]);
    for p in &cluster.pods {
        let mut c = p.redis.connect().await.expect("connect");
        assert_eq!(
            get(c.cmd(&["CONFIG", "GET", "hz"]).await.expect("get")),
            "25"
        );
    }
    // The plugin can class a parameter as restart-required too.
    let hash3 = write("hz 50\nmaxmemory-policy allkeys-lru\ndatabases 16\nmaxmemory 32mb\n");
    let out = client
        .reload_config(gw::ReloadConfigRequest {
            group: group_ref(),
            config_path: cluster.config_path.display().to_string(),
            content_hash: hash3,
            restart_required_parameters: vec!["hz".into()],
            wait_timeout_ms: 2_000,
        })
        .await
        .expect("ReloadConfig")
        .into_inner();
    assert_eq!(out.restart_required, vec!["hz".to_string()], "{out:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_without_the_token_are_refused() {
    let cluster = Cluster::start(1).await;
    let channel = connect(cluster.gateway_addr).await;
    let mut anonymous =
        midplane_proto::gateway::agent_gateway_client::AgentGatewayClient::new(channel);
    let err = anonymous
        .get_roles(gw::GroupRequest {
            group: group_ref(),
            timeout_ms: 0,
            fresh: false,
        })
        .await
        .expect_err("no token");
    assert_eq!(err.code(), tonic::Code::Unauthenticated);

    for addr in [cluster.pods[0].adapter_addr, cluster.pods[0].lifecycle_addr] {
        let mut agent = AgentClient::new(connect(addr).await);
        let err = agent
            .get_role(midplane_proto::agent::GetRoleRequest { fresh: true })
            .await
            .expect_err("no token");
        assert_eq!(err.code(), tonic::Code::Unauthenticated, "{addr}");
        let mut req = tonic::Request::new(midplane_proto::agent::FailoverRequest {
            mode: midplane_proto::agent::failover_request::Mode::Forced as i32,
            target_address: String::new(),
            term: 99,
            timeout_ms: 0,
        });
        req.metadata_mut()
            .insert("authorization", "Bearer wrong".parse().expect("header"));
        let err = agent.failover(req).await.expect_err("wrong token");
        assert_eq!(err.code(), tonic::Code::Unauthenticated);
    }
    // Nothing was promoted by the refused calls.
    let mut client = cluster.client().await;
    let r = roles(&mut client).await;
    assert_eq!(r.primary_instance, "cache-0-0");
    assert_eq!(r.term, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hanging_agent_costs_one_deadline() {
    // Accepts connections and never answers: an agent stuck mid-call.
    let hang = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let hang_addr = hang.local_addr().expect("addr");
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((s, _)) = hang.accept().await {
            held.push(s);
        }
    });
    let cluster = Cluster::start_with(
        1,
        AgentsConfig::default(),
        vec![static_pod("cache-0-hung", hang_addr, Some(hang_addr))],
    )
    .await;
    let mut client = cluster.client().await;
    let started = Instant::now();
    let r = client
        .get_roles(gw::GroupRequest {
            group: group_ref(),
            timeout_ms: 300,
            fresh: true,
        })
        .await
        .expect("GetRoles answers despite the hung agent")
        .into_inner();
    let took = started.elapsed();
    assert!(took < Duration::from_millis(1_500), "took {took:?}");
    assert_eq!(r.primary_instance, "cache-0-0");
    let hung = r
        .pods
        .iter()
        .find(|p| {
            p.target
                .as_ref()
                .is_some_and(|t| t.instance == "cache-0-hung")
        })
        .expect("hung pod reported");
    let e = hung.error.as_ref().expect("an error for the hung pod");
    assert_eq!(e.reason, "Timeout", "{e:#?}");
    assert_eq!(r.pods.iter().filter(|p| p.role.is_some()).count(), 2);

    let started = Instant::now();
    let h = client
        .health_checks(gw::GroupRequest {
            group: group_ref(),
            timeout_ms: 300,
            fresh: false,
        })
        .await
        .expect("HealthChecks")
        .into_inner();
    assert!(started.elapsed() < Duration::from_millis(1_500));
    assert_eq!(h.pods.iter().filter(|p| p.health.is_some()).count(), 2);
}
