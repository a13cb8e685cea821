//! Probes as the kubelet runs them: exec (in the container's sandbox and environment),
//! tcpSocket, httpGet (plain HTTP) and grpc (the standard health service), each with its
//! initial delay, period and timeout. A probe task reports every result; the Pod worker
//! counts them against the success and failure thresholds.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

use super::container::ExecCtx;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ProbeKind {
    Startup,
    Liveness,
    Readiness,
}

impl ProbeKind {
    pub fn label(self) -> &'static str {
        match self {
            ProbeKind::Startup => "Startup",
            ProbeKind::Liveness => "Liveness",
            ProbeKind::Readiness => "Readiness",
        }
    }

    pub fn field(self) -> &'static str {
        match self {
            ProbeKind::Startup => "startupProbe",
            ProbeKind::Liveness => "livenessProbe",
            ProbeKind::Readiness => "readinessProbe",
        }
    }
}

#[derive(Clone, Debug)]
enum Action {
    Exec(Vec<String>),
    Tcp {
        host: Option<String>,
        port: u16,
    },
    Http {
        host: Option<String>,
        port: u16,
        path: String,
        https: bool,
        headers: Vec<(String, String)>,
    },
    Grpc {
        port: u16,
        service: String,
    },
}

/// A probe of a container's spec, with the kubelet's defaults.
#[derive(Clone, Debug)]
pub struct ProbeSpec {
    action: Action,
    pub initial_delay: Duration,
    pub period: Duration,
    pub timeout: Duration,
    pub success_threshold: u32,
    pub failure_threshold: u32,
    /// `terminationGracePeriodSeconds` of a liveness or startup probe.
    pub grace: Option<i64>,
}

/// A port number or a container port's name.
pub fn port_of(v: &Value, container: &Value) -> Option<u16> {
    match v {
        Value::Number(n) => n.as_u64().and_then(|p| u16::try_from(p).ok()),
        Value::String(s) => s.parse().ok().or_else(|| {
            container["ports"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|p| p["name"] == s.as_str())
                .and_then(|p| p["containerPort"].as_u64())
                .and_then(|p| u16::try_from(p).ok())
        }),
        _ => None,
    }
}

impl ProbeSpec {
    /// The probe `kind` of `container`, if it has one (or why it cannot run).
    pub fn of(container: &Value, kind: ProbeKind) -> Option<Result<Self, String>> {
        let p = &container[kind.field()];
        if !p.is_object() {
            return None;
        }
        let secs = |k: &str, d: u64| Duration::from_secs(p[k].as_u64().unwrap_or(d));
        let host = |h: &Value| h.as_str().filter(|s| !s.is_empty()).map(String::from);
        let action = if p["exec"].is_object() {
            Action::Exec(
                p["exec"]["command"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|s| s.as_str().unwrap_or_default().to_string())
                    .collect(),
            )
        } else if p["tcpSocket"].is_object() {
            match port_of(&p["tcpSocket"]["port"], container) {
                Some(port) => Action::Tcp {
                    host: host(&p["tcpSocket"]["host"]),
                    port,
                },
                None => return Some(Err(format!("{}: tcpSocket port not found", kind.field()))),
            }
        } else if p["httpGet"].is_object() {
            let h = &p["httpGet"];
            match port_of(&h["port"], container) {
                Some(port) => Action::Http {
                    host: host(&h["host"]),
                    port,
                    path: h["path"].as_str().unwrap_or("/").to_string(),
                    https: h["scheme"] == "HTTPS",
                    headers: h["httpHeaders"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .map(|x| {
                            (
                                x["name"].as_str().unwrap_or_default().to_string(),
                                x["value"].as_str().unwrap_or_default().to_string(),
                            )
                        })
                        .collect(),
                },
                None => return Some(Err(format!("{}: httpGet port not found", kind.field()))),
            }
        } else if p["grpc"].is_object() {
            match p["grpc"]["port"]
                .as_u64()
                .and_then(|x| u16::try_from(x).ok())
            {
                Some(port) => Action::Grpc {
                    port,
                    service: p["grpc"]["service"]
                        .as_str()
                        .unwrap_or_default()
                        .to_string(),
                },
                None => return Some(Err(format!("{}: grpc port missing", kind.field()))),
            }
        } else {
            return Some(Err(format!(
                "{}: no handler (exec, tcpSocket, httpGet, grpc)",
                kind.field()
            )));
        };
        let success = if kind == ProbeKind::Readiness {
            p["successThreshold"].as_u64().unwrap_or(1).max(1) as u32
        } else {
            1
        };
        Some(Ok(Self {
            action,
            initial_delay: secs("initialDelaySeconds", 0),
            period: secs("periodSeconds", 10).max(Duration::from_secs(1)),
            timeout: secs("timeoutSeconds", 1).max(Duration::from_secs(1)),
            success_threshold: success,
            failure_threshold: p["failureThreshold"].as_u64().unwrap_or(3).max(1) as u32,
            grace: p["terminationGracePeriodSeconds"].as_i64(),
        }))
    }

    /// Run the probe once: `Ok` on success, `Err` with the kubelet-style failure message.
    pub async fn check(&self, ctx: &ExecCtx) -> Result<(), String> {
        let ip = ctx.pod_ip.to_string();
        let target =
            |host: &Option<String>, port: u16| format!("{}:{port}", host.as_deref().unwrap_or(&ip));
        match &self.action {
            Action::Exec(argv) => ctx
                .exec(argv, self.timeout)
                .await
                .and_then(|(ok, out)| if ok { Ok(()) } else { Err(out) }),
            Action::Tcp { host, port } => {
                let addr = target(host, *port);
                match tokio::time::timeout(self.timeout, tokio::net::TcpStream::connect(&addr))
                    .await
                {
                    Ok(Ok(_)) => Ok(()),
                    Ok(Err(e)) => Err(format!("dial tcp {addr}: connect: {e}")),
                    Err(_) => Err(format!("dial tcp {addr}: i/o timeout")),
                }
            }
            Action::Http {
                host,
                port,
                path,
                https,
                headers,
            } => {
                if *https {
                    return Err(
                        "HTTPS probes are not supported by the emulator's process pods".into(),
                    );
                }
                let addr = target(host, *port);
                match tokio::time::timeout(self.timeout, http_get(&addr, path, headers)).await {
                    Ok(Ok(code)) if (200..400).contains(&code) => Ok(()),
                    Ok(Ok(code)) => Err(format!("HTTP probe failed with statuscode: {code}")),
                    Ok(Err(e)) => Err(format!("Get \"http://{addr}{path}\": {e}")),
                    Err(_) => Err(format!(
                        "Get \"http://{addr}{path}\": context deadline exceeded (Client.Timeout exceeded while awaiting headers)"
                    )),
                }
            }
            Action::Grpc { port, service } => {
                let addr = SocketAddr::from((ctx.pod_ip, *port));
                match tokio::time::timeout(self.timeout, grpc_health(addr, service)).await {
                    Ok(r) => r,
                    Err(_) => Err(format!(
                        "timeout: health rpc did not complete within {}s",
                        self.timeout.as_secs()
                    )),
                }
            }
        }
    }
}

/// One HTTP/1.1 GET; the status code.
async fn http_get(addr: &str, path: &str, headers: &[(String, String)]) -> Result<u16, String> {
    let mut s = tokio::net::TcpStream::connect(addr)
        .await
        .map_err(|e| format!("dial tcp {addr}: connect: {e}"))?;
    let mut req = format!("GET {path} HTTP/1.1\r\n");
    if !headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("host")) {
        req.push_str(&format!("Host: {addr}\r\n"));
    }
    if !headers
        .iter()
        .any(|(k, _)| k.eq_ignore_ascii_case("user-agent"))
    {
        req.push_str("User-Agent: kube-probe/1.33\r\n");
    }
    if !headers
        .iter()
        .any(|(k, _)| k.eq_ignore_ascii_case("accept"))
    {
        req.push_str("Accept: */*\r\n");
    }
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("Connection: close\r\n\r\n");
    s.write_all(req.as_bytes())
        .await
        .map_err(|e| e.to_string())?;
    let mut head = Vec::new();
    let mut buf = [0u8; 256];
    while !head.windows(2).any(|w| w == b"\r\n") && head.len() < 4096 {
        let n = s.read(&mut buf).await.map_err(|e| e.to_string())?;
        if n == 0 {
            break;
        }
        head.extend_from_slice(&buf[..n]);
    }
    let line = String::from_utf8_lossy(&head);
    line.split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| {
            format!(
                "malformed HTTP response {:?}",
                line.lines().next().unwrap_or_default()
            )
        })
}

/// `grpc.health.v1.Health/Check` over plaintext HTTP/2, as the kubelet's gRPC probe does.
async fn grpc_health(addr: SocketAddr, service: &str) -> Result<(), String> {
    let fail =
        |e: &dyn std::fmt::Display| format!("failed to connect service \"{addr}\" within 1s: {e}");
    let tcp = tokio::net::TcpStream::connect(addr)
        .await
        .map_err(|e| fail(&e))?;
    let (client, conn) = h2::client::handshake(tcp).await.map_err(|e| fail(&e))?;
    let conn = tokio::spawn(async move {
        let _ = conn.await;
    });
    let result = async {
        let mut client = client.ready().await.map_err(|e| fail(&e))?;
        let req = http::Request::builder()
            .method("POST")
            .uri(format!("http://{addr}/grpc.health.v1.Health/Check"))
            .header("content-type", "application/grpc")
            .header("te", "trailers")
            .header("user-agent", "kube-probe/1.33")
            .body(())
            .map_err(|e| e.to_string())?;
        let (resp, mut stream) = client.send_request(req, false).map_err(|e| e.to_string())?;
        let mut msg = Vec::new();
        if !service.is_empty() {
            msg.push(0x0a);
            msg.push(service.len() as u8);
            msg.extend_from_slice(service.as_bytes());
        }
        let mut frame = vec![0u8];
        frame.extend_from_slice(&(msg.len() as u32).to_be_bytes());
        frame.extend_from_slice(&msg);
        stream
            .send_data(bytes::Bytes::from(frame), true)
            .map_err(|e| e.to_string())?;
        let resp = resp.await.map_err(|e| e.to_string())?;
        let header_status = resp.headers().get("grpc-status").cloned();
        let mut body = resp.into_body();
        let mut data = Vec::new();
        while let Some(chunk) = body.data().await {
            let chunk = chunk.map_err(|e| e.to_string())?;
            let _ = body.flow_control().release_capacity(chunk.len());
            data.extend_from_slice(&chunk);
        }
        let trailers = body.trailers().await.map_err(|e| e.to_string())?;
        let status = trailers
            .as_ref()
            .and_then(|t| t.get("grpc-status").cloned())
            .or(header_status);
        let code = status.as_ref().and_then(|s| s.to_str().ok()).unwrap_or("0");
        if code != "0" {
            return Err(format!("health rpc failed with grpc-status {code}"));
        }
        // HealthCheckResponse { status = 1 }: 1 is SERVING.
        let serving = data.len() >= 7 && data[5] == 0x08 && data[6] == 1;
        if serving {
            Ok(())
        } else {
            let named = match data.get(6) {
                Some(2) => "NOT_SERVING",
                Some(3) => "SERVICE_UNKNOWN",
                _ => "UNKNOWN",
            };
            Err(format!("service unhealthy (responded with \"{named}\")"))
        }
    }
    .await;
    conn.abort();
    result
}

/// A probe's results, reported to the Pod worker until it is aborted.
pub async fn run(
    kind: ProbeKind,
    spec: Arc<ProbeSpec>,
    ctx: Arc<ExecCtx>,
    first_delay: Duration,
    report: impl Fn(ProbeKind, Result<(), String>),
) {
    tokio::time::sleep(spec.initial_delay.max(first_delay)).await;
    let mut tick = tokio::time::interval(spec.period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        report(kind, spec.check(&ctx).await);
    }
}
