//! Kubernetes resource quantities (`500m`, `10Gi`, `1e3`), checked the way the
//! API server parses them, so a bad size is reported before apply.

/// Returns the quantity's value in base units, or why it is not a quantity.
pub fn parse(q: &str) -> Result<f64, String> {
    let q = q.trim();
    if q.is_empty() {
        return Err("must be a quantity such as 10Gi or 500m, got an empty string".into());
    }
    let split = q
        .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '+' || c == '-'))
        .unwrap_or(q.len());
    let (num, suffix) = q.split_at(split);
    let number: f64 = num.parse().map_err(|_| {
        format!("{q:?} is not a quantity (expected a number then a unit such as Gi, Mi, m)")
    })?;
    let factor = match suffix {
        "" => 1.0,
        "Ki" => 1024.0,
        "Mi" => 1024f64.powi(2),
        "Gi" => 1024f64.powi(3),
        "Ti" => 1024f64.powi(4),
        "Pi" => 1024f64.powi(5),
        "Ei" => 1024f64.powi(6),
        "n" => 1e-9,
        "u" => 1e-6,
        "m" => 1e-3,
        "k" => 1e3,
        "M" => 1e6,
        "G" => 1e9,
        "T" => 1e12,
        "P" => 1e15,
        "E" => 1e18,
        s if s.starts_with(['e', 'E']) => {
            let exp: i32 = s[1..]
                .parse()
                .map_err(|_| format!("{q:?} has a malformed exponent"))?;
            10f64.powi(exp)
        }
        other => {
            return Err(format!(
                "{q:?} has an unknown unit {other:?} (use Ki, Mi, Gi, Ti, m, k, M, G)"
            ));
        }
    };
    Ok(number * factor)
}

#[cfg(test)]
mod tests {
    use super::parse;

    #[test]
    fn parses_kubernetes_quantities() {
        assert_eq!(parse("10Gi"), Ok(10.0 * 1024.0 * 1024.0 * 1024.0));
        assert_eq!(parse("500m"), Ok(0.5));
        assert_eq!(parse("2"), Ok(2.0));
        assert_eq!(parse("1e3"), Ok(1000.0));
        assert!(parse("10GB").unwrap_err().contains("unknown unit"));
        assert!(parse("lots").is_err());
        assert!(parse("").is_err());
    }
}
