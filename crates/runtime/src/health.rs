//! Readiness: named checks a service flips as its dependencies come and go.
//! `/readyz` and the gRPC health service both read from here.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

#[derive(Clone, Default)]
pub struct Health(Arc<RwLock<BTreeMap<String, Check>>>);

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Check {
    pub ready: bool,
    pub message: String,
}

impl Health {
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers or updates a check; a service is ready when every check is.
    pub fn set(&self, name: &str, ready: bool, message: impl Into<String>) {
        if let Ok(mut checks) = self.0.write() {
            checks.insert(
                name.to_string(),
                Check {
                    ready,
                    message: message.into(),
                },
            );
        }
    }

    pub fn is_ready(&self) -> bool {
        self.0
            .read()
            .map(|c| c.values().all(|c| c.ready))
            .unwrap_or(false)
    }

    pub fn checks(&self) -> BTreeMap<String, Check> {
        self.0.read().map(|c| c.clone()).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ready_only_when_every_check_is() {
        let h = Health::new();
        assert!(h.is_ready(), "no checks: ready");
        h.set("kube", false, "connecting");
        assert!(!h.is_ready());
        h.set("bus", true, "");
        assert!(!h.is_ready());
        h.set("kube", true, "");
        assert!(h.is_ready());
    }
}
