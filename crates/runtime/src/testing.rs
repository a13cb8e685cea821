//! For tests of service binaries (feature `testing`, enabled only in
//! `[dev-dependencies]` and by the load generators): start one on free
//! loopback ports, wait until it answers, and stop it with SIGTERM as
//! Kubernetes would; [`pki`] makes certificates for TLS tests; [`contract`]
//! checks a port as stock gRPC tools and outside clients see it.

pub mod contract;
pub mod pki;

use std::net::{SocketAddr, TcpListener};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

pub struct SpawnedService {
    child: Child,
    pub grpc_addr: SocketAddr,
    pub admin_addr: SocketAddr,
}

/// A loopback port nobody listens on right now.
pub fn free_port() -> std::io::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

impl SpawnedService {
    /// Starts `binary` with the given extra environment and waits (up to 20 s)
    /// for its admin port to answer.
    pub fn start(binary: &str, env: &[(&str, &str)]) -> std::io::Result<Self> {
        let grpc_addr: SocketAddr = ([127, 0, 0, 1], free_port()?).into();
        let admin_addr: SocketAddr = ([127, 0, 0, 1], free_port()?).into();
        let mut cmd = Command::new(binary);
        cmd.env("MIDPLANE_SERVER__GRPC_ADDR", grpc_addr.to_string())
            .env("MIDPLANE_SERVER__ADMIN_ADDR", admin_addr.to_string())
            .env("MIDPLANE_SERVER__SHUTDOWN_GRACE_MS", "3000")
            .env_remove("MIDPLANE_CONFIG")
            .stdin(Stdio::null());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let child = cmd.spawn()?;
        let mut svc = Self {
            child,
            grpc_addr,
            admin_addr,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(admin_addr).is_err() {
            if let Some(status) = svc.child.try_wait()? {
                return Err(std::io::Error::other(format!(
                    "{binary} exited early with {status}"
                )));
            }
            if Instant::now() > deadline {
                return Err(std::io::Error::other(format!(
                    "{binary} did not open its admin port {admin_addr}"
                )));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(svc)
    }

    /// Sends SIGTERM and waits up to `timeout` for the process to exit.
    pub fn terminate(&mut self, timeout: Duration) -> std::io::Result<ExitStatus> {
        Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()?;
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait()? {
                return Ok(status);
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                return Err(std::io::Error::other("did not stop after SIGTERM"));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// A plain HTTP GET on the admin port: (status code, body).
    pub fn admin_get(&self, path: &str) -> std::io::Result<(u16, String)> {
        use std::io::{Read, Write};
        let mut s = std::net::TcpStream::connect(self.admin_addr)?;
        s.set_read_timeout(Some(Duration::from_secs(5)))?;
        write!(
            s,
            "GET {path} HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n"
        )?;
        let mut buf = String::new();
        s.read_to_string(&mut buf)?;
        let code = buf
            .split_whitespace()
            .nth(1)
            .and_then(|c| c.parse().ok())
            .unwrap_or(0);
        let body = buf.split("\r\n\r\n").nth(1).unwrap_or_default().to_string();
        Ok((code, body))
    }
}

impl Drop for SpawnedService {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Polls `f` every 50 ms until it yields `Some`, panicking after `secs`
/// seconds with what was awaited.
pub async fn eventually<T, F, Fut>(what: &str, secs: u64, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
