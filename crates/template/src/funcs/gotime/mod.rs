//! Go's time.Time as templates see it: formatting and parsing with Go reference layouts
//! (`2006-01-02 15:04:05`), `Time.String()`, durations (`1h30m0s`, ParseDuration), time
//! zones from the system zoneinfo (through jiff, as Go reads TZ and /etc/localtime).

use std::sync::OnceLock;

use jiff::tz::TimeZone;

/// Where a time is shown: Go's *Location.
#[derive(Debug, Clone)]
pub enum Loc {
    Utc,
    /// time.Local (`TZ` or /etc/localtime).
    Local,
    /// LoadLocation(name).
    Named(String, TimeZone),
    /// FixedZone(name, offset seconds).
    Fixed(String, i32),
}

#[derive(Debug, Clone)]
pub struct GoTime {
    /// Unix seconds and nanoseconds of the instant.
    pub secs: i64,
    pub nanos: u32,
    pub loc: Loc,
    /// Monotonic clock reading in nanoseconds since process start (`time.Now()` only).
    pub mono: Option<i64>,
}

fn local_tz() -> &'static TimeZone {
    static TZ: OnceLock<TimeZone> = OnceLock::new();
    TZ.get_or_init(|| match std::env::var("TZ") {
        // Go: TZ="" means UTC
        Ok(v) if v.is_empty() => TimeZone::UTC,
        Ok(v) => {
            let name = v.trim_start_matches(':');
            TimeZone::get(name).unwrap_or(TimeZone::UTC)
        }
        Err(_) => TimeZone::try_system().unwrap_or(TimeZone::UTC),
    })
}

/// time.LoadLocation: "UTC" and "" are UTC, "Local" is local.
pub fn load_location(name: &str) -> Result<Loc, String> {
    match name {
        "" | "UTC" => Ok(Loc::Utc),
        "Local" => Ok(Loc::Local),
        n => TimeZone::get(n)
            .map(|tz| Loc::Named(n.to_string(), tz))
            .map_err(|_| format!("unknown time zone {n}")),
    }
}

impl Loc {
    /// (offset seconds east of UTC, abbreviation) at the instant.
    fn zone(&self, secs: i64) -> (i32, String) {
        let info = |tz: &TimeZone| {
            let ts = jiff::Timestamp::from_second(secs).unwrap_or(jiff::Timestamp::UNIX_EPOCH);
            let i = tz.to_offset_info(ts);
            (i.offset().seconds(), i.abbreviation().to_string())
        };
        match self {
            Loc::Utc => (0, "UTC".into()),
            Loc::Local => info(local_tz()),
            Loc::Named(_, tz) => info(tz),
            Loc::Fixed(name, off) => (*off, name.clone()),
        }
    }

    /// The offset in effect for a civil time in this zone (Go's Date).
    fn offset_for_civil(&self, local_secs: i64) -> i32 {
        let first = self.zone(local_secs).0;
        if first == 0 {
            return 0;
        }
        let utc = local_secs - i64::from(first);
        self.zone(utc).0
    }
}

const DAYS: [&str; 7] = [
    "Sunday",
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
];
const MONTHS: [&str; 12] = [
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
];

/// Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn is_leap(y: i64) -> bool {
    y % 4 == 0 && (y % 100 != 0 || y % 400 == 0)
}

fn days_in(m: u32, y: i64) -> u32 {
    match m {
        2 if is_leap(y) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Broken-down local time.
pub struct Civil {
    pub year: i64,
    pub month: u32,
    pub day: u32,
    pub hour: u32,
    pub minute: u32,
    pub second: u32,
    pub nanos: u32,
    pub weekday: usize,
    pub yday: u32,
    pub offset: i32,
    pub abbr: String,
}

impl GoTime {
    pub fn now() -> GoTime {
        static START: OnceLock<std::time::Instant> = OnceLock::new();
        let start = *START.get_or_init(std::time::Instant::now);
        let d = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        GoTime {
            secs: d.as_secs() as i64,
            nanos: d.subsec_nanos(),
            loc: Loc::Local,
            mono: Some(start.elapsed().as_nanos() as i64 + 1_000_000),
        }
    }

    /// time.Unix(secs, 0) in Local.
    pub fn unix(secs: i64) -> GoTime {
        GoTime {
            secs,
            nanos: 0,
            loc: Loc::Local,
            mono: None,
        }
    }

    /// The zero Time (January 1, year 1, 00:00:00 UTC).
    pub fn zero() -> GoTime {
        GoTime {
            secs: days_from_civil(1, 1, 1) * 86_400,
            nanos: 0,
            loc: Loc::Utc,
            mono: None,
        }
    }

    pub fn is_zero(&self) -> bool {
        self.secs == days_from_civil(1, 1, 1) * 86_400 && self.nanos == 0
    }

    pub fn civil(&self) -> Civil {
        let (offset, abbr) = self.loc.zone(self.secs);
        let local = self.secs + i64::from(offset);
        let days = local.div_euclid(86_400);
        let sod = local.rem_euclid(86_400) as u32;
        let (year, month, day) = civil_from_days(days);
        let yday = (days - days_from_civil(year, 1, 1) + 1) as u32;
        Civil {
            year,
            month,
            day,
            hour: sod / 3600,
            minute: sod % 3600 / 60,
            second: sod % 60,
            nanos: self.nanos,
            weekday: (days + 4).rem_euclid(7) as usize,
            yday,
            offset,
            abbr,
        }
    }

    pub fn in_loc(&self, loc: Loc) -> GoTime {
        GoTime {
            loc,
            mono: None,
            ..self.clone()
        }
    }

    /// Add a duration in nanoseconds (the monotonic reading moves along).
    pub fn add(&self, d: i64) -> GoTime {
        let total = i128::from(self.secs) * 1_000_000_000 + i128::from(self.nanos) + i128::from(d);
        GoTime {
            secs: total.div_euclid(1_000_000_000) as i64,
            nanos: total.rem_euclid(1_000_000_000) as u32,
            loc: self.loc.clone(),
            mono: self.mono.map(|m| m.saturating_add(d)),
        }
    }

    /// Nanoseconds from `other` to `self` (Go's Sub, saturating).
    pub fn sub(&self, other: &GoTime) -> i64 {
        let a = i128::from(self.secs) * 1_000_000_000 + i128::from(self.nanos);
        let b = i128::from(other.secs) * 1_000_000_000 + i128::from(other.nanos);
        (a - b).clamp(i128::from(i64::MIN), i128::from(i64::MAX)) as i64
    }

    /// Time.String(): the instant, its zone, and the monotonic reading if any.
    pub fn to_go_string(&self) -> String {
        let mut s = self.format("2006-01-02 15:04:05.999999999 -0700 MST");
        if let Some(m) = self.mono {
            let sign = if m < 0 { '-' } else { '+' };
            let m = m.unsigned_abs();
            s.push_str(&format!(
                " m={sign}{}.{:09}",
                m / 1_000_000_000,
                m % 1_000_000_000
            ));
        }
        s
    }

    /// MarshalJSON's RFC 3339 with nanoseconds.
    pub fn rfc3339_nano(&self) -> String {
        self.format("2006-01-02T15:04:05.999999999Z07:00")
    }

    pub fn format(&self, layout: &str) -> String {
        let c = self.civil();
        let mut out = String::new();
        let mut rest = layout;
        while !rest.is_empty() {
            let (prefix, std, suffix) = next_std(rest);
            out.push_str(prefix);
            let Some(std) = std else { break };
            format_std(&mut out, &std, &c);
            rest = suffix;
        }
        out
    }
}

mod duration;
mod layout;
mod parse;

use layout::{format_std, next_std};

pub use duration::{duration_string, parse_duration, round_to_second};
pub use parse::parse_in_location;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_print_like_go() {
        assert_eq!(duration_string(0), "0s");
        assert_eq!(duration_string(95_000_000_000), "1m35s");
        assert_eq!(duration_string(5_400_000_000_000), "1h30m0s");
        assert_eq!(duration_string(1_500_000_000), "1.5s");
        assert_eq!(duration_string(50_000_000), "50ms");
        assert_eq!(duration_string(-1_000), "-1µs");
        assert_eq!(parse_duration("1h30m"), Ok(5_400_000_000_000));
        assert_eq!(parse_duration("1.5h"), Ok(5_400_000_000_000));
        assert!(parse_duration("bad").is_err());
    }

    #[test]
    fn layouts_format_like_go() {
        let t = parse_in_location(
            "2006-01-02T15:04:05.999999999Z07:00",
            "2024-03-05T07:08:09.123456789Z",
            Loc::Utc,
        )
        .expect("parse");
        assert_eq!(
            t.format("Jan _2 2006 3:04:05.000 PM MST"),
            "Mar  5 2024 7:08:09.123 AM UTC"
        );
        assert_eq!(t.to_go_string(), "2024-03-05 07:08:09.123456789 +0000 UTC");
        assert_eq!(t.format("Monday 002 __2"), "Tuesday 065  65");
    }
}
