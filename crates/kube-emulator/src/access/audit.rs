//! The audit of authenticated requests: who asked for what, and the answer's code, so a
//! test can compare what a service used with what its Role grants
//! (`GET /_emulator/audit`, `EmulatorHandle::audit`).

use std::collections::VecDeque;

use super::attributes::Attributes;

/// One authenticated request.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct AuditRecord {
    /// The username, e.g. `system:serviceaccount:midplane-system:app-svc`.
    pub user: String,
    #[serde(flatten)]
    pub attributes: Attributes,
    /// The HTTP status code answered (200 for a watch that started).
    pub code: u16,
}

/// The newest records, bounded so a long-running `midplane dev` does not grow without end.
#[derive(Default)]
pub struct Log {
    records: VecDeque<AuditRecord>,
}

const CAP: usize = 200_000;

impl Log {
    pub fn push(&mut self, r: AuditRecord) {
        if self.records.len() == CAP {
            self.records.pop_front();
        }
        self.records.push_back(r);
    }

    pub fn all(&self) -> Vec<AuditRecord> {
        self.records.iter().cloned().collect()
    }
}
