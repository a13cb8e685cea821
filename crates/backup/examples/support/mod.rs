//! Shared by the benchmarks: the deterministic data set, peak RSS of a process, and running
//! each measured step in a child process of its own (so its peak RSS is its own).
#![allow(dead_code)]

use std::collections::HashMap;
use std::path::Path;
use std::process::Command;

use anyhow::{Context, Result, bail};
use midplane_backup::BackupKey;

pub const MB: f64 = 1_000_000.0;

/// The value after `name` on the command line.
pub fn arg(args: &[String], name: &str) -> Option<String> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}

/// Peak resident set of this process, from /proc/self/status.
pub fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse().ok()))
        })
        .unwrap_or(0)
}

pub fn key() -> BackupKey {
    BackupKey::from_array(*b"midplane-benchmark-key-32-bytes!")
}

pub fn stage(name: &str, bytes: u64, secs: f64) {
    let rate = if secs > 0.0 {
        bytes as f64 / MB / secs
    } else {
        f64::INFINITY
    };
    println!(
        "    {name:<34} {:>9.1} MB in {secs:>7.2} s  = {rate:>8.1} MB/s",
        bytes as f64 / MB
    );
}

fn parse_result(out: &str) -> Result<HashMap<String, f64>> {
    let line = out
        .lines()
        .find(|l| l.starts_with("RESULT "))
        .context("child printed no RESULT line")?;
    Ok(line
        .split_whitespace()
        .skip(1)
        .filter_map(|kv| kv.split_once('='))
        .filter_map(|(k, v)| v.parse().ok().map(|v| (k.to_string(), v)))
        .collect())
}

/// Runs this executable again with `args`, echoes what it prints and returns its `RESULT`
/// line's `key=value` pairs.
pub fn run_child(args: &[&str]) -> Result<HashMap<String, f64>> {
    let exe = std::env::current_exe()?;
    let out = Command::new(exe).args(args).output()?;
    let text = String::from_utf8_lossy(&out.stdout);
    for l in text.lines().filter(|l| !l.starts_with("RESULT")) {
        println!("{l}");
    }
    if !out.status.success() {
        bail!("child failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    parse_result(&text)
}

/// xorshift64*: fast deterministic bytes.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn fill(&mut self, buf: &mut [u8]) {
        for c in buf.chunks_mut(8) {
            let v = self.next().to_le_bytes();
            c.copy_from_slice(&v[..c.len()]);
        }
    }
}

const WORDS: &[&str] = &[
    "GET",
    "SET",
    "user",
    "session",
    "cache",
    "timeout",
    "replica",
    "primary",
    "INFO",
    "OK",
    "connected",
    "expired",
    "key",
    "value",
    "latency",
    "ms",
    "slot",
    "cluster",
    "ERR",
    "WARN",
    "json",
    "request",
    "response",
    "200",
    "404",
    "id",
    "name",
    "status",
    "ready",
    "sync",
];

/// Writes `total` bytes of mixed data under `dir`: ~40 % log-like text, ~30 % binary records
/// (compressible), ~30 % random bytes standing in for already-compressed media and archives.
pub fn generate(dir: &Path, total: u64) -> Result<()> {
    let marker = dir.join(".complete");
    if marker.exists() {
        return Ok(());
    }
    let _ = std::fs::remove_dir_all(dir);
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15 ^ total);
    let mut written = 0u64;
    let mut n = 0u64;
    while written < total {
        let kind = n % 10;
        // Mostly small files, some big ones, as a data directory has.
        let size = if n.is_multiple_of(7) {
            (8 << 20) + rng.next() % (24 << 20)
        } else {
            4096 + rng.next() % (256 << 10)
        }
        .min(total - written);
        let sub = dir.join(format!("d{:02}", n % 16));
        std::fs::create_dir_all(&sub)?;
        let mut buf = vec![0u8; size as usize];
        let name = match kind {
            0..=3 => {
                let mut s = String::with_capacity(size as usize + 128);
                while s.len() < size as usize {
                    let r = rng.next();
                    s.push_str(&format!(
                        "2026-11-27T{:02}:{:02}:{:02}.{:03}Z ",
                        r % 24,
                        (r >> 8) % 60,
                        (r >> 16) % 60,
                        (r >> 24) % 1000
                    ));
                    for i in 0..(4 + (r >> 32) % 8) {
                        s.push_str(WORDS[((r >> (i * 5)) % WORDS.len() as u64) as usize]);
                        s.push(' ');
                    }
                    s.push_str(&format!("{}\n", (r >> 40) % 100_000));
                }
                buf.copy_from_slice(&s.as_bytes()[..size as usize]);
                format!("f{n:06}.log")
            }
            4..=6 => {
                for rec in buf.chunks_mut(32) {
                    let r = rng.next();
                    let mut v = [0u8; 32];
                    v[..8].copy_from_slice(&(n * 1000 + (r % 1000)).to_le_bytes());
                    v[8..12].copy_from_slice(&((r >> 20) as u32 % 5000).to_le_bytes());
                    v[16] = (r % 4) as u8;
                    rec.copy_from_slice(&v[..rec.len()]);
                }
                format!("f{n:06}.bin")
            }
            _ => {
                rng.fill(&mut buf);
                format!("f{n:06}.jpg")
            }
        };
        std::fs::write(sub.join(name), &buf)?;
        written += size;
        n += 1;
    }
    std::fs::write(marker, b"")?;
    Ok(())
}

pub fn du(path: &Path) -> u64 {
    let mut total = 0;
    let mut stack = vec![path.to_path_buf()];
    while let Some(p) = stack.pop() {
        if let Ok(m) = std::fs::symlink_metadata(&p) {
            if m.is_dir() {
                if let Ok(rd) = std::fs::read_dir(&p) {
                    stack.extend(rd.filter_map(std::result::Result::ok).map(|e| e.path()));
                }
            } else {
                total += m.len();
            }
        }
    }
    total
}
