//! Per-method, per-outcome call counts of one agent, for its exporter.

use std::collections::BTreeMap;
use std::sync::Mutex;

#[derive(Default)]
pub struct RpcStats(Mutex<BTreeMap<(&'static str, &'static str), u64>>);

impl RpcStats {
    pub fn record(&self, method: &'static str, code: tonic::Code) {
        let mut m = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        *m.entry((method, code_name(code))).or_default() += 1;
    }

    /// Records the outcome of a handler and passes it through.
    pub fn observe<T>(
        &self,
        method: &'static str,
        result: Result<T, tonic::Status>,
    ) -> Result<T, tonic::Status> {
        let code = match &result {
            Ok(_) => tonic::Code::Ok,
            Err(s) => s.code(),
        };
        self.record(method, code);
        result
    }

    pub fn snapshot(&self) -> BTreeMap<(&'static str, &'static str), u64> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }
}

fn code_name(code: tonic::Code) -> &'static str {
    use tonic::Code::*;
    match code {
        Ok => "OK",
        Cancelled => "CANCELLED",
        Unknown => "UNKNOWN",
        InvalidArgument => "INVALID_ARGUMENT",
        DeadlineExceeded => "DEADLINE_EXCEEDED",
        NotFound => "NOT_FOUND",
        AlreadyExists => "ALREADY_EXISTS",
        PermissionDenied => "PERMISSION_DENIED",
        ResourceExhausted => "RESOURCE_EXHAUSTED",
        FailedPrecondition => "FAILED_PRECONDITION",
        Aborted => "ABORTED",
        OutOfRange => "OUT_OF_RANGE",
        Unimplemented => "UNIMPLEMENTED",
        Internal => "INTERNAL",
        Unavailable => "UNAVAILABLE",
        DataLoss => "DATA_LOSS",
        Unauthenticated => "UNAUTHENTICATED",
    }
}
