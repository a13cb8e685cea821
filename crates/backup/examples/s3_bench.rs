//! Backups through a real S3 server on loopback (s3s-fs, or moto with `--server moto`):
//! create and restore of the benchmark data set next to a plain parallel download of the same
//! stored object from the same server, in the same run. Prints the restore time against the
//! download's, their ratio, the same restore from a local copy of the backup (what the decoder
//! alone takes), and the peak RSS of create and restore per size (each measured step is a
//! child process of its own).
//!
//! cargo run --release -p midplane-backup --example s3_bench -- [--sizes 256,1024]
//!     [--dir /var/tmp/midplane-bench] [--server s3s-fs|moto]
//!     [--download-concurrency 8] [--download-part-mib 8]
//!     [--restore-concurrency N] [--restore-part-mib N]   (default: the library's)
//!     [--runs 3]   (restore and download alternate; the best time of each is compared)
//!
//! s3s-fs comes from scripts/services/s3s-fs.sh; moto from `pip install 'moto[server]'`
//! (`moto_server` on PATH, or its path in `MOTO_SERVER`).

mod support;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use futures::StreamExt;
use midplane_backup::plumbing::Stats;
use midplane_backup::{
    BackupOptions, Credentials, RestoreOptions, StorageConfig, Store, create_backup, restore_backup,
};
use support::{MB, arg, du, generate, key, peak_rss_kib, run_child};

const BUCKET: &str = "midplane-bench";
const ACCESS: &str = "midplane-bench";
const SECRET: &str = "midplane-bench-secret";

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().collect();
    // What the `midplane backup` commands do first.
    midplane_backup::memory::bound_allocator_growth();
    match args.get(1).map(String::as_str) {
        Some("child-create") => child_create(&args),
        Some("child-restore") => child_restore(&args),
        Some("child-download") => child_download(&args),
        _ => orchestrate(&args),
    }
}

fn store(args: &[String]) -> Result<Store> {
    if let Some(root) = arg(args, "--fs-root") {
        return Ok(Store::new(
            StorageConfig::Fs { root },
            &Credentials::default(),
        )?);
    }
    let cfg = StorageConfig::S3 {
        bucket: BUCKET.into(),
        region: "us-east-1".into(),
        endpoint: Some(arg(args, "--endpoint").context("--endpoint")?),
        path_style: Some(true),
        prefix: "bench".into(),
    };
    let creds = Credentials {
        access_key_id: Some(ACCESS.into()),
        secret_access_key: Some(SECRET.into()),
        ..Default::default()
    };
    Ok(Store::new(cfg, &creds)?)
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?)
}

fn child_create(args: &[String]) -> Result<()> {
    let store = store(args)?;
    let src = PathBuf::from(arg(args, "--source").context("--source")?);
    let opts = BackupOptions {
        id: arg(args, "--id"),
        ..Default::default()
    };
    let t0 = Instant::now();
    let m = runtime()?.block_on(create_backup(&store, &src, &key(), &opts))?;
    println!(
        "RESULT secs={} stored={} rss_kib={}",
        t0.elapsed().as_secs_f64(),
        m.sizes.stored_bytes,
        peak_rss_kib()
    );
    Ok(())
}

fn child_restore(args: &[String]) -> Result<()> {
    let store = store(args)?;
    let id = arg(args, "--id").context("--id")?;
    let target = PathBuf::from(arg(args, "--target").context("--target")?);
    let mut opts = RestoreOptions {
        stats: Arc::new(Stats::default()),
        ..Default::default()
    };
    if let Some(p) = arg(args, "--part-mib") {
        opts.download.part_size = p.parse::<usize>()? << 20;
    }
    if let Some(c) = arg(args, "--concurrency") {
        opts.download.concurrency = c.parse()?;
    }
    let t0 = Instant::now();
    let r = runtime()?.block_on(restore_backup(&store, &id, &key(), &target, &opts))?;
    println!(
        "RESULT secs={} stored={} rss_kib={}",
        t0.elapsed().as_secs_f64(),
        r.stored_bytes,
        peak_rss_kib()
    );
    Ok(())
}

/// The baseline: the stored object downloaded with opendal's own concurrent ranged reader
/// into nothing, no decoding.
fn child_download(args: &[String]) -> Result<()> {
    let store = store(args)?;
    let object = arg(args, "--object").context("--object")?;
    let concurrency: usize = arg(args, "--concurrency")
        .context("--concurrency")?
        .parse()?;
    let part: usize = arg(args, "--part-mib").context("--part-mib")?.parse()?;
    let t0 = Instant::now();
    let bytes = runtime()?.block_on(async {
        let op = store.operator();
        let size = op.stat(&object).await?.content_length();
        let mut stream = op
            .reader_with(&object)
            .concurrent(concurrency)
            .chunk(part << 20)
            .await?
            .into_bytes_stream(0..size)
            .await?;
        let mut n = 0u64;
        while let Some(b) = stream.next().await {
            n += b?.len() as u64;
        }
        anyhow::Ok(n)
    })?;
    println!(
        "RESULT secs={} stored={bytes} rss_kib={}",
        t0.elapsed().as_secs_f64(),
        peak_rss_kib()
    );
    Ok(())
}

/// Copies backup `id` (object and manifest) from the S3 server into a `file://` store at
/// `root`.
fn copy_backup(endpoint: &str, id: &str, root: &Path) -> Result<()> {
    let s3 = store(&[String::new(), "--endpoint".into(), endpoint.to_string()])?;
    let fs = Store::new(
        StorageConfig::Fs {
            root: root.display().to_string(),
        },
        &Credentials::default(),
    )?;
    runtime()?.block_on(async {
        for name in ["archive.tar.gz.mpbk", "manifest.json"] {
            let path = format!("{id}/{name}");
            let data = s3.operator().read(&path).await?;
            fs.operator().write(&path, data).await?;
        }
        anyhow::Ok(())
    })
}

/// The S3 server, killed on drop.
struct Server {
    child: Child,
    endpoint: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

fn wait_port(port: u16, child: &mut Child) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return Ok(());
        }
        if let Some(status) = child.try_wait()? {
            bail!("the S3 server exited early with {status}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    bail!("the S3 server did not listen on 127.0.0.1:{port} within 60 s")
}

fn start_server(kind: &str, dir: &Path) -> Result<Server> {
    let port = free_port()?;
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir.join(BUCKET))?;
    let mut child = match kind {
        "s3s-fs" => {
            let tools = std::env::var("MIDPLANE_TOOLS")
                .unwrap_or_else(|_| "/var/tmp/midplane-tools".into());
            let bin = Path::new(&tools).join("bin/s3s-fs");
            if !bin.exists() {
                bail!(
                    "{} is missing: run scripts/services/s3s-fs.sh",
                    bin.display()
                );
            }
            Command::new(bin)
                .args(["--host", "127.0.0.1", "--port", &port.to_string()])
                .args(["--access-key", ACCESS, "--secret-key", SECRET])
                .arg(dir)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()?
        }
        "moto" => {
            Command::new(std::env::var("MOTO_SERVER").unwrap_or_else(|_| "moto_server".into()))
                .args(["-H", "127.0.0.1", "-p", &port.to_string()])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .context("moto_server (pip install 'moto[server]')")?
        }
        other => bail!("--server {other}: expected s3s-fs or moto"),
    };
    wait_port(port, &mut child)?;
    if kind == "moto" {
        // moto keeps buckets in memory and checks no signature: create it with a bare PUT.
        let mut s = TcpStream::connect(("127.0.0.1", port))?;
        write!(
            s,
            "PUT /{BUCKET} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        )?;
        let mut resp = String::new();
        s.read_to_string(&mut resp)?;
        if !resp.starts_with("HTTP/1.1 200") {
            bail!(
                "creating the bucket on moto: {}",
                resp.lines().next().unwrap_or("")
            );
        }
    }
    Ok(Server {
        child,
        endpoint: format!("http://127.0.0.1:{port}"),
    })
}

/// The fastest of several runs, and the highest peak RSS among them.
#[derive(Default)]
struct Best {
    secs: f64,
    rss_kib: f64,
}

impl Best {
    fn add(&mut self, r: std::collections::HashMap<String, f64>) {
        if self.secs == 0.0 || r["secs"] < self.secs {
            self.secs = r["secs"];
        }
        self.rss_kib = self.rss_kib.max(r["rss_kib"]);
    }
}

fn orchestrate(args: &[String]) -> Result<()> {
    let sizes: Vec<u64> = arg(args, "--sizes")
        .unwrap_or_else(|| "256,1024".into())
        .split(',')
        .map(|s| s.trim().parse::<u64>().context("--sizes takes MiB values"))
        .collect::<Result<_>>()?;
    let base =
        PathBuf::from(arg(args, "--dir").unwrap_or_else(|| "/var/tmp/midplane-bench".into()));
    let kind = arg(args, "--server").unwrap_or_else(|| "s3s-fs".into());
    let concurrency = arg(args, "--download-concurrency").unwrap_or_else(|| "8".into());
    let part = arg(args, "--download-part-mib").unwrap_or_else(|| "8".into());
    let runs: usize = arg(args, "--runs").map_or(Ok(3), |r| r.parse())?;
    std::fs::create_dir_all(&base)?;
    let server = start_server(&kind, &base.join("s3-server"))?;
    let endpoint = server.endpoint.clone();
    println!("== S3 server {kind} at {endpoint}");
    let mut summary = Vec::new();
    for mib in sizes {
        let data = base.join(format!("data-{mib}m"));
        println!(
            "== dataset {mib} MiB at {} (generating if absent)",
            data.display()
        );
        generate(&data, mib << 20)?;
        let source = du(&data);
        let id = format!("s3-bench-{mib}m-{}", std::process::id());
        let created = run_child(&[
            "child-create",
            "--endpoint",
            &endpoint,
            "--source",
            &data.display().to_string(),
            "--id",
            &id,
        ])?;
        // The same backup on local disk: restoring it measures the decoder alone.
        let local = base.join("s3-bench-local");
        let _ = std::fs::remove_dir_all(&local);
        copy_backup(&endpoint, &id, &local)?;
        let target = base.join(format!("s3-restore-{mib}m"));
        let mut restore_args = vec![
            "child-restore".to_string(),
            "--endpoint".into(),
            endpoint.clone(),
            "--id".into(),
            id.clone(),
            "--target".into(),
            target.display().to_string(),
        ];
        for flag in ["--part-mib", "--concurrency"] {
            if let Some(v) = arg(args, &format!("--restore{flag}")) {
                restore_args.extend([flag.to_string(), v]);
            }
        }
        let restore_args: Vec<&str> = restore_args.iter().map(String::as_str).collect();
        let object = format!("{id}/archive.tar.gz.mpbk");
        let download_args = [
            "child-download",
            "--endpoint",
            &endpoint,
            "--object",
            &object,
            "--concurrency",
            &concurrency,
            "--part-mib",
            &part,
        ];
        // Alternating runs, best time of each: the machine is shared, so single runs are noisy.
        let mut local_args = restore_args.clone();
        let local_root = local.display().to_string();
        local_args.extend(["--fs-root", &local_root]);
        let (mut restored, mut downloaded, mut decoded) =
            (Best::default(), Best::default(), Best::default());
        for _ in 0..runs {
            for (best, args) in [(&mut restored, &restore_args), (&mut decoded, &local_args)] {
                let _ = std::fs::remove_dir_all(&target);
                best.add(run_child(args)?);
                if du(&target) != source {
                    bail!(
                        "restored tree size {} differs from the source {source}",
                        du(&target)
                    );
                }
            }
            let _ = std::fs::remove_dir_all(&target);
            downloaded.add(run_child(&download_args)?);
        }
        let _ = std::fs::remove_dir_all(&local);
        let stored = created["stored"];
        let rate = |secs: f64| stored / MB / secs;
        println!(
            "  create  : {:>7.2} s, {:>7.1} MB/s of source, peak RSS {:.1} MiB",
            created["secs"],
            source as f64 / MB / created["secs"],
            created["rss_kib"] / 1024.0
        );
        println!(
            "  restore : {:>7.2} s = {:>7.1} MB/s of stored object, peak RSS {:.1} MiB",
            restored.secs,
            rate(restored.secs),
            restored.rss_kib / 1024.0
        );
        println!(
            "  download: {:>7.2} s = {:>7.1} MB/s ({concurrency} x {part} MiB ranged GETs, no decoding), peak RSS {:.1} MiB",
            downloaded.secs,
            rate(downloaded.secs),
            downloaded.rss_kib / 1024.0
        );
        println!(
            "  restore of the same backup from local disk: {:>7.2} s = {:>7.1} MB/s (the decoder alone)",
            decoded.secs,
            rate(decoded.secs)
        );
        let ratio = downloaded.secs / restored.secs;
        println!("  restore speed / plain download speed = {ratio:.2}");
        summary.push((
            rate(decoded.secs),
            mib,
            ratio,
            created["rss_kib"],
            restored.rss_kib,
            rate(restored.secs),
            rate(downloaded.secs),
        ));
    }
    drop(server);
    println!(
        "== summary ({kind}; targets: restore at least as fast as the download, peak RSS < 64 MiB)"
    );
    for (local, mib, ratio, rc, rr, r, d) in summary {
        println!(
            "  {mib:>5} MiB: restore {r:.1} MB/s, download {d:.1} MB/s, ratio {ratio:.2} (from local disk {local:.1} MB/s); peak RSS create {:.1} MiB / restore {:.1} MiB",
            rc / 1024.0,
            rr / 1024.0
        );
    }
    Ok(())
}
