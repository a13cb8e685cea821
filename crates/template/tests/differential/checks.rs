//! Checkers for outputs that differ on every run (keys, certificates, salted hashes): both
//! Helm's and Midplane's output must pass the same check by an outside tool (openssl, the
//! system's libcrypt through Python), and what the check reports about them must be equal.

use std::io::Write;
use std::process::{Command, Stdio};

/// Runs checker `spec` (`NAME` or `NAME:ARGS`) on Helm's and Midplane's output.
pub fn run(spec: &str, helm: &str, ours: &str) -> Result<(), String> {
    let (name, arg) = spec.split_once(':').unwrap_or((spec, ""));
    let check = |out: &str| -> Result<String, String> {
        match name {
            "htpasswd" => htpasswd(out, arg),
            "bcrypt" => bcrypt(out, arg),
            "pkey" => pem_report(out),
            "x509" => pem_report(out),
            "x509chain" => chain(out),
            "aes" => aes(out, arg),
            other => Err(format!("unknown checker {other}")),
        }
    };
    let w = check(helm).map_err(|e| format!("  helm output fails the {name} check: {e}\n"))?;
    let g = check(ours).map_err(|e| format!("  midplane output fails the {name} check: {e}\n"))?;
    if w != g {
        return Err(format!(
            "  {name} reports differ:\n  helm:     {w:?}\n  midplane: {g:?}\n"
        ));
    }
    Ok(())
}

fn tool(cmd: &str, args: &[&str], input: &[u8]) -> Result<String, String> {
    let mut child = Command::new(cmd)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("{cmd}: {e}"))?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(input)
            .map_err(|e| format!("{cmd} stdin: {e}"))?;
    }
    let out = child
        .wait_with_output()
        .map_err(|e| format!("{cmd}: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "{cmd} {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Verifies a bcrypt hash with the system's crypt(3); reports its scheme and cost.
fn verify_bcrypt(hash: &str, password: &str) -> Result<String, String> {
    let script = "import sys, warnings\nwarnings.simplefilter('ignore')\nimport crypt\nh, p = sys.stdin.read().split('\\n', 1)\nprint('ok' if crypt.crypt(p, h) == h else 'mismatch')";
    let out = tool(
        "python3",
        &["-c", script],
        format!("{hash}\n{password}").as_bytes(),
    )?;
    if out.trim() != "ok" {
        return Err(format!("{hash:?} does not verify against the password"));
    }
    Ok(hash.get(..7).unwrap_or(hash).to_string())
}

fn htpasswd(out: &str, password: &str) -> Result<String, String> {
    let (user, hash) = out
        .split_once(':')
        .ok_or_else(|| format!("{out:?} is not user:hash"))?;
    Ok(format!("{user} {}", verify_bcrypt(hash, password)?))
}

fn bcrypt(out: &str, password: &str) -> Result<String, String> {
    verify_bcrypt(out, password)
}

/// PEM blocks of a text, each with its BEGIN type.
fn blocks(text: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("-----BEGIN ") {
        let after = &rest[start + 11..];
        let Some(t_end) = after.find("-----") else {
            break;
        };
        let kind = after[..t_end].to_string();
        let end_marker = format!("-----END {kind}-----");
        let Some(end) = rest[start..].find(&end_marker) else {
            break;
        };
        let stop = start + end + end_marker.len();
        out.push((kind, format!("{}\n", &rest[start..stop])));
        rest = &rest[stop..];
    }
    out
}

/// What openssl says about keys and certificates, without the random parts.
fn pem_report(text: &str) -> Result<String, String> {
    let bs = blocks(text);
    if bs.is_empty() {
        return Err(format!("no PEM blocks in {text:?}"));
    }
    let mut report = Vec::new();
    for (kind, pem) in bs {
        report.push(format!("[{kind}]"));
        if kind == "CERTIFICATE" {
            report.push(cert_report(&pem)?);
        } else {
            let t = tool("openssl", &["pkey", "-noout", "-text"], pem.as_bytes())?;
            report.push(strip_hex(&t));
        }
    }
    Ok(report.join("\n"))
}

fn strip_hex(text: &str) -> String {
    text.lines()
        .filter(|l| {
            let t = l.trim();
            !(t.is_empty()
                || t.chars().all(|c| c.is_ascii_hexdigit() || c == ':')
                || t.starts_with("Modulus")
                || t.starts_with("Exponent")
                || t.starts_with("priv:")
                || t.starts_with("pub:")
                || t.starts_with("prime")
                || t.starts_with("coefficient")
                || t.starts_with("publicExponent")
                || t.starts_with("privateExponent")
                || t.starts_with("P:")
                || t.starts_with("Q:")
                || t.starts_with("G:"))
        })
        .map(str::trim)
        .collect::<Vec<_>>()
        .join("\n")
}

fn cert_report(pem: &str) -> Result<String, String> {
    let text = tool("openssl", &["x509", "-noout", "-text"], pem.as_bytes())?;
    let dates = tool(
        "openssl",
        &[
            "x509",
            "-noout",
            "-startdate",
            "-enddate",
            "-dateopt",
            "iso_8601",
        ],
        pem.as_bytes(),
    )?;
    let mut lines = Vec::new();
    let mut skip_next = false;
    for l in text.lines() {
        let t = l.trim();
        if skip_next {
            skip_next = false;
            continue;
        }
        if t.starts_with("Serial Number")
            || t.starts_with("Not Before")
            || t.starts_with("Not After")
            || t.starts_with("keyid:")
        {
            if t.ends_with(':') {
                skip_next = true;
            }
            continue;
        }
        if t.starts_with("X509v3 Subject Key Identifier") {
            skip_next = true;
            lines.push(t.to_string());
            continue;
        }
        lines.push(t.to_string());
    }
    let mut validity = String::new();
    let (mut start, mut end) = (None, None);
    for l in dates.lines() {
        if let Some(v) = l.strip_prefix("notBefore=") {
            start = Some(v.to_string());
        }
        if let Some(v) = l.strip_prefix("notAfter=") {
            end = Some(v.to_string());
        }
    }
    if let (Some(a), Some(b)) = (start, end) {
        validity = format!("valid {}", days_between(&a, &b));
    }
    Ok(format!("{}\n{validity}", strip_hex(&lines.join("\n"))))
}

/// Whole days between two ISO 8601 `YYYY-MM-DD hh:mm:ssZ` stamps.
fn days_between(a: &str, b: &str) -> i64 {
    let secs = |s: &str| -> i64 {
        let d: Vec<i64> = s
            .split(|c: char| !c.is_ascii_digit())
            .filter(|p| !p.is_empty())
            .filter_map(|p| p.parse().ok())
            .collect();
        if d.len() < 6 {
            return 0;
        }
        let (y, m, day) = (d[0], d[1], d[2]);
        let (y2, m2) = if m <= 2 { (y - 1, m + 9) } else { (y, m - 3) };
        let era = y2.div_euclid(400);
        let yoe = y2 - era * 400;
        let doy = (153 * m2 + 2) / 5 + day - 1;
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
        (era * 146_097 + doe - 719_468) * 86_400 + d[3] * 3600 + d[4] * 60 + d[5]
    };
    (secs(b) - secs(a)) / 86_400
}

/// CA certificate, leaf certificate, leaf key: the leaf must verify against the CA.
fn chain(text: &str) -> Result<String, String> {
    let bs = blocks(text);
    let certs: Vec<&String> = bs
        .iter()
        .filter(|b| b.0 == "CERTIFICATE")
        .map(|b| &b.1)
        .collect();
    if certs.len() != 2 {
        return Err(format!("expected a CA and a leaf certificate in {text:?}"));
    }
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, certs[0]).map_err(|e| e.to_string())?;
    let verified = tool(
        "openssl",
        &["verify", "-CAfile", &ca.to_string_lossy()],
        certs[1].as_bytes(),
    )?;
    Ok(format!("{}\n{}", verified.trim(), pem_report(text)?))
}

/// The ciphertext must decrypt with openssl to the expected plaintext.
fn aes(out: &str, arg: &str) -> Result<String, String> {
    use base64::Engine as _;
    let (key, plain) = arg.split_once(':').ok_or("aes:KEY:PLAINTEXT expected")?;
    let data = base64::engine::general_purpose::STANDARD
        .decode(out.trim())
        .map_err(|e| format!("{out:?}: {e}"))?;
    if data.len() < 32 {
        return Err(format!("{out:?} is too short"));
    }
    let hex = |b: &[u8]| b.iter().map(|x| format!("{x:02x}")).collect::<String>();
    let mut k = key.as_bytes().to_vec();
    k.resize(32, 0);
    let got = tool(
        "openssl",
        &[
            "enc",
            "-d",
            "-aes-256-cbc",
            "-K",
            &hex(&k),
            "-iv",
            &hex(&data[..16]),
        ],
        &data[16..],
    )?;
    if got != plain {
        return Err(format!("decrypts to {got:?}, not {plain:?}"));
    }
    Ok(format!("decrypts, {} bytes", data.len()))
}
