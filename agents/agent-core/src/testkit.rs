//! Real redis-server processes for tests and benchmarks (feature `testkit`).
//! Each one runs in the foreground as a child on a free 127.0.0.1 port with its
//! own directory and config file, and is killed on drop.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::resp::{Connection, parse_info};

#[derive(Debug, thiserror::Error)]
pub enum TestkitError {
    #[error("redis-server is not installed (run scripts/services/redis.sh): {0}")]
    Missing(std::io::Error),
    #[error("test directory: {0}")]
    Dir(std::io::Error),
    #[error("redis-server on port {port} not ready after {waited:?}")]
    NotReady { port: u16, waited: Duration },
    #[error("redis at {address}: {message}")]
    Redis { address: String, message: String },
}

/// A free TCP port on 127.0.0.1 (bound then released).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or(0)
}

pub struct RedisProcess {
    port: u16,
    dir: tempfile::TempDir,
    config_path: PathBuf,
    replica_of: Option<u16>,
    /// Arguments after the defaults (`--appendonly yes`, say), which they override.
    extra: Vec<String>,
    child: Option<Child>,
}

impl RedisProcess {
    /// Starts redis-server with `config` as its redis.conf (in its own dir),
    /// following `replica_of` when given, and waits until it answers.
    pub async fn start(config: &str, replica_of: Option<u16>) -> Result<Self, TestkitError> {
        let dir = tempfile::tempdir().map_err(TestkitError::Dir)?;
        let config_path = dir.path().join("redis.conf");
        std::fs::write(&config_path, config).map_err(TestkitError::Dir)?;
        Self::start_with(config_path, dir, replica_of).await
    }

    /// Starts redis-server from an existing config file (several instances may
    /// share one, as pods mount the same ConfigMap).
    pub async fn start_from(
        config_path: PathBuf,
        replica_of: Option<u16>,
    ) -> Result<Self, TestkitError> {
        let dir = tempfile::tempdir().map_err(TestkitError::Dir)?;
        Self::start_with(config_path, dir, replica_of).await
    }

    /// Starts redis-server on a data directory prepared beforehand (a
    /// restored dump.rdb, say), with `config` as its redis.conf there and
    /// `extra` arguments overriding the test defaults.
    pub async fn start_in(
        dir: tempfile::TempDir,
        config: &str,
        extra: &[&str],
    ) -> Result<Self, TestkitError> {
        let config_path = dir.path().join("redis.conf");
        std::fs::write(&config_path, config).map_err(TestkitError::Dir)?;
        let mut p = Self {
            port: free_port(),
            dir,
            config_path,
            replica_of: None,
            extra: extra.iter().map(ToString::to_string).collect(),
            child: None,
        };
        p.spawn().await?;
        Ok(p)
    }

    async fn start_with(
        config_path: PathBuf,
        dir: tempfile::TempDir,
        replica_of: Option<u16>,
    ) -> Result<Self, TestkitError> {
        let mut p = Self {
            port: free_port(),
            dir,
            config_path,
            replica_of,
            extra: Vec::new(),
            child: None,
        };
        p.spawn().await?;
        Ok(p)
    }

    async fn spawn(&mut self) -> Result<(), TestkitError> {
        let mut cmd = Command::new("redis-server");
        cmd.arg(self.config_path())
            .args(["--bind", "127.0.0.1", "--port", &self.port.to_string()])
            .arg("--dir")
            .arg(self.dir.path())
            .args(["--save", "", "--appendonly", "no"])
            .args(["--repl-diskless-sync-delay", "0"])
            .args(&self.extra)
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        if let Some(m) = self.replica_of {
            cmd.args(["--replicaof", "127.0.0.1", &m.to_string()]);
        }
        // A test or benchmark killed before its drops run must not leave
        // redis-server behind: the kernel kills it with its parent.
        {
            use std::os::unix::process::CommandExt;
            // SAFETY: prctl is async-signal-safe and touches no parent state.
            #[allow(unsafe_code)]
            unsafe {
                cmd.pre_exec(|| {
                    libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                    Ok(())
                });
            }
        }
        self.child = Some(cmd.spawn().map_err(TestkitError::Missing)?);
        let started = Instant::now();
        loop {
            if let Ok(mut c) =
                Connection::connect(&self.address(), None, Duration::from_millis(500)).await
                && c.cmd(&["PING"]).await.is_ok()
            {
                return Ok(());
            }
            if started.elapsed() > Duration::from_secs(10) {
                return Err(TestkitError::NotReady {
                    port: self.port,
                    waited: started.elapsed(),
                });
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    pub fn config_path(&self) -> PathBuf {
        self.config_path.clone()
    }

    /// SIGKILL: the process is gone without a goodbye, as when a node dies.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts the process again on the same port, dir and config, as its
    /// original role (a restarted old primary comes back as a primary).
    pub async fn restart(&mut self) -> Result<(), TestkitError> {
        self.kill();
        self.spawn().await
    }

    /// Whether the process is still running (reaps it when it exited).
    pub fn running(&mut self) -> bool {
        matches!(
            self.child.as_mut().map(std::process::Child::try_wait),
            Some(Ok(None))
        )
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Opens a client connection.
    pub async fn connect(&self) -> Result<Connection, TestkitError> {
        Connection::connect(&self.address(), None, Duration::from_secs(5))
            .await
            .map_err(|e| TestkitError::Redis {
                address: self.address(),
                message: e.to_string(),
            })
    }

    /// `INFO replication` as a map.
    pub async fn replication(
        &self,
    ) -> Result<std::collections::HashMap<String, String>, TestkitError> {
        let mut c = self.connect().await?;
        let text = c
            .text(&["INFO", "replication"])
            .await
            .map_err(|e| TestkitError::Redis {
                address: self.address(),
                message: e.to_string(),
            })?;
        Ok(parse_info(&text))
    }

    /// Waits until this replica's link to its primary is up.
    pub async fn wait_link_up(&self, within: Duration) -> Result<(), TestkitError> {
        let started = Instant::now();
        loop {
            if let Ok(info) = self.replication().await
                && info.get("master_link_status").map(String::as_str) == Some("up")
            {
                return Ok(());
            }
            if started.elapsed() > within {
                return Err(TestkitError::Redis {
                    address: self.address(),
                    message: format!("replication link not up after {within:?}"),
                });
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for RedisProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A primary and `replicas` replicas, all linked, each with its own config file.
pub async fn replication_group(
    config: &str,
    replicas: usize,
) -> Result<Vec<RedisProcess>, TestkitError> {
    let primary = RedisProcess::start(config, None).await?;
    let port = primary.port();
    let mut all = vec![primary];
    for _ in 0..replicas {
        all.push(RedisProcess::start(config, Some(port)).await?);
    }
    wait_group(&all).await?;
    Ok(all)
}

/// Like [`replication_group`], all reading the one config file at `config_path`.
pub async fn replication_group_shared(
    config_path: &Path,
    replicas: usize,
) -> Result<Vec<RedisProcess>, TestkitError> {
    let primary = RedisProcess::start_from(config_path.to_path_buf(), None).await?;
    let port = primary.port();
    let mut all = vec![primary];
    for _ in 0..replicas {
        all.push(RedisProcess::start_from(config_path.to_path_buf(), Some(port)).await?);
    }
    wait_group(&all).await?;
    Ok(all)
}

async fn wait_group(all: &[RedisProcess]) -> Result<(), TestkitError> {
    for r in &all[1..] {
        r.wait_link_up(Duration::from_secs(10)).await?;
    }
    Ok(())
}
