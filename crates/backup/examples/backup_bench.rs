//! Benchmark of the backup pipeline against the baseline
//! `tar czf - DIR | gpg --symmetric --cipher-algo AES256` (and `gpg --decrypt | tar xzf -`),
//! on a deterministic mixed dataset (text, binary records, incompressible "already
//! compressed" data), in the same run. Prints MB/s per stage, compression ratios, speed-ups
//! and peak RSS (each measured run is a child process, so its VmHWM is its own).
//!
//! cargo run --release -p midplane-backup --example backup_bench -- [--sizes 256,1024]
//!     [--dir /var/tmp/midplane-bench] [--level 5] [--algorithm aes256-gcm]

mod support;

use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use midplane_backup::plumbing::Stats;
use midplane_backup::{
    Algorithm, BackupOptions, RestoreOptions, StorageConfig, Store, create_backup, restore_backup,
};
use support::{MB, arg, du, generate, key, peak_rss_kib, run_child, stage};

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().collect();
    // What the `midplane backup` commands do first.
    midplane_backup::memory::bound_allocator_growth();
    match args.get(1).map(String::as_str) {
        Some("child-backup") => child(&args, true),
        Some("child-restore") => child(&args, false),
        _ => orchestrate(&args),
    }
}

/// One measured backup or restore, in its own process.
fn child(args: &[String], backup: bool) -> Result<()> {
    let store_root = arg(args, "--store").context("--store")?;
    let alg: Algorithm = arg(args, "--algorithm")
        .unwrap_or_else(|| "aes256-gcm".into())
        .parse()?;
    let level: u32 = match arg(args, "--level") {
        Some(l) => l.parse()?,
        None => midplane_backup::backup::DEFAULT_LEVEL,
    };
    let store = Store::new(StorageConfig::Fs { root: store_root }, &Default::default())?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let stats = Arc::new(Stats::default());
    let t0 = Instant::now();
    if backup {
        let src = PathBuf::from(arg(args, "--source").context("--source")?);
        let opts = BackupOptions {
            algorithm: alg,
            level,
            id: arg(args, "--id"),
            stats: Arc::clone(&stats),
            ..Default::default()
        };
        let m = rt.block_on(create_backup(&store, &src, &key(), &opts))?;
        let wall = t0.elapsed().as_secs_f64();
        let s = &stats;
        let gzip_incl = s.gzip.seconds();
        let crypto_excl = s.crypto.seconds() - s.hash_stored.seconds() - s.transfer.seconds();
        println!(
            "  ours backup ({alg}, gzip -{level}, {} workers):",
            opts.workers
        );
        stage(
            "read + tar (main thread)",
            m.sizes.tar_bytes,
            wall - gzip_incl,
        );
        stage(
            "gzip, per core (worker busy time)",
            m.sizes.tar_bytes,
            s.gzip_workers.load(std::sync::atomic::Ordering::Relaxed) as f64 / 1e9,
        );
        stage(
            "sha-256 of archive",
            m.sizes.archive_bytes,
            s.hash.seconds(),
        );
        stage("encrypt", m.sizes.archive_bytes, crypto_excl.max(0.0));
        stage(
            "sha-256 of stored object",
            m.sizes.stored_bytes,
            s.hash_stored.seconds(),
        );
        stage(
            "upload hand-off (blocked)",
            m.sizes.stored_bytes,
            s.transfer.seconds(),
        );
        stage("end to end (source bytes)", m.sizes.source_bytes, wall);
        println!(
            "RESULT secs={wall} stored={} archive={} tar={} source={} rss_kib={}",
            m.sizes.stored_bytes,
            m.sizes.archive_bytes,
            m.sizes.tar_bytes,
            m.sizes.source_bytes,
            peak_rss_kib()
        );
    } else {
        let id = arg(args, "--id").context("--id")?;
        let target = PathBuf::from(arg(args, "--target").context("--target")?);
        let opts = RestoreOptions {
            stats: Arc::clone(&stats),
            ..Default::default()
        };
        let r = rt.block_on(restore_backup(&store, &id, &key(), &target, &opts))?;
        let wall = t0.elapsed().as_secs_f64();
        let s = &stats;
        let crypto_excl = s.crypto.seconds() - s.hash_stored.seconds() - s.transfer.seconds();
        let gunzip_main = s.gzip.seconds() - s.crypto.seconds() - s.hash.seconds();
        println!("  ours restore ({} workers):", opts.workers);
        stage(
            "download hand-off (waiting)",
            r.stored_bytes,
            s.transfer.seconds(),
        );
        stage(
            "sha-256 of stored object",
            r.stored_bytes,
            s.hash_stored.seconds(),
        );
        stage(
            "decrypt + authenticate",
            r.stored_bytes,
            crypto_excl.max(0.0),
        );
        stage("sha-256 of archive", r.archive_bytes, s.hash.seconds());
        stage(
            "gunzip, per core (worker busy time)",
            r.tar_bytes,
            s.gzip_workers.load(std::sync::atomic::Ordering::Relaxed) as f64 / 1e9,
        );
        stage(
            "gunzip hand-off (main thread)",
            r.tar_bytes,
            gunzip_main.max(0.0),
        );
        stage("untar + write files", r.tar_bytes, wall - s.gzip.seconds());
        stage("end to end (tar bytes)", r.tar_bytes, wall);
        println!(
            "RESULT secs={wall} stored={} rss_kib={}",
            r.stored_bytes,
            peak_rss_kib()
        );
    }
    Ok(())
}

fn sh(script: &str) -> Result<f64> {
    let t = Instant::now();
    let status = Command::new("sh").arg("-c").arg(script).status()?;
    if !status.success() {
        bail!("baseline failed: {script}");
    }
    Ok(t.elapsed().as_secs_f64())
}

fn orchestrate(args: &[String]) -> Result<()> {
    let sizes: Vec<u64> = arg(args, "--sizes")
        .unwrap_or_else(|| "256,1024".into())
        .split(',')
        .map(|s| s.trim().parse::<u64>().context("--sizes takes MiB values"))
        .collect::<Result<_>>()?;
    let base =
        PathBuf::from(arg(args, "--dir").unwrap_or_else(|| "/var/tmp/midplane-bench".into()));
    let level =
        arg(args, "--level").unwrap_or_else(|| midplane_backup::backup::DEFAULT_LEVEL.to_string());
    let alg = arg(args, "--algorithm").unwrap_or_else(|| "aes256-gcm".into());
    std::fs::create_dir_all(&base)?;
    let pass = base.join("passphrase");
    std::fs::write(&pass, key().gpg_passphrase())?;
    let gnupg = base.join("gnupghome");
    std::fs::create_dir_all(&gnupg)?;
    std::fs::set_permissions(&gnupg, std::os::unix::fs::PermissionsExt::from_mode(0o700))?;
    let gpg = format!(
        "GNUPGHOME={} gpg --batch --yes --quiet --pinentry-mode loopback --passphrase-file {}",
        gnupg.display(),
        pass.display()
    );
    let mut summary = Vec::new();
    for mib in sizes {
        let data = base.join(format!("data-{mib}m"));
        println!(
            "== dataset {mib} MiB at {} (generating if absent)",
            data.display()
        );
        generate(&data, mib << 20)?;
        let source = du(&data);
        let store = base.join(format!("store-{mib}m"));
        let _ = std::fs::remove_dir_all(&store);
        let id = format!("bench-{mib}m");
        let ours_b = run_child(&[
            "child-backup",
            "--store",
            &store.display().to_string(),
            "--source",
            &data.display().to_string(),
            "--id",
            &id,
            "--level",
            &level,
            "--algorithm",
            &alg,
        ])?;
        let target = base.join(format!("restore-{mib}m"));
        let _ = std::fs::remove_dir_all(&target);
        let ours_r = run_child(&[
            "child-restore",
            "--store",
            &store.display().to_string(),
            "--id",
            &id,
            "--target",
            &target.display().to_string(),
        ])?;
        if du(&target) != source {
            bail!(
                "restored tree size {} differs from the source {source}",
                du(&target)
            );
        }
        let _ = std::fs::remove_dir_all(&target);

        let enc = base.join(format!("baseline-{mib}m.tar.gz.gpg"));
        let base_b = sh(&format!(
            "tar czf - -C {} . | {gpg} --symmetric --cipher-algo AES256 -o {}",
            data.display(),
            enc.display()
        ))?;
        let btarget = base.join(format!("baseline-restore-{mib}m"));
        let _ = std::fs::remove_dir_all(&btarget);
        std::fs::create_dir_all(&btarget)?;
        let base_r = sh(&format!(
            "{gpg} --decrypt {} | tar xzf - -C {}",
            enc.display(),
            btarget.display()
        ))?;
        let base_stored = std::fs::metadata(&enc)?.len();
        let _ = std::fs::remove_dir_all(&btarget);
        let _ = std::fs::remove_file(&enc);
        let _ = std::fs::remove_dir_all(&store);

        let mbs = |secs: f64| source as f64 / MB / secs;
        println!(
            "  baseline backup  tar czf | gpg --symmetric: {base_b:>7.2} s = {:>7.1} MB/s, stored {:.1} MB ({:.3} of source)",
            mbs(base_b),
            base_stored as f64 / MB,
            base_stored as f64 / source as f64
        );
        println!(
            "  baseline restore gpg --decrypt | tar xzf:    {base_r:>7.2} s = {:>7.1} MB/s",
            mbs(base_r)
        );
        println!(
            "  ours     backup : {:>7.2} s = {:>7.1} MB/s, stored {:.1} MB ({:.3} of source), peak RSS {:.1} MiB",
            ours_b["secs"],
            mbs(ours_b["secs"]),
            ours_b["stored"] / MB,
            ours_b["stored"] / source as f64,
            ours_b["rss_kib"] / 1024.0
        );
        println!(
            "  ours     restore: {:>7.2} s = {:>7.1} MB/s, peak RSS {:.1} MiB",
            ours_r["secs"],
            mbs(ours_r["secs"]),
            ours_r["rss_kib"] / 1024.0
        );
        println!(
            "  speed-up: backup {:.2}x, restore {:.2}x; size ours/baseline {:.3}",
            base_b / ours_b["secs"],
            base_r / ours_r["secs"],
            ours_b["stored"] / base_stored as f64
        );
        summary.push((
            mib,
            base_b / ours_b["secs"],
            base_r / ours_r["secs"],
            ours_b["rss_kib"],
            ours_r["rss_kib"],
            ours_b["stored"] / base_stored as f64,
        ));
    }
    let _ = Command::new("gpgconf")
        .env("GNUPGHOME", &gnupg)
        .args(["--kill", "gpg-agent"])
        .status();
    println!("== summary (target: >= 3x faster, comparable size, peak RSS < 64 MiB and flat)");
    for (mib, b, r, rb, rr, size) in summary {
        println!(
            "  {mib:>5} MiB: backup {b:.2}x, restore {r:.2}x, size ratio {size:.3}, peak RSS backup {:.1} MiB / restore {:.1} MiB",
            rb / 1024.0,
            rr / 1024.0
        );
    }
    Ok(())
}
