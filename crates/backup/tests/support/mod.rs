//! Test support: real protocol servers started on free loopback ports (killed on drop), a
//! deterministic sample tree, and tree comparison.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use hmac::{Hmac, Mac};
use midplane_backup::{Credentials, StorageConfig, Store};
use sha2::Sha256;

pub const S3_ACCESS: &str = "midplane-test";
pub const S3_SECRET: &str = "midplane-test-secret";
pub const AZURE_ACCOUNT: &str = "devstoreaccount1";
/// Azurite's published development-account key.
pub const AZURE_KEY: &str =
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";
pub const BUCKET: &str = "midplane-backups";

fn tools() -> PathBuf {
    PathBuf::from(
        std::env::var("MIDPLANE_TOOLS").unwrap_or_else(|_| "/var/tmp/midplane-tools".into()),
    )
}

/// The path of a server binary, or a failure naming the script that installs it.
fn tool(rel: &str, script: &str) -> PathBuf {
    let p = tools().join(rel);
    assert!(
        p.exists(),
        "{} is missing: run scripts/services/{script} to install it (the tests never skip)",
        p.display()
    );
    p
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("no free loopback port")
}

fn wait_port(port: u16, what: &str, child: &mut Child) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return;
        }
        if let Ok(Some(status)) = child.try_wait() {
            panic!("{what} exited early with {status}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("{what} did not listen on 127.0.0.1:{port} within 60 s");
}

/// A spawned server; killed (and reaped) on drop.
pub struct Server {
    child: Child,
    pub port: u16,
    _dir: tempfile::TempDir,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// s3s-fs: a real S3 server that checks SigV4 signatures. The bucket is pre-created.
pub fn start_s3s() -> Server {
    let bin = tool("bin/s3s-fs", "s3s-fs.sh");
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir(dir.path().join(BUCKET)).expect("bucket dir");
    let port = free_port();
    let mut child = Command::new(bin)
        .args(["--host", "127.0.0.1", "--port", &port.to_string()])
        .args(["--access-key", S3_ACCESS, "--secret-key", S3_SECRET])
        .arg(dir.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn s3s-fs");
    wait_port(port, "s3s-fs", &mut child);
    Server {
        child,
        port,
        _dir: dir,
    }
}

/// Azurite's blob service, with the test container created through the REST API.
pub fn start_azurite() -> Server {
    let bin = tool("node_modules/.bin/azurite-blob", "azurite.sh");
    let dir = tempfile::tempdir().expect("tempdir");
    let port = free_port();
    let mut child = Command::new(bin)
        .args(["--blobHost", "127.0.0.1", "--blobPort", &port.to_string()])
        .arg("--location")
        .arg(dir.path())
        .args(["--skipApiVersionCheck", "--loose", "--silent"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn azurite");
    wait_port(port, "azurite", &mut child);
    create_azure_container(port, BUCKET);
    Server {
        child,
        port,
        _dir: dir,
    }
}

/// PUT container with SharedKey authentication (the dev account's key).
fn create_azure_container(port: u16, container: &str) {
    let date = chrono::Utc::now()
        .format("%a, %d %b %Y %H:%M:%S GMT")
        .to_string();
    let version = "2021-08-06";
    let string_to_sign = format!(
        "PUT\n\n\n\n\n\n\n\n\n\n\n\nx-ms-date:{date}\nx-ms-version:{version}\n/{AZURE_ACCOUNT}/{AZURE_ACCOUNT}/{container}\nrestype:container"
    );
    let key = base64::engine::general_purpose::STANDARD
        .decode(AZURE_KEY)
        .expect("key");
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&key).expect("hmac");
    mac.update(string_to_sign.as_bytes());
    let sig = base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
    let req = format!(
        "PUT /{AZURE_ACCOUNT}/{container}?restype=container HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nx-ms-date: {date}\r\nx-ms-version: {version}\r\nAuthorization: SharedKey {AZURE_ACCOUNT}:{sig}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    );
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect azurite");
    s.write_all(req.as_bytes()).expect("send");
    let mut resp = String::new();
    s.read_to_string(&mut resp).expect("read");
    assert!(
        resp.starts_with("HTTP/1.1 201"),
        "creating Azurite container failed: {}",
        resp.lines().next().unwrap_or("")
    );
}

/// gcp-storage-emulator (JSON API), in memory, with the test bucket.
pub fn start_gcs() -> Server {
    let bin = tool("gcs-venv/bin/gcp-storage-emulator", "gcs-emulator.sh");
    let dir = tempfile::tempdir().expect("tempdir");
    let port = free_port();
    let mut child = Command::new(bin)
        .args(["start", "--host=127.0.0.1", &format!("--port={port}")])
        .args(["--in-memory", &format!("--default-bucket={BUCKET}"), "-q"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn gcp-storage-emulator");
    wait_port(port, "gcp-storage-emulator", &mut child);
    Server {
        child,
        port,
        _dir: dir,
    }
}

pub fn s3_store(port: u16, prefix: &str, secret: &str) -> Store {
    let cfg = StorageConfig::S3 {
        bucket: BUCKET.into(),
        region: "us-east-1".into(),
        endpoint: Some(format!("http://127.0.0.1:{port}")),
        path_style: Some(true),
        prefix: prefix.into(),
    };
    Store::new(cfg, &s3_creds(secret)).expect("s3 store")
}

pub fn minio_store(port: u16, prefix: &str) -> Store {
    let cfg = StorageConfig::from_uri(&format!(
        "minio://{BUCKET}/{prefix}?endpoint=http://127.0.0.1:{port}"
    ))
    .expect("minio uri");
    Store::new(cfg, &s3_creds(S3_SECRET)).expect("minio store")
}

fn s3_creds(secret: &str) -> Credentials {
    Credentials {
        access_key_id: Some(S3_ACCESS.into()),
        secret_access_key: Some(secret.into()),
        ..Default::default()
    }
}

pub fn gcs_store(port: u16, prefix: &str) -> Store {
    let cfg = StorageConfig::Gcs {
        bucket: BUCKET.into(),
        project: Some("midplane-test".into()),
        endpoint: Some(format!("http://127.0.0.1:{port}")),
        prefix: prefix.into(),
    };
    Store::new(cfg, &Credentials::default()).expect("gcs store")
}

pub fn azure_store(port: u16, prefix: &str, key: &str) -> Store {
    let cfg = StorageConfig::Azure {
        container: BUCKET.into(),
        account: AZURE_ACCOUNT.into(),
        endpoint: Some(format!("http://127.0.0.1:{port}/{AZURE_ACCOUNT}")),
        prefix: prefix.into(),
    };
    let creds = Credentials {
        account_key: Some(key.into()),
        ..Default::default()
    };
    Store::new(cfg, &creds).expect("azure store")
}

pub fn fs_store(root: &Path) -> Store {
    Store::new(
        StorageConfig::Fs {
            root: root.display().to_string(),
        },
        &Credentials::default(),
    )
    .expect("fs store")
}

/// Deterministic pseudo-random bytes (xorshift), so no data set is downloaded.
pub fn noise(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// A sample data directory: text, binary, an incompressible file bigger than one upload part,
/// an empty file, nested directories, a symlink and an executable.
pub fn sample_tree(root: &Path) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::create_dir_all(root.join("appendonlydir/nested")).expect("mkdir");
    let text: String = (0..20_000)
        .map(|i| format!("SET key:{i} value-{}\n", i * 7))
        .collect();
    std::fs::write(root.join("appendonlydir/appendonly.aof"), text).expect("w");
    std::fs::write(root.join("dump.rdb"), noise(1, 6 << 20)).expect("w");
    std::fs::write(root.join("appendonlydir/nested/small.bin"), noise(2, 1000)).expect("w");
    std::fs::write(root.join("empty"), b"").expect("w");
    std::fs::write(root.join("run.sh"), b"#!/bin/sh\necho hi\n").expect("w");
    std::fs::set_permissions(root.join("run.sh"), std::fs::Permissions::from_mode(0o755))
        .expect("chmod");
    std::os::unix::fs::symlink("dump.rdb", root.join("latest.rdb")).expect("symlink");
}

/// A listing of a tree: (relative path, kind, mode, content or link target) sorted by path.
pub fn snapshot(root: &Path) -> Vec<(String, String, u32, Vec<u8>)> {
    use std::os::unix::fs::PermissionsExt;
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(p) = stack.pop() {
        let meta = std::fs::symlink_metadata(&p).expect("stat");
        let rel = p.strip_prefix(root).expect("rel").display().to_string();
        let mode = meta.permissions().mode() & 0o7777;
        if meta.file_type().is_symlink() {
            let t = std::fs::read_link(&p).expect("readlink");
            out.push((rel, "link".into(), 0, t.display().to_string().into_bytes()));
        } else if meta.is_dir() {
            out.push((rel, "dir".into(), mode, Vec::new()));
            for e in std::fs::read_dir(&p).expect("readdir") {
                stack.push(e.expect("entry").path());
            }
        } else {
            out.push((rel, "file".into(), mode, std::fs::read(&p).expect("read")));
        }
    }
    out.sort();
    out
}

/// Names in `dir` that look like restore leftovers.
pub fn leftovers(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(std::result::Result::ok)
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.contains("midplane-restore") || n.contains("midplane-old"))
                .collect()
        })
        .unwrap_or_default()
}

/// The error as the `midplane` CLI prints it (anyhow's `{:#}`: the message, then each
/// source), checked to say each thing once: no clause twice, one OS error at most.
pub fn one_message(err: &(dyn std::error::Error + 'static)) -> String {
    let mut parts = vec![err.to_string()];
    let mut src = err.source();
    while let Some(e) = src {
        parts.push(e.to_string());
        src = e.source();
    }
    let text = parts.join(": ");
    let clauses: Vec<&str> = text.split(": ").filter(|c| c.len() >= 6).collect();
    for (i, c) in clauses.iter().enumerate() {
        assert!(
            !clauses[i + 1..].contains(c),
            "{c:?} is said twice in {text:?}"
        );
    }
    for phrase in [
        "failed to unpack",
        "os error",
        "failed authentication",
        "not found",
    ] {
        assert!(
            text.matches(phrase).count() <= 1,
            "{phrase:?} is said more than once in {text:?}"
        );
    }
    text
}
