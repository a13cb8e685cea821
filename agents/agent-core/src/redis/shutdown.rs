//! Stopping Redis: SHUTDOWN, graceful (a primary waits for lagging replicas)
//! or at once.

use std::time::Duration;

use super::RedisAdapter;
use crate::adapter::AdapterError;

impl RedisAdapter {
    pub(super) async fn shutdown(
        &self,
        operation: &'static str,
        graceful: bool,
        timeout: Duration,
    ) -> Result<(), AdapterError> {
        let mut conn = self.dedicated(operation).await?;
        // Graceful: Redis 7 SHUTDOWN on a primary waits (shutdown-timeout) for
        // lagging replicas to catch up before exiting.
        let args: &[&str] = if graceful {
            &["SHUTDOWN"]
        } else {
            &["SHUTDOWN", "NOSAVE", "NOW", "FORCE"]
        };
        match conn.cmd_timeout(args, timeout).await {
            Err(e) if e.is_unreachable() => {}
            Err(e) => return Err(self.map_resp(operation, e)),
            Ok(v) => {
                return Err(AdapterError::Middleware {
                    operation,
                    message: format!("SHUTDOWN answered {v:?} and the server kept running"),
                });
            }
        }
        *self.conn.lock().await = None;
        Ok(())
    }
}
