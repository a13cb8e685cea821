//! Role changes: planned switchover, promotion, following, fencing, and the
//! enforcer that re-applies the last decision.

use std::time::{Duration, Instant};

use super::{FENCE_MIN_REPLICAS, RedisAdapter, parse_info, split_address};
use crate::adapter::{Adapter, AdapterError, Role, RoleState, SwitchoverOutcome};
use crate::resp::{Connection, Value};
use crate::state::Intent;

impl RedisAdapter {
    /// Planned switchover without losing acknowledged writes: pause writes
    /// here, wait until the candidate has processed this primary's final
    /// offset (read on the candidate itself), promote it, follow it, unpause.
    /// Paused writers then get READONLY and retry on the new primary; nothing
    /// they were told OK is missing there.
    ///
    /// Redis 7's `FAILOVER TO` does the same but learns the candidate's
    /// offset only from its once-a-second ACK (the primary sends no GETACK
    /// while writes are paused), which holds writes for up to a second under
    /// load; reading the offset directly keeps the pause to milliseconds.
    pub(super) async fn do_switchover(
        &self,
        candidate: &str,
        term: i64,
        timeout: Duration,
    ) -> Result<SwitchoverOutcome, AdapterError> {
        const OP: &str = "switchover";
        let _ops = self.ops.lock().await;
        let (host, port) = split_address(candidate, OP)?;
        let mut before = self.role().await?;
        if before.role != Role::Primary {
            return Err(AdapterError::Rejected {
                operation: OP,
                message: format!("this instance is {}, not the primary", before.role.as_str()),
            });
        }
        // A replica that just (re)connected is still syncing: give it a
        // moment (part of the caller's timeout) to come online before refusing.
        let online = |s: &RoleState| {
            s.replicas
                .iter()
                .any(|r| r.address == candidate && r.online)
        };
        let waited = Instant::now();
        let settle = waited + (timeout / 2).min(Duration::from_secs(2));
        while !online(&before) && Instant::now() < settle {
            tokio::time::sleep(Duration::from_millis(20)).await;
            before = self.role().await?;
        }
        // What the wait used is gone from the pause and catch-up that follow.
        let timeout = timeout.saturating_sub(waited.elapsed());
        if !online(&before) {
            return Err(AdapterError::Rejected {
                operation: OP,
                message: format!(
                    "{candidate} is not an online replica of this primary (replicas: {:?})",
                    before.replicas
                ),
            });
        }
        let mut cand = Connection::connect(candidate, self.password.as_deref(), self.timeout)
            .await
            .map_err(|e| AdapterError::Unreachable {
                address: candidate.to_string(),
                message: e.to_string(),
            })?;
        self.advance(
            term,
            Intent::Replica {
                primary: candidate.to_string(),
            },
        )?;
        let mut conn = self.dedicated(OP).await?;
        let pause_ms = (timeout + Duration::from_secs(2)).as_millis().to_string();
        let started = Instant::now();
        if let Err(e) = conn.cmd(&["CLIENT", "PAUSE", &pause_ms, "WRITE"]).await {
            self.advance(term, Intent::Primary)?;
            return Err(self.map_resp(OP, e));
        }
        let caught_up = self.wait_caught_up(&mut conn, &mut cand, timeout).await;
        if let Err(e) = caught_up {
            let _ = conn.cmd(&["CLIENT", "UNPAUSE"]).await;
            self.advance(term, Intent::Primary)?;
            return Err(e);
        }
        if let Err(e) = cand.cmd(&["REPLICAOF", "NO", "ONE"]).await {
            let _ = conn.cmd(&["CLIENT", "UNPAUSE"]).await;
            self.advance(term, Intent::Primary)?;
            return Err(AdapterError::Middleware {
                operation: OP,
                message: format!("promoting {candidate}: {e}"),
            });
        }
        // From here the candidate is primary: this instance must follow it
        // even if unpausing fails, and the enforcer insists if Redis resists.
        let demoted = conn.cmd(&["REPLICAOF", host, port]).await;
        let _ = conn.cmd(&["CLIENT", "UNPAUSE"]).await;
        let write_pause = started.elapsed();
        demoted.map_err(|e| self.map_resp(OP, e))?;
        let after = self.role().await?;
        Ok(SwitchoverOutcome {
            role: after,
            write_pause,
        })
    }

    /// Polls until the candidate's processed offset reaches this primary's.
    async fn wait_caught_up(
        &self,
        primary: &mut Connection,
        candidate: &mut Connection,
        timeout: Duration,
    ) -> Result<(), AdapterError> {
        const OP: &str = "switchover";
        let started = Instant::now();
        loop {
            let p = primary
                .text(&["INFO", "replication"])
                .await
                .map_err(|e| self.map_resp(OP, e))?;
            let c = candidate
                .text(&["INFO", "replication"])
                .await
                .map_err(|e| AdapterError::Unreachable {
                    address: candidate.addr().to_string(),
                    message: e.to_string(),
                })?;
            let (p, c) = (parse_info(&p), parse_info(&c));
            let offset = |m: &std::collections::HashMap<String, String>, k: &str| {
                m.get(k).and_then(|v| v.parse::<i64>().ok())
            };
            let target = offset(&p, "master_repl_offset");
            let reached = offset(&c, "slave_repl_offset");
            let link_up = c.get("master_link_status").map(String::as_str) == Some("up");
            if let (Some(t), Some(r)) = (target, reached)
                && link_up
                && r >= t
            {
                return Ok(());
            }
            if started.elapsed() >= timeout {
                return Err(AdapterError::Timeout {
                    operation: OP,
                    timeout,
                    message: format!(
                        "candidate {} reached offset {reached:?} of {target:?} (link up: {link_up}); writes resumed here",
                        candidate.addr()
                    ),
                });
            }
            tokio::time::sleep(Duration::from_micros(500)).await;
        }
    }

    pub(super) async fn do_promote(&self, term: i64) -> Result<RoleState, AdapterError> {
        const OP: &str = "promote";
        let _ops = self.ops.lock().await;
        let mut conn = self.dedicated(OP).await?;
        self.lift_fence(&mut conn).await?;
        self.advance(term, Intent::Primary)?;
        conn.cmd(&["REPLICAOF", "NO", "ONE"])
            .await
            .map_err(|e| self.map_resp(OP, e))?;
        self.role().await
    }

    pub(super) async fn do_follow(
        &self,
        primary: &str,
        term: i64,
    ) -> Result<RoleState, AdapterError> {
        let _ops = self.ops.lock().await;
        self.follow_locked(primary, term, "follow").await
    }

    pub(super) async fn do_fence(
        &self,
        new_primary: Option<&str>,
        term: i64,
    ) -> Result<RoleState, AdapterError> {
        const OP: &str = "fence";
        let _ops = self.ops.lock().await;
        if let Some(primary) = new_primary {
            return self.follow_locked(primary, term, OP).await;
        }
        let saved = match self
            .query(OP, &["CONFIG", "GET", "min-replicas-to-write"])
            .await
        {
            Ok(v) => v.into_array().get(1).and_then(Value::as_text),
            Err(_) => None,
        };
        let saved = match self.state.get().intent {
            // Fencing twice must keep the original setting, not the fence value.
            Intent::Fenced { saved: first } => first,
            _ => saved.filter(|s| s != FENCE_MIN_REPLICAS),
        };
        self.advance(term, Intent::Fenced { saved })?;
        let mut conn = self.dedicated(OP).await?;
        conn.cmd(&[
            "CONFIG",
            "SET",
            "min-replicas-to-write",
            FENCE_MIN_REPLICAS,
            "min-replicas-max-lag",
            "10",
        ])
        .await
        .map_err(|e| self.map_resp(OP, e))?;
        self.role().await
    }

    pub(super) async fn do_enforce(&self) -> Result<Option<String>, AdapterError> {
        const OP: &str = "enforce";
        // A role change in progress owns the middleware; look again next tick.
        let Ok(_ops) = self.ops.try_lock() else {
            return Ok(None);
        };
        let state = self.state.get();
        match &state.intent {
            Intent::Replica { primary } => {
                // Resolved: a replica started with `--replicaof <name>` follows
                // the same primary as the recorded address.
                // A middleware running as a primary is reported as a replica
                // under this intent (no primary claim): ask Redis itself.
                let current = self.role().await?;
                let info = self.info(OP, Some("replication")).await?;
                let replicating = info.get("role").map(String::as_str) == Some("slave");
                if replicating && current.primary_address.as_deref() == Some(primary.as_str()) {
                    return Ok(None);
                }
                // Only follow a primary that is one: during a switchover this
                // instance may be promoted before its new decision arrives.
                if !self.is_primary_at(primary).await {
                    return Ok(None);
                }
                let mut conn = self.dedicated(OP).await?;
                self.replicaof(&mut conn, primary, OP).await?;
                Ok(Some(format!(
                    "was {} under term {}; now follows {primary}",
                    current.role.as_str(),
                    state.term
                )))
            }
            Intent::Fenced { .. } => {
                let v = self
                    .query(OP, &["CONFIG", "GET", "min-replicas-to-write"])
                    .await?;
                let current = v.into_array().get(1).and_then(Value::as_text);
                if current.as_deref() == Some(FENCE_MIN_REPLICAS) {
                    return Ok(None);
                }
                let mut conn = self.dedicated(OP).await?;
                conn.cmd(&[
                    "CONFIG",
                    "SET",
                    "min-replicas-to-write",
                    FENCE_MIN_REPLICAS,
                    "min-replicas-max-lag",
                    "10",
                ])
                .await
                .map_err(|e| self.map_resp(OP, e))?;
                Ok(Some("fence re-applied".into()))
            }
            // Promoted, then restarted from a pod template that starts it as
            // a replica: it is the primary it was told to be, until a higher
            // term says otherwise (a failover elsewhere reaches this agent as
            // FOLLOW or FENCE, which replace this intent).
            Intent::Primary => {
                let info = self.info(OP, Some("replication")).await?;
                if info.get("role").map(String::as_str) != Some("slave") {
                    return Ok(None);
                }
                let mut conn = self.dedicated(OP).await?;
                conn.cmd(&["REPLICAOF", "NO", "ONE"])
                    .await
                    .map_err(|e| self.map_resp(OP, e))?;
                Ok(Some(format!(
                    "was a replica; primary again as recorded under term {}",
                    state.term
                )))
            }
            Intent::None => Ok(None),
        }
    }

    /// Undo a fence's write refusal before the instance serves a new role.
    async fn is_primary_at(&self, address: &str) -> bool {
        let Ok(mut c) = Connection::connect(address, self.password.as_deref(), self.timeout).await
        else {
            return false;
        };
        c.text(&["INFO", "replication"])
            .await
            .map(|t| parse_info(&t).get("role").map(String::as_str) == Some("master"))
            .unwrap_or(false)
    }

    async fn lift_fence(&self, conn: &mut Connection) -> Result<(), AdapterError> {
        if let Intent::Fenced { saved } = self.state.get().intent {
            let value = saved.unwrap_or_else(|| "0".into());
            conn.cmd(&["CONFIG", "SET", "min-replicas-to-write", &value])
                .await
                .map_err(|e| self.map_resp("lift fence", e))?;
        }
        Ok(())
    }

    async fn replicaof(
        &self,
        conn: &mut Connection,
        primary: &str,
        operation: &'static str,
    ) -> Result<(), AdapterError> {
        let (host, port) = split_address(primary, operation)?;
        conn.cmd(&["REPLICAOF", host, port])
            .await
            .map_err(|e| self.map_resp(operation, e))?;
        Ok(())
    }

    async fn follow_locked(
        &self,
        primary: &str,
        term: i64,
        operation: &'static str,
    ) -> Result<RoleState, AdapterError> {
        split_address(primary, operation)?;
        if primary == self.announce {
            return Err(AdapterError::Rejected {
                operation,
                message: format!("{primary} is this instance; it cannot follow itself"),
            });
        }
        let previous = self.state.get().intent;
        // Persist first: if Redis is down now, the enforcer applies it on return.
        self.advance(
            term,
            Intent::Replica {
                primary: primary.to_string(),
            },
        )?;
        let mut conn = self.dedicated(operation).await?;
        if let Intent::Fenced { saved } = previous {
            let value = saved.unwrap_or_else(|| "0".into());
            conn.cmd(&["CONFIG", "SET", "min-replicas-to-write", &value])
                .await
                .map_err(|e| self.map_resp(operation, e))?;
        }
        self.replicaof(&mut conn, primary, operation).await?;
        self.role().await
    }
}
