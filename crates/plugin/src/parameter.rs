//! What values a plugin parameter takes. A plugin declares each parameter's
//! type and range in `plugin.yaml`; an App's value is checked against it
//! before anything is rendered, so `maxmemory: lots` is a field error on the
//! App, not a middleware that refuses its config file.
//!
//! | type | values | range (`min`, `max`) |
//! | --- | --- | --- |
//! | `string` (default) | any single line | none |
//! | `integer` | `-12`, `0`, `4096` | integers |
//! | `size` | bytes, or a number with `k`, `kb`, `m`, `mb`, `g`, `gb` (Redis' units: `k` = 1000, `kb` = 1024) | sizes |
//! | `duration` | `500ms`, `30s`, `5m`, `1h30m` | durations |
//! | `boolean` | `yes` or `no` | none |
//! | `enum` | one of `values` | none |

use serde::{Deserialize, Serialize};

/// The type of a parameter's value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ParameterType {
    /// Any single-line value.
    #[default]
    String,
    Integer,
    /// Bytes, or a number with a unit (k, kb, m, mb, g, gb).
    Size,
    /// A duration such as 500ms, 30s, 5m or 1h30m.
    Duration,
    /// `yes` or `no`.
    Boolean,
    /// One of the declared `values`.
    Enum,
}

impl ParameterType {
    /// Whether `min` and `max` mean something for this type.
    pub fn ranged(self) -> bool {
        matches!(self, Self::Integer | Self::Size | Self::Duration)
    }

    /// `value` as a number for range checks (sizes in bytes, durations in
    /// milliseconds), or why it is not of this type.
    fn number(self, value: &str) -> Result<i128, String> {
        match self {
            Self::Integer => value
                .parse::<i64>()
                .map(i128::from)
                .map_err(|_| format!("{value:?} is not an integer")),
            Self::Size => size_bytes(value).ok_or_else(|| {
                format!(
                    "{value:?} is not a size: bytes, or a number with a unit k, kb, m, mb, g or gb (e.g. 256mb)"
                )
            }),
            Self::Duration => duration_ms(value).ok_or_else(|| {
                format!("{value:?} is not a duration: a number with a unit ms, s, m or h (e.g. 30s, 1h30m)")
            }),
            Self::String | Self::Boolean | Self::Enum => Ok(0),
        }
    }
}

/// Checks `value` against a parameter's type, range and allowed values.
pub fn check(
    kind: ParameterType,
    min: Option<&str>,
    max: Option<&str>,
    values: &[String],
    value: &str,
) -> Result<(), String> {
    match kind {
        ParameterType::String => Ok(()),
        ParameterType::Boolean => match value {
            "yes" | "no" => Ok(()),
            _ => Err(format!("{value:?} is not a boolean: use yes or no")),
        },
        ParameterType::Enum => {
            if values.iter().any(|v| v == value) {
                Ok(())
            } else {
                Err(format!("{value:?} is not one of {}", values.join(", ")))
            }
        }
        ParameterType::Integer | ParameterType::Size | ParameterType::Duration => {
            let n = kind.number(value)?;
            if let Some(min) = min
                && n < kind.number(min)?
            {
                return Err(format!("{value:?} is below the minimum {min}"));
            }
            if let Some(max) = max
                && n > kind.number(max)?
            {
                return Err(format!("{value:?} is above the maximum {max}"));
            }
            Ok(())
        }
    }
}

/// Redis' memory units (`memtoll`): a plain number is bytes; `k`, `m`, `g`
/// are powers of 1000, `kb`, `mb`, `gb` powers of 1024, in any case.
pub fn size_bytes(value: &str) -> Option<i128> {
    let lower = value.trim().to_ascii_lowercase();
    let split = lower
        .find(|c: char| !(c.is_ascii_digit() || c == '-'))
        .unwrap_or(lower.len());
    let (num, unit) = lower.split_at(split);
    let n: i128 = num.parse().ok()?;
    let factor: i128 = match unit {
        "" | "b" => 1,
        "k" => 1_000,
        "kb" => 1_024,
        "m" => 1_000_000,
        "mb" => 1_024 * 1_024,
        "g" => 1_000_000_000,
        "gb" => 1_024 * 1_024 * 1_024,
        _ => return None,
    };
    (n >= 0).then_some(n * factor)
}

/// A Go-style duration (`500ms`, `30s`, `1h30m`) in milliseconds.
pub fn duration_ms(value: &str) -> Option<i128> {
    let mut rest = value.trim();
    if rest.is_empty() {
        return None;
    }
    let mut total: i128 = 0;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        if digits == 0 {
            return None;
        }
        let n: i128 = rest[..digits].parse().ok()?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let factor = match &rest[..unit_len] {
            "ms" => 1,
            "s" => 1_000,
            "m" => 60_000,
            "h" => 3_600_000,
            _ => return None,
        };
        rest = &rest[unit_len..];
        total += n * factor;
    }
    Some(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(kind: ParameterType, v: &str) -> bool {
        check(kind, None, None, &[], v).is_ok()
    }

    #[test]
    fn sizes_use_redis_units() {
        assert_eq!(size_bytes("0"), Some(0));
        assert_eq!(size_bytes("256mb"), Some(256 * 1024 * 1024));
        assert_eq!(size_bytes("1GB"), Some(1024 * 1024 * 1024));
        assert_eq!(size_bytes("10k"), Some(10_000));
        assert_eq!(size_bytes("lots"), None);
        assert_eq!(size_bytes("-1"), None);
        assert_eq!(size_bytes("1tb"), None);
        let err = check(ParameterType::Size, None, None, &[], "lots").expect_err("not a size");
        assert!(err.contains("\"lots\" is not a size"), "{err}");
    }

    #[test]
    fn integers_durations_booleans_and_enums() {
        assert!(ok(ParameterType::Integer, "-1") && !ok(ParameterType::Integer, "1.5"));
        assert_eq!(duration_ms("1h30m"), Some(5_400_000));
        assert_eq!(duration_ms("500ms"), Some(500));
        assert_eq!(duration_ms("30"), None, "a unit is required");
        assert!(ok(ParameterType::Duration, "30s") && !ok(ParameterType::Duration, "soon"));
        assert!(ok(ParameterType::Boolean, "yes") && !ok(ParameterType::Boolean, "true"));
        let values = ["noeviction".to_string(), "allkeys-lru".to_string()];
        assert!(check(ParameterType::Enum, None, None, &values, "allkeys-lru").is_ok());
        let err = check(ParameterType::Enum, None, None, &values, "lru").expect_err("not listed");
        assert!(err.contains("noeviction, allkeys-lru"), "{err}");
        assert!(ok(ParameterType::String, "anything at all"));
    }

    #[test]
    fn ranges_are_in_the_type_s_own_units() {
        let c = |v| check(ParameterType::Integer, Some("1"), Some("128"), &[], v);
        assert!(c("1").is_ok() && c("128").is_ok());
        assert!(c("0").expect_err("low").contains("below the minimum 1"));
        assert!(
            c("129")
                .expect_err("high")
                .contains("above the maximum 128")
        );
        let s = |v| check(ParameterType::Size, Some("1mb"), None, &[], v);
        assert!(s("2mb").is_ok() && s("1024kb").is_ok());
        assert!(s("1000kb").is_err(), "1000kb < 1mb");
    }
}
