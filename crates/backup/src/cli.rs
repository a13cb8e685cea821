//! The `midplane backup …` commands as functions, for the CLI to wire with clap:
//!
//! ```text
//! midplane backup create --source DIR --to URI [--encryption aes256-gcm|aes256-cbc|gpg] --key-file F
//! midplane backup list --from URI
//! midplane backup verify --from URI --id ID --key-file F
//! midplane backup restore --from URI --id ID --target DIR --key-file F [--force]
//! ```
//!
//! Results go to `out` (stdout); `create` prints the backup id as its last line. Progress
//! (bytes, rate, time left) goes to stderr, only when it is a terminal (quiet in scripts).
//! `restore` refuses a target that is not empty unless `--force`.
//!
//! In a Backup Pod, backup-svc passes the backup's id, manifest labels and source label through
//! `MIDPLANE_BACKUP_ID`, `MIDPLANE_BACKUP_LABELS` (JSON object) and `MIDPLANE_BACKUP_SOURCE`.

use std::io::{IsTerminal, Write};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::catalog::{CatalogError, Store};
use crate::keys::{BackupKey, KeyError};
use crate::manifest::Manifest;
use crate::plumbing::Stats;
use crate::restore::{RestoreReport, restore_backup, verify_backup};
use crate::storage::StorageError;
use crate::{Algorithm, BackupError, BackupOptions, RestoreError, RestoreOptions, create_backup};

#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error(transparent)]
    Key(#[from] KeyError),
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error(transparent)]
    Catalog(#[from] CatalogError),
    #[error(transparent)]
    Backup(#[from] BackupError),
    #[error(transparent)]
    Restore(#[from] RestoreError),
    #[error("writing output: {0}")]
    Output(std::io::Error),
    #[error("{var}: {reason}")]
    Env { var: &'static str, reason: String },
}

// Not `#[from]`: the message already carries the error's text, so it must not be a `source()`
// as well (printing the chain would repeat it).
impl From<std::io::Error> for CliError {
    fn from(e: std::io::Error) -> Self {
        CliError::Output(e)
    }
}

/// Set by backup-svc in a Backup Pod: the id it allocated for the backup, so the service
/// knows it before the Job runs (the command line stays exactly as documented).
pub const ENV_BACKUP_ID: &str = "MIDPLANE_BACKUP_ID";
/// Set by backup-svc in a Backup Pod: a JSON object of labels written into the manifest.
pub const ENV_BACKUP_LABELS: &str = "MIDPLANE_BACKUP_LABELS";
/// Set by backup-svc in a Backup Pod: what the manifest records as the source.
pub const ENV_BACKUP_SOURCE: &str = "MIDPLANE_BACKUP_SOURCE";
/// Set by backup-svc in a Backup Pod that reads a snapshot the database wrote: the manifest's
/// `snapshot` object as JSON (instance, role, replication_offset, term, method).
pub const ENV_BACKUP_SNAPSHOT: &str = "MIDPLANE_BACKUP_SNAPSHOT";

/// Id, labels and source label given to `backup create` through the environment.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EnvOverrides {
    pub id: Option<String>,
    pub labels: std::collections::BTreeMap<String, String>,
    pub source_label: Option<String>,
    pub snapshot: Option<crate::manifest::SnapshotSource>,
}

impl EnvOverrides {
    /// Reads [`ENV_BACKUP_ID`], [`ENV_BACKUP_LABELS`], [`ENV_BACKUP_SOURCE`] and
    /// [`ENV_BACKUP_SNAPSHOT`] through `get`.
    pub fn read(get: impl Fn(&str) -> Option<String>) -> Result<Self, CliError> {
        let id = get(ENV_BACKUP_ID).filter(|v| !v.is_empty());
        if let Some(id) = &id
            && !crate::manifest::valid_backup_id(id)
        {
            return Err(CliError::Env {
                var: ENV_BACKUP_ID,
                reason: format!("{id:?} is not a valid backup id"),
            });
        }
        let labels = match get(ENV_BACKUP_LABELS).filter(|v| !v.trim().is_empty()) {
            Some(json) => serde_json::from_str(&json).map_err(|e| CliError::Env {
                var: ENV_BACKUP_LABELS,
                reason: format!("expected a JSON object of strings: {e}"),
            })?,
            None => Default::default(),
        };
        let snapshot = match get(ENV_BACKUP_SNAPSHOT).filter(|v| !v.trim().is_empty()) {
            Some(json) => Some(serde_json::from_str(&json).map_err(|e| CliError::Env {
                var: ENV_BACKUP_SNAPSHOT,
                reason: format!(
                    "expected a JSON object with instance, role, replication_offset, term and method: {e}"
                ),
            })?),
            None => None,
        };
        Ok(Self {
            id,
            labels,
            source_label: get(ENV_BACKUP_SOURCE).filter(|v| !v.is_empty()),
            snapshot,
        })
    }
}

/// Whether to draw progress on stderr.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Progress {
    /// On when stderr is a terminal; scripts and logs get none.
    #[default]
    Auto,
    Never,
}

impl Progress {
    fn enabled(self) -> bool {
        self == Progress::Auto && std::io::stderr().is_terminal()
    }
}

/// One progress line: bytes done (of the total, when known), rate and time left, e.g.
/// `restore  412.3 of 1073.7 MB  38%  210.4 MB/s  ETA 0:03`.
pub fn progress_line(label: &str, done: u64, total: u64, secs: f64) -> String {
    let mb = |b: u64| b as f64 / 1e6;
    let rate = done as f64 / secs.max(1e-3);
    if total == 0 {
        return format!("{label}  {:.1} MB  {:.1} MB/s", mb(done), rate / 1e6);
    }
    let done = done.min(total);
    let pct = done * 100 / total;
    let eta = if done == total {
        "0:00".to_string()
    } else if rate < 1.0 {
        "?".to_string()
    } else {
        let left = ((total - done) as f64 / rate).ceil() as u64;
        match (left / 3600, left / 60 % 60, left % 60) {
            (0, m, s) => format!("{m}:{s:02}"),
            (h, m, s) => format!("{h}:{m:02}:{s:02}"),
        }
    };
    format!(
        "{label}  {:.1} of {:.1} MB  {pct}%  {:.1} MB/s  ETA {eta}",
        mb(done),
        mb(total),
        rate / 1e6
    )
}

/// Redraws the progress line on stderr four times a second until dropped, then clears it.
struct Ticker {
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Ticker {
    fn start(mode: Progress, label: &'static str, stats: Arc<Stats>) -> Self {
        if !mode.enabled() {
            return Self { task: None };
        }
        let started = Instant::now();
        let task = tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_millis(250)).await;
                let (done, total) = stats.progress.get();
                let line = progress_line(label, done, total, started.elapsed().as_secs_f64());
                // \x1b[K clears what a longer previous line left.
                eprint!("\r{line}\x1b[K");
            }
        });
        Self { task: Some(task) }
    }
}

impl Drop for Ticker {
    fn drop(&mut self) {
        if let Some(t) = self.task.take() {
            t.abort();
            eprint!("\r\x1b[K");
        }
    }
}

/// What `backup create` passes the pipeline: the `--encryption` flag and the Backup Pod's
/// environment (also what tests that play the Pod use, so they run what it runs).
pub fn create_options(encryption: Algorithm, env: EnvOverrides) -> BackupOptions {
    BackupOptions {
        algorithm: encryption,
        id: env.id,
        labels: env.labels,
        source_label: env.source_label,
        snapshot: env.snapshot,
        ..Default::default()
    }
}

/// `midplane backup create`: prints a summary, then the backup id as the last line.
pub async fn backup(
    source: &Path,
    to: &str,
    encryption: Algorithm,
    key_file: &Path,
    progress: Progress,
    out: &mut dyn Write,
) -> Result<Manifest, CliError> {
    crate::memory::bound_allocator_growth();
    let key = BackupKey::from_file(key_file)?;
    let store = Store::from_uri(to)?;
    let env = EnvOverrides::read(|k| std::env::var(k).ok())?;
    let opts = create_options(encryption, env);
    if progress.enabled() {
        // For the time left: a walk over the metadata only, cheap next to reading the data.
        if let Ok(total) = crate::backup::tar_size_estimate(source) {
            opts.stats.progress.set_total(total);
        }
    }
    let started = Instant::now();
    let m = {
        let _t = Ticker::start(progress, "backup", Arc::clone(&opts.stats));
        create_backup(&store, source, &key, &opts).await?
    };
    let secs = started.elapsed().as_secs_f64().max(1e-3);
    writeln!(
        out,
        "backed up {} ({} entries, {:.1} MB) to {} as {} MB encrypted with {} in {:.1} s ({:.1} MB/s)",
        m.source,
        m.sizes.entries,
        m.sizes.source_bytes as f64 / 1e6,
        store.describe(),
        m.sizes.stored_bytes as f64 / 1e6,
        m.algorithm,
        secs,
        m.sizes.source_bytes as f64 / 1e6 / secs
    )?;
    writeln!(out, "sha256 {}", m.sha256.archive)?;
    writeln!(out, "{}", m.id)?;
    Ok(m)
}

/// `midplane backup list`: one line per complete backup, oldest first; incomplete ones after.
pub async fn list(from: &str, out: &mut dyn Write) -> Result<Vec<Manifest>, CliError> {
    let store = Store::from_uri(from)?;
    let listing = store.list().await?;
    writeln!(
        out,
        "{:<26} {:<20} {:<11} {:>14} {:<32} SOURCE",
        "ID", "CREATED", "ALGORITHM", "STORED BYTES", "KEY ID"
    )?;
    for m in &listing.complete {
        writeln!(
            out,
            "{:<26} {:<20} {:<11} {:>14} {:<32} {}",
            m.id,
            m.started_at.format("%Y-%m-%dT%H:%M:%SZ"),
            m.algorithm.as_str(),
            m.sizes.stored_bytes,
            m.key_id,
            m.source
        )?;
    }
    for id in &listing.incomplete {
        writeln!(out, "{id:<26} (incomplete: no manifest)")?;
    }
    Ok(listing.complete)
}

/// `midplane backup verify`: reads the whole backup and checks it against its manifest.
pub async fn verify(
    from: &str,
    id: &str,
    key_file: &Path,
    progress: Progress,
    out: &mut dyn Write,
) -> Result<RestoreReport, CliError> {
    crate::memory::bound_allocator_growth();
    let key = BackupKey::from_file(key_file)?;
    let store = Store::from_uri(from)?;
    let opts = RestoreOptions::default();
    let report = {
        let _t = Ticker::start(progress, "verify", Arc::clone(&opts.stats));
        verify_backup(&store, id, &key, &opts).await?
    };
    writeln!(
        out,
        "backup {} OK: {} entries, archive sha256 {}, stored object sha256 {}",
        report.id, report.entries, report.archive_sha256, report.stored_sha256
    )?;
    Ok(report)
}

/// `midplane backup restore`: restores into `target`, which must be missing or empty unless
/// `force`; what is there is replaced only once the backup has been verified.
pub async fn restore(
    from: &str,
    id: &str,
    target: &Path,
    key_file: &Path,
    force: bool,
    progress: Progress,
    out: &mut dyn Write,
) -> Result<RestoreReport, CliError> {
    crate::memory::bound_allocator_growth();
    let key = BackupKey::from_file(key_file)?;
    let store = Store::from_uri(from)?;
    let opts = RestoreOptions {
        replace: force,
        ..Default::default()
    };
    let started = Instant::now();
    let report = {
        let _t = Ticker::start(progress, "restore", Arc::clone(&opts.stats));
        restore_backup(&store, id, &key, target, &opts).await?
    };
    let secs = started.elapsed().as_secs_f64().max(1e-3);
    writeln!(
        out,
        "restored backup {} into {} ({} entries, {:.1} MB in {:.1} s, {:.1} MB/s), verified sha256 {}",
        report.id,
        target.display(),
        report.entries,
        report.tar_bytes as f64 / 1e6,
        secs,
        report.tar_bytes as f64 / 1e6 / secs,
        report.archive_sha256
    )?;
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: std::collections::HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| map.get(k).cloned()
    }

    #[test]
    fn env_overrides_are_read_and_checked() {
        let o = EnvOverrides::read(env(&[
            (ENV_BACKUP_ID, "20261127T140512Z-abc123"),
            (ENV_BACKUP_LABELS, r#"{"midplane.dev/app":"cache"}"#),
            (ENV_BACKUP_SOURCE, "shop/cache-redis-0/cache-redis-0-0"),
        ]))
        .expect("valid");
        assert_eq!(o.id.as_deref(), Some("20261127T140512Z-abc123"));
        assert_eq!(
            o.labels.get("midplane.dev/app").map(String::as_str),
            Some("cache")
        );
        assert_eq!(
            o.source_label.as_deref(),
            Some("shop/cache-redis-0/cache-redis-0-0")
        );
        assert_eq!(
            EnvOverrides::read(env(&[])).expect("empty"),
            EnvOverrides::default()
        );
        let bad = EnvOverrides::read(env(&[(ENV_BACKUP_ID, "../x")])).expect_err("bad id");
        assert!(bad.to_string().contains(ENV_BACKUP_ID), "{bad}");
        let bad = EnvOverrides::read(env(&[(ENV_BACKUP_LABELS, "[1]")])).expect_err("bad labels");
        assert!(bad.to_string().contains(ENV_BACKUP_LABELS), "{bad}");
    }
}
