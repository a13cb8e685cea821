//! Private keys for Sprig's crypto functions: generated with aws-lc, parsed from
//! and written to the PEM forms Go uses.

use aws_lc_rs::encoding::{AsBigEndian, AsDer};
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::KeySize;
use aws_lc_rs::signature::{self, EcdsaKeyPair, Ed25519KeyPair, KeyPair};

use super::super::der::{self, octets, oid, seq, tlv};

pub(super) enum Key {
    Rsa(signature::RsaKeyPair),
    Ec(EcdsaKeyPair),
    Ed(Ed25519KeyPair),
    /// Go's DSAKeyFormat DER; certificates cannot use it.
    Dsa(Vec<u8>),
}

pub(super) const OID_RSA: &str = "1.2.840.113549.1.1.1";
pub(super) const OID_EC: &str = "1.2.840.10045.2.1";
pub(super) const OID_ED25519: &str = "1.3.101.112";

pub(super) fn rsa(bits: KeySize) -> Result<Key, String> {
    signature::RsaKeyPair::generate(bits)
        .map(Key::Rsa)
        .map_err(|e| format!("error generating rsa key: {e}"))
}

/// The PKCS#1 RSAPrivateKey inside a PKCS#8 PrivateKeyInfo.
pub(super) fn pkcs8_inner(pkcs8: &[u8]) -> Option<Vec<u8>> {
    let (_, body, _) = der::read(pkcs8)?;
    let parts = der::children(body)?;
    let (tag, inner, _) = parts.get(2)?;
    (*tag == 0x04).then(|| inner.to_vec())
}

impl Key {
    /// pemBlockForKey: PKCS#1 for RSA, SEC1 for EC, PKCS#8 for Ed25519, Go's own for DSA.
    pub(super) fn pem(&self) -> Result<String, String> {
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

    pub(super) fn spki(&self) -> Result<Vec<u8>, String> {
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
    pub(super) fn sign(&self, msg: &[u8]) -> Result<(Vec<u8>, Vec<u8>), String> {
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
pub(super) fn parse_key_pem(text: &str) -> Result<Key, String> {
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

pub(super) fn parse_pkcs8(p8: &[u8]) -> Result<Key, String> {
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

/// DSA L2048N256 parameters and key, as Go's crypto/dsa makes them (aws-lc has DSA only
/// through its C API).
#[allow(unsafe_code)]
pub(super) fn dsa_key() -> Result<Key, String> {
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

pub(super) fn gen_private_key(kind: &str) -> String {
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
