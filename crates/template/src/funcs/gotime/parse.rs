//! time.ParseInLocation with Go reference layouts.

use super::layout::*;
use super::*;

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
            let digits = v.bytes().take_while(u8::is_ascii_digit).count();
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
                    let digits = v[1..].bytes().take_while(u8::is_ascii_digit).count();
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
                let n = v.bytes().take_while(u8::is_ascii_uppercase).count();
                if n < 3 {
                    return Err(bad());
                }
                zone_name = Some(v[..n].to_string());
                v = &v[n..];
            }
            Std::Frac(n, nine, _) => {
                if nine {
                    if v.starts_with(['.', ',']) {
                        let digits = v[1..].bytes().take_while(u8::is_ascii_digit).count();
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

pub(super) fn frac_nanos(d: &str) -> u32 {
    let mut s = d.chars().take(9).collect::<String>();
    while s.len() < 9 {
        s.push('0');
    }
    s.parse().unwrap_or(0)
}
