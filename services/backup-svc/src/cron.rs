//! Cron schedules of backup policies, as pure functions of an injected time: when the next
//! backup is due, and what to do after downtime (run once for all missed slots, never N times).

use chrono::{DateTime, Utc};
use croner::Cron;
use croner::parser::{CronParser, Seconds, Year};

/// Where "now" comes from; tests drive a [`ManualClock`].
pub trait Clock: Send + Sync + 'static {
    fn now(&self) -> DateTime<Utc>;
}

/// The wall clock.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// A clock that moves only when told to.
#[derive(Debug)]
pub struct ManualClock(std::sync::Mutex<DateTime<Utc>>);

impl ManualClock {
    pub fn new(t: DateTime<Utc>) -> Self {
        Self(std::sync::Mutex::new(t))
    }

    pub fn set(&self, t: DateTime<Utc>) {
        *self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = t;
    }

    pub fn advance(&self, d: chrono::Duration) {
        let mut t = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        *t += d;
    }
}

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        *self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// A cron expression that does not parse, with the field of the App it came from.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {}", self.message())]
pub struct ScheduleError {
    pub field: String,
    pub expr: String,
    pub reason: String,
}

impl ScheduleError {
    /// The error without the field.
    pub fn message(&self) -> String {
        format!(
            "{:?} is not a 5-field cron expression (minute hour day-of-month month day-of-week): {}",
            self.expr, self.reason
        )
    }
}

/// A parsed 5-field cron schedule, evaluated in UTC.
#[derive(Clone, Debug)]
pub struct Schedule {
    expr: String,
    cron: Cron,
}

impl PartialEq for Schedule {
    fn eq(&self, other: &Self) -> bool {
        self.expr == other.expr
    }
}

/// Slots counted at most when telling how many runs were missed.
const MISSED_COUNT_CAP: u32 = 10_000;

impl Schedule {
    /// Parses `expr`; `field` (e.g. `spec.components[0].backup.schedule`) names it in errors.
    pub fn parse(expr: &str, field: &str) -> Result<Self, ScheduleError> {
        let err = |reason: String| ScheduleError {
            field: field.to_string(),
            expr: expr.to_string(),
            reason,
        };
        let n = expr.split_whitespace().count();
        if n != 5 {
            return Err(err(format!("has {n} fields")));
        }
        let cron = CronParser::builder()
            .seconds(Seconds::Disallowed)
            .year(Year::Disallowed)
            .build()
            .parse(expr)
            .map_err(|e| err(e.to_string()))?;
        // A pattern that never matches (e.g. 30 February) is an error now, not a silent never.
        cron.find_next_occurrence(&DateTime::<Utc>::UNIX_EPOCH, false)
            .map_err(|e| err(format!("never fires: {e}")))?;
        Ok(Self {
            expr: expr.trim().to_string(),
            cron,
        })
    }

    /// The first slot strictly after `t`.
    pub fn next_after(&self, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.cron.find_next_occurrence(&t, false).ok()
    }
}

/// What to do for one schedule at `now`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Run one backup for `slot`, the latest slot at or before now; `missed` earlier slots
    /// since the last run are folded into it.
    Fire { slot: DateTime<Utc>, missed: u32 },
    /// Nothing due; the next slot (None: the schedule never fires again).
    Wait { next: Option<DateTime<Utc>> },
}

/// Decides for a schedule whose last handled slot (or, before any, the time it was first
/// seen) is `last`. However long the service was down, at most one backup is due.
pub fn decide(schedule: &Schedule, last: DateTime<Utc>, now: DateTime<Utc>) -> Decision {
    let Some(first) = schedule.next_after(last) else {
        return Decision::Wait { next: None };
    };
    if first > now {
        return Decision::Wait { next: Some(first) };
    }
    let mut slot = first;
    let mut missed = 0u32;
    while missed < MISSED_COUNT_CAP {
        match schedule.next_after(slot) {
            Some(n) if n <= now => {
                slot = n;
                missed += 1;
            }
            _ => return Decision::Fire { slot, missed },
        }
    }
    // Too many slots to count one by one: jump to the latest one directly.
    let latest = schedule
        .cron
        .find_previous_occurrence(&now, true)
        .unwrap_or(slot);
    Decision::Fire {
        slot: latest,
        missed,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn t(h: u32, m: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 27, h, m, 0)
            .single()
            .expect("time")
    }

    const FIELD: &str = "spec.components[0].backup.schedule";

    #[test]
    fn next_fire_time() {
        let s = Schedule::parse("0 3 * * *", FIELD).expect("parse");
        assert_eq!(s.next_after(t(1, 0)), Some(t(3, 0)));
        // Strictly after: at 03:00 the next one is tomorrow's.
        assert_eq!(
            s.next_after(t(3, 0)),
            Some(t(3, 0) + chrono::Duration::days(1))
        );
        let every15 = Schedule::parse("*/15 * * * *", FIELD).expect("parse");
        assert_eq!(every15.next_after(t(10, 7)), Some(t(10, 15)));
        // Day-of-week: 2026-11-27 is a Friday; Mondays at 01:30 → 2026-11-30.
        let monday = Schedule::parse("30 1 * * 1", FIELD).expect("parse");
        assert_eq!(
            monday.next_after(t(12, 0)),
            Some(
                Utc.with_ymd_and_hms(2026, 11, 30, 1, 30, 0)
                    .single()
                    .expect("t")
            )
        );
    }

    #[test]
    fn parse_errors_name_the_field() {
        for bad in [
            "0 3 * *",
            "0 3 * * * *",
            "61 * * * *",
            "x 3 * * *",
            "0 0 30 2 *",
        ] {
            let e = Schedule::parse(bad, FIELD).expect_err(bad);
            assert_eq!(e.field, FIELD);
            let msg = e.to_string();
            assert!(msg.starts_with(FIELD), "{msg}");
            assert!(msg.contains(bad), "{msg}");
        }
    }

    #[test]
    fn decide_waits_then_fires_on_the_slot() {
        let s = Schedule::parse("0 * * * *", FIELD).expect("parse");
        assert_eq!(
            decide(&s, t(9, 10), t(9, 59)),
            Decision::Wait {
                next: Some(t(10, 0))
            }
        );
        assert_eq!(
            decide(&s, t(9, 10), t(10, 0)),
            Decision::Fire {
                slot: t(10, 0),
                missed: 0
            }
        );
        // Once the slot is handled (last = slot), nothing is due until the next one.
        assert_eq!(
            decide(&s, t(10, 0), t(10, 30)),
            Decision::Wait {
                next: Some(t(11, 0))
            }
        );
    }

    #[test]
    fn downtime_runs_once_not_once_per_missed_slot() {
        let s = Schedule::parse("*/10 * * * *", FIELD).expect("parse");
        // Last run 08:00, back at 11:05: 18 slots passed (08:10 … 11:00); one run, for 11:00.
        let d = decide(&s, t(8, 0), t(11, 5));
        assert_eq!(
            d,
            Decision::Fire {
                slot: t(11, 0),
                missed: 17
            }
        );
        // After that run nothing more is due at the same instant.
        assert_eq!(
            decide(&s, t(11, 0), t(11, 5)),
            Decision::Wait {
                next: Some(t(11, 10))
            }
        );
        // Years of downtime on a per-minute schedule still give one run, for the latest slot.
        let every_minute = Schedule::parse("* * * * *", FIELD).expect("parse");
        let long_ago = t(11, 0) - chrono::Duration::days(365);
        match decide(&every_minute, long_ago, t(11, 0)) {
            Decision::Fire { slot, missed } => {
                assert_eq!(slot, t(11, 0));
                assert_eq!(missed, MISSED_COUNT_CAP);
            }
            other => panic!("expected a run, got {other:?}"),
        }
    }

    #[test]
    fn manual_clock_moves_only_when_told() {
        let c = ManualClock::new(t(1, 0));
        assert_eq!(c.now(), t(1, 0));
        c.advance(chrono::Duration::minutes(90));
        assert_eq!(c.now(), t(2, 30));
        c.set(t(5, 0));
        assert_eq!(c.now(), t(5, 0));
    }
}
