//! mTLS between the gateway and the agents, against real redis-server
//! processes. Certificates are made at test time with `openssl`: one CA for
//! the agents' server certificates (SAN `agent.midplane.internal`), one for
//! the gateway's client certificate, and a rogue CA. The bearer token stays
//! on top of mTLS.

mod support;

use std::time::Duration;

use midplane_agent_gateway::agent_tls::{AgentTlsConfig, DEFAULT_AGENT_SERVER_NAME};
use midplane_agent_gateway::config::AgentsConfig;
use midplane_proto::agent::agent_client::AgentClient;
use midplane_proto::agent::{GetRoleRequest, Role, RoleReport};
use midplane_proto::gateway as gw;
use midplane_runtime::TlsConfig;
use midplane_runtime::auth::BearerToken;
use midplane_runtime::testing::pki::{CertFiles, TestCa};
use support::*;
use tonic::transport::{Certificate, ClientTlsConfig, Endpoint, Identity};

struct Pki {
    _dir: tempfile::TempDir,
    agents_ca: TestCa,
    gateway_ca: TestCa,
    /// Agent server certificate with the expected SAN.
    agent: CertFiles,
    /// Signed by the agents' CA, but for another name.
    impostor: CertFiles,
    /// The gateway's client certificate.
    gateway: CertFiles,
    /// A client certificate from a CA the agents do not trust.
    rogue: CertFiles,
}

fn pki() -> Pki {
    let dir = tempfile::tempdir().expect("tempdir");
    let agents_ca = TestCa::new(dir.path(), "agents").expect("openssl: agents CA");
    let gateway_ca = TestCa::new(dir.path(), "gateway").expect("gateway CA");
    let rogue_ca = TestCa::new(dir.path(), "rogue").expect("rogue CA");
    let agent = agents_ca
        .issue("agent", &[DEFAULT_AGENT_SERVER_NAME])
        .expect("agent cert");
    let impostor = agents_ca
        .issue("impostor", &["impostor.midplane.internal"])
        .expect("impostor cert");
    let gateway = gateway_ca
        .issue("agent-gateway", &["agent-gateway.midplane.internal"])
        .expect("gateway cert");
    let rogue = rogue_ca
        .issue("agent-gateway", &["agent-gateway.midplane.internal"])
        .expect("rogue cert");
    Pki {
        _dir: dir,
        agents_ca,
        gateway_ca,
        agent,
        impostor,
        gateway,
        rogue,
    }
}

/// An agent's `server.tls`: its certificate, and the gateway CA for clients.
fn agent_tls(pki: &Pki, cert: &CertFiles) -> TlsConfig {
    TlsConfig {
        cert_file: cert.cert.clone(),
        key_file: cert.key.clone(),
        client_ca_file: Some(pki.gateway_ca.files.cert.clone()),
        reload_interval_ms: 0,
    }
}

/// The gateway's `agents.tls`.
fn gateway_tls(pki: &Pki) -> AgentsConfig {
    AgentsConfig {
        tls: Some(AgentTlsConfig {
            ca_file: pki.agents_ca.files.cert.clone(),
            cert_file: Some(pki.gateway.cert.clone()),
            key_file: Some(pki.gateway.key.clone()),
            server_name: DEFAULT_AGENT_SERVER_NAME.into(),
            reload_interval_ms: 0,
        }),
        ..AgentsConfig::default()
    }
}

/// GetRole straight to an agent over a new connection, with the bearer token
/// when `token`; the error text when refused.
async fn direct_get_role(endpoint: Endpoint, token: bool) -> Result<RoleReport, String> {
    let channel = endpoint
        .timeout(Duration::from_secs(5))
        .connect()
        .await
        .map_err(|e| format!("connect: {e:?}"))?;
    let request = GetRoleRequest { fresh: true };
    let reply = if token {
        AgentClient::with_interceptor(channel, BearerToken::new(TOKEN).expect("token"))
            .get_role(request)
            .await
    } else {
        AgentClient::new(channel).get_role(request).await
    };
    reply
        .map(tonic::Response::into_inner)
        .map_err(|s| format!("{s:?}"))
}

fn tls_endpoint(addr: std::net::SocketAddr, pki: &Pki, identity: Option<&CertFiles>) -> Endpoint {
    let mut tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(
            pki.agents_ca.files.cert_pem().expect("ca"),
        ))
        .domain_name(DEFAULT_AGENT_SERVER_NAME);
    if let Some(id) = identity {
        tls = tls.identity(Identity::from_pem(
            id.cert_pem().expect("cert"),
            id.key_pem().expect("key"),
        ));
    }
    Endpoint::from_shared(format!("https://{addr}"))
        .expect("endpoint")
        .tls_config(tls)
        .expect("client tls")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gateway_reaches_agents_over_mtls_and_refuses_a_misnamed_agent() {
    let pki = pki();
    // cache-0-2's agents hold a certificate from the right CA for the wrong name.
    let cluster = Cluster::start_tls(2, gateway_tls(&pki), Vec::new(), |i| {
        Some(agent_tls(
            &pki,
            if i == 2 { &pki.impostor } else { &pki.agent },
        ))
    })
    .await;
    let mut client = cluster.client().await;

    let roles = client
        .get_roles(gw::GroupRequest {
            group: group_ref(),
            timeout_ms: 3_000,
            fresh: true,
        })
        .await
        .expect("GetRoles")
        .into_inner();
    assert_eq!(roles.pods.len(), 3, "{roles:#?}");
    assert_eq!(roles.primary_instance, "cache-0-0", "{roles:#?}");
    let pod = |instance: &str| {
        roles
            .pods
            .iter()
            .find(|p| p.target.as_ref().is_some_and(|t| t.instance == instance))
            .unwrap_or_else(|| panic!("no {instance} in {roles:#?}"))
    };
    let primary = pod("cache-0-0").role.as_ref().expect("primary over mTLS");
    assert_eq!(primary.role, Role::Primary as i32);
    assert_eq!(primary.address, cluster.pods[0].redis.address());
    let replica = pod("cache-0-1").role.as_ref().expect("replica over mTLS");
    assert_eq!(replica.role, Role::Replica as i32);
    assert!(replica.primary_link_up);
    assert_eq!(replica.primary_address, cluster.pods[0].redis.address());

    let impostor = pod("cache-0-2");
    assert!(impostor.role.is_none(), "{impostor:#?}");
    let error = impostor.error.as_ref().expect("per-pod error");
    assert!(
        error.message.contains("certificate not valid for name"),
        "the refusal names the certificate problem: {error:#?}"
    );

    // Agent 1 (lifecycle) is behind the same mTLS.
    let statuses = client
        .get_statuses(gw::GroupRequest {
            group: group_ref(),
            timeout_ms: 3_000,
            fresh: false,
        })
        .await
        .expect("GetStatuses")
        .into_inner();
    let ok: Vec<_> = statuses
        .pods
        .iter()
        .filter(|p| p.status.is_some())
        .filter_map(|p| p.target.as_ref().map(|t| t.instance.as_str()))
        .collect();
    assert_eq!(ok, ["cache-0-0", "cache-0-1"], "{statuses:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agents_refuse_callers_without_the_gateway_client_certificate() {
    let pki = pki();
    let cluster = Cluster::start_tls(1, gateway_tls(&pki), Vec::new(), |_| {
        Some(agent_tls(&pki, &pki.agent))
    })
    .await;
    let addr = cluster.pods[0].adapter_addr;

    // The gateway's certificate plus the token: served by the real Redis behind.
    let mut served = None;
    for _ in 0..100 {
        match direct_get_role(tls_endpoint(addr, &pki, Some(&pki.gateway)), true).await {
            Ok(r) => {
                served = Some(r);
                break;
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(30)).await,
        }
    }
    let report = served.expect("GetRole with the gateway certificate");
    assert_eq!(report.role, Role::Primary as i32);
    assert_eq!(report.address, cluster.pods[0].redis.address());

    // mTLS does not replace the token: both are checked.
    let err = direct_get_role(tls_endpoint(addr, &pki, Some(&pki.gateway)), false)
        .await
        .expect_err("certificate without the token");
    assert!(err.contains("Unauthenticated"), "{err}");

    // The refusals happen at the connection (TLS alert or close), never as a
    // gRPC answer; the wording depends on who writes first, so only that is checked.
    let err = direct_get_role(tls_endpoint(addr, &pki, None), true)
        .await
        .expect_err("no client certificate");
    assert!(err.contains("Transport"), "{err}");

    let err = direct_get_role(tls_endpoint(addr, &pki, Some(&pki.rogue)), true)
        .await
        .expect_err("client certificate from an untrusted CA");
    assert!(err.contains("Transport"), "{err}");

    let plaintext = Endpoint::from_shared(format!("http://{addr}")).expect("endpoint");
    let err = direct_get_role(plaintext, true)
        .await
        .expect_err("plaintext client");
    assert!(err.contains("Transport"), "{err}");

    // Agent 1 likewise.
    let lifecycle = cluster.pods[0].lifecycle_addr;
    let plaintext = Endpoint::from_shared(format!("http://{lifecycle}")).expect("endpoint");
    let channel = plaintext
        .timeout(Duration::from_secs(5))
        .connect()
        .await
        .expect("TCP connects; TLS is what fails");
    AgentClient::with_interceptor(channel, BearerToken::new(TOKEN).expect("token"))
        .get_status(midplane_proto::agent::GetStatusRequest {})
        .await
        .expect_err("plaintext to agent 1");

    // Still served after all those refusals.
    direct_get_role(tls_endpoint(addr, &pki, Some(&pki.gateway)), true)
        .await
        .expect("gateway certificate again");
}

async fn roles_served(client: &mut GatewayClient) -> usize {
    client
        .get_roles(gw::GroupRequest {
            group: group_ref(),
            timeout_ms: 2_000,
            fresh: true,
        })
        .await
        .expect("GetRoles")
        .into_inner()
        .pods
        .iter()
        .filter(|p| p.role.is_some())
        .count()
}

/// Polls GetRoles until `want` pods answer.
async fn until_roles_served(client: &mut GatewayClient, want: usize, what: &str) {
    for _ in 0..100 {
        if roles_served(client).await == want {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!(
        "{what}: {} pods answered, wanted {want}",
        roles_served(client).await
    );
}

fn replace(from: &std::path::Path, to: &std::path::Path) {
    let tmp = to.with_extension("tmp");
    std::fs::copy(from, &tmp).expect("copy");
    std::fs::rename(&tmp, to).expect("rename");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gateway_picks_up_a_rotated_client_certificate() {
    let pki = pki();
    let renewed = pki
        .gateway_ca
        .issue(
            "agent-gateway-renewed",
            &["agent-gateway.midplane.internal"],
        )
        .expect("renewed gateway cert");
    // The gateway's Secret, mounted: files replaced in place on rotation.
    let mounted = tempfile::tempdir().expect("tempdir");
    let (cert, key) = (
        mounted.path().join("tls.crt"),
        mounted.path().join("tls.key"),
    );
    replace(&pki.gateway.cert, &cert);
    replace(&pki.gateway.key, &key);
    let mut agents = gateway_tls(&pki);
    if let Some(tls) = &mut agents.tls {
        tls.cert_file = Some(cert.clone());
        tls.key_file = Some(key.clone());
        tls.reload_interval_ms = 100;
    }
    let cluster =
        Cluster::start_tls(1, agents, Vec::new(), |_| Some(agent_tls(&pki, &pki.agent))).await;
    let mut client = cluster.client().await;
    until_roles_served(&mut client, 2, "before the rotation").await;

    // A certificate the agents do not trust: once the gateway reloads it, its
    // new connections are refused, so the open ones must have been replaced.
    replace(&pki.rogue.cert, &cert);
    replace(&pki.rogue.key, &key);
    until_roles_served(&mut client, 0, "after rotating to an untrusted certificate").await;

    // The renewed certificate from the right CA: served again.
    replace(&renewed.cert, &cert);
    replace(&renewed.key, &key);
    until_roles_served(&mut client, 2, "after rotating to the renewed certificate").await;
}
