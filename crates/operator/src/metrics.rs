//! Reconcile metrics, labelled by controller and by error category.

use std::time::Duration;

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

pub fn describe() {
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
