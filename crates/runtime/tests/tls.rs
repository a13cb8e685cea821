//! gRPC over TLS / mTLS from the `server.tls` section, with certificates made
//! at test time by `openssl`: who gets in, who is refused, and rotation of the
//! mounted files (polled and on SIGHUP).

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use midplane_runtime::testing::pki::{CertFiles, TestCa};
use midplane_runtime::{ServerConfig, Service, Shutdown, TlsConfig};
use tokio::net::TcpListener;
use tonic::transport::{Certificate, ClientTlsConfig, Endpoint, Identity};
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_client::HealthClient;

async fn start(tls: TlsConfig) -> (SocketAddr, Shutdown) {
    let config = ServerConfig {
        tls: Some(tls),
        shutdown_grace_ms: 1_000,
        ..ServerConfig::default()
    };
    let service = Service::for_test("tls-svc", config);
    let shutdown = service.shutdown();
    let admin = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let grpc = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = grpc.local_addr().expect("addr");
    tokio::spawn(service.serve_on(admin, grpc, midplane_runtime::Routes::default()));
    (addr, shutdown)
}

/// How a test client connects.
struct Client<'a> {
    ca: &'a CertFiles,
    domain: &'a str,
    identity: Option<&'a CertFiles>,
}

impl Client<'_> {
    fn endpoint(&self, addr: SocketAddr) -> Endpoint {
        let mut tls = ClientTlsConfig::new()
            .ca_certificate(Certificate::from_pem(self.ca.cert_pem().expect("ca")))
            .domain_name(self.domain);
        if let Some(id) = self.identity {
            tls = tls.identity(Identity::from_pem(
                id.cert_pem().expect("cert"),
                id.key_pem().expect("key"),
            ));
        }
        Endpoint::from_shared(format!("https://{addr}"))
            .expect("endpoint")
            .timeout(Duration::from_secs(5))
            .tls_config(tls)
            .expect("client tls")
    }

    /// A health check over a new connection; the error text when refused.
    async fn check(&self, addr: SocketAddr) -> Result<(), String> {
        check_over(self.endpoint(addr)).await
    }
}

async fn check_over(endpoint: Endpoint) -> Result<(), String> {
    let channel = endpoint.connect().await.map_err(|e| format!("{e:?}"))?;
    HealthClient::new(channel)
        .check(HealthCheckRequest {
            service: String::new(),
        })
        .await
        .map(|_| ())
        .map_err(|e| format!("{e:?}"))
}

/// Waits for the server task to listen, with a client that should get in.
async fn until_serving(client: &Client<'_>, addr: SocketAddr) {
    for _ in 0..100 {
        if client.check(addr).await.is_ok() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
    panic!(
        "TLS server at {addr} never answered: {:?}",
        client.check(addr).await
    );
}

/// Replaces a mounted file the way kubelet does: write aside, then rename.
fn replace(from: &Path, to: &Path) {
    let tmp = to.with_extension("tmp");
    std::fs::copy(from, &tmp).expect("copy");
    std::fs::rename(&tmp, to).expect("rename");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mtls_admits_only_clients_with_a_certificate_from_the_client_ca() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server_ca = TestCa::new(dir.path(), "servers").expect("ca");
    let client_ca = TestCa::new(dir.path(), "clients").expect("ca");
    let rogue_ca = TestCa::new(dir.path(), "rogue").expect("ca");
    let server = server_ca.issue("svc", &["svc.test"]).expect("server cert");
    let client = client_ca
        .issue("gateway", &["gateway.test"])
        .expect("client cert");
    let rogue = rogue_ca
        .issue("gateway", &["gateway.test"])
        .expect("rogue cert");

    let (addr, shutdown) = start(TlsConfig {
        cert_file: server.cert.clone(),
        key_file: server.key.clone(),
        client_ca_file: Some(client_ca.files.cert.clone()),
        reload_interval_ms: 0,
    })
    .await;
    let good = Client {
        ca: &server_ca.files,
        domain: "svc.test",
        identity: Some(&client),
    };
    until_serving(&good, addr).await;

    let no_cert = Client {
        identity: None,
        ..good
    };
    let err = no_cert
        .check(addr)
        .await
        .expect_err("no client certificate");
    // Refused at the connection (TLS alert or close), never as a gRPC answer;
    // the wording depends on who writes first.
    assert!(err.contains("Transport"), "{err}");

    let foreign = Client {
        identity: Some(&rogue),
        ..good
    };
    let err = foreign
        .check(addr)
        .await
        .expect_err("client certificate from another CA");
    assert!(err.contains("Transport"), "{err}");

    let plaintext = Endpoint::from_shared(format!("http://{addr}"))
        .expect("endpoint")
        .timeout(Duration::from_secs(5));
    let err = check_over(plaintext).await.expect_err("plaintext client");
    assert!(err.contains("Transport"), "{err}");

    // The client side checks the server's name too.
    let wrong_name = Client {
        domain: "other.test",
        ..good
    };
    let err = wrong_name.check(addr).await.expect_err("name mismatch");
    assert!(
        err.contains("NotValidForName") || err.to_lowercase().contains("name"),
        "{err}"
    );

    // And the right client still gets in after all those refusals.
    good.check(addr).await.expect("good client");
    shutdown.trigger();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotated_files_are_polled_and_apply_to_new_connections() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ca = TestCa::new(dir.path(), "ca1").expect("ca");
    let ca2 = TestCa::new(dir.path(), "ca2").expect("ca");
    let old = ca.issue("old", &["old.test"]).expect("cert");
    let new = ca.issue("new", &["new.test"]).expect("cert");
    let client1 = ca.issue("client1", &["client.test"]).expect("cert");
    let client2 = ca2.issue("client2", &["client.test"]).expect("cert");

    let mounted = dir.path().join("mounted");
    std::fs::create_dir(&mounted).expect("mkdir");
    let (cert, key, client_ca) = (
        mounted.join("tls.crt"),
        mounted.join("tls.key"),
        mounted.join("ca.crt"),
    );
    replace(&old.cert, &cert);
    replace(&old.key, &key);
    replace(&ca.files.cert, &client_ca);
    let (addr, shutdown) = start(TlsConfig {
        cert_file: cert.clone(),
        key_file: key.clone(),
        client_ca_file: Some(client_ca.clone()),
        reload_interval_ms: 100,
    })
    .await;
    let as_old = Client {
        ca: &ca.files,
        domain: "old.test",
        identity: Some(&client1),
    };
    until_serving(&as_old, addr).await;
    let kept = as_old
        .endpoint(addr)
        .connect()
        .await
        .expect("connection opened before the rotation");

    // cert-manager renews the server certificate and moves clients to CA 2.
    replace(&new.cert, &cert);
    replace(&new.key, &key);
    replace(&ca2.files.cert, &client_ca);

    let as_new = Client {
        ca: &ca.files,
        domain: "new.test",
        identity: Some(&client2),
    };
    let mut rotated = false;
    for _ in 0..100 {
        if as_new.check(addr).await.is_ok() {
            rotated = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(rotated, "new certificates never served");
    as_old
        .check(addr)
        .await
        .expect_err("the old server name is gone from new connections");
    Client {
        identity: Some(&client1),
        ..as_new
    }
    .check(addr)
    .await
    .expect_err("clients of the old CA are refused after the CA rotation");
    // An established connection keeps working until it closes.
    HealthClient::new(kept)
        .check(HealthCheckRequest {
            service: String::new(),
        })
        .await
        .expect("connection opened before the rotation still serves");
    shutdown.trigger();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_rereads_files_and_a_broken_rotation_keeps_the_old_certificate() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ca = TestCa::new(dir.path(), "hup").expect("ca");
    let old = ca.issue("old", &["old.test"]).expect("cert");
    let new = ca.issue("new", &["new.test"]).expect("cert");
    let mounted = dir.path().join("mounted");
    std::fs::create_dir(&mounted).expect("mkdir");
    let (cert, key) = (mounted.join("tls.crt"), mounted.join("tls.key"));
    replace(&old.cert, &cert);
    replace(&old.key, &key);
    // Server-only TLS, no polling: only SIGHUP re-reads.
    let (addr, shutdown) = start(TlsConfig {
        cert_file: cert.clone(),
        key_file: key.clone(),
        client_ca_file: None,
        reload_interval_ms: 0,
    })
    .await;
    let as_old = Client {
        ca: &ca.files,
        domain: "old.test",
        identity: None,
    };
    let as_new = Client {
        domain: "new.test",
        ..as_old
    };
    until_serving(&as_old, addr).await;
    let hup = || {
        let status = std::process::Command::new("kill")
            .args(["-HUP", &std::process::id().to_string()])
            .status()
            .expect("kill");
        assert!(status.success());
    };

    // A half-written rotation: unparsable certificate. It must not take effect.
    std::fs::write(&cert, "-----BEGIN CERTIFICATE-----\nbroken\n").expect("write");
    hup();
    tokio::time::sleep(Duration::from_millis(300)).await;
    as_old
        .check(addr)
        .await
        .expect("old certificate still served after a broken rotation");

    replace(&new.cert, &cert);
    replace(&new.key, &key);
    tokio::time::sleep(Duration::from_millis(300)).await;
    as_old
        .check(addr)
        .await
        .expect("without polling nothing changes before SIGHUP");
    hup();
    let mut rotated = false;
    for _ in 0..60 {
        if as_new.check(addr).await.is_ok() {
            rotated = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(rotated, "SIGHUP did not load the new certificate");
    as_old.check(addr).await.expect_err("old name gone");
    shutdown.trigger();
}
