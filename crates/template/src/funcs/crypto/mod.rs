//! Sprig's crypto functions: private keys (RSA, ECDSA P-256, Ed25519, DSA) in the PEM forms
//! Go writes, X.509 certificates built the way Go's x509.CreateCertificate builds them,
//! bcrypt/htpasswd, derivePassword (Master Password), and AES-CBC encryptAES/decryptAES.
//! Keys and signatures come from aws-lc (DSA through its C API).

use std::sync::Arc;

use aws_lc_rs::rsa::KeySize;
use base64::Engine as _;

use super::der::{self, bit_string, boolean, octets, oid, seq, tlv};
use super::gotime::GoTime;
use super::{FnErr, FnResult, P, Table, int, reg, s};
use crate::object::{Field, GoStruct, Object};
use crate::value::Value;

mod keys;
use keys::*;

/// x509.Certificate fields Sprig sets.
struct Template {
    cn: String,
    ips: Vec<Vec<u8>>,
    dns: Vec<String>,
    days: i64,
    is_ca: bool,
}

/// getNetIPs / getAlternateDNSStrs.
fn template(cn: &str, ips: &Value, dns: &Value, days: i64) -> Result<Template, String> {
    let list = |v: &Value| match v {
        Value::List(l) => (**l).clone(),
        _ => Vec::new(),
    };
    let mut ip_bytes = Vec::new();
    for ip in list(ips) {
        let Value::String(text) = &ip else {
            return Err(format!(
                "error parsing ip: {} is not a string",
                ip.to_go_string()
            ));
        };
        let parsed: std::net::IpAddr = text
            .parse()
            .map_err(|_| format!("error parsing ip: {text}"))?;
        ip_bytes.push(match parsed {
            std::net::IpAddr::V4(v4) => v4.octets().to_vec(),
            std::net::IpAddr::V6(v6) => v6
                .to_ipv4_mapped()
                .map(|v4| v4.octets().to_vec())
                .unwrap_or_else(|| v6.octets().to_vec()),
        });
    }
    let mut names = Vec::new();
    for d in list(dns) {
        let Value::String(text) = &d else {
            return Err(format!(
                "error processing alternate dns name: {} is not a string",
                d.to_go_string()
            ));
        };
        names.push(text.clone());
    }
    Ok(Template {
        cn: cn.to_string(),
        ips: ip_bytes,
        dns: names,
        days,
        is_ca: false,
    })
}

fn name(cn: &str) -> Vec<u8> {
    if cn.is_empty() {
        return seq(&[]);
    }
    seq(&[der::set(&[seq(&[oid("2.5.4.3"), der::go_string(cn)])])])
}

fn asn1_time(t: &GoTime) -> Vec<u8> {
    let c = t.in_loc(super::gotime::Loc::Utc).civil();
    der::time(t.secs, (c.year, c.month, c.day, c.hour, c.minute, c.second))
}

fn extension(id: &str, critical: bool, value: Vec<u8>) -> Vec<u8> {
    let mut parts = vec![oid(id)];
    if critical {
        parts.push(boolean(true));
    }
    parts.push(octets(&value));
    seq(&parts)
}

/// The subject key identifier Go derives for CA certificates: a hash of the public key bits
/// (Helm 3's Go uses SHA-1, Helm 4's truncated SHA-256).
fn key_id(spki: &[u8], helm: crate::HelmMajor) -> Vec<u8> {
    use sha2::Digest as _;
    let bits = der::children(der::read(spki).map_or(&[][..], |r| r.1))
        .and_then(|c| c.get(1).map(|b| b.1.get(1..).unwrap_or_default().to_vec()))
        .unwrap_or_default();
    match helm {
        crate::HelmMajor::V3 => sha1::Sha1::digest(&bits).to_vec(),
        crate::HelmMajor::V4 => sha2::Sha256::digest(&bits)[..20].to_vec(),
    }
}

/// x509.CreateCertificate for Sprig's templates: (cert PEM, key PEM).
fn create(
    t: &Template,
    subject_key: &Key,
    issuer: Option<(&der::CertInfo, &Key)>,
    helm: crate::HelmMajor,
) -> Result<(String, String), String> {
    let mut serial = [0u8; 16];
    aws_lc_rs::rand::fill(&mut serial).map_err(|e| e.to_string())?;
    let now = GoTime::now();
    let not_after = now.add(t.days.saturating_mul(86_400_000_000_000));
    let spki = subject_key.spki()?;
    let subject = name(&t.cn);
    let issuer_name = issuer.map_or(subject.clone(), |(info, _)| info.subject.clone());
    let signer = issuer.map_or(subject_key, |(_, k)| k);
    let (sig_alg, _) = signer.sign(b"")?;
    let mut exts = Vec::new();
    let ku: u8 = if t.is_ca { 0xa4 } else { 0xa0 };
    let unused = if t.is_ca { 2 } else { 5 };
    exts.push(extension("2.5.29.15", true, tlv(0x03, &[unused, ku])));
    exts.push(extension(
        "2.5.29.37",
        false,
        seq(&[oid("1.3.6.1.5.5.7.3.1"), oid("1.3.6.1.5.5.7.3.2")]),
    ));
    exts.push(extension(
        "2.5.29.19",
        true,
        if t.is_ca {
            seq(&[boolean(true)])
        } else {
            seq(&[])
        },
    ));
    if t.is_ca {
        exts.push(extension("2.5.29.14", false, octets(&key_id(&spki, helm))));
    }
    if let Some((info, _)) = issuer
        && info.subject != subject
        && let Some(ski) = &info.subject_key_id
    {
        exts.push(extension("2.5.29.35", false, seq(&[tlv(0x80, ski)])));
    }
    if !t.dns.is_empty() || !t.ips.is_empty() {
        let mut names: Vec<Vec<u8>> = t.dns.iter().map(|d| tlv(0x82, d.as_bytes())).collect();
        names.extend(t.ips.iter().map(|ip| tlv(0x87, ip)));
        exts.push(extension("2.5.29.17", t.cn.is_empty(), seq(&names)));
    }
    let tbs = seq(&[
        tlv(0xa0, &der::small_int(2)),
        der::uint(&serial),
        sig_alg.clone(),
        issuer_name,
        seq(&[asn1_time(&now), asn1_time(&not_after)]),
        subject,
        spki,
        tlv(0xa3, &seq(&exts)),
    ]);
    let (_, sig) = signer.sign(&tbs)?;
    let cert = seq(&[tbs, sig_alg, bit_string(&sig)]);
    Ok((der::pem("CERTIFICATE", &cert), subject_key.pem()?))
}

fn certificate(cert: String, key: String) -> Value {
    Value::Object(Arc::new(Object::Struct(GoStruct {
        type_name: "sprig.certificate",
        pointer: false,
        fields: vec![
            Field::new("Cert", Some("Cert"), Value::String(cert)),
            Field::new("Key", Some("Key"), Value::String(key)),
        ],
        string: None,
        string_on_pointer: false,
        methods: Vec::new(),
    })))
}

/// A `certificate` argument's Cert and Key.
fn cert_parts(v: &Value) -> (String, String) {
    let field = |n: &str| match v {
        Value::Object(o) => match &**o {
            Object::Struct(st) => st.field(n).map(super::strval).unwrap_or_default(),
            _ => String::new(),
        },
        Value::Map(m) => m.get(n).map(super::strval).unwrap_or_default(),
        _ => String::new(),
    };
    (field("Cert"), field("Key"))
}

fn helm_of(e: &crate::exec::Exec<'_>) -> crate::HelmMajor {
    e.set.options.helm
}

fn err(m: String) -> FnErr {
    FnErr::Msg(m)
}

fn ca(cn: &str, days: i64, key: Key, helm: crate::HelmMajor) -> FnResult {
    let mut t = template(cn, &Value::Nil, &Value::Nil, days).map_err(err)?;
    t.is_ca = true;
    let (c, k) = create(&t, &key, None, helm).map_err(err)?;
    Ok(certificate(c, k))
}

fn signed(t: Template, ca_cert: &Value, key: Key, helm: crate::HelmMajor) -> FnResult {
    let (cert_pem, key_pem) = cert_parts(ca_cert);
    let Some((_, der_bytes)) = der::pem_decode(&cert_pem) else {
        return Err(err("unable to decode certificate".into()));
    };
    let info = der::parse_certificate(&der_bytes).map_err(|e| {
        err(format!(
            "error parsing certificate: decodedSignerCert.Bytes: {e}"
        ))
    })?;
    let signer =
        parse_key_pem(&key_pem).map_err(|e| err(format!("error parsing private key: {e}")))?;
    let (c, k) = create(&t, &key, Some((&info, &signer)), helm).map_err(err)?;
    Ok(certificate(c, k))
}

fn with_key(pem: &str) -> Result<Key, FnErr> {
    parse_key_pem(pem).map_err(|e| err(format!("parsing private key: {e}")))
}

fn rsa2048() -> Result<Key, FnErr> {
    rsa(KeySize::Rsa2048).map_err(err)
}

pub(super) fn register(t: &mut Table) {
    use P::*;
    reg(t, "genPrivateKey", &[Str], None, |_, a| {
        Ok(Value::String(gen_private_key(&s(&a, 0))))
    });
    reg(t, "genCA", &[Str, Int], None, |e, a| {
        ca(&s(&a, 0), int(&a, 1), rsa2048()?, helm_of(e))
    });
    reg(t, "genCAWithKey", &[Str, Int, Str], None, |e, a| {
        ca(&s(&a, 0), int(&a, 1), with_key(&s(&a, 2))?, helm_of(e))
    });
    reg(
        t,
        "genSelfSignedCert",
        &[Str, List, List, Int],
        None,
        |e, a| {
            let t = template(&s(&a, 0), &a[1], &a[2], int(&a, 3)).map_err(err)?;
            let key = rsa2048()?;
            let (c, k) = create(&t, &key, None, helm_of(e)).map_err(err)?;
            Ok(certificate(c, k))
        },
    );
    reg(
        t,
        "genSelfSignedCertWithKey",
        &[Str, List, List, Int, Str],
        None,
        |e, a| {
            let t = template(&s(&a, 0), &a[1], &a[2], int(&a, 3)).map_err(err)?;
            let key = with_key(&s(&a, 4))?;
            let (c, k) = create(&t, &key, None, helm_of(e)).map_err(err)?;
            Ok(certificate(c, k))
        },
    );
    reg(
        t,
        "genSignedCert",
        &[Str, List, List, Int, Any],
        None,
        |e, a| {
            let t = template(&s(&a, 0), &a[1], &a[2], int(&a, 3)).map_err(err)?;
            signed(t, &a[4], rsa2048()?, helm_of(e))
        },
    );
    reg(
        t,
        "genSignedCertWithKey",
        &[Str, List, List, Int, Any, Str],
        None,
        |e, a| {
            let t = template(&s(&a, 0), &a[1], &a[2], int(&a, 3)).map_err(err)?;
            let key = with_key(&s(&a, 5))?;
            signed(t, &a[4], key, helm_of(e))
        },
    );
    reg(t, "buildCustomCert", &[Str, Str], None, |_, a| {
        let b64 = base64::engine::general_purpose::STANDARD;
        let cert = b64
            .decode(s(&a, 0))
            .map_err(|_| err("unable to decode base64 certificate".into()))?;
        let key = b64
            .decode(s(&a, 1))
            .map_err(|_| err("unable to decode base64 private key".into()))?;
        let cert = String::from_utf8_lossy(&cert).into_owned();
        let key = String::from_utf8_lossy(&key).into_owned();
        let Some((_, der_bytes)) = der::pem_decode(&cert) else {
            return Err(err("unable to decode certificate".into()));
        };
        der::parse_certificate(&der_bytes)
            .map_err(|e| err(format!("error parsing certificate: decodedCert.Bytes: {e}")))?;
        parse_key_pem(&key).map_err(|e| err(format!("error parsing private key: {e}")))?;
        Ok(certificate(cert, key))
    });
}
