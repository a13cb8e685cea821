//! Snapshot for Redis: a consistent RDB file Redis wrote itself, kept under
//! `<dir>/.midplane/snapshots/<id>/dump.rdb` for a backup Job to archive.
//!
//! The role report is read first, so the recorded offset is a lower bound of
//! what the file holds. Then `BGSAVE SCHEDULE`: "started" means Redis forked
//! our save before answering; "scheduled" means it runs once the AOF rewrite
//! in progress ends; "already in progress" is a save that began before our
//! role read, so it is waited for and ours asked for after it. The save is
//! done when `INFO persistence` shows no save running and either ours was
//! seen running or `rdb_saves` / `rdb_last_save_time` (LASTSAVE) advanced —
//! LASTSAVE alone has one-second resolution, so two saves in the same second
//! would look like none. The file is then hard-linked (copied when linking
//! fails): a later save renames a new file over `<dbfilename>` and leaves
//! the linked one as it was.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use super::RedisAdapter;
use crate::adapter::{Adapter, AdapterError, SnapshotOutcome, valid_snapshot_id};

/// Where snapshots live, relative to Redis' `dir`.
pub const SNAPSHOTS_DIR: &str = ".midplane/snapshots";
/// The file name inside a snapshot directory, whatever `dbfilename` is.
pub const SNAPSHOT_FILE: &str = "dump.rdb";
/// Snapshot directories older than this are removed on every Snapshot call:
/// a backup Job archives its directory within minutes, and a failed one must
/// not fill the data volume.
pub const KEEP_FOR: Duration = Duration::from_secs(24 * 3600);
const POLL: Duration = Duration::from_millis(20);
const OP: &str = "snapshot";

#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    #[error("snapshot_id {0:?}: must be 1..63 characters of [a-z0-9-]")]
    InvalidId(String),
    #[error("{action} {path}: {source}")]
    File {
        action: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
}

impl SnapshotError {
    pub fn is_invalid_id(&self) -> bool {
        matches!(self, SnapshotError::InvalidId(_))
    }
}

fn file_error(action: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> SnapshotError {
    let path = path.to_path_buf();
    move |source| SnapshotError::File {
        action,
        path,
        source,
    }
}

/// What `INFO persistence` says about background saves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Saves {
    running: bool,
    /// `rdb_saves` (Redis 7+), else -1.
    count: i64,
    /// `rdb_last_save_time` (what LASTSAVE answers).
    last: i64,
    ok: bool,
}

impl Saves {
    fn from_info(info: &HashMap<String, String>) -> Self {
        let int = |k: &str| info.get(k).and_then(|v| v.parse::<i64>().ok());
        Saves {
            running: int("rdb_bgsave_in_progress") == Some(1),
            count: int("rdb_saves").unwrap_or(-1),
            last: int("rdb_last_save_time").unwrap_or(0),
            ok: info.get("rdb_last_bgsave_status").map(String::as_str) == Some("ok"),
        }
    }

    fn advanced_from(&self, before: &Saves) -> bool {
        self.count > before.count || self.last > before.last
    }
}

impl RedisAdapter {
    pub(super) async fn do_snapshot(
        &self,
        id: &str,
        timeout: Duration,
    ) -> Result<SnapshotOutcome, AdapterError> {
        if !valid_snapshot_id(id) {
            return Err(SnapshotError::InvalidId(id.to_string()).into());
        }
        let _one = self.snapshots.lock().await;
        let deadline = Instant::now() + timeout;
        let role = self.role().await?;
        let role_observed_at = SystemTime::now();
        let dir = PathBuf::from(self.config_value("dir").await?);
        let dbfilename = self.config_value("dbfilename").await?;
        self.save(deadline, timeout).await?;
        let taken_at = SystemTime::now();
        let relative = Path::new(SNAPSHOTS_DIR).join(id);
        let target = dir.join(&relative);
        let file = keep(&dir.join(&dbfilename), &target)?;
        let bytes = std::fs::metadata(&file)
            .map_err(file_error("stat", &file))?
            .len();
        remove_old(&dir.join(SNAPSHOTS_DIR), id, KEEP_FOR);
        tracing::info!(id, path = %target.display(), bytes, term = role.term, offset = role.replication_offset, "snapshot taken");
        Ok(SnapshotOutcome {
            role,
            role_observed_at,
            path: relative.to_string_lossy().into_owned(),
            files: vec![SNAPSHOT_FILE.to_string()],
            taken_at,
            bytes,
        })
    }

    async fn config_value(&self, name: &str) -> Result<String, AdapterError> {
        let v = self.query(OP, &["CONFIG", "GET", name]).await?;
        v.clone()
            .into_array()
            .get(1)
            .and_then(crate::resp::Value::as_text)
            .ok_or_else(|| AdapterError::Middleware {
                operation: OP,
                message: format!("CONFIG GET {name} answered {v:?}"),
            })
    }

    async fn saves(&self) -> Result<Saves, AdapterError> {
        Ok(Saves::from_info(&self.info(OP, Some("persistence")).await?))
    }

    /// Asks for a background save that starts after this call and waits
    /// until it finished.
    async fn save(&self, deadline: Instant, timeout: Duration) -> Result<(), AdapterError> {
        let mut conn = self.dedicated(OP).await?;
        let (before, mut ran) = loop {
            let before = self.saves().await?;
            match conn.cmd(&["BGSAVE", "SCHEDULE"]).await {
                Ok(v) => {
                    let text = v.as_text().unwrap_or_default();
                    if text.contains("scheduled") {
                        break (before, false);
                    }
                    if text.contains("started") {
                        break (before, true);
                    }
                    return Err(AdapterError::Middleware {
                        operation: OP,
                        message: format!("BGSAVE answered {v:?}"),
                    });
                }
                Err(e) if e.to_string().contains("already in progress") => {
                    // Started before our role read: wait for it, then ask again.
                    while self.saves().await?.running {
                        expired(deadline, timeout, "an earlier background save to end")?;
                        tokio::time::sleep(POLL).await;
                    }
                }
                Err(e) => return Err(self.map_resp(OP, e)),
            }
        };
        loop {
            let now = self.saves().await?;
            ran |= now.running;
            if !now.running && (ran || now.advanced_from(&before)) {
                if now.ok {
                    return Ok(());
                }
                return Err(AdapterError::Middleware {
                    operation: OP,
                    message: "the background save failed (rdb_last_bgsave_status is not ok; see the redis-server log)".into(),
                });
            }
            expired(deadline, timeout, "the background save to finish")?;
            tokio::time::sleep(POLL).await;
        }
    }
}

fn expired(deadline: Instant, timeout: Duration, waiting: &str) -> Result<(), AdapterError> {
    if Instant::now() < deadline {
        return Ok(());
    }
    Err(AdapterError::Timeout {
        operation: OP,
        timeout,
        message: format!("still waiting for {waiting}"),
    })
}

/// Links (or copies) `source` into a fresh `target` directory as
/// [`SNAPSHOT_FILE`]; returns the new file.
fn keep(source: &Path, target: &Path) -> Result<PathBuf, SnapshotError> {
    if target.exists() {
        std::fs::remove_dir_all(target).map_err(file_error("replace", target))?;
    }
    std::fs::create_dir_all(target).map_err(file_error("create", target))?;
    let file = target.join(SNAPSHOT_FILE);
    if let Err(e) = std::fs::hard_link(source, &file) {
        tracing::debug!(error = %e, source = %source.display(), "hard link failed; copying");
        std::fs::copy(source, &file).map_err(file_error("copy", source))?;
    }
    Ok(file)
}

/// Removes entries of `snapshots` other than `keep` last modified more than
/// `older_than` ago. Failures are logged, never fatal: the snapshot taken is good.
fn remove_old(snapshots: &Path, keep: &str, older_than: Duration) {
    let Ok(entries) = std::fs::read_dir(snapshots) else {
        return;
    };
    for entry in entries.flatten() {
        if entry.file_name().to_str() == Some(keep) {
            continue;
        }
        let path = entry.path();
        let old = entry
            .metadata()
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.elapsed().ok())
            .is_some_and(|age| age > older_than);
        if !old {
            continue;
        }
        let removed = if path.is_dir() {
            std::fs::remove_dir_all(&path)
        } else {
            std::fs::remove_file(&path)
        };
        match removed {
            Ok(()) => tracing::info!(path = %path.display(), "removed an old snapshot"),
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "cannot remove an old snapshot");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn a_save_counts_as_new_when_the_counter_or_lastsave_moved() {
        let before = Saves::from_info(&info(&[
            ("rdb_bgsave_in_progress", "0"),
            ("rdb_saves", "3"),
            ("rdb_last_save_time", "100"),
            ("rdb_last_bgsave_status", "ok"),
        ]));
        assert!(!before.running && before.ok && before.count == 3);
        let same_second = Saves { count: 4, ..before };
        assert!(same_second.advanced_from(&before), "rdb_saves moved");
        let old_redis = Saves {
            count: -1,
            last: 101,
            ..before
        };
        let old_before = Saves {
            count: -1,
            ..before
        };
        assert!(old_redis.advanced_from(&old_before), "LASTSAVE moved");
        assert!(!before.advanced_from(&before));
        let failed = Saves::from_info(&info(&[("rdb_last_bgsave_status", "err")]));
        assert!(!failed.ok);
    }

    #[test]
    fn keep_replaces_the_directory_and_old_ones_go() {
        let dir = tempfile::tempdir().expect("tempdir");
        let source = dir.path().join("dump.rdb");
        std::fs::write(&source, b"REDIS0010-first").expect("write");
        let snaps = dir.path().join(SNAPSHOTS_DIR);
        let target = snaps.join("b1");
        std::fs::create_dir_all(&target).expect("mkdir");
        std::fs::write(target.join("stale"), b"x").expect("write");
        let file = keep(&source, &target).expect("keep");
        assert!(!target.join("stale").exists(), "same id is replaced");
        // A later save renames a new file over the source: the kept one stays.
        let next = dir.path().join("temp-1.rdb");
        std::fs::write(&next, b"REDIS0010-second").expect("write");
        std::fs::rename(&next, &source).expect("rename");
        assert_eq!(std::fs::read(&file).expect("read"), b"REDIS0010-first");

        std::fs::create_dir_all(snaps.join("b0")).expect("mkdir");
        remove_old(&snaps, "b1", Duration::from_secs(3600));
        assert!(snaps.join("b0").exists(), "young snapshots stay");
        std::thread::sleep(Duration::from_millis(20));
        remove_old(&snaps, "b1", Duration::from_millis(10));
        assert!(!snaps.join("b0").exists(), "old snapshots go");
        assert!(file.exists(), "the current one is kept whatever its age");
    }
}
