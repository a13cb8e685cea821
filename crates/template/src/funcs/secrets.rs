//! Sprig's password and symmetric-key functions: bcrypt, htpasswd, derivePassword (the Master
//! Password algorithm) and encryptAES/decryptAES (AES-256-CBC, PKCS#7, random IV in front).

use aes::cipher::{BlockDecryptMut, BlockEncryptMut, KeyIvInit};
use base64::Engine as _;
use hmac::Mac;

use super::{FnErr, P, Table, int, reg, s};
use crate::value::Value;

/// bcrypt.GenerateFromPassword with the default cost, as `$2a$`.
fn bcrypt_hash(pw: &str) -> String {
    match bcrypt::hash_with_result(pw, 10) {
        Ok(h) => h.format_for_version(bcrypt::Version::TwoA),
        Err(e) => format!("failed to encrypt string with bcrypt: {e}"),
    }
}

const SEED: &str = "com.lyndir.masterpassword";

fn templates(kind: &str) -> Option<&'static [&'static str]> {
    Some(match kind {
        "maximum" => &["anoxxxxxxxxxxxxxxxxx", "axxxxxxxxxxxxxxxxxno"],
        "long" => &[
            "CvcvnoCvcvCvcv",
            "CvcvCvcvnoCvcv",
            "CvcvCvcvCvcvno",
            "CvccnoCvcvCvcv",
            "CvccCvcvnoCvcv",
            "CvccCvcvCvcvno",
            "CvcvnoCvccCvcv",
            "CvcvCvccnoCvcv",
            "CvcvCvccCvcvno",
            "CvcvnoCvcvCvcc",
            "CvcvCvcvnoCvcc",
            "CvcvCvcvCvccno",
            "CvccnoCvccCvcv",
            "CvccCvccnoCvcv",
            "CvccCvccCvcvno",
            "CvcvnoCvccCvcc",
            "CvcvCvccnoCvcc",
            "CvcvCvccCvccno",
            "CvccnoCvcvCvcc",
            "CvccCvcvnoCvcc",
            "CvccCvcvCvccno",
        ],
        "medium" => &["CvcnoCvc", "CvcCvcno"],
        "short" => &["Cvcn"],
        "basic" => &["aaanaaan", "aannaaan", "aaannaaa"],
        "pin" => &["nnnn"],
        _ => return None,
    })
}

fn characters(c: char) -> &'static [u8] {
    match c {
        'V' => b"AEIOU",
        'C' => b"BCDFGHJKLMNPQRSTVWXYZ",
        'v' => b"aeiou",
        'c' => b"bcdfghjklmnpqrstvwxyz",
        'A' => b"AEIOUBCDFGHJKLMNPQRSTVWXYZ",
        'a' => b"AEIOUaeiouBCDFGHJKLMNPQRSTVWXYZbcdfghjklmnpqrstvwxyz",
        'n' => b"0123456789",
        'o' => b"@&%?,=[]_:-+*$#!'^~;()/.",
        _ => b"AEIOUaeiouBCDFGHJKLMNPQRSTVWXYZbcdfghjklmnpqrstvwxyz0123456789!@#$%^&*()",
    }
}

#[allow(unsafe_code)] // scrypt through aws-lc's C API, see the SAFETY comment
fn derive_password(counter: u32, kind: &str, password: &str, user: &str, site: &str) -> String {
    let Some(tpls) = templates(kind) else {
        return format!("cannot find password template {kind}");
    };
    let mut salt = SEED.as_bytes().to_vec();
    salt.extend((user.len() as u32).to_be_bytes());
    salt.extend(user.as_bytes());
    let mut key = [0u8; 64];
    // scrypt N=32768 r=8 p=2 through aws-lc (optimised C even in debug builds)
    // SAFETY: every pointer/length pair describes a live buffer of that length.
    let ok = unsafe {
        aws_lc_sys::EVP_PBE_scrypt(
            password.as_ptr().cast(),
            password.len(),
            salt.as_ptr(),
            salt.len(),
            32768,
            8,
            2,
            64 << 20,
            key.as_mut_ptr(),
            key.len(),
        )
    } == 1;
    if !ok {
        return "failed to create password: scrypt failed".into();
    }
    let mut msg = SEED.as_bytes().to_vec();
    msg.extend((site.len() as u32).to_be_bytes());
    msg.extend(site.as_bytes());
    msg.extend(counter.to_be_bytes());
    let Ok(mut mac) = hmac::Hmac::<sha2::Sha256>::new_from_slice(&key) else {
        return "failed to create password: bad key".into();
    };
    mac.update(&msg);
    let seed = mac.finalize().into_bytes();
    let tpl = tpls[seed[0] as usize % tpls.len()];
    tpl.chars()
        .enumerate()
        .map(|(i, c)| {
            let set = characters(c);
            set[seed[i + 1] as usize % set.len()] as char
        })
        .collect()
}

fn aes_key(password: &str) -> [u8; 32] {
    let mut key = [0u8; 32];
    let n = password.len().min(32);
    key[..n].copy_from_slice(&password.as_bytes()[..n]);
    key
}

fn encrypt_aes(password: &str, plaintext: &str) -> Result<String, String> {
    if plaintext.is_empty() {
        return Ok(String::new());
    }
    let mut iv = [0u8; 16];
    aws_lc_rs::rand::fill(&mut iv).map_err(|e| e.to_string())?;
    let enc = cbc::Encryptor::<aes::Aes256>::new(&aes_key(password).into(), &iv.into());
    // PKCS#7 by hand, as Sprig pads
    let mut buf = plaintext.as_bytes().to_vec();
    let pad = 16 - buf.len() % 16;
    buf.extend(std::iter::repeat_n(pad as u8, pad));
    let n = buf.len();
    enc.encrypt_padded_mut::<aes::cipher::block_padding::NoPadding>(&mut buf, n)
        .map_err(|e| e.to_string())?;
    let mut out = iv.to_vec();
    out.extend(buf);
    Ok(base64::engine::general_purpose::STANDARD.encode(out))
}

fn decrypt_aes(password: &str, crypt64: &str) -> Result<String, String> {
    if crypt64.is_empty() {
        return Ok(String::new());
    }
    let data = base64::engine::general_purpose::STANDARD
        .decode(crypt64)
        .map_err(|e| go_base64_error(crypt64, &e))?;
    if data.len() < 16 {
        return Err(
            "runtime error: slice bounds out of range [:16] with capacity ".to_string()
                + &data.len().to_string(),
        );
    }
    let (iv, body) = data.split_at(16);
    if body.len() % 16 != 0 {
        return Err("crypto/cipher: input not full blocks".into());
    }
    let mut buf = body.to_vec();
    let dec = cbc::Decryptor::<aes::Aes256>::new(&aes_key(password).into(), iv.into());
    dec.decrypt_padded_mut::<aes::cipher::block_padding::NoPadding>(&mut buf)
        .map_err(|e| e.to_string())?;
    // Sprig strips as many bytes as the last byte says, unchecked
    let pad = buf.last().copied().unwrap_or(0) as usize;
    if pad > buf.len() {
        return Err(format!(
            "runtime error: slice bounds out of range [:{}]",
            buf.len() as i64 - pad as i64
        ));
    }
    buf.truncate(buf.len() - pad);
    Ok(String::from_utf8_lossy(&buf).into_owned())
}

/// encoding/base64's CorruptInputError text.
fn go_base64_error(input: &str, _e: &base64::DecodeError) -> String {
    let valid = |c: u8| c.is_ascii_alphanumeric() || c == b'+' || c == b'/';
    let pos = input
        .bytes()
        .position(|c| !valid(c) && c != b'=')
        .unwrap_or(input.len().saturating_sub(input.len() % 4));
    format!("illegal base64 data at input byte {pos}")
}

pub(super) fn register(t: &mut Table) {
    use P::*;
    reg(t, "bcrypt", &[Str], None, |_, a| {
        Ok(Value::String(bcrypt_hash(&s(&a, 0))))
    });
    reg(t, "htpasswd", &[Str, Str], None, |_, a| {
        let user = s(&a, 0);
        if user.contains(':') {
            return Ok(Value::String(format!("invalid username: {user}")));
        }
        Ok(Value::String(format!("{user}:{}", bcrypt_hash(&s(&a, 1)))))
    });
    reg(
        t,
        "derivePassword",
        &[Int, Str, Str, Str, Str],
        None,
        |_, a| {
            Ok(Value::String(derive_password(
                int(&a, 0) as u32,
                &s(&a, 1),
                &s(&a, 2),
                &s(&a, 3),
                &s(&a, 4),
            )))
        },
    );
    reg(t, "encryptAES", &[Str, Str], None, |_, a| {
        encrypt_aes(&s(&a, 0), &s(&a, 1))
            .map(Value::String)
            .map_err(FnErr::Msg)
    });
    reg(t, "decryptAES", &[Str, Str], None, |_, a| {
        decrypt_aes(&s(&a, 0), &s(&a, 1))
            .map(Value::String)
            .map_err(FnErr::Msg)
    });
}
