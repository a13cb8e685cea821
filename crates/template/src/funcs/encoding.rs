//! Encodings, hashes and path helpers (Sprig's crypto.go subset, path funcs).

use base64::Engine as _;
use sha1::Digest as _;

use super::{FnResult, P, Table, reg, s};
use crate::value::Value;

fn st(v: String) -> FnResult {
    Ok(Value::String(v))
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

pub(super) fn register(t: &mut Table) {
    use P::*;
    reg(t, "b64enc", &[Str], None, |_, a| {
        st(base64::engine::general_purpose::STANDARD.encode(s(&a, 0)))
    });
    reg(t, "b64dec", &[Str], None, |_, a| {
        let v = s(&a, 0);
        match base64::engine::general_purpose::STANDARD.decode(&v) {
            Ok(d) => st(String::from_utf8_lossy(&d).into_owned()),
            Err(_) => st(format!(
                "illegal base64 data at input byte {}",
                bad_b64_offset(&v)
            )),
        }
    });
    reg(t, "b32enc", &[Str], None, |_, a| {
        st(b32enc(s(&a, 0).as_bytes()))
    });
    reg(t, "b32dec", &[Str], None, |_, a| {
        let v = s(&a, 0);
        match b32dec(&v) {
            Some(d) => st(String::from_utf8_lossy(&d).into_owned()),
            None => st("illegal base32 data at input byte 0".to_string()),
        }
    });
    reg(t, "sha256sum", &[Str], None, |_, a| {
        st(hex(&sha2::Sha256::digest(s(&a, 0).as_bytes())))
    });
    reg(t, "sha512sum", &[Str], None, |_, a| {
        use sha2::Digest as _;
        let d = sha2::Sha512::digest(super::s(&a, 0).as_bytes());
        Ok(Value::String(
            d.iter().map(|b| format!("{b:02x}")).collect(),
        ))
    });
    reg(t, "sha1sum", &[Str], None, |_, a| {
        st(hex(&sha1::Sha1::digest(s(&a, 0).as_bytes())))
    });
    reg(t, "adler32sum", &[Str], None, |_, a| {
        st(adler32(s(&a, 0).as_bytes()).to_string())
    });
    reg(t, "base", &[Str], None, |_, a| st(path_base(&s(&a, 0))));
    reg(t, "dir", &[Str], None, |_, a| st(path_dir(&s(&a, 0))));
    reg(t, "clean", &[Str], None, |_, a| st(path_clean(&s(&a, 0))));
    reg(t, "ext", &[Str], None, |_, a| st(path_ext(&s(&a, 0))));
    reg(t, "isAbs", &[Str], None, |_, a| {
        Ok(Value::Bool(s(&a, 0).starts_with('/')))
    });
    reg(t, "osBase", &[Str], None, |_, a| st(path_base(&s(&a, 0))));
    reg(t, "osDir", &[Str], None, |_, a| st(path_dir(&s(&a, 0))));
    reg(t, "osClean", &[Str], None, |_, a| st(path_clean(&s(&a, 0))));
    reg(t, "osExt", &[Str], None, |_, a| st(path_ext(&s(&a, 0))));
    reg(t, "osIsAbs", &[Str], None, |_, a| {
        Ok(Value::Bool(s(&a, 0).starts_with('/')))
    });
}

fn bad_b64_offset(v: &str) -> usize {
    let valid = |c: u8| c.is_ascii_alphanumeric() || c == b'+' || c == b'/';
    for (i, c) in v.bytes().enumerate() {
        if c == b'=' {
            return i;
        }
        if !valid(c) && c != b'\r' && c != b'\n' {
            return i;
        }
    }
    // a short final quantum: Go reports the offset of the incomplete group
    let n = v.len();
    n - n % 4
}

const B32: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

fn b32enc(b: &[u8]) -> String {
    let mut out = String::new();
    for chunk in b.chunks(5) {
        let mut buf = [0u8; 5];
        buf[..chunk.len()].copy_from_slice(chunk);
        let n = u64::from_be_bytes([0, 0, 0, buf[0], buf[1], buf[2], buf[3], buf[4]]);
        let chars = match chunk.len() {
            1 => 2,
            2 => 4,
            3 => 5,
            4 => 7,
            _ => 8,
        };
        for i in 0..8 {
            if i < chars {
                out.push(B32[((n >> (35 - i * 5)) & 31) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

fn b32dec(v: &str) -> Option<Vec<u8>> {
    let t = v.trim_end_matches('=');
    let mut bits: u64 = 0;
    let mut nbits = 0;
    let mut out = Vec::new();
    for c in t.bytes() {
        let x = B32.iter().position(|&b| b == c)? as u64;
        bits = (bits << 5) | x;
        nbits += 5;
        if nbits >= 8 {
            nbits -= 8;
            out.push(((bits >> nbits) & 0xff) as u8);
        }
    }
    Some(out)
}

fn adler32(b: &[u8]) -> u32 {
    let (mut a, mut s2) = (1u32, 0u32);
    for &x in b {
        a = (a + u32::from(x)) % 65521;
        s2 = (s2 + a) % 65521;
    }
    (s2 << 16) | a
}

/// path.Clean.
pub(crate) fn path_clean(p: &str) -> String {
    if p.is_empty() {
        return ".".into();
    }
    let rooted = p.starts_with('/');
    let mut parts: Vec<&str> = Vec::new();
    for seg in p.split('/') {
        match seg {
            "" | "." => {}
            ".." => {
                if parts.last().is_some_and(|l| *l != "..") {
                    parts.pop();
                } else if !rooted {
                    parts.push("..");
                }
            }
            s => parts.push(s),
        }
    }
    let joined = parts.join("/");
    match (rooted, joined.is_empty()) {
        (true, _) => format!("/{joined}"),
        (false, true) => ".".into(),
        (false, false) => joined,
    }
}

fn path_base(p: &str) -> String {
    if p.is_empty() {
        return ".".into();
    }
    let t = p.trim_end_matches('/');
    if t.is_empty() {
        return "/".into();
    }
    t.rsplit('/').next().unwrap_or(t).to_string()
}

fn path_dir(p: &str) -> String {
    let dir = match p.rfind('/') {
        Some(i) => &p[..=i],
        None => "",
    };
    path_clean(dir)
}

fn path_ext(p: &str) -> String {
    for (i, c) in p.char_indices().rev() {
        if c == '/' {
            break;
        }
        if c == '.' {
            return p[i..].to_string();
        }
    }
    String::new()
}
