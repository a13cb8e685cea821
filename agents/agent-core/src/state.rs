//! The agent's durable memory: the highest term it has accepted, the role it
//! was told to hold, and the config it last applied. Kept in a file on the
//! data volume (written atomically) so a restarted agent, or a restarted old
//! primary, keeps obeying the newest decision.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::SystemTime;

#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("parse {path}: {source}")]
    Parse {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error("write {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("stale term {requested}: already holding term {held}")]
    Stale { held: i64, requested: i64 },
}

/// The role this instance was last told to hold.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Intent {
    /// No decision recorded yet: whatever the middleware started as.
    #[default]
    None,
    Primary,
    Replica {
        primary: String,
    },
    /// Refuse writes; `saved` keeps the setting the fence replaced.
    Fenced {
        saved: Option<String>,
    },
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentState {
    pub term: i64,
    pub intent: Intent,
    /// sha256 of the config file last applied (or found at start).
    pub config_hash: String,
    /// Parameters of that file, for directives the middleware cannot report.
    pub applied_config: BTreeMap<String, String>,
}

pub struct StateStore {
    path: PathBuf,
    /// The state and the file's mtime it was read at: agent 1 reads what
    /// agent 2 writes, so a changed file is picked up on the next access.
    state: Mutex<(AgentState, Option<SystemTime>)>,
}

impl StateStore {
    /// Opens the state file, starting empty when it does not exist.
    pub fn open(path: impl Into<PathBuf>) -> Result<Self, StateError> {
        let path = path.into();
        let state = match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|source| StateError::Parse {
                path: path.clone(),
                source,
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => AgentState::default(),
            Err(source) => return Err(StateError::Read { path, source }),
        };
        let mtime = mtime(&path);
        Ok(Self {
            path,
            state: Mutex::new((state, mtime)),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn get(&self) -> AgentState {
        self.lock().0.clone()
    }

    pub fn term(&self) -> i64 {
        self.lock().0.term
    }

    /// Accepts `term` when it is not older than the held one, records `intent`
    /// durably, and only then lets the caller act on the middleware.
    pub fn advance(&self, term: i64, intent: Intent) -> Result<AgentState, StateError> {
        let mut guard = self.lock();
        if term < guard.0.term {
            return Err(StateError::Stale {
                held: guard.0.term,
                requested: term,
            });
        }
        let mut next = guard.0.clone();
        next.term = term;
        next.intent = intent;
        write_atomic(&self.path, &next)?;
        *guard = (next.clone(), mtime(&self.path));
        Ok(next)
    }

    /// Updates the non-term parts (config snapshot) durably.
    pub fn update(&self, f: impl FnOnce(&mut AgentState)) -> Result<AgentState, StateError> {
        let mut guard = self.lock();
        let mut next = guard.0.clone();
        f(&mut next);
        write_atomic(&self.path, &next)?;
        *guard = (next.clone(), mtime(&self.path));
        Ok(next)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, (AgentState, Option<SystemTime>)> {
        // A panic while holding the lock cannot leave a half-written state:
        // the in-memory copy is only replaced after the file write succeeded.
        let mut guard = self
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let now = mtime(&self.path);
        if now.is_some() && now != guard.1 {
            // Written by the other agent of the pod; a torn read keeps the old copy.
            if let Ok(bytes) = std::fs::read(&self.path)
                && let Ok(state) = serde_json::from_slice(&bytes)
            {
                *guard = (state, now);
            }
        }
        guard
    }
}

fn mtime(path: &Path) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

fn write_atomic(path: &Path, state: &AgentState) -> Result<(), StateError> {
    let err = |source| StateError::Write {
        path: path.to_path_buf(),
        source,
    };
    let bytes = serde_json::to_vec_pretty(state).map_err(|e| err(std::io::Error::other(e)))?;
    // Both agents of a pod may write at once: each writer gets its own temp file.
    static SEQ: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let seq = SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let tmp = path.with_extension(format!("{}.{seq}.tmp", std::process::id()));
    {
        use std::io::Write;
        let mut f = std::fs::File::create(&tmp).map_err(err)?;
        f.write_all(&bytes).map_err(err)?;
        f.sync_all().map_err(err)?;
    }
    std::fs::rename(&tmp, path).map_err(err)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lower_term_is_refused_and_state_survives_reopen() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("agent-state.json");
        let store = StateStore::open(&path).expect("open");
        assert_eq!(store.term(), 0);
        store.advance(3, Intent::Primary).expect("advance to 3");
        let err = store
            .advance(
                2,
                Intent::Replica {
                    primary: "x:1".into(),
                },
            )
            .expect_err("stale");
        assert!(matches!(
            err,
            StateError::Stale {
                held: 3,
                requested: 2
            }
        ));
        let reopened = StateStore::open(&path).expect("reopen");
        assert_eq!(reopened.term(), 3);
        assert_eq!(reopened.get().intent, Intent::Primary);
    }

    #[test]
    fn corrupt_file_is_an_error_naming_it() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("agent-state.json");
        std::fs::write(&path, "{not json").expect("write");
        let err = StateStore::open(&path).err().expect("must fail");
        assert!(err.to_string().contains("agent-state.json"), "{err}");
    }
}
