//! Just enough of the protobuf wire format to read one string field of a request by its
//! field-number path, without knowing the message type: what the authorization layer
//! needs to find a call's namespace and name before the service decodes the message.

/// Why a request could not be read.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    #[error("the request is not a single uncompressed gRPC message")]
    Framing,
    #[error("the request message is malformed")]
    Malformed,
}

/// The message of a gRPC request body: one length-prefixed, uncompressed frame.
pub fn single_message(body: &[u8]) -> Result<&[u8], WireError> {
    if body.is_empty() {
        // A client may send no message at all for an all-default request.
        return Ok(&[]);
    }
    let [flag, a, b, c, d, rest @ ..] = body else {
        return Err(WireError::Framing);
    };
    let len = u32::from_be_bytes([*a, *b, *c, *d]) as usize;
    if *flag != 0 || rest.len() != len {
        return Err(WireError::Framing);
    }
    Ok(rest)
}

fn varint(buf: &[u8], pos: &mut usize) -> Result<u64, WireError> {
    let mut value = 0u64;
    for shift in (0..64).step_by(7) {
        let byte = *buf.get(*pos).ok_or(WireError::Malformed)?;
        *pos += 1;
        value |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Ok(value);
        }
    }
    Err(WireError::Malformed)
}

/// Every occurrence of length-delimited field `number` in `msg`, in order.
fn occurrences(msg: &[u8], number: u32) -> Result<Vec<&[u8]>, WireError> {
    let mut out = Vec::new();
    let mut pos = 0;
    while pos < msg.len() {
        let key = varint(msg, &mut pos)?;
        let (field, wire) = (key >> 3, key & 7);
        match wire {
            0 => {
                varint(msg, &mut pos)?;
            }
            1 => pos += 8,
            5 => pos += 4,
            2 => {
                let len = varint(msg, &mut pos)? as usize;
                let end = pos.checked_add(len).ok_or(WireError::Malformed)?;
                let bytes = msg.get(pos..end).ok_or(WireError::Malformed)?;
                if field == u64::from(number) {
                    out.push(bytes);
                }
                pos = end;
            }
            _ => return Err(WireError::Malformed),
        }
    }
    if pos > msg.len() {
        return Err(WireError::Malformed);
    }
    Ok(out)
}

/// The string at `path` (empty when unset), with protobuf's merge rules: occurrences of an
/// embedded message merge (concatenate), the last occurrence of a scalar wins.
pub fn string_at(msg: &[u8], path: &[u32]) -> Result<String, WireError> {
    let Some((last, parents)) = path.split_last() else {
        return Ok(String::new());
    };
    let mut current = msg.to_vec();
    for number in parents {
        current = occurrences(&current, *number)?.concat();
    }
    match occurrences(&current, *last)?.last() {
        Some(bytes) => String::from_utf8(bytes.to_vec()).map_err(|_| WireError::Malformed),
        None => Ok(String::new()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost::Message as _;

    fn framed(msg: &[u8]) -> Vec<u8> {
        let mut out = vec![0];
        out.extend_from_slice(&(msg.len() as u32).to_be_bytes());
        out.extend_from_slice(msg);
        out
    }

    #[test]
    fn reads_nested_and_top_level_strings() {
        let req = midplane_proto::app::ApplyAppRequest {
            app: Some(midplane_proto::app::App {
                namespace: "shop".into(),
                name: "cache".into(),
                ..Default::default()
            }),
            dry_run: true,
            force: true,
        };
        let body = framed(&req.encode_to_vec());
        let msg = single_message(&body).expect("one frame");
        assert_eq!(string_at(msg, &[1, 1]).as_deref(), Ok("shop"));
        assert_eq!(string_at(msg, &[1, 2]).as_deref(), Ok("cache"));
        let list = midplane_proto::app::ListAppsRequest {
            namespace: "a".into(),
            label_selector: "x=y".into(),
            page: None,
        };
        assert_eq!(string_at(&list.encode_to_vec(), &[1]).as_deref(), Ok("a"));
        assert_eq!(
            string_at(
                &midplane_proto::app::ListAppsRequest::default().encode_to_vec(),
                &[1]
            )
            .as_deref(),
            Ok("")
        );
    }

    #[test]
    fn merges_repeated_embedded_messages_as_protobuf_does() {
        // ref { namespace: "a" } ref { name: "n" } ref { namespace: "b" }: namespace "b".
        let msg = [
            0x0a, 3, 0x0a, 1, b'a', 0x0a, 3, 0x12, 1, b'n', 0x0a, 3, 0x0a, 1, b'b',
        ];
        assert_eq!(string_at(&msg, &[1, 1]).as_deref(), Ok("b"));
        assert_eq!(string_at(&msg, &[1, 2]).as_deref(), Ok("n"));
    }

    #[test]
    fn refuses_what_it_cannot_read() {
        assert_eq!(single_message(&[1, 0, 0, 0, 0]), Err(WireError::Framing));
        assert_eq!(single_message(&[0, 0, 0, 0, 5, 1]), Err(WireError::Framing));
        assert_eq!(string_at(&[0x0a, 9, 1], &[1]), Err(WireError::Malformed));
        assert_eq!(string_at(&[0x0b], &[1]), Err(WireError::Malformed));
    }
}
