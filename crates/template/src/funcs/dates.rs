//! Sprig's date functions (date.go) and the methods templates call on a time.Time.

use std::sync::Arc;

use super::gotime::{
    GoTime, Loc, duration_string, load_location, parse_duration, parse_in_location, round_to_second,
};
use super::{FnErr, P, Table, reg, s};
use crate::object::{Lookup, Object};
use crate::value::Value;

fn time_value(t: GoTime) -> Value {
    Value::Object(Arc::new(Object::Time(t)))
}

fn as_time(v: &Value) -> Option<&GoTime> {
    match v {
        Value::Object(o) => match &**o {
            Object::Time(t) => Some(t),
            _ => None,
        },
        _ => None,
    }
}

/// Sprig's date argument: a time, or Unix seconds given as an int; anything else is now.
fn date_arg(v: &Value) -> GoTime {
    match v {
        Value::Int(i) | Value::I64(i) => GoTime::unix(*i),
        other => as_time(other).cloned().unwrap_or_else(GoTime::now),
    }
}

/// dateInZone: an unknown zone is UTC.
fn date_in_zone(layout: &str, date: &Value, zone: &str) -> String {
    let loc = load_location(zone).unwrap_or(Loc::Utc);
    date_arg(date).in_loc(loc).format(layout)
}

pub(super) fn register(t: &mut Table) {
    use P::*;
    reg(t, "now", &[], None, |_, _| Ok(time_value(GoTime::now())));
    reg(t, "date", &[Str, Any], None, |_, a| {
        Ok(Value::String(date_in_zone(&s(&a, 0), &a[1], "Local")))
    });
    for name in ["dateInZone", "date_in_zone"] {
        reg(t, name, &[Str, Any, Str], None, |_, a| {
            Ok(Value::String(date_in_zone(&s(&a, 0), &a[1], &s(&a, 2))))
        });
    }
    reg(t, "htmlDate", &[Any], None, |_, a| {
        Ok(Value::String(date_in_zone("2006-01-02", &a[0], "Local")))
    });
    reg(t, "htmlDateInZone", &[Any, Str], None, |_, a| {
        Ok(Value::String(date_in_zone("2006-01-02", &a[0], &s(&a, 1))))
    });
    for name in ["dateModify", "date_modify"] {
        reg(t, name, &[Str, Time], None, |_, a| {
            let t = as_time(&a[1]).cloned().unwrap_or_else(GoTime::zero);
            Ok(time_value(match parse_duration(&s(&a, 0)) {
                Ok(d) => t.add(d),
                Err(_) => t,
            }))
        });
    }
    for name in ["mustDateModify", "must_date_modify"] {
        reg(t, name, &[Str, Time], None, |_, a| {
            let t = as_time(&a[1]).cloned().unwrap_or_else(GoTime::zero);
            let d = parse_duration(&s(&a, 0)).map_err(FnErr::Msg)?;
            Ok(time_value(t.add(d)))
        });
    }
    reg(t, "ago", &[Any], None, |_, a| {
        let t = match &a[0] {
            Value::Int(i) | Value::I64(i) => GoTime::unix(*i),
            other => as_time(other).cloned().unwrap_or_else(GoTime::now),
        };
        let d = GoTime::now().sub(&t);
        Ok(Value::String(duration_string(round_to_second(d))))
    });
    reg(t, "duration", &[Any], None, |_, a| {
        // Sprig takes a string or an int64; any other type (a template's int) counts as 0
        let n = match &a[0] {
            Value::String(v) => v.parse::<i64>().unwrap_or(0),
            Value::I64(i) => *i,
            _ => 0,
        };
        Ok(Value::String(duration_string(
            n.wrapping_mul(1_000_000_000),
        )))
    });
    reg(t, "durationRound", &[Any], None, |_, a| {
        let d = match &a[0] {
            Value::String(v) => parse_duration(v).unwrap_or(0),
            Value::I64(i) => *i,
            other => match as_time(other) {
                Some(t) => GoTime::now().sub(t),
                None => 0,
            },
        };
        Ok(Value::String(duration_round(d)))
    });
    reg(t, "toDate", &[Str, Str], None, |_, a| {
        Ok(time_value(
            parse_in_location(&s(&a, 0), &s(&a, 1), Loc::Local).unwrap_or_else(|_| GoTime::zero()),
        ))
    });
    reg(t, "mustToDate", &[Str, Str], None, |_, a| {
        parse_in_location(&s(&a, 0), &s(&a, 1), Loc::Local)
            .map(time_value)
            .map_err(FnErr::Msg)
    });
    reg(t, "unixEpoch", &[Time], None, |_, a| {
        let t = as_time(&a[0]).cloned().unwrap_or_else(GoTime::zero);
        Ok(Value::String(t.secs.to_string()))
    });
}

/// Sprig's durationRound: the largest whole unit (y, mo, d, h, m, s) of |d|.
fn duration_round(d: i64) -> String {
    let u = d.unsigned_abs();
    const S: u64 = 1_000_000_000;
    let units: [(u64, &str); 6] = [
        (S * 3600 * 24 * 365, "y"),
        (S * 3600 * 24 * 30, "mo"),
        (S * 3600 * 24, "d"),
        (S * 3600, "h"),
        (S * 60, "m"),
        (S, "s"),
    ];
    for (size, name) in units {
        if u > size {
            return format!("{}{name}", u / size);
        }
    }
    "0s".into()
}

fn argc(args: &[Value], n: usize) -> Option<Lookup> {
    (args.len() != n).then_some(Lookup::BadArgs(n))
}

/// Methods of time.Time that take no argument or plain ones.
pub(crate) fn time_method(t: &GoTime, name: &str, args: &[Value]) -> Lookup {
    let c = t.civil();
    let found = |v: Value| Lookup::Found(v);
    let none = |v: Value| argc(args, 0).unwrap_or(Lookup::Found(v));
    match name {
        "Year" => none(Value::Int(c.year)),
        "Month" => none(Value::String(
            [
                "January",
                "February",
                "March",
                "April",
                "May",
                "June",
                "July",
                "August",
                "September",
                "October",
                "November",
                "December",
            ][c.month as usize - 1]
                .into(),
        )),
        "Day" => none(Value::Int(i64::from(c.day))),
        "Hour" => none(Value::Int(i64::from(c.hour))),
        "Minute" => none(Value::Int(i64::from(c.minute))),
        "Second" => none(Value::Int(i64::from(c.second))),
        "Nanosecond" => none(Value::Int(i64::from(c.nanos))),
        "YearDay" => none(Value::Int(i64::from(c.yday))),
        "Weekday" => none(Value::String(
            [
                "Sunday",
                "Monday",
                "Tuesday",
                "Wednesday",
                "Thursday",
                "Friday",
                "Saturday",
            ][c.weekday]
                .into(),
        )),
        "Unix" => none(Value::I64(t.secs)),
        "UnixMilli" => none(Value::I64(t.secs * 1000 + i64::from(t.nanos / 1_000_000))),
        "UnixNano" => none(Value::I64(
            t.secs.wrapping_mul(1_000_000_000) + i64::from(t.nanos),
        )),
        "IsZero" => none(Value::Bool(t.is_zero())),
        "UTC" => none(time_value(t.in_loc(Loc::Utc))),
        "Local" => none(time_value(t.in_loc(Loc::Local))),
        "String" => none(Value::String(t.to_go_string())),
        "Format" => match argc(args, 1) {
            Some(bad) => bad,
            None => found(Value::String(t.format(&super::strval(&args[0])))),
        },
        "Add" => match argc(args, 1) {
            Some(bad) => bad,
            None => found(time_value(t.add(super::to_i64(&args[0])))),
        },
        "Sub" | "Before" | "After" | "Equal" => match argc(args, 1) {
            Some(bad) => bad,
            None => {
                let Some(o) = as_time(&args[0]) else {
                    return Lookup::Missing;
                };
                let d = t.sub(o);
                found(match name {
                    "Sub" => Value::Object(Arc::new(Object::Duration(d))),
                    "Before" => Value::Bool(d < 0),
                    "After" => Value::Bool(d > 0),
                    _ => Value::Bool(d == 0),
                })
            }
        },
        _ => Lookup::Missing,
    }
}

/// Methods of time.Duration.
pub(crate) fn duration_method(d: i64, name: &str, args: &[Value]) -> Lookup {
    if let Some(bad) = argc(args, 0) {
        return bad;
    }
    let f = |unit: f64| Value::Float(d as f64 / unit);
    Lookup::Found(match name {
        "String" => Value::String(duration_string(d)),
        "Hours" => f(3.6e12),
        "Minutes" => f(6e10),
        "Seconds" => f(1e9),
        "Milliseconds" => Value::I64(d / 1_000_000),
        "Microseconds" => Value::I64(d / 1_000),
        "Nanoseconds" => Value::I64(d),
        _ => return Lookup::Missing,
    })
}
