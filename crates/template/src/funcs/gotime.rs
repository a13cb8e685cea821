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

#[derive(Debug, Clone, PartialEq)]
enum Std {
    LongMonth,
    Month,
    NumMonth,
    ZeroMonth,
    LongWeekDay,
    WeekDay,
    Day,
    UnderDay,
    ZeroDay,
    UnderYearDay,
    ZeroYearDay,
    Hour,
    Hour12,
    ZeroHour12,
    Minute,
    ZeroMinute,
    Second,
    ZeroSecond,
    LongYear,
    Year,
    PM,
    Pm,
    Tz,
    /// (ISO "Z" for UTC, colon, seconds, hours only)
    NumTz(bool, bool, bool, bool),
    /// (digits, 9-style, separator)
    Frac(usize, bool, char),
}

fn starts_lower(s: &str) -> bool {
    s.chars().next().is_some_and(|c| c.is_ascii_lowercase())
}

/// nextStdChunk: (literal prefix, chunk, rest).
fn next_std(layout: &str) -> (&str, Option<Std>, &str) {
    let b = layout.as_bytes();
    let at = |i: usize, s: &str| layout[i..].starts_with(s);
    for i in 0..b.len() {
        let c = b[i];
        let r = |n: usize, s: Std| Some((&layout[..i], Some(s), &layout[i + n..]));
        let found = match c {
            b'J' if at(i, "January") => r(7, Std::LongMonth),
            b'J' if at(i, "Jan") && !starts_lower(&layout[i + 3..]) => r(3, Std::Month),
            b'M' if at(i, "Monday") => r(6, Std::LongWeekDay),
            b'M' if at(i, "Mon") && !starts_lower(&layout[i + 3..]) => r(3, Std::WeekDay),
            b'M' if at(i, "MST") => r(3, Std::Tz),
            b'0' if i + 1 < b.len() && (b'1'..=b'6').contains(&b[i + 1]) => {
                let s = match b[i + 1] {
                    b'1' => Std::ZeroMonth,
                    b'2' => Std::ZeroDay,
                    b'3' => Std::ZeroHour12,
                    b'4' => Std::ZeroMinute,
                    b'5' => Std::ZeroSecond,
                    _ => Std::Year,
                };
                r(2, s)
            }
            b'0' if at(i, "002") => r(3, Std::ZeroYearDay),
            b'1' if at(i, "15") => r(2, Std::Hour),
            b'1' => r(1, Std::NumMonth),
            b'2' if at(i, "2006") => r(4, Std::LongYear),
            b'2' => r(1, Std::Day),
            b'_' if at(i, "_2006") => {
                Some((&layout[..i + 1], Some(Std::LongYear), &layout[i + 5..]))
            }
            b'_' if at(i, "_2") => r(2, Std::UnderDay),
            b'_' if at(i, "__2") => r(3, Std::UnderYearDay),
            b'3' => r(1, Std::Hour12),
            b'4' => r(1, Std::Minute),
            b'5' => r(1, Std::Second),
            b'P' if at(i, "PM") => r(2, Std::PM),
            b'p' if at(i, "pm") => r(2, Std::Pm),
            b'-' if at(i, "-070000") => r(7, Std::NumTz(false, false, true, false)),
            b'-' if at(i, "-07:00:00") => r(9, Std::NumTz(false, true, true, false)),
            b'-' if at(i, "-0700") => r(5, Std::NumTz(false, false, false, false)),
            b'-' if at(i, "-07:00") => r(6, Std::NumTz(false, true, false, false)),
            b'-' if at(i, "-07") => r(3, Std::NumTz(false, false, false, true)),
            b'Z' if at(i, "Z070000") => r(7, Std::NumTz(true, false, true, false)),
            b'Z' if at(i, "Z07:00:00") => r(9, Std::NumTz(true, true, true, false)),
            b'Z' if at(i, "Z0700") => r(5, Std::NumTz(true, false, false, false)),
            b'Z' if at(i, "Z07:00") => r(6, Std::NumTz(true, true, false, false)),
            b'Z' if at(i, "Z07") => r(3, Std::NumTz(true, false, false, true)),
            b'.' | b',' if i + 1 < b.len() && (b[i + 1] == b'0' || b[i + 1] == b'9') => {
                let ch = b[i + 1];
                let mut j = i + 1;
                while j < b.len() && b[j] == ch {
                    j += 1;
                }
                if j < b.len() && b[j].is_ascii_digit() {
                    None
                } else {
                    Some((
                        &layout[..i],
                        Some(Std::Frac(j - (i + 1), ch == b'9', c as char)),
                        &layout[j..],
                    ))
                }
            }
            _ => None,
        };
        if let Some((p, s, rest)) = found {
            return (p, s, rest);
        }
    }
    (layout, None, "")
}

fn pad(out: &mut String, v: i64, width: usize) {
    if v < 0 {
        out.push('-');
    }
    out.push_str(&format!("{:0width$}", v.unsigned_abs(), width = width));
}

fn format_std(out: &mut String, std: &Std, c: &Civil) {
    let hour12 = |h: u32| if h % 12 == 0 { 12 } else { h % 12 };
    match std {
        Std::Year => pad(out, c.year.rem_euclid(100), 2),
        Std::LongYear => pad(out, c.year, 4),
        Std::Month => out.push_str(&MONTHS[c.month as usize - 1][..3]),
        Std::LongMonth => out.push_str(MONTHS[c.month as usize - 1]),
        Std::NumMonth => pad(out, i64::from(c.month), 0),
        Std::ZeroMonth => pad(out, i64::from(c.month), 2),
        Std::WeekDay => out.push_str(&DAYS[c.weekday][..3]),
        Std::LongWeekDay => out.push_str(DAYS[c.weekday]),
        Std::Day => pad(out, i64::from(c.day), 0),
        Std::UnderDay => {
            if c.day < 10 {
                out.push(' ');
            }
            pad(out, i64::from(c.day), 0)
        }
        Std::ZeroDay => pad(out, i64::from(c.day), 2),
        Std::UnderYearDay => {
            if c.yday < 100 {
                out.push(' ');
                if c.yday < 10 {
                    out.push(' ');
                }
            }
            pad(out, i64::from(c.yday), 0)
        }
        Std::ZeroYearDay => pad(out, i64::from(c.yday), 3),
        Std::Hour => pad(out, i64::from(c.hour), 2),
        Std::Hour12 => pad(out, i64::from(hour12(c.hour)), 0),
        Std::ZeroHour12 => pad(out, i64::from(hour12(c.hour)), 2),
        Std::Minute => pad(out, i64::from(c.minute), 0),
        Std::ZeroMinute => pad(out, i64::from(c.minute), 2),
        Std::Second => pad(out, i64::from(c.second), 0),
        Std::ZeroSecond => pad(out, i64::from(c.second), 2),
        Std::PM => out.push_str(if c.hour >= 12 { "PM" } else { "AM" }),
        Std::Pm => out.push_str(if c.hour >= 12 { "pm" } else { "am" }),
        Std::NumTz(iso, colon, secs, short) => {
            if *iso && c.offset == 0 {
                out.push('Z');
                return;
            }
            let mut zone = c.offset / 60;
            let mut abs = c.offset;
            if zone < 0 {
                out.push('-');
                zone = -zone;
                abs = -abs;
            } else {
                out.push('+');
            }
            pad(out, i64::from(zone / 60), 2);
            if *colon {
                out.push(':');
            }
            if !short {
                pad(out, i64::from(zone % 60), 2);
            }
            if *secs {
                if *colon {
                    out.push(':');
                }
                pad(out, i64::from(abs % 60), 2);
            }
        }
        Std::Tz => {
            if !c.abbr.is_empty() {
                out.push_str(&c.abbr);
                return;
            }
            let mut zone = c.offset / 60;
            if zone < 0 {
                out.push('-');
                zone = -zone;
            } else {
                out.push('+');
            }
            pad(out, i64::from(zone / 60), 2);
            pad(out, i64::from(zone % 60), 2);
        }
        Std::Frac(n, nine, sep) => {
            let digits = format!("{:09}", c.nanos);
            let mut d = &digits[..(*n).min(9)];
            if *nine {
                d = d.trim_end_matches('0');
                if d.is_empty() {
                    return;
                }
            }
            out.push(*sep);
            out.push_str(d);
        }
    }
}

/// Go's ParseInLocation: `value` read with `layout`; zones without a name fall back to `loc`.
pub fn parse_in_location(layout: &str, value: &str, loc: Loc) -> Result<GoTime, String> {
    let err = |elem: &str, v: &str, msg: &str| {
        if msg.is_empty() {
            format!(
                "parsing time {} as {}: cannot parse {} as {}",
                crate::gofmt::quote(value),
                crate::gofmt::quote(layout),
                crate::gofmt::quote(v),
                crate::gofmt::quote(elem)
            )
        } else {
            format!("parsing time {}{msg}", crate::gofmt::quote(value))
        }
    };
    let (mut year, mut month, mut day) = (1i64, 1u32, 1u32);
    let (mut hour, mut min, mut sec, mut nsec) = (0u32, 0u32, 0u32, 0u32);
    let mut pm: Option<bool> = None;
    let mut zone_off: Option<i32> = None;
    let mut zone_name: Option<String> = None;
    let mut yday: Option<u32> = None;
    let mut rest_layout = layout;
    let mut v = value;
    loop {
        let (prefix, std, suffix) = next_std(rest_layout);
        let std_str = &rest_layout[prefix.len()..rest_layout.len() - suffix.len()];
        // the literal prefix must match (runs of spaces are flexible in Go only for some cases)
        match v.strip_prefix(prefix) {
            Some(r) => v = r,
            None => return Err(err(prefix, v, "")),
        }
        let Some(std) = std else {
            if !v.is_empty() {
                return Err(err(
                    "",
                    "",
                    &format!(": extra text: {}", crate::gofmt::quote(v)),
                ));
            }
            break;
        };
        rest_layout = suffix;
        let hold = v;
        let num = |v: &mut &str, fixed: Option<usize>, max: usize| -> Option<u32> {
            let digits = v.bytes().take_while(|b| b.is_ascii_digit()).count();
            let take = match fixed {
                Some(n) => {
                    if digits < n {
                        return None;
                    }
                    n
                }
                None => {
                    if digits == 0 {
                        return None;
                    }
                    digits.min(max)
                }
            };
            let n: u32 = v[..take].parse().ok()?;
            *v = &v[take..];
            Some(n)
        };
        let bad = || err(std_str, hold, "");
        match std {
            Std::Year => {
                let n = num(&mut v, Some(2), 2).ok_or_else(bad)?;
                year = i64::from(n) + if n >= 69 { 1900 } else { 2000 };
            }
            Std::LongYear => {
                let n = num(&mut v, Some(4), 4).ok_or_else(bad)?;
                year = i64::from(n);
            }
            Std::Month | Std::LongMonth => {
                let names: Vec<String> = MONTHS
                    .iter()
                    .map(|m| {
                        if std == Std::Month {
                            m[..3].to_string()
                        } else {
                            m.to_string()
                        }
                    })
                    .collect();
                let i = names
                    .iter()
                    .position(|n| v.len() >= n.len() && v[..n.len()].eq_ignore_ascii_case(n))
                    .ok_or_else(bad)?;
                v = &v[names[i].len()..];
                month = i as u32 + 1;
            }
            Std::NumMonth | Std::ZeroMonth => {
                let fixed = (std == Std::ZeroMonth).then_some(2);
                month = num(&mut v, fixed, 2).ok_or_else(bad)?;
                if !(1..=12).contains(&month) {
                    return Err(err("", "", ": month out of range"));
                }
            }
            Std::WeekDay | Std::LongWeekDay => {
                let i = DAYS
                    .iter()
                    .map(|d| if std == Std::WeekDay { &d[..3] } else { *d })
                    .position(|n| v.len() >= n.len() && v[..n.len()].eq_ignore_ascii_case(n))
                    .ok_or_else(bad)?;
                let len = if std == Std::WeekDay {
                    3
                } else {
                    DAYS[i].len()
                };
                v = &v[len..];
            }
            Std::Day | Std::UnderDay | Std::ZeroDay => {
                if std == Std::UnderDay && v.starts_with(' ') {
                    v = &v[1..];
                }
                let fixed = (std == Std::ZeroDay).then_some(2);
                day = num(&mut v, fixed, 2).ok_or_else(bad)?;
            }
            Std::UnderYearDay | Std::ZeroYearDay => {
                if std == Std::UnderYearDay {
                    v = v.trim_start_matches(' ');
                }
                let fixed = (std == Std::ZeroYearDay).then_some(3);
                yday = Some(num(&mut v, fixed, 3).ok_or_else(bad)?);
            }
            Std::Hour => {
                hour = num(&mut v, Some(2), 2).ok_or_else(bad)?;
                if hour >= 24 {
                    return Err(err("", "", ": hour out of range"));
                }
            }
            Std::Hour12 | Std::ZeroHour12 => {
                let fixed = (std == Std::ZeroHour12).then_some(2);
                hour = num(&mut v, fixed, 2).ok_or_else(bad)?;
                if hour > 12 {
                    return Err(err("", "", ": hour out of range"));
                }
            }
            Std::Minute | Std::ZeroMinute => {
                let fixed = (std == Std::ZeroMinute).then_some(2);
                min = num(&mut v, fixed, 2).ok_or_else(bad)?;
                if min >= 60 {
                    return Err(err("", "", ": minute out of range"));
                }
            }
            Std::Second | Std::ZeroSecond => {
                let fixed = (std == Std::ZeroSecond).then_some(2);
                sec = num(&mut v, fixed, 2).ok_or_else(bad)?;
                if sec >= 60 {
                    return Err(err("", "", ": second out of range"));
                }
                // a fractional second may follow even when the layout has none
                if (v.starts_with('.') || v.starts_with(','))
                    && v[1..].starts_with(|c: char| c.is_ascii_digit())
                    && !matches!(next_std(rest_layout).1, Some(Std::Frac(..)))
                {
                    let digits = v[1..].bytes().take_while(|b| b.is_ascii_digit()).count();
                    nsec = frac_nanos(&v[1..1 + digits]);
                    v = &v[1 + digits..];
                }
            }
            Std::PM | Std::Pm => {
                let t = v.get(..2).ok_or_else(bad)?;
                pm = Some(match t {
                    "PM" | "pm" => true,
                    "AM" | "am" => false,
                    _ => return Err(bad()),
                });
                v = &v[2..];
            }
            Std::NumTz(iso, colon, secs, short) => {
                if iso && v.starts_with('Z') {
                    v = &v[1..];
                    zone_off = Some(0);
                    zone_name = Some("UTC".into());
                    continue;
                }
                let sign = match v.as_bytes().first() {
                    Some(b'+') => 1,
                    Some(b'-') => -1,
                    _ => return Err(bad()),
                };
                v = &v[1..];
                let hh = num(&mut v, Some(2), 2).ok_or_else(bad)?;
                let mut mm = 0;
                let mut ss = 0;
                if !short {
                    if colon {
                        v = v.strip_prefix(':').ok_or_else(bad)?;
                    }
                    mm = num(&mut v, Some(2), 2).ok_or_else(bad)?;
                }
                if secs {
                    if colon {
                        v = v.strip_prefix(':').ok_or_else(bad)?;
                    }
                    ss = num(&mut v, Some(2), 2).ok_or_else(bad)?;
                }
                zone_off = Some(sign * (hh as i32 * 3600 + mm as i32 * 60 + ss as i32));
            }
            Std::Tz => {
                if v.starts_with("UTC") {
                    v = &v[3..];
                    zone_off = Some(0);
                    zone_name = Some("UTC".into());
                    continue;
                }
                let n = v.bytes().take_while(|b| b.is_ascii_uppercase()).count();
                if n < 3 {
                    return Err(bad());
                }
                zone_name = Some(v[..n].to_string());
                v = &v[n..];
            }
            Std::Frac(n, nine, _) => {
                if nine {
                    if v.starts_with(['.', ',']) {
                        let digits = v[1..].bytes().take_while(|b| b.is_ascii_digit()).count();
                        nsec = frac_nanos(&v[1..1 + digits]);
                        v = &v[1 + digits..];
                    }
                } else {
                    if v.len() < n + 1 || !v.starts_with(['.', ',']) {
                        return Err(bad());
                    }
                    if !v[1..1 + n].bytes().all(|b| b.is_ascii_digit()) {
                        return Err(bad());
                    }
                    nsec = frac_nanos(&v[1..1 + n]);
                    v = &v[1 + n..];
                }
            }
        }
    }
    if let Some(p) = pm {
        if p && hour < 12 {
            hour += 12;
        } else if !p && hour == 12 {
            hour = 0;
        }
    }
    if let Some(yd) = yday {
        if yd < 1 || yd > if is_leap(year) { 366 } else { 365 } {
            return Err(err("", "", ": day-of-year out of range"));
        }
        let d0 = days_from_civil(year, 1, 1) + i64::from(yd) - 1;
        let (_, m, d) = civil_from_days(d0);
        month = m;
        day = d;
    }
    if day < 1 || day > days_in(month, year) {
        return Err(err("", "", ": day out of range"));
    }
    let local =
        days_from_civil(year, month, day) * 86_400 + i64::from(hour * 3600 + min * 60 + sec);
    if let Some(off) = zone_off {
        let secs = local - i64::from(off);
        // an offset the location uses at that instant keeps the location
        let loc = if zone_name.as_deref() == Some("UTC") && off == 0 {
            Loc::Utc
        } else if loc.zone(secs).0 == off {
            loc
        } else {
            Loc::Fixed(String::new(), off)
        };
        return Ok(GoTime {
            secs,
            nanos: nsec,
            loc,
            mono: None,
        });
    }
    if let Some(name) = zone_name {
        // an abbreviation the location knows at that time keeps it; others are offset 0
        let off = loc.offset_for_civil(local);
        let secs = local - i64::from(off);
        let (_, abbr) = loc.zone(secs);
        if abbr == name {
            return Ok(GoTime {
                secs,
                nanos: nsec,
                loc,
                mono: None,
            });
        }
        return Ok(GoTime {
            secs: local,
            nanos: nsec,
            loc: Loc::Fixed(name, 0),
            mono: None,
        });
    }
    let off = loc.offset_for_civil(local);
    Ok(GoTime {
        secs: local - i64::from(off),
        nanos: nsec,
        loc,
        mono: None,
    })
}

fn frac_nanos(d: &str) -> u32 {
    let mut s = d.chars().take(9).collect::<String>();
    while s.len() < 9 {
        s.push('0');
    }
    s.parse().unwrap_or(0)
}

/// time.Duration.String(): `1h30m0s`, `1.5s`, `50ms`, `0s`.
pub fn duration_string(d: i64) -> String {
    if d == 0 {
        return "0s".into();
    }
    let neg = d < 0;
    let u = d.unsigned_abs();
    let mut s = String::new();
    if u < 1_000_000_000 {
        let (unit, scale) = if u < 1_000 {
            ("ns", 1)
        } else if u < 1_000_000 {
            ("µs", 1_000)
        } else {
            ("ms", 1_000_000)
        };
        s.push_str(&frac_string(u, scale));
        s.push_str(unit);
    } else {
        let secs_total = u / 1_000_000_000;
        let h = secs_total / 3600;
        let m = secs_total % 3600 / 60;
        let sec_part = u % 60_000_000_000;
        if h > 0 {
            s.push_str(&format!("{h}h{m}m"));
        } else if m > 0 {
            s.push_str(&format!("{m}m"));
        }
        s.push_str(&frac_string(sec_part, 1_000_000_000));
        s.push('s');
    }
    if neg {
        s.insert(0, '-');
    }
    s
}

/// `v / scale` with the fraction's trailing zeros removed.
fn frac_string(v: u64, scale: u64) -> String {
    let whole = v / scale;
    let frac = v % scale;
    if frac == 0 {
        return whole.to_string();
    }
    let width = scale.to_string().len() - 1;
    let f = format!("{frac:0width$}");
    format!("{whole}.{}", f.trim_end_matches('0'))
}

/// time.ParseDuration.
pub fn parse_duration(s: &str) -> Result<i64, String> {
    let orig = s;
    let invalid = || format!("time: invalid duration {}", crate::gofmt::quote(orig));
    let mut s = s;
    let mut neg = false;
    if let Some(r) = s.strip_prefix('-') {
        neg = true;
        s = r;
    } else if let Some(r) = s.strip_prefix('+') {
        s = r;
    }
    if s == "0" {
        return Ok(0);
    }
    if s.is_empty() {
        return Err(invalid());
    }
    let mut total: u128 = 0;
    while !s.is_empty() {
        if !s.starts_with(|c: char| c == '.' || c.is_ascii_digit()) {
            return Err(invalid());
        }
        let int_len = s.bytes().take_while(|b| b.is_ascii_digit()).count();
        let int_part = &s[..int_len];
        s = &s[int_len..];
        let mut frac_part = "";
        if let Some(r) = s.strip_prefix('.') {
            let n = r.bytes().take_while(|b| b.is_ascii_digit()).count();
            frac_part = &r[..n];
            s = &r[n..];
        }
        if int_part.is_empty() && frac_part.is_empty() {
            return Err(invalid());
        }
        let unit_len = s
            .bytes()
            .take_while(|b| *b != b'.' && !b.is_ascii_digit())
            .count();
        if unit_len == 0 {
            return Err(format!(
                "time: missing unit in duration {}",
                crate::gofmt::quote(orig)
            ));
        }
        let unit = &s[..unit_len];
        s = &s[unit_len..];
        let scale: u128 = match unit {
            "ns" => 1,
            "us" | "µs" | "μs" => 1_000,
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60_000_000_000,
            "h" => 3_600_000_000_000,
            _ => {
                return Err(format!(
                    "time: unknown unit {} in duration {}",
                    crate::gofmt::quote(unit),
                    crate::gofmt::quote(orig)
                ));
            }
        };
        let iv: u128 = if int_part.is_empty() {
            0
        } else {
            int_part.parse().map_err(|_| invalid())?
        };
        let mut v = iv.checked_mul(scale).ok_or_else(invalid)?;
        if !frac_part.is_empty() {
            let mut f: u128 = 0;
            let mut div: u128 = 1;
            for b in frac_part.bytes().take(30) {
                f = f * 10 + u128::from(b - b'0');
                div *= 10;
            }
            v += f * scale / div;
        }
        total = total.checked_add(v).ok_or_else(invalid)?;
        if total > 1u128 << 63 {
            return Err(invalid());
        }
    }
    if total == 1u128 << 63 && !neg {
        return Err(invalid());
    }
    let t = total as i128;
    Ok(if neg { -t } else { t } as i64)
}

/// Duration.Round(time.Second) as `ago` uses it.
pub fn round_to_second(d: i64) -> i64 {
    let m = 1_000_000_000i64;
    let r = d % m;
    if d < 0 {
        let r = -r;
        if r + r < m { d + r } else { d + r - m }
    } else if r + r < m {
        d - r
    } else {
        d + m - r
    }
}

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
