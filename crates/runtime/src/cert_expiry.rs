//! When the certificates a server presents and trusts expire, as a gauge
//! (`midplane_tls_certificate_expiry_timestamp_seconds`), so an alert fires
//! before a rotation that never happened breaks every connection. cert-manager
//! exports the same for the certificates it manages; this covers any
//! certificate the server was given, however it was made.
//!
//! Reading `notAfter` needs only the first fields of the DER structure
//! (RFC 5280 4.1), so it is read here rather than with an X.509 library.

pub const EXPIRY_TIMESTAMP: &str = "midplane_tls_certificate_expiry_timestamp_seconds";

/// Sets the gauge for `which` (`server`, `client_ca`) to the earliest expiry
/// among `certs`; certificates that do not parse are skipped.
pub fn record(which: &'static str, certs: &[impl AsRef<[u8]>]) {
    metrics::describe_gauge!(
        EXPIRY_TIMESTAMP,
        metrics::Unit::Seconds,
        "Unix time the earliest certificate of the chain in use expires (notAfter)"
    );
    if let Some(t) = certs.iter().filter_map(|c| not_after(c.as_ref())).min() {
        metrics::gauge!(EXPIRY_TIMESTAMP, "certificate" => which).set(t as f64);
    }
}

/// `notAfter` of a DER certificate, as Unix seconds.
pub fn not_after(der: &[u8]) -> Option<i64> {
    let (_, cert, _) = read(der)?; // Certificate ::= SEQUENCE
    let (_, tbs, _) = read(cert)?; // tbsCertificate ::= SEQUENCE
    let mut rest = tbs;
    let (tag, _, after) = read(rest)?;
    if tag == 0xa0 {
        rest = after; // [0] EXPLICIT version
    }
    for _ in 0..3 {
        // serialNumber, signature, issuer
        rest = read(rest)?.2;
    }
    let (_, validity, _) = read(rest)?;
    let not_before_rest = read(validity)?.2;
    let (tag, time, _) = read(not_before_rest)?;
    parse_time(tag, std::str::from_utf8(time).ok()?)
}

/// One DER element: (tag, contents, what follows).
fn read(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, input) = input.split_first()?;
    let (&first, mut input) = input.split_first()?;
    let len = if first < 0x80 {
        usize::from(first)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 || input.len() < n {
            return None;
        }
        let (bytes, after) = input.split_at(n);
        input = after;
        bytes
            .iter()
            .fold(0usize, |acc, b| (acc << 8) | usize::from(*b))
    };
    if input.len() < len {
        return None;
    }
    let (contents, after) = input.split_at(len);
    Some((tag, contents, after))
}

/// UTCTime (tag 0x17, `YYMMDDHHMMSSZ`) or GeneralizedTime (0x18, `YYYYMMDDHHMMSSZ`).
fn parse_time(tag: u8, s: &str) -> Option<i64> {
    let s = s.strip_suffix('Z')?;
    let (year, rest) = match tag {
        0x17 if s.len() == 12 => {
            let yy: i64 = s.get(..2)?.parse().ok()?;
            // RFC 5280: 50..99 are 19xx, 00..49 are 20xx.
            (if yy >= 50 { 1900 + yy } else { 2000 + yy }, s.get(2..)?)
        }
        0x18 if s.len() == 14 => (s.get(..4)?.parse().ok()?, s.get(4..)?),
        _ => return None,
    };
    let field = |i: usize| -> Option<i64> { rest.get(i..i + 2)?.parse().ok() };
    let (month, day) = (field(0)?, field(2)?);
    let (hour, minute, second) = (field(4)?, field(6)?, field(8)?);
    Some(days_from_civil(year, month, day)? * 86_400 + hour * 3600 + minute * 60 + second)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> Option<i64> {
    if !(1..=12).contains(&m) || !(1..=31).contains(&d) {
        return None;
    }
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    Some(era * 146_097 + doe - 719_468)
}

/// For callers holding rustls certificates.
pub fn record_rustls(
    which: &'static str,
    certs: &[tokio_rustls::rustls::pki_types::CertificateDer<'_>],
) {
    record(which, certs);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_dates() {
        assert_eq!(days_from_civil(1970, 1, 1), Some(0));
        assert_eq!(days_from_civil(2000, 3, 1), Some(11_017));
        assert_eq!(
            parse_time(0x17, "491231235959Z"),
            Some(2_524_607_999) // 2049-12-31T23:59:59Z
        );
        assert_eq!(parse_time(0x18, "20260101000000Z"), Some(1_767_225_600));
        assert_eq!(parse_time(0x17, "2601010000Z"), None);
    }

    #[test]
    fn not_after_agrees_with_openssl() {
        let dir = tempfile::tempdir().expect("tempdir");
        let ca = crate::testing::pki::TestCa::new(dir.path(), "t").expect("ca");
        let leaf = ca.issue("server", &[]).expect("leaf");
        for path in [&ca.files.cert, &leaf.cert] {
            let pem = std::fs::read(path).expect("cert");
            let certs = crate::tls::parse_certificates(path, &pem).expect("parse");
            let ours = not_after(certs[0].as_ref()).expect("notAfter");
            // openssl prints e.g. "notAfter=Dec  3 13:00:00 2027 GMT"; date(1) reads it.
            let out = std::process::Command::new("openssl")
                .args(["x509", "-noout", "-enddate", "-in"])
                .arg(path)
                .output()
                .expect("openssl");
            let text = String::from_utf8_lossy(&out.stdout);
            let when = text.trim().trim_start_matches("notAfter=");
            let out = std::process::Command::new("date")
                .args(["-u", "-d", when, "+%s"])
                .output()
                .expect("date");
            let theirs: i64 = String::from_utf8_lossy(&out.stdout)
                .trim()
                .parse()
                .expect("seconds");
            assert_eq!(ours, theirs, "{}", path.display());
        }
    }
}
