//! `adapter-agent --adapter redis prepare-data`: makes a restored RDB load
//! into a Redis that runs with `appendonly yes`.
//!
//! Redis 7 with `appendonly yes` loads only the AOF named by the manifest in
//! `<dir>/<appenddirname>` and ignores `<dbfilename>` when that directory has
//! no manifest: a restored dump.rdb would start an empty server. An AOF
//! directory holding the RDB as its base file plus a one-line manifest
//! (`file <appendfilename>.1.base.rdb seq 1 type b`) loads it; Redis adds its
//! incremental file itself. An init container runs this after a restore,
//! before Redis starts.

use std::path::{Path, PathBuf};

use super::config;

#[derive(Debug, thiserror::Error)]
pub enum PrepareDataError {
    #[error("{action} {path}: {source}")]
    File {
        action: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Config(#[from] config::ConfigFileError),
    #[error("{path}: {message}")]
    Invalid { path: PathBuf, message: String },
}

fn file_error(
    action: &'static str,
    path: &Path,
) -> impl FnOnce(std::io::Error) -> PrepareDataError {
    let path = path.to_path_buf();
    move |source| PrepareDataError::File {
        action,
        path,
        source,
    }
}

/// A name from the config file that must stay a plain file name inside the
/// data directory, as Redis requires of these three.
fn file_name(
    parsed: &std::collections::BTreeMap<String, String>,
    key: &str,
    default: &str,
    config_path: &Path,
) -> Result<String, PrepareDataError> {
    let name = parsed
        .get(key)
        .filter(|v| !v.is_empty())
        .cloned()
        .unwrap_or_else(|| default.to_string());
    if name.contains('/') || name == "." || name == ".." {
        return Err(PrepareDataError::Invalid {
            path: config_path.to_path_buf(),
            message: format!("{key} {name:?} must be a plain file name"),
        });
    }
    Ok(name)
}

/// Turns `<data>/<dbfilename>` into the base of a new AOF when `config`
/// says `appendonly yes` and `<data>/<appenddirname>` has no manifest;
/// otherwise changes nothing. Returns one line saying what it did.
///
/// The RDB is linked (copied when linking fails) into the AOF directory and
/// the manifest written (through a temporary file) before `<dbfilename>` is
/// removed, so an interrupted run leaves either the RDB alone (a rerun
/// converts it) or a complete AOF (which Redis loads).
pub fn prepare_data(data: &Path, config_path: &Path) -> Result<String, PrepareDataError> {
    let text =
        std::fs::read_to_string(config_path).map_err(|source| config::ConfigFileError::Read {
            path: config_path.to_path_buf(),
            source,
        })?;
    let parsed = config::parse(config_path, &text)?;
    let meta = std::fs::metadata(data).map_err(file_error("data directory", data))?;
    if !meta.is_dir() {
        return Err(PrepareDataError::Invalid {
            path: data.to_path_buf(),
            message: "is not a directory".into(),
        });
    }
    let appendonly = parsed
        .get("appendonly")
        .is_some_and(|v| v.eq_ignore_ascii_case("yes"));
    if !appendonly {
        return Ok(format!(
            "prepare-data: nothing to do: {} does not say appendonly yes",
            config_path.display()
        ));
    }
    let dbfilename = file_name(&parsed, "dbfilename", "dump.rdb", config_path)?;
    let dirname = file_name(&parsed, "appenddirname", "appendonlydir", config_path)?;
    let aof = file_name(&parsed, "appendfilename", "appendonly.aof", config_path)?;
    let rdb = data.join(&dbfilename);
    let aof_dir = data.join(&dirname);
    let manifest = aof_dir.join(format!("{aof}.manifest"));
    if manifest.exists() {
        return Ok(format!(
            "prepare-data: nothing to do: {} exists (Redis loads that AOF)",
            manifest.display()
        ));
    }
    if !rdb.exists() {
        return Ok(format!(
            "prepare-data: nothing to do: no {} to load",
            rdb.display()
        ));
    }
    std::fs::create_dir_all(&aof_dir).map_err(file_error("create", &aof_dir))?;
    let base_name = format!("{aof}.1.base.rdb");
    let base = aof_dir.join(&base_name);
    if base.exists() {
        std::fs::remove_file(&base).map_err(file_error("replace", &base))?;
    }
    if std::fs::hard_link(&rdb, &base).is_err() {
        std::fs::copy(&rdb, &base).map_err(file_error("copy", &rdb))?;
    }
    let temp = aof_dir.join(format!("{aof}.manifest.tmp"));
    std::fs::write(&temp, format!("file {base_name} seq 1 type b\n"))
        .map_err(file_error("write", &temp))?;
    std::fs::rename(&temp, &manifest).map_err(file_error("write", &manifest))?;
    std::fs::remove_file(&rdb).map_err(file_error("remove", &rdb))?;
    Ok(format!(
        "prepare-data: moved {} to {} and wrote {} (appendonly yes)",
        rdb.display(),
        base.display(),
        manifest.display()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn setup(conf: &str) -> (tempfile::TempDir, PathBuf, PathBuf) {
        let dir = tempfile::tempdir().expect("tempdir");
        let data = dir.path().join("data");
        std::fs::create_dir(&data).expect("mkdir");
        let conf_path = dir.path().join("redis.conf");
        std::fs::write(&conf_path, conf).expect("conf");
        (dir, data, conf_path)
    }

    #[test]
    fn names_from_the_config_are_respected_and_a_rerun_changes_nothing() {
        let (_d, data, conf) = setup(
            "appendonly yes\nappenddirname \"aof\"\nappendfilename log.aof\ndbfilename x.rdb\n",
        );
        std::fs::write(data.join("x.rdb"), b"REDIS-bytes").expect("rdb");
        let line = prepare_data(&data, &conf).expect("prepare");
        assert!(line.contains("moved"), "{line}");
        assert_eq!(
            std::fs::read_to_string(data.join("aof/log.aof.manifest")).expect("manifest"),
            "file log.aof.1.base.rdb seq 1 type b\n"
        );
        assert_eq!(
            std::fs::read(data.join("aof/log.aof.1.base.rdb")).expect("base"),
            b"REDIS-bytes"
        );
        assert!(!data.join("x.rdb").exists(), "the RDB was moved");
        std::fs::write(data.join("x.rdb"), b"newer").expect("rdb");
        let line = prepare_data(&data, &conf).expect("rerun");
        assert!(
            line.contains("nothing to do") && line.contains("manifest"),
            "{line}"
        );
        assert_eq!(
            std::fs::read(data.join("aof/log.aof.1.base.rdb")).expect("base"),
            b"REDIS-bytes",
            "an existing AOF is never touched"
        );
    }

    #[test]
    fn errors_name_the_file() {
        let (_d, data, conf) = setup("appendonly yes\n");
        let missing = conf.with_file_name("nope.conf");
        let err = prepare_data(&data, &missing).expect_err("no config");
        assert!(err.to_string().contains("nope.conf"), "{err}");
        let err = prepare_data(&data.join("gone"), &conf).expect_err("no data dir");
        assert!(err.to_string().contains("gone"), "{err}");
        std::fs::write(&conf, "appendonly yes\nappenddirname ../x\n").expect("conf");
        std::fs::write(data.join("dump.rdb"), b"r").expect("rdb");
        let err = prepare_data(&data, &conf).expect_err("bad name");
        assert!(err.to_string().contains("redis.conf"), "{err}");
        std::fs::write(&conf, "appendonly yes\n").expect("conf");
        std::fs::remove_file(data.join("dump.rdb")).expect("rm");
        let line = prepare_data(&data, &conf).expect("no rdb");
        assert!(
            line.contains("nothing to do") && line.contains("dump.rdb"),
            "{line}"
        );
    }
}
