//! Sprig's random functions: strings from crypto-grade randomness (goutils' CryptoRandom*),
//! uuidv4, randBytes, randInt, shuffle. Tests check their shape, not their value.

use base64::Engine as _;
use rand::Rng;
use rand::seq::SliceRandom;

use super::{FnErr, P, Table, int, reg, s};
use crate::value::Value;

const ALPHA: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
const ALNUM: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
const NUM: &[u8] = b"0123456789";

/// goutils.CryptoRandom: `count` characters of `set`; a negative count is an error that
/// Sprig drops (the result is "").
fn random_from(count: i64, set: &[u8]) -> String {
    if count <= 0 {
        return String::new();
    }
    let mut rng = rand::rng();
    (0..count)
        .map(|_| set[rng.random_range(0..set.len())] as char)
        .collect()
}

pub(super) fn register(t: &mut Table) {
    use P::*;
    reg(t, "randAlpha", &[Int], None, |_, a| {
        Ok(Value::String(random_from(int(&a, 0), ALPHA)))
    });
    reg(t, "randAlphaNum", &[Int], None, |_, a| {
        Ok(Value::String(random_from(int(&a, 0), ALNUM)))
    });
    reg(t, "randNumeric", &[Int], None, |_, a| {
        Ok(Value::String(random_from(int(&a, 0), NUM)))
    });
    reg(t, "randAscii", &[Int], None, |_, a| {
        let ascii: Vec<u8> = (32u8..=126).collect();
        Ok(Value::String(random_from(int(&a, 0), &ascii)))
    });
    reg(t, "randBytes", &[Int], None, |_, a| {
        let n = int(&a, 0);
        if n < 0 {
            return Err(FnErr::Msg(
                "runtime error: makeslice: len out of range".into(),
            ));
        }
        let mut buf = vec![0u8; n as usize];
        rand::rng().fill(&mut buf[..]);
        Ok(Value::String(
            base64::engine::general_purpose::STANDARD.encode(buf),
        ))
    });
    reg(t, "uuidv4", &[], None, |_, _| {
        Ok(Value::String(uuid::Uuid::new_v4().to_string()))
    });
    reg(t, "randInt", &[Int, Int], None, |_, a| {
        let (min, max) = (int(&a, 0), int(&a, 1));
        if max <= min {
            return Err(FnErr::Msg("invalid argument to Intn".into()));
        }
        Ok(Value::Int(rand::rng().random_range(min..max)))
    });
    reg(t, "getHostByName", &[Str], None, |e, a| {
        if !e.set.options.enable_dns {
            return Ok(Value::String(String::new()));
        }
        use std::net::ToSocketAddrs;
        let addrs: Vec<String> = (s(&a, 0).as_str(), 0)
            .to_socket_addrs()
            .map(|it| it.map(|sa| sa.ip().to_string()).collect())
            .unwrap_or_default();
        if addrs.is_empty() {
            return Err(FnErr::Msg(
                "runtime error: index out of range [0] with length 0".into(),
            ));
        }
        Ok(Value::String(
            addrs[rand::rng().random_range(0..addrs.len())].clone(),
        ))
    });
    reg(t, "shuffle", &[Str], None, |_, a| {
        let mut chars: Vec<char> = s(&a, 0).chars().collect();
        chars.shuffle(&mut rand::rng());
        Ok(Value::String(chars.into_iter().collect()))
    });
}
