//! Sprig's crypto functions: private keys (RSA, ECDSA P-256, Ed25519, DSA) in the PEM forms
//! Go writes, X.509 certificates built the way Go's x509.CreateCertificate builds them,
//! bcrypt/htpasswd, derivePassword (Master Password), and AES-CBC encryptAES/decryptAES.
//! Keys and signatures come from aws-lc (DSA through its C API).

use std::sync::Arc;

use aws_lc_rs::encoding::{AsBigEndian, AsDer};
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::KeySize;
use aws_lc_rs::signature::{self, EcdsaKeyPair, Ed25519KeyPair, KeyPair};
use base64::Engine as _;

use super::der::{self, bit_string, boolean, octets, oid, seq, tlv};
use super::gotime::GoTime;
use super::{FnErr, FnResult, P, Table, int, reg, s};
use crate::object::{Field, GoStruct, Object};
use crate::value::Value;

enum Key {
    Rsa(signature::RsaKeyPair),
    Ec(EcdsaKeyPair),
    Ed(Ed25519KeyPair),
    /// Go's DSAKeyFormat DER; certificates cannot use it.
    Dsa(Vec<u8>),
}

const OID_RSA: &str = "1.2.840.113549.1.1.1";
const OID_EC: &str = "1.2.840.10045.2.1";
const OID_ED25519: &str = "1.3.101.112";

fn rsa(bits: KeySize) -> Result<Key, String> {
    signature::RsaKeyPair::generate(bits)
        .map(Key::Rsa)
        .map_err(|e| format!("error generating rsa key: {e}"))
}

/// The PKCS#1 RSAPrivateKey inside a PKCS#8 PrivateKeyInfo.
fn pkcs8_inner(pkcs8: &[u8]) -> Option<Vec<u8>> {
    let (_, body, _) = der::read(pkcs8)?;
    let parts = der::children(body)?;
    let (tag, inner, _) = parts.get(2)?;
    (*tag == 0x04).then(|| inner.to_vec())
}

impl Key {
    /// pemBlockForKey: PKCS#1 for RSA, SEC1 for EC, PKCS#8 for Ed25519, Go's own for DSA.
    fn pem(&self) -> Result<String, String> {
        let bad = |e: aws_lc_rs::error::Unspecified| e.to_string();
        Ok(match self {
            Key::Rsa(k) => {
                let p8 = k.as_der().map_err(bad)?;
                let inner = pkcs8_inner(p8.as_ref()).ok_or("bad PKCS#8")?;
                der::pem("RSA PRIVATE KEY", &inner)
            }
            Key::Ec(k) => {
                let sec1 = k.private_key().as_der().map_err(bad)?;
                der::pem("EC PRIVATE KEY", sec1.as_ref())
            }
            Key::Ed(k) => {
                let seed = k.seed().map_err(bad)?;
                let seed = seed.as_be_bytes().map_err(bad)?;
                let body = seq(&[
                    der::small_int(0),
                    seq(&[oid(OID_ED25519)]),
                    octets(&octets(seed.as_ref())),
                ]);
                der::pem("PRIVATE KEY", &body)
            }
            Key::Dsa(d) => der::pem("DSA PRIVATE KEY", d),
        })
    }

    fn spki(&self) -> Result<Vec<u8>, String> {
        let bad = |e: aws_lc_rs::error::Unspecified| e.to_string();
        Ok(match self {
            Key::Rsa(k) => k.public_key().as_der().map_err(bad)?.as_ref().to_vec(),
            Key::Ec(k) => k.public_key().as_der().map_err(bad)?.as_ref().to_vec(),
            Key::Ed(k) => k.public_key().as_der().map_err(bad)?.as_ref().to_vec(),
            Key::Dsa(_) => {
                return Err(
                    "error creating certificate: x509: unsupported public key type: *dsa.PublicKey"
                        .into(),
                );
            }
        })
    }

    /// (AlgorithmIdentifier, signature) of `msg`.
    fn sign(&self, msg: &[u8]) -> Result<(Vec<u8>, Vec<u8>), String> {
        let rng = SystemRandom::new();
        match self {
            Key::Rsa(k) => {
                let mut sig = vec![0u8; k.public_modulus_len()];
                k.sign(&signature::RSA_PKCS1_SHA256, &rng, msg, &mut sig)
                    .map_err(|e| e.to_string())?;
                Ok((seq(&[oid("1.2.840.113549.1.1.11"), tlv(0x05, &[])]), sig))
            }
            Key::Ec(k) => {
                let sig = k.sign(&rng, msg).map_err(|e| e.to_string())?;
                Ok((seq(&[oid("1.2.840.10045.4.3.2")]), sig.as_ref().to_vec()))
            }
            Key::Ed(k) => Ok((seq(&[oid(OID_ED25519)]), k.sign(msg).as_ref().to_vec())),
            Key::Dsa(_) => Err("x509: unsupported private key type".into()),
        }
    }
}

/// parsePrivateKeyPEM.
fn parse_key_pem(text: &str) -> Result<Key, String> {
    let Some((kind, bytes)) = der::pem_decode(text) else {
        return Err("no PEM data in input".into());
    };
    if kind == "PRIVATE KEY" {
        return parse_pkcs8(&bytes).map_err(|e| format!("decoding PEM as PKCS#8: {e}"));
    }
    let Some(prefix) = kind.strip_suffix(" PRIVATE KEY") else {
        return Err(format!("no private key data in PEM block of type {kind}"));
    };
    match prefix {
        "RSA" => signature::RsaKeyPair::from_der(&bytes)
            .map(Key::Rsa)
            .map_err(|_| "parsing RSA private key from PEM: x509: failed to parse private key (use ParsePKCS8PrivateKey instead for this key format)".to_string()),
        "EC" => EcdsaKeyPair::from_private_key_der(&signature::ECDSA_P256_SHA256_ASN1_SIGNING, &bytes)
            .map(Key::Ec)
            .map_err(|_| "parsing EC private key from PEM: x509: failed to parse EC private key".to_string()),
        "DSA" => Ok(Key::Dsa(bytes)),
        _ => Err(format!("invalid private key type {kind}")),
    }
}

fn parse_pkcs8(p8: &[u8]) -> Result<Key, String> {
    let bad = || "x509: failed to parse private key".to_string();
    let (_, body, _) = der::read(p8).ok_or_else(bad)?;
    let parts = der::children(body).ok_or_else(bad)?;
    let alg = parts
        .get(1)
        .and_then(|a| der::children(a.1))
        .ok_or_else(bad)?;
    let alg_oid = alg.first().map(|a| a.2.to_vec()).ok_or_else(bad)?;
    if alg_oid == oid(OID_RSA) {
        signature::RsaKeyPair::from_pkcs8(p8)
            .map(Key::Rsa)
            .map_err(|_| bad())
    } else if alg_oid == oid(OID_EC) {
        EcdsaKeyPair::from_pkcs8(&signature::ECDSA_P256_SHA256_ASN1_SIGNING, p8)
            .map(Key::Ec)
            .map_err(|_| bad())
    } else if alg_oid == oid(OID_ED25519) {
        Ed25519KeyPair::from_pkcs8_maybe_unchecked(p8)
            .map(Key::Ed)
            .map_err(|_| bad())
    } else {
        Err("x509: PKCS#8 wrapping contained private key with unknown algorithm".into())
    }
}

/// DSA L2048N256 parameters and key, as Go's crypto/dsa makes them.
fn dsa_key() -> Result<Key, String> {
    use aws_lc_sys as sys;
    // SAFETY: plain C calls on a DSA object this function owns and frees.
    unsafe {
        let d = sys::DSA_new();
        if d.is_null() {
            return Err("failed to generate dsa params".into());
        }
        let ok = sys::DSA_generate_parameters_ex(
            d,
            2048,
            std::ptr::null(),
            0,
            std::ptr::null_mut(),
            std::ptr::null_mut(),
            std::ptr::null_mut(),
        ) == 1
            && sys::DSA_generate_key(d) == 1;
        if !ok {
            sys::DSA_free(d);
            return Err("failed to generate dsa params".into());
        }
        let mut out: *mut u8 = std::ptr::null_mut();
        let n = sys::i2d_DSAPrivateKey(d, &mut out);
        sys::DSA_free(d);
        if n <= 0 || out.is_null() {
            return Err("failed to encode dsa key".into());
        }
        let bytes = std::slice::from_raw_parts(out, n as usize).to_vec();
        sys::OPENSSL_free(out.cast());
        Ok(Key::Dsa(bytes))
    }
}

fn gen_private_key(kind: &str) -> String {
    let key = match kind {
        "rsa" => rsa(KeySize::Rsa4096),
        "dsa" => dsa_key(),
        "ecdsa" => EcdsaKeyPair::generate(&signature::ECDSA_P256_SHA256_ASN1_SIGNING)
            .map(Key::Ec)
            .map_err(|e| format!("failed to generate private key: {e}")),
        "ed25519" => Ed25519KeyPair::generate()
            .map(Key::Ed)
            .map_err(|e| format!("failed to generate private key: {e}")),
        other => return format!("Unknown type {other}"),
    };
    match key.and_then(|k| k.pem()) {
        Ok(p) => p,
        Err(e) => e,
    }
}

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
