//! What `/readyz` means for a controller service: its watch caches have
//! listed once, and, with leader election, it either leads or is a healthy
//! standby (it reaches the API server and another replica holds the Lease).
//! A standby is ready on purpose: it is a replica waiting to take over, and
//! taking it out of its Service would only hide it.

use midplane_runtime::Health;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The name of the check in `/readyz` and the gRPC health service.
pub const CHECK: &str = "controller";
const POLL: Duration = Duration::from_millis(250);

/// Where a replica stands in the leader election.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Not yet known.
    Starting,
    /// Another replica leads; `healthy`: the last Lease attempt reached the API server.
    Standby { healthy: bool },
    /// This replica leads (or election is off): its controllers run.
    Leading,
}

#[derive(Clone)]
pub struct Readiness {
    health: Health,
    role: Arc<Mutex<Role>>,
}

impl Readiness {
    pub fn new(health: Health) -> Self {
        health.set(CHECK, false, "starting");
        Self {
            health,
            role: Arc::new(Mutex::new(Role::Starting)),
        }
    }

    pub fn set_role(&self, role: Role) {
        crate::metrics::leading(role == Role::Leading);
        *self
            .role
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = role;
    }

    pub fn role(&self) -> Role {
        *self
            .role
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Keeps the check current until the process ends; `caches_synced` says
    /// whether every watch cache of the running controllers has listed once.
    pub fn track(&self, caches_synced: impl Fn() -> bool + Send + Sync + 'static) {
        let me = self.clone();
        tokio::spawn(async move {
            loop {
                let (ready, message) = verdict(me.role(), caches_synced());
                me.health.set(CHECK, ready, message);
                tokio::time::sleep(POLL).await;
            }
        });
    }
}

/// Ready or not, and why.
pub fn verdict(role: Role, caches_synced: bool) -> (bool, &'static str) {
    match role {
        Role::Starting => (false, "starting"),
        Role::Standby { healthy: true } => (true, "standby: another replica leads"),
        Role::Standby { healthy: false } => (false, "standby: the Lease cannot be read"),
        Role::Leading if caches_synced => (true, "leading, caches synced"),
        Role::Leading => (false, "leading, caches not synced yet"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ready_when_leading_with_synced_caches_or_a_healthy_standby() {
        assert!(!verdict(Role::Starting, true).0);
        assert!(!verdict(Role::Leading, false).0);
        assert!(verdict(Role::Leading, true).0);
        assert!(verdict(Role::Standby { healthy: true }, false).0);
        assert!(!verdict(Role::Standby { healthy: false }, true).0);
    }

    #[tokio::test]
    async fn the_check_follows_role_and_caches() {
        let health = Health::new();
        let r = Readiness::new(health.clone());
        assert!(!health.is_ready(), "not ready before anything is known");
        let synced = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let s = synced.clone();
        r.track(move || s.load(std::sync::atomic::Ordering::SeqCst));
        r.set_role(Role::Leading);
        tokio::time::sleep(POLL * 2).await;
        assert!(!health.is_ready());
        synced.store(true, std::sync::atomic::Ordering::SeqCst);
        tokio::time::sleep(POLL * 2).await;
        assert!(health.is_ready());
    }
}
