//! Reconcile metrics, labelled by controller and by error category.

use std::sync::{Mutex, PoisonError};
use std::time::Duration;

/// The categories every controller can fail with (agent calls add their own).
pub const CATEGORIES: [&str; 3] = ["KubeApiError", "ApplyFailed", "NoNamespace"];

/// Puts a controller's counters at zero the first time it reconciles, so that
/// its first error is an increase alerts and `rate()` can see.
pub fn init(controller: &'static str) {
    static SEEN: Mutex<Vec<&'static str>> = Mutex::new(Vec::new());
    {
        let mut seen = SEEN.lock().unwrap_or_else(PoisonError::into_inner);
        if seen.contains(&controller) {
            return;
        }
        seen.push(controller);
    }
    for result in ["ok", "error"] {
        metrics::counter!("midplane_reconcile_total", "controller" => controller, "result" => result)
            .increment(0);
    }
    for category in CATEGORIES {
        metrics::counter!("midplane_reconcile_errors_total", "controller" => controller, "category" => category)
            .increment(0);
    }
}

pub fn reconciled(controller: &'static str, duration: Duration) {
    metrics::counter!("midplane_reconcile_total", "controller" => controller, "result" => "ok")
        .increment(1);
    metrics::histogram!("midplane_reconcile_duration_seconds", "controller" => controller)
        .record(duration.as_secs_f64());
}

pub fn failed(controller: &'static str, category: &'static str) {
    metrics::counter!("midplane_reconcile_total", "controller" => controller, "result" => "error")
        .increment(1);
    metrics::counter!("midplane_reconcile_errors_total", "controller" => controller, "category" => category)
        .increment(1);
}

/// Whether this replica leads its controllers (1) or waits as a standby (0). Summed over a
/// service's replicas it is 1; 0 means no replica reconciles (alert `MidplaneControllerNoLeader`).
pub fn leading(yes: bool) {
    metrics::gauge!("midplane_controller_leader").set(if yes { 1.0 } else { 0.0 });
}

pub fn describe() {
    metrics::describe_gauge!(
        "midplane_controller_leader",
        "1 while this replica leads its controllers (or runs without election), else 0"
    );
    metrics::describe_counter!(
        "midplane_reconcile_total",
        "Reconciles run, by controller and result"
    );
    metrics::describe_counter!(
        "midplane_reconcile_errors_total",
        "Failed reconciles, by controller and error category"
    );
    metrics::describe_histogram!(
        "midplane_reconcile_duration_seconds",
        "Time spent in one successful reconcile"
    );
}
