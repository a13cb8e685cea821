//! Metric names of the bus (Prometheus naming: `_total` counters, `_seconds` histograms).
//! Recorded through the `metrics` facade; the service runtime installs the exporter.

pub const PUBLISHED: &str = "midplane_bus_published_total";
pub const CONFIRMED: &str = "midplane_bus_confirmed_total";
pub const RETURNED: &str = "midplane_bus_returned_total";
pub const PUBLISH_RETRIED: &str = "midplane_bus_publish_retried_total";
pub const PUBLISH_FAILED: &str = "midplane_bus_publish_failed_total";
pub const CONSUMED: &str = "midplane_bus_consumed_total";
pub const DUPLICATES: &str = "midplane_bus_duplicates_skipped_total";
pub const RETRIED: &str = "midplane_bus_retried_total";
pub const DEAD_LETTERED: &str = "midplane_bus_dead_lettered_total";
pub const REPLAYED: &str = "midplane_bus_replayed_total";
pub const RECONNECTS: &str = "midplane_bus_reconnects_total";
pub const SINK_DROPPED: &str = "midplane_bus_sink_dropped_total";
pub const HANDLER_SECONDS: &str = "midplane_bus_handler_duration_seconds";

/// Puts a publisher's counters for `event_type` at zero, so that the first failure is
/// an increase an alert can see (a series that appears at 1 has increased by nothing).
pub fn init_event_type(event_type: &str) {
    // Publishing is the hot path: do this once per type, not per event.
    static SEEN: std::sync::RwLock<std::collections::BTreeSet<String>> =
        std::sync::RwLock::new(std::collections::BTreeSet::new());
    let known = |set: &std::collections::BTreeSet<String>| set.contains(event_type);
    if SEEN.read().is_ok_and(|s| known(&s)) {
        return;
    }
    match SEEN.write() {
        Ok(mut s) if !known(&s) => {
            s.insert(event_type.to_owned());
        }
        _ => return,
    }
    for name in [
        CONFIRMED,
        RETURNED,
        PUBLISH_RETRIED,
        PUBLISH_FAILED,
        SINK_DROPPED,
    ] {
        metrics::counter!(name, "type" => event_type.to_owned()).increment(0);
    }
}

/// Puts a subscriber's counters at zero when it starts consuming (see [`init_event_type`]).
pub fn init_subscriber(subscriber: &str) {
    for name in [CONSUMED, DUPLICATES, RETRIED, DEAD_LETTERED, REPLAYED] {
        metrics::counter!(name, "subscriber" => subscriber.to_owned()).increment(0);
    }
    metrics::counter!(RECONNECTS, "role" => "subscriber").increment(0);
}

/// Registers HELP texts with whatever recorder is installed; call once at start-up.
pub fn describe() {
    use metrics::{Unit, describe_counter, describe_histogram};
    describe_counter!(PUBLISHED, "Events handed to the broker, by type.");
    describe_counter!(
        CONFIRMED,
        "Events the broker confirmed (routed and stored), by type."
    );
    describe_counter!(
        RETURNED,
        "Events the broker returned as unroutable (no bound queue), by type."
    );
    describe_counter!(
        PUBLISH_RETRIED,
        "Publish attempts repeated after a nack, timeout or connection loss."
    );
    describe_counter!(
        PUBLISH_FAILED,
        "Publishes given up after the publish timeout; the caller saw the error."
    );
    describe_counter!(
        SINK_DROPPED,
        "Events an EventSink dropped because its queue was full or its publisher stopped, by type."
    );
    describe_counter!(CONSUMED, "Deliveries received, by subscriber.");
    describe_counter!(
        DUPLICATES,
        "Deliveries acked without handling because their event id was already handled."
    );
    describe_counter!(
        RETRIED,
        "Failed deliveries sent to a delay queue for another attempt."
    );
    describe_counter!(
        DEAD_LETTERED,
        "Deliveries moved to the subscriber's dead-letter queue."
    );
    describe_counter!(
        REPLAYED,
        "Dead letters moved back to the subscriber's queue."
    );
    describe_counter!(RECONNECTS, "Connections re-established after a loss.");
    describe_histogram!(
        HANDLER_SECONDS,
        Unit::Seconds,
        "Handler run time per delivery, by subscriber and outcome."
    );
}
