//! ReloadConfig for Redis: wait for the mounted file, diff it against the
//! running values, apply every dynamic change in one atomic CONFIG SET or none.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use super::{RedisAdapter, config};
use crate::adapter::{Adapter, AdapterError, ParameterChange, ReloadOutcome, ReloadRequest};
use crate::resp::Connection;

impl RedisAdapter {
    pub(super) async fn do_reload_config(
        &self,
        request: ReloadRequest,
    ) -> Result<ReloadOutcome, AdapterError> {
        const OP: &str = "reload config";
        let _ops = self.ops.lock().await;
        let path = request.config_path.clone();
        let started = Instant::now();
        let hash = loop {
            let found = match config::file_hash(&path) {
                Ok(h) => h,
                Err(config::ConfigFileError::Read { source, .. })
                    if source.kind() == std::io::ErrorKind::NotFound =>
                {
                    "(missing)".to_string()
                }
                Err(e) => return Err(e.into()),
            };
            if request.content_hash.is_empty() || found.eq_ignore_ascii_case(&request.content_hash)
            {
                break found;
            }
            if started.elapsed() >= request.wait_timeout {
                return Err(config::ConfigFileError::HashMismatch {
                    path,
                    expected: request.content_hash,
                    found,
                    waited_ms: started.elapsed().as_millis() as u64,
                }
                .into());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        let text =
            std::fs::read_to_string(&path).map_err(|source| config::ConfigFileError::Read {
                path: path.clone(),
                source,
            })?;
        let parsed = config::parse(&path, &text)?;
        let mut args = vec!["CONFIG", "GET"];
        args.extend(
            parsed
                .keys()
                .filter(|k| !config::AGENT_MANAGED.contains(&k.as_str()))
                .map(String::as_str),
        );
        let running: BTreeMap<String, String> = if args.len() > 2 {
            let items = self.query(OP, &args).await?.into_array();
            items
                .chunks(2)
                .filter_map(|kv| Some((kv.first()?.as_text()?, kv.get(1)?.as_text()?)))
                .collect()
        } else {
            BTreeMap::new()
        };
        let last_applied = self.state.get().applied_config;
        let (dynamic, restart) =
            config::diff(&parsed, &running, &last_applied, &request.restart_required);
        if !restart.is_empty() {
            return Ok(ReloadOutcome {
                applied: false,
                requires_restart: true,
                applied_changes: Vec::new(),
                restart_required_changes: restart,
                config_hash: self.config_hash(),
            });
        }
        if !dynamic.is_empty() {
            // Redis 7 applies a multi-parameter CONFIG SET atomically: on any
            // failure every parameter keeps its old value.
            let mut set = vec!["CONFIG", "SET"];
            for c in &dynamic {
                set.push(&c.name);
                set.push(&c.new_value);
            }
            let mut conn = self.dedicated(OP).await?;
            if let Err(e) = conn.cmd(&set).await {
                if e.is_unreachable() {
                    return Err(self.map_resp(OP, e));
                }
                let message = e.to_string();
                return Err(AdapterError::Refused {
                    operation: OP,
                    parameters: refused(&message, &dynamic),
                    message,
                });
            }
            self.verify(&mut conn, &dynamic).await?;
        }
        self.state.update(|s| {
            s.config_hash = hash.clone();
            s.applied_config = parsed;
        })?;
        Ok(ReloadOutcome {
            applied: true,
            requires_restart: false,
            applied_changes: dynamic,
            restart_required_changes: Vec::new(),
            config_hash: hash,
        })
    }
}

impl RedisAdapter {
    /// Reads back what was set: the reload is only done when every running
    /// value is the new one.
    async fn verify(
        &self,
        conn: &mut Connection,
        changes: &[ParameterChange],
    ) -> Result<(), AdapterError> {
        const OP: &str = "reload config";
        let mut get = vec!["CONFIG", "GET"];
        get.extend(changes.iter().map(|c| c.name.as_str()));
        let running: BTreeMap<String, String> = conn
            .cmd(&get)
            .await
            .map_err(|e| self.map_resp(OP, e))?
            .into_array()
            .chunks(2)
            .filter_map(|kv| Some((kv.first()?.as_text()?, kv.get(1)?.as_text()?)))
            .collect();
        let differs: Vec<String> = changes
            .iter()
            .filter(|c| {
                running
                    .get(&c.name)
                    .is_none_or(|v| config::normalize(v) != config::normalize(&c.new_value))
            })
            .map(|c| {
                format!(
                    "{} is {:?}, not {:?}",
                    c.name,
                    running.get(&c.name).cloned().unwrap_or_default(),
                    c.new_value
                )
            })
            .collect();
        if differs.is_empty() {
            Ok(())
        } else {
            Err(AdapterError::Middleware {
                operation: OP,
                message: format!("CONFIG SET answered OK but {}", differs.join("; ")),
            })
        }
    }
}

/// The parameters a refused `CONFIG SET` names ("... related to argument
/// 'maxmemory' ..."), else every parameter it tried to set.
fn refused(message: &str, tried: &[ParameterChange]) -> Vec<String> {
    let named: Vec<String> = tried
        .iter()
        .filter(|c| message.contains(&format!("'{}'", c.name)))
        .map(|c| c.name.clone())
        .collect();
    if named.is_empty() {
        tried.iter().map(|c| c.name.clone()).collect()
    } else {
        named
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn change(name: &str) -> ParameterChange {
        ParameterChange {
            name: name.into(),
            old_value: "a".into(),
            new_value: "b".into(),
        }
    }

    #[test]
    fn a_refusal_names_the_parameter_redis_names() {
        let tried = [change("maxmemory"), change("notify-keyspace-events")];
        let msg = "ERR CONFIG SET failed (possibly related to argument 'notify-keyspace-events') - Invalid event class character. Use 'Ag$lshzxeKEtmdn'.";
        assert_eq!(refused(msg, &tried), ["notify-keyspace-events"]);
        assert_eq!(
            refused("ERR something else", &tried),
            ["maxmemory", "notify-keyspace-events"],
            "unnamed: every parameter tried"
        );
    }
}
