//! The real adapter-agent binary with `server.tls` from env (a mounted
//! cert-manager Secret), beside a real redis-server: only callers holding a
//! client certificate from the configured CA get in, and SIGHUP makes it pick
//! up a rotated certificate.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use midplane_agent_core::testkit::{RedisProcess, free_port};
use midplane_proto::agent::agent_client::AgentClient;
use midplane_proto::agent::{GetRoleRequest, Role};
use midplane_runtime::auth::BearerToken;
use midplane_runtime::testing::pki::{CertFiles, TestCa};
use tonic::transport::{Certificate, ClientTlsConfig, Endpoint, Identity};

struct Agent(std::process::Child);

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn replace(from: &Path, to: &Path) {
    let tmp = to.with_extension("tmp");
    std::fs::copy(from, &tmp).expect("copy");
    std::fs::rename(&tmp, to).expect("rename");
}

async fn get_role(endpoint: Endpoint) -> Result<i32, String> {
    let channel = endpoint
        .timeout(Duration::from_secs(5))
        .connect()
        .await
        .map_err(|e| format!("{e:?}"))?;
    AgentClient::with_interceptor(channel, BearerToken::new("tok").expect("token"))
        .get_role(GetRoleRequest { fresh: true })
        .await
        .map(|r| r.into_inner().role)
        .map_err(|e| format!("{e:?}"))
}

fn tls(port: u16, ca: &CertFiles, name: &str, id: Option<&CertFiles>) -> Endpoint {
    let mut tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(ca.cert_pem().expect("ca")))
        .domain_name(name);
    if let Some(id) = id {
        tls = tls.identity(Identity::from_pem(
            id.cert_pem().expect("cert"),
            id.key_pem().expect("key"),
        ));
    }
    Endpoint::from_shared(format!("https://127.0.0.1:{port}"))
        .expect("endpoint")
        .tls_config(tls)
        .expect("tls")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serves_mtls_from_the_mounted_secret_and_reloads_on_sighup() {
    let redis = RedisProcess::start("hz 10\n", None)
        .await
        .expect("redis-server");
    let dir = tempfile::tempdir().expect("tempdir");
    let ca = TestCa::new(dir.path(), "midplane-agents").expect("openssl CA");
    let other_ca = TestCa::new(dir.path(), "other").expect("CA");
    let agent = ca
        .issue("agent", &["agent.midplane.internal"])
        .expect("cert");
    let renewed = ca
        .issue("renewed", &["renewed.midplane.internal"])
        .expect("cert");
    let gateway = ca
        .issue("gateway", &["agent-gateway.midplane.internal"])
        .expect("cert");
    let stranger = other_ca
        .issue("gateway", &["agent-gateway.midplane.internal"])
        .expect("cert");

    // The Secret as kubelet mounts it: tls.crt, tls.key, ca.crt.
    let secret = dir.path().join("secret");
    std::fs::create_dir(&secret).expect("mkdir");
    replace(&agent.cert, &secret.join("tls.crt"));
    replace(&agent.key, &secret.join("tls.key"));
    replace(&ca.files.cert, &secret.join("ca.crt"));
    let token = dir.path().join("token");
    std::fs::write(&token, "tok\n").expect("token");

    let (grpc, admin, exporter) = (free_port(), free_port(), free_port());
    let child = Command::new(env!("CARGO_BIN_EXE_adapter-agent"))
        .args(["--adapter", "redis"])
        .env("MIDPLANE_INSTANCE", "cache-0-0")
        .env("MIDPLANE_MIDDLEWARE_ADDR", redis.address())
        .env("MIDPLANE_CONFIG_PATH", redis.config_path())
        .env("MIDPLANE_DATA_DIR", redis.dir())
        .env("MIDPLANE_SERVER__AUTH_TOKEN_FILE", &token)
        .env("MIDPLANE_SERVER__TLS__CERT_FILE", secret.join("tls.crt"))
        .env("MIDPLANE_SERVER__TLS__KEY_FILE", secret.join("tls.key"))
        .env(
            "MIDPLANE_SERVER__TLS__CLIENT_CA_FILE",
            secret.join("ca.crt"),
        )
        .env("MIDPLANE_SERVER__TLS__RELOAD_INTERVAL_MS", "0")
        .env("MIDPLANE_SERVER__GRPC_ADDR", format!("127.0.0.1:{grpc}"))
        .env("MIDPLANE_SERVER__ADMIN_ADDR", format!("127.0.0.1:{admin}"))
        .env("MIDPLANE_EXPORTER_ADDR", format!("127.0.0.1:{exporter}"))
        .env("RUST_LOG", "warn")
        .env_remove("MIDPLANE_CONFIG")
        .stdout(Stdio::null())
        .spawn()
        .expect("spawn adapter-agent");
    let pid = child.id();
    let _agent = Agent(child);

    let good = || tls(grpc, &ca.files, "agent.midplane.internal", Some(&gateway));
    let mut role = Err(String::new());
    for _ in 0..200 {
        role = get_role(good()).await;
        if role.is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(role, Ok(Role::Primary as i32), "GetRole over mTLS");

    get_role(tls(grpc, &ca.files, "agent.midplane.internal", None))
        .await
        .expect_err("no client certificate");
    get_role(tls(
        grpc,
        &ca.files,
        "agent.midplane.internal",
        Some(&stranger),
    ))
    .await
    .expect_err("client certificate from another CA");
    get_role(Endpoint::from_shared(format!("http://127.0.0.1:{grpc}")).expect("endpoint"))
        .await
        .expect_err("plaintext");

    // cert-manager renews the agent's certificate; SIGHUP applies it.
    replace(&renewed.cert, &secret.join("tls.crt"));
    replace(&renewed.key, &secret.join("tls.key"));
    let status = Command::new("kill")
        .args(["-HUP", &pid.to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
    let renewed_name = || tls(grpc, &ca.files, "renewed.midplane.internal", Some(&gateway));
    let mut after = Err(String::new());
    for _ in 0..100 {
        after = get_role(renewed_name()).await;
        if after.is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        after,
        Ok(Role::Primary as i32),
        "renewed certificate served"
    );
    get_role(good())
        .await
        .expect_err("the old certificate's name is no longer served");
}
