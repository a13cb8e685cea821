//! The protobuf bodies stock kubectl sends. kubectl's typed clients (`kubectl create
//! namespace|configmap|secret`) encode built-in objects as `application/vnd.kubernetes.protobuf`
//! and do not fall back to JSON when refused, so the kinds they create are decoded here into
//! the JSON the rest of the emulator works with. Other kinds are a 415 naming the kind.
//!
//! The wire format: the magic `k8s\0`, then a `runtime.Unknown` message (1: TypeMeta
//! {1: apiVersion, 2: kind}, 2: raw bytes of the object's own message). Field numbers are
//! those of `k8s.io/api/core/v1/generated.proto` and `apimachinery/.../meta/v1/generated.proto`.

use base64::Engine as _;
use serde_json::{Map, Value, json};

use crate::error::{ApiError, ApiResult};

pub const CONTENT_TYPE: &str = "application/vnd.kubernetes.protobuf";
const MAGIC: &[u8] = b"k8s\0";

/// One field of a protobuf message: its number and its value.
enum Field<'a> {
    Varint(u64),
    Bytes(&'a [u8]),
}

struct Reader<'a> {
    buf: &'a [u8],
}

fn malformed(what: &str) -> ApiError {
    ApiError::bad_request(format!("the protobuf body is malformed: {what}"))
}

impl<'a> Reader<'a> {
    fn varint(&mut self) -> ApiResult<u64> {
        let mut out = 0u64;
        for shift in (0..64).step_by(7) {
            let (&b, rest) = self
                .buf
                .split_first()
                .ok_or_else(|| malformed("truncated varint"))?;
            self.buf = rest;
            out |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(out);
            }
        }
        Err(malformed("varint too long"))
    }

    fn next(&mut self) -> ApiResult<Option<(u64, Field<'a>)>> {
        if self.buf.is_empty() {
            return Ok(None);
        }
        let key = self.varint()?;
        let field = match key & 7 {
            0 => Field::Varint(self.varint()?),
            2 => {
                let len = usize::try_from(self.varint()?).map_err(|_| malformed("length"))?;
                if len > self.buf.len() {
                    return Err(malformed("truncated field"));
                }
                let (v, rest) = self.buf.split_at(len);
                self.buf = rest;
                Field::Bytes(v)
            }
            1 => {
                self.skip(8)?;
                Field::Varint(0)
            }
            5 => {
                self.skip(4)?;
                Field::Varint(0)
            }
            w => return Err(malformed(&format!("wire type {w}"))),
        };
        Ok(Some((key >> 3, field)))
    }

    fn skip(&mut self, n: usize) -> ApiResult<()> {
        if n > self.buf.len() {
            return Err(malformed("truncated fixed field"));
        }
        self.buf = &self.buf[n..];
        Ok(())
    }
}

fn fields(buf: &[u8]) -> ApiResult<Vec<(u64, Field<'_>)>> {
    let mut r = Reader { buf };
    let mut out = Vec::new();
    while let Some(f) = r.next()? {
        out.push(f);
    }
    Ok(out)
}

fn text(b: &[u8]) -> ApiResult<String> {
    String::from_utf8(b.to_vec()).map_err(|_| malformed("a string field is not UTF-8"))
}

/// A `map<string, string>` (or `map<string, bytes>` as base64) entry.
fn map_entry(buf: &[u8], bytes_value: bool) -> ApiResult<(String, Value)> {
    let (mut k, mut v) = (String::new(), Vec::new());
    for (n, f) in fields(buf)? {
        match (n, f) {
            (1, Field::Bytes(b)) => k = text(b)?,
            (2, Field::Bytes(b)) => v = b.to_vec(),
            _ => {}
        }
    }
    let v = if bytes_value {
        json!(base64::engine::general_purpose::STANDARD.encode(&v))
    } else {
        json!(text(&v)?)
    };
    Ok((k, v))
}

fn insert(obj: &mut Value, key: &str, entry: (String, Value)) {
    if !obj[key].is_object() {
        obj[key] = Value::Object(Map::new());
    }
    obj[key][entry.0] = entry.1;
}

fn push(obj: &mut Value, key: &str, v: Value) {
    if !obj[key].is_array() {
        obj[key] = json!([]);
    }
    if let Some(a) = obj[key].as_array_mut() {
        a.push(v);
    }
}

/// ObjectMeta: the fields a create carries (server-set ones are ignored, as on create).
fn object_meta(buf: &[u8]) -> ApiResult<Value> {
    let mut m = json!({});
    for (n, f) in fields(buf)? {
        let Field::Bytes(b) = f else { continue };
        match n {
            1 => m["name"] = json!(text(b)?),
            2 => m["generateName"] = json!(text(b)?),
            3 => m["namespace"] = json!(text(b)?),
            11 => insert(&mut m, "labels", map_entry(b, false)?),
            12 => insert(&mut m, "annotations", map_entry(b, false)?),
            14 => push(&mut m, "finalizers", json!(text(b)?)),
            _ => {}
        }
    }
    Ok(m)
}

/// Decode a protobuf request body into the object's JSON form.
pub fn decode(body: &[u8]) -> ApiResult<Value> {
    let rest = body
        .strip_prefix(MAGIC)
        .ok_or_else(|| malformed("it does not start with the k8s protobuf magic"))?;
    let (mut api_version, mut kind, mut raw) = (String::new(), String::new(), &[][..]);
    for (n, f) in fields(rest)? {
        match (n, f) {
            (1, Field::Bytes(tm)) => {
                for (n, f) in fields(tm)? {
                    match (n, f) {
                        (1, Field::Bytes(b)) => api_version = text(b)?,
                        (2, Field::Bytes(b)) => kind = text(b)?,
                        _ => {}
                    }
                }
            }
            (2, Field::Bytes(b)) => raw = b,
            _ => {}
        }
    }
    let mut obj = json!({"apiVersion": api_version, "kind": kind});
    let supported =
        api_version == "v1" && matches!(kind.as_str(), "Namespace" | "ConfigMap" | "Secret");
    if !supported {
        return Err(ApiError::unsupported_media(format!(
            "the emulator decodes protobuf bodies only for v1 Namespace, ConfigMap and Secret, not {api_version} {kind}: send JSON (e.g. kubectl apply -f)"
        )));
    }
    for (n, f) in fields(raw)? {
        match (kind.as_str(), n, f) {
            (_, 1, Field::Bytes(b)) => obj["metadata"] = object_meta(b)?,
            ("Namespace", 2, Field::Bytes(spec)) => {
                for (n, f) in fields(spec)? {
                    if let (1, Field::Bytes(b)) = (n, f) {
                        let mut s = obj["spec"].take();
                        push(&mut s, "finalizers", json!(text(b)?));
                        obj["spec"] = s;
                    }
                }
            }
            ("ConfigMap", 2, Field::Bytes(b)) => insert(&mut obj, "data", map_entry(b, false)?),
            ("ConfigMap", 3, Field::Bytes(b)) => {
                insert(&mut obj, "binaryData", map_entry(b, true)?);
            }
            ("ConfigMap", 4, Field::Varint(v)) | ("Secret", 5, Field::Varint(v)) => {
                obj["immutable"] = json!(v != 0);
            }
            ("Secret", 2, Field::Bytes(b)) => insert(&mut obj, "data", map_entry(b, true)?),
            ("Secret", 3, Field::Bytes(b)) => obj["type"] = json!(text(b)?),
            ("Secret", 4, Field::Bytes(b)) => insert(&mut obj, "stringData", map_entry(b, false)?),
            _ => {}
        }
    }
    Ok(obj)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field(n: u64, b: &[u8]) -> Vec<u8> {
        let mut out = vec![(n << 3 | 2) as u8, b.len() as u8];
        out.extend_from_slice(b);
        out
    }

    #[test]
    fn decodes_what_kubectl_create_namespace_sends() {
        // Captured from `kubectl create namespace foo -v=8` (kubectl v1.33).
        let body: &[u8] = &[
            0x6b, 0x38, 0x73, 0x00, 0x0a, 0x0f, 0x0a, 0x02, 0x76, 0x31, 0x12, 0x09, 0x4e, 0x61,
            0x6d, 0x65, 0x73, 0x70, 0x61, 0x63, 0x65, 0x12, 0x1b, 0x0a, 0x13, 0x0a, 0x03, 0x66,
            0x6f, 0x6f, 0x12, 0x00, 0x1a, 0x00, 0x22, 0x00, 0x2a, 0x00, 0x32, 0x00, 0x38, 0x00,
            0x42, 0x00, 0x12, 0x00, 0x1a, 0x02, 0x0a, 0x00, 0x1a, 0x00, 0x22, 0x00,
        ];
        let v = decode(body).expect("decodes");
        assert_eq!(v["kind"], "Namespace");
        assert_eq!(v["metadata"]["name"], "foo");
    }

    #[test]
    fn decodes_a_configmap_and_refuses_other_kinds() {
        let meta = field(
            1,
            &[
                field(1, b"cfg"),
                field(11, &[field(1, b"app"), field(2, b"x")].concat()),
            ]
            .concat(),
        );
        let data = field(2, &[field(1, b"k"), field(2, b"v")].concat());
        let raw = [meta, data].concat();
        let tm = field(1, &[field(1, b"v1"), field(2, b"ConfigMap")].concat());
        let body = [MAGIC.to_vec(), tm, field(2, &raw)].concat();
        let v = decode(&body).expect("decodes");
        assert_eq!(v["metadata"]["labels"]["app"], "x");
        assert_eq!(v["data"]["k"], "v");
        let tm = field(1, &[field(1, b"apps/v1"), field(2, b"Deployment")].concat());
        let e = decode(&[MAGIC.to_vec(), tm].concat()).expect_err("refused");
        assert_eq!(e.code, 415);
    }
}
