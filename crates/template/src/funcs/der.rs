//! The little ASN.1 DER and PEM the certificate functions need: writing TLVs and reading a
//! certificate's subject and key identifier back.

use base64::Engine as _;

pub fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let n = content.len();
    if n < 0x80 {
        out.push(n as u8);
    } else {
        let bytes: Vec<u8> = n
            .to_be_bytes()
            .iter()
            .copied()
            .skip_while(|b| *b == 0)
            .collect();
        out.push(0x80 | bytes.len() as u8);
        out.extend(bytes);
    }
    out.extend_from_slice(content);
    out
}

pub fn seq(items: &[Vec<u8>]) -> Vec<u8> {
    tlv(0x30, &items.concat())
}

pub fn set(items: &[Vec<u8>]) -> Vec<u8> {
    tlv(0x31, &items.concat())
}

/// An unsigned big-endian integer.
pub fn uint(be: &[u8]) -> Vec<u8> {
    let mut v: Vec<u8> = be.iter().copied().skip_while(|b| *b == 0).collect();
    if v.is_empty() || v[0] & 0x80 != 0 {
        v.insert(0, 0);
    }
    tlv(0x02, &v)
}

pub fn small_int(n: u64) -> Vec<u8> {
    uint(&n.to_be_bytes())
}

pub fn oid(dotted: &str) -> Vec<u8> {
    let parts: Vec<u64> = dotted.split('.').filter_map(|p| p.parse().ok()).collect();
    let mut body = vec![(parts[0] * 40 + parts[1]) as u8];
    for &p in &parts[2..] {
        let mut stack = vec![(p & 0x7f) as u8];
        let mut v = p >> 7;
        while v > 0 {
            stack.push(((v & 0x7f) as u8) | 0x80);
            v >>= 7;
        }
        stack.reverse();
        body.extend(stack);
    }
    tlv(0x06, &body)
}

pub fn bit_string(bytes: &[u8]) -> Vec<u8> {
    let mut v = vec![0u8];
    v.extend_from_slice(bytes);
    tlv(0x03, &v)
}

pub fn octets(bytes: &[u8]) -> Vec<u8> {
    tlv(0x04, bytes)
}

pub fn boolean(b: bool) -> Vec<u8> {
    tlv(0x01, &[if b { 0xff } else { 0 }])
}

/// A string as Go's asn1 marshals a Go string: PrintableString when it can, else UTF8String.
pub fn go_string(s: &str) -> Vec<u8> {
    let printable = s
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || " '()+,-./:=?*&".contains(c));
    tlv(if printable { 0x13 } else { 0x0c }, s.as_bytes())
}

/// UTCTime before 2050, GeneralizedTime from then on (RFC 5280), to the second.
pub fn time(secs: i64, civil: (i64, u32, u32, u32, u32, u32)) -> Vec<u8> {
    let _ = secs;
    let (y, mo, d, h, mi, s) = civil;
    if (1950..2050).contains(&y) {
        tlv(
            0x17,
            format!("{:02}{mo:02}{d:02}{h:02}{mi:02}{s:02}Z", y % 100).as_bytes(),
        )
    } else {
        tlv(
            0x18,
            format!("{y:04}{mo:02}{d:02}{h:02}{mi:02}{s:02}Z").as_bytes(),
        )
    }
}

/// pem.Encode.
pub fn pem(kind: &str, der: &[u8]) -> String {
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = format!("-----BEGIN {kind}-----\n");
    for chunk in b64.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(chunk).unwrap_or_default());
        out.push('\n');
    }
    out.push_str(&format!("-----END {kind}-----\n"));
    out
}

/// pem.Decode of the first block: (type, bytes).
pub fn pem_decode(text: &str) -> Option<(String, Vec<u8>)> {
    let start = text.find("-----BEGIN ")?;
    let rest = &text[start + 11..];
    let end_type = rest.find("-----")?;
    let kind = rest[..end_type].to_string();
    let body_start = rest[end_type + 5..]
        .strip_prefix('\n')
        .or_else(|| rest[end_type + 5..].strip_prefix("\r\n"))?;
    let end_marker = format!("-----END {kind}-----");
    let end = body_start.find(&end_marker)?;
    let body: String = body_start[..end]
        .lines()
        .filter(|l| !l.contains(':'))
        .collect::<Vec<_>>()
        .join("");
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(body.trim())
        .ok()?;
    Some((kind, bytes))
}

/// One TLV read: (tag, content, total length).
pub fn read(data: &[u8]) -> Option<(u8, &[u8], usize)> {
    let tag = *data.first()?;
    let first = *data.get(1)?;
    let (len, hdr) = if first < 0x80 {
        (first as usize, 2)
    } else {
        let n = (first & 0x7f) as usize;
        if n == 0 || n > 4 {
            return None;
        }
        let mut len = 0usize;
        for i in 0..n {
            len = (len << 8) | *data.get(2 + i)? as usize;
        }
        (len, 2 + n)
    };
    let content = data.get(hdr..hdr + len)?;
    Some((tag, content, hdr + len))
}

/// One TLV: tag, content, and the whole encoding (header included).
pub type Tlv<'a> = (u8, &'a [u8], &'a [u8]);

/// The TLVs inside a constructed value.
pub fn children(mut data: &[u8]) -> Option<Vec<Tlv<'_>>> {
    let mut out = Vec::new();
    while !data.is_empty() {
        let (tag, content, used) = read(data)?;
        out.push((tag, content, &data[..used]));
        data = &data[used..];
    }
    Some(out)
}

/// A parsed certificate's raw subject and subject key identifier.
pub struct CertInfo {
    pub subject: Vec<u8>,
    pub subject_key_id: Option<Vec<u8>>,
}

/// Enough of x509.ParseCertificate for signing with a CA.
pub fn parse_certificate(der: &[u8]) -> Result<CertInfo, String> {
    let malformed = || "x509: malformed certificate".to_string();
    let (tag, cert, _) = read(der).ok_or_else(malformed)?;
    if tag != 0x30 {
        return Err(malformed());
    }
    let parts = children(cert).ok_or_else(malformed)?;
    let (_, tbs, _) = parts.first().ok_or_else(malformed)?;
    let fields = children(tbs).ok_or_else(malformed)?;
    let skip = usize::from(fields.first().is_some_and(|f| f.0 == 0xa0));
    let subject = fields.get(skip + 4).ok_or_else(malformed)?.2.to_vec();
    let mut ski = None;
    if let Some(ext) = fields.iter().find(|f| f.0 == 0xa3)
        && let Some((_, exts, _)) = read(ext.1)
    {
        for e in children(exts).into_iter().flatten() {
            let parts = children(e.1).unwrap_or_default();
            if parts.first().is_some_and(|p| p.2 == oid("2.5.29.14"))
                && let Some(val) = parts.last()
                && let Some((_, inner, _)) = read(val.1)
            {
                ski = Some(inner.to_vec());
            }
        }
    }
    Ok(CertInfo {
        subject,
        subject_key_id: ski,
    })
}
