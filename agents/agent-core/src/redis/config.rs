//! redis.conf handling for ReloadConfig: parse the mounted file the way
//! redis-server does (sdssplitargs-style quoting), compare it with the running
//! values (normalising memory units), and classify each change as dynamic
//! (CONFIG SET) or restart-required.

use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum ConfigFileError {
    #[error("read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}:{line}: {message}")]
    Syntax {
        path: PathBuf,
        line: usize,
        message: String,
    },
    #[error(
        "{path} still has sha256 {found} after waiting {waited_ms} ms; expected {expected} (the mounted ConfigMap has not caught up)"
    )]
    HashMismatch {
        path: PathBuf,
        expected: String,
        found: String,
        waited_ms: u64,
    },
}

/// Directives redis-server only reads at start (CONFIG SET refuses them), and
/// file-only directives CONFIG GET cannot report.
pub const RESTART_REQUIRED: &[&str] = &[
    "daemonize",
    "supervised",
    "pidfile",
    "logfile",
    "syslog-enabled",
    "syslog-ident",
    "syslog-facility",
    "databases",
    "io-threads",
    "io-threads-do-reads",
    "cluster-enabled",
    "cluster-config-file",
    "cluster-port",
    "unixsocket",
    "unixsocketperm",
    "tcp-backlog",
    "aclfile",
    "appendfilename",
    "appenddirname",
    "always-show-logo",
    "set-proc-title",
    "enable-protected-configs",
    "enable-debug-command",
    "enable-module-command",
    "disable-thp",
    "include",
    "loadmodule",
    "rename-command",
    "user",
];

/// Directives the agent itself manages (replication follows the failover
/// decisions, not the file), so a reload never touches them.
pub const AGENT_MANAGED: &[&str] = &["replicaof", "slaveof"];

/// sha256 hex of a file's bytes.
pub fn file_hash(path: &Path) -> Result<String, ConfigFileError> {
    let bytes = std::fs::read(path).map_err(|source| ConfigFileError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    Ok(hex::encode(Sha256::digest(&bytes)))
}

/// Parses redis.conf text into `name -> value` (names lower-cased; a directive
/// given on several lines, like `save`, has its values joined by spaces).
pub fn parse(path: &Path, text: &str) -> Result<BTreeMap<String, String>, ConfigFileError> {
    let mut out: BTreeMap<String, String> = BTreeMap::new();
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let args = split_args(line).map_err(|message| ConfigFileError::Syntax {
            path: path.to_path_buf(),
            line: i + 1,
            message,
        })?;
        let Some((name, values)) = args.split_first() else {
            continue;
        };
        let name = name.to_ascii_lowercase();
        let value = values.join(" ");
        match out.get_mut(&name) {
            Some(prev) if !value.is_empty() => {
                if !prev.is_empty() {
                    prev.push(' ');
                }
                prev.push_str(&value);
            }
            Some(_) => {}
            None => {
                out.insert(name, value);
            }
        }
    }
    Ok(out)
}

/// Splits one line like redis' sdssplitargs: whitespace separates, "double"
/// quotes take \-escapes, 'single' quotes are literal.
fn split_args(line: &str) -> Result<Vec<String>, String> {
    let mut args = Vec::new();
    let mut chars = line.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        let Some(&first) = chars.peek() else {
            return Ok(args);
        };
        let mut cur = String::new();
        if first == '"' || first == '\'' {
            chars.next();
            let mut closed = false;
            while let Some(c) = chars.next() {
                if c == first {
                    closed = true;
                    break;
                }
                if c == '\\' && first == '"' {
                    match chars.next() {
                        Some('n') => cur.push('\n'),
                        Some('t') => cur.push('\t'),
                        Some('r') => cur.push('\r'),
                        Some(o) => cur.push(o),
                        None => break,
                    }
                } else {
                    cur.push(c);
                }
            }
            if !closed {
                return Err(format!("unbalanced {first} quote"));
            }
            if chars.peek().is_some_and(|c| !c.is_whitespace()) {
                return Err("closing quote must be followed by a space".into());
            }
        } else {
            while let Some(&c) = chars.peek() {
                if c.is_whitespace() {
                    break;
                }
                cur.push(c);
                chars.next();
            }
        }
        args.push(cur);
    }
}

/// Canonical form for comparing a file value with a CONFIG GET answer:
/// lower-case tokens, memory sizes in bytes ("64mb" → "67108864").
pub fn normalize(value: &str) -> String {
    value
        .split_whitespace()
        .map(|t| {
            let t = t.to_ascii_lowercase();
            memory_bytes(&t).map(|b| b.to_string()).unwrap_or(t)
        })
        .collect::<Vec<_>>()
        .join(" ")
}

fn memory_bytes(token: &str) -> Option<u64> {
    let split = token.find(|c: char| !c.is_ascii_digit())?;
    let (num, unit) = token.split_at(split);
    let n: u64 = num.parse().ok()?;
    let mult = match unit {
        "k" => 1_000,
        "kb" => 1_024,
        "m" => 1_000_000,
        "mb" => 1_048_576,
        "g" => 1_000_000_000,
        "gb" => 1_073_741_824,
        _ => return None,
    };
    n.checked_mul(mult)
}

/// The changes between a parsed file and the running values, split into
/// (dynamic, restart-required). `running` holds what CONFIG GET reported;
/// parameters it cannot report are compared with `last_applied`.
pub fn diff(
    file: &BTreeMap<String, String>,
    running: &BTreeMap<String, String>,
    last_applied: &BTreeMap<String, String>,
    restart_required: &[String],
) -> (Vec<super::ParameterChange>, Vec<super::ParameterChange>) {
    let mut dynamic = Vec::new();
    let mut restart = Vec::new();
    for (name, new_value) in file {
        if AGENT_MANAGED.contains(&name.as_str()) {
            continue;
        }
        let old_value = match running.get(name).or_else(|| last_applied.get(name)) {
            Some(v) => v.clone(),
            // Neither reported nor seen before: the middleware read it at start.
            None => continue,
        };
        if normalize(&old_value) == normalize(new_value) {
            continue;
        }
        let change = super::ParameterChange {
            name: name.clone(),
            old_value,
            new_value: new_value.clone(),
        };
        let is_static = RESTART_REQUIRED.contains(&name.as_str())
            || !running.contains_key(name)
            || restart_required
                .iter()
                .any(|r| r.eq_ignore_ascii_case(name));
        if is_static {
            restart.push(change);
        } else {
            dynamic.push(change);
        }
    }
    (dynamic, restart)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(text: &str) -> BTreeMap<String, String> {
        parse(Path::new("redis.conf"), text).expect("parse")
    }

    #[test]
    fn parses_quotes_repeats_and_comments() {
        let m = p(
            "# c\nsave 900 1\nsave 300 10\nMaxmemory 64mb\nrequirepass \"a b\\\"c\"\nappendonly 'no'\ndir \"\"\n",
        );
        assert_eq!(m["save"], "900 1 300 10");
        assert_eq!(m["maxmemory"], "64mb");
        assert_eq!(m["requirepass"], "a b\"c");
        assert_eq!(m["appendonly"], "no");
        assert_eq!(m["dir"], "");
    }

    #[test]
    fn unbalanced_quote_names_the_line() {
        let err = parse(
            Path::new("/etc/redis/redis.conf"),
            "hz 10\nrequirepass \"x\n",
        )
        .expect_err("must fail");
        assert!(err.to_string().contains("/etc/redis/redis.conf:2"), "{err}");
    }

    #[test]
    fn memory_units_compare_equal_to_bytes() {
        assert_eq!(normalize("64mb"), "67108864");
        assert_eq!(normalize("1GB"), "1073741824");
        assert_eq!(normalize("YES"), "yes");
        assert_eq!(
            normalize("replica 256mb 64mb 60"),
            "replica 268435456 67108864 60"
        );
    }

    #[test]
    fn diff_splits_dynamic_and_static() {
        let file = p("maxmemory 64mb\nhz 20\ndatabases 32\nreplicaof 1.2.3.4 6379\ntimeout 0\n");
        let running: BTreeMap<_, _> = [
            ("maxmemory", "0"),
            ("hz", "10"),
            ("databases", "16"),
            ("timeout", "0"),
        ]
        .into_iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect();
        let (dynamic, restart) = diff(&file, &running, &BTreeMap::new(), &["hz".into()]);
        let names = |v: &[super::super::ParameterChange]| {
            v.iter().map(|c| c.name.clone()).collect::<Vec<_>>()
        };
        assert_eq!(names(&dynamic), vec!["maxmemory"]);
        assert_eq!(names(&restart), vec!["databases", "hz"]);
    }
}
