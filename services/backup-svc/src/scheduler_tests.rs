use super::*;
use chrono::TimeZone;
use midplane_api::{AppSpec, BackupPolicy, ComponentTemplate, MiddlewareSpec};

fn t(h: u32, m: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 27, h, m, 0)
        .single()
        .expect("time")
}

fn targets(schedule: &str, replicas: i32) -> Vec<Target> {
    let mut app = App::new(
        "cache",
        AppSpec {
            components: vec![ComponentTemplate {
                name: "redis".into(),
                spec: MiddlewareSpec {
                    plugin: "redis".into(),
                    replicas,
                    shards: 1,
                    backup: Some(BackupPolicy {
                        enabled: true,
                        schedule: schedule.into(),
                        storage: "s".into(),
                        key_secret: Some("k".into()),
                        ..Default::default()
                    }),
                    ..Default::default()
                },
            }],
        },
    );
    app.metadata.namespace = Some("shop".into());
    let settings = BackupSettings {
        storages: BTreeMap::from([("s".into(), "file:///tmp/none".into())]),
        ..Default::default()
    };
    let (ts, errs) = policy::targets(&app, &settings);
    assert!(errs.is_empty(), "{errs:?}");
    ts
}

fn instances(due: &[Due]) -> Vec<&str> {
    due.iter().map(|d| d.target.key.instance.as_str()).collect()
}

#[test]
fn new_targets_start_from_their_newest_backup_or_now() {
    let ts = targets("0 * * * *", 2);
    let mut s = Scheduler::new();
    assert_eq!(s.unknown(&ts).len(), 2);
    // Instance 0 was last backed up at 07:00; instance 1 never.
    let anchors = BTreeMap::from([(ts[0].key.clone(), t(7, 0))]);
    s.set_app("shop", "cache", ts.clone(), &anchors, t(9, 30));
    assert!(s.unknown(&ts).is_empty());
    // Instance 0 missed 08:00 and 09:00: one run now, for 09:00. Instance 1 waits for 10:00.
    let due = s.due(t(9, 30));
    assert_eq!(instances(&due), ["cache-redis-0-0"]);
    assert_eq!((due[0].slot, due[0].missed), (t(9, 0), 1));
    assert!(s.due(t(9, 31)).is_empty(), "nothing fires twice");
    assert_eq!(s.next_wake(t(9, 31)), Some(t(10, 0)));
    // Instance 0 is running: only instance 1 fires at 10:00.
    assert_eq!(instances(&s.due(t(10, 0))), ["cache-redis-0-1"]);
}

#[test]
fn a_running_backup_is_not_started_again_and_missed_slots_fold() {
    let ts = targets("*/5 * * * *", 1);
    let key = ts[0].key.clone();
    let mut s = Scheduler::new();
    s.set_app("shop", "cache", ts, &BTreeMap::new(), t(10, 0));
    assert!(s.due(t(10, 4)).is_empty());
    assert_eq!(s.due(t(10, 5)).len(), 1);
    assert!(s.is_running(&key));
    // The run takes 17 minutes: 10:10 and 10:15 pass meanwhile without a second start.
    assert!(s.due(t(10, 10)).is_empty());
    assert!(s.due(t(10, 15)).is_empty());
    s.finished(
        &key,
        LastRun::Completed {
            id: "a".into(),
            deleted: vec![],
        },
    );
    assert!(matches!(s.last_run(&key), Some(LastRun::Completed { id, .. }) if id == "a"));
    // At 10:22 one run is due for the latest slot (10:20), folding 10:10 and 10:15.
    let due = s.due(t(10, 22));
    assert_eq!((due[0].slot, due[0].missed), (t(10, 20), 2));
}

#[test]
fn changing_an_app_keeps_history_and_drops_removed_instances() {
    let mut s = Scheduler::new();
    s.set_app(
        "shop",
        "cache",
        targets("0 3 * * *", 3),
        &BTreeMap::new(),
        t(1, 0),
    );
    assert_eq!(s.len(), 3);
    assert_eq!(s.due(t(3, 0)).len(), 3);
    // Scaled down to one replica and moved to hourly: the remaining target keeps its last slot
    // (03:00), so the new schedule does not fire for the past.
    s.set_app(
        "shop",
        "cache",
        targets("0 * * * *", 1),
        &BTreeMap::new(),
        t(3, 30),
    );
    assert_eq!(s.len(), 1);
    assert_eq!(s.next_wake(t(3, 30)), None, "the one left is still running");
    let key = s.apps();
    assert_eq!(key.len(), 1);
    s.remove_app("shop", "cache");
    assert!(s.is_empty());
}

#[test]
fn anchors_in_the_future_are_clamped_to_now() {
    let ts = targets("0 * * * *", 1);
    let mut s = Scheduler::new();
    // A backup stamped by a clock ahead of ours must not postpone the schedule for hours.
    let anchors = BTreeMap::from([(ts[0].key.clone(), t(20, 0))]);
    s.set_app("shop", "cache", ts, &anchors, t(9, 30));
    assert_eq!(s.next_wake(t(9, 30)), Some(t(10, 0)));
}
