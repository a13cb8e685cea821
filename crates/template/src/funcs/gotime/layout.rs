//! Go's reference-layout chunks (nextStdChunk) and formatting a broken-down time with them.

use super::*;

#[derive(Debug, Clone, PartialEq)]
pub(super) enum Std {
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

pub(super) fn starts_lower(s: &str) -> bool {
    s.chars().next().is_some_and(|c| c.is_ascii_lowercase())
}

/// nextStdChunk: (literal prefix, chunk, rest).
pub(super) fn next_std(layout: &str) -> (&str, Option<Std>, &str) {
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

pub(super) fn pad(out: &mut String, v: i64, width: usize) {
    if v < 0 {
        out.push('-');
    }
    out.push_str(&format!("{:0width$}", v.unsigned_abs(), width = width));
}

pub(super) fn format_std(out: &mut String, std: &Std, c: &Civil) {
    let hour12 = |h: u32| if h.is_multiple_of(12) { 12 } else { h % 12 };
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
            pad(out, i64::from(c.day), 0);
        }
        Std::ZeroDay => pad(out, i64::from(c.day), 2),
        Std::UnderYearDay => {
            if c.yday < 100 {
                out.push(' ');
                if c.yday < 10 {
                    out.push(' ');
                }
            }
            pad(out, i64::from(c.yday), 0);
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
