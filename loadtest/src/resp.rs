//! A minimal Redis client for the benchmarks: one command per fresh TCP
//! connection (so each write through a Service is routed anew, as the
//! emulator's proxy routes per connection), a writer that records every
//! attempt, and the spawn-to-PING floor of a bare redis-server.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

/// A reply of the subset of RESP2 the benchmarks use (arrays hold no arrays).
#[derive(Debug, Clone, PartialEq)]
pub enum Reply {
    Simple(String),
    Error(String),
    Int(i64),
    Bulk(Option<String>),
    Array(Vec<Reply>),
}

#[derive(Debug, thiserror::Error)]
pub enum RespError {
    #[error("connecting to {addr}: {source}")]
    Connect {
        addr: String,
        source: std::io::Error,
    },
    #[error("talking to {addr}: {source}")]
    Io {
        addr: String,
        source: std::io::Error,
    },
    #[error("{addr} did not answer within {timeout:?}")]
    Timeout { addr: String, timeout: Duration },
    #[error("{addr} sent what is not RESP: {line:?}")]
    Protocol { addr: String, line: String },
}

fn encode(args: &[&str]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for a in args {
        out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
        out.extend_from_slice(a.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out
}

async fn read_line(r: &mut BufReader<TcpStream>) -> std::io::Result<String> {
    let mut line = String::new();
    if r.read_line(&mut line).await? == 0 {
        return Err(std::io::ErrorKind::UnexpectedEof.into());
    }
    Ok(line.trim_end_matches(['\r', '\n']).to_string())
}

/// One reply that is not an array; `None` if the line is not RESP.
async fn read_scalar(r: &mut BufReader<TcpStream>, line: &str) -> std::io::Result<Option<Reply>> {
    let (kind, rest) = line.split_at(line.len().min(1));
    Ok(match kind {
        "+" => Some(Reply::Simple(rest.to_string())),
        "-" => Some(Reply::Error(rest.to_string())),
        ":" => rest.parse().ok().map(Reply::Int),
        "$" => match rest.parse::<i64>() {
            Ok(n) if n < 0 => Some(Reply::Bulk(None)),
            Ok(n) => {
                let mut buf = vec![0; n as usize + 2];
                r.read_exact(&mut buf).await?;
                buf.truncate(n as usize);
                Some(Reply::Bulk(Some(String::from_utf8_lossy(&buf).into())))
            }
            Err(_) => None,
        },
        _ => None,
    })
}

async fn exchange(addr: &str, args: &[&str]) -> Result<Reply, RespError> {
    let stream = TcpStream::connect(addr)
        .await
        .map_err(|source| RespError::Connect {
            addr: addr.into(),
            source,
        })?;
    let io = |source| RespError::Io {
        addr: addr.into(),
        source,
    };
    let _ = stream.set_nodelay(true);
    let mut r = BufReader::new(stream);
    r.get_mut().write_all(&encode(args)).await.map_err(io)?;
    let line = read_line(&mut r).await.map_err(io)?;
    let bad = |line: &str| RespError::Protocol {
        addr: addr.into(),
        line: line.into(),
    };
    if let Some(n) = line.strip_prefix('*') {
        let n: i64 = n.parse().map_err(|_| bad(&line))?;
        let mut items = Vec::new();
        for _ in 0..n.max(0) {
            let l = read_line(&mut r).await.map_err(io)?;
            items.push(
                read_scalar(&mut r, &l)
                    .await
                    .map_err(io)?
                    .ok_or_else(|| bad(&l))?,
            );
        }
        return Ok(Reply::Array(items));
    }
    read_scalar(&mut r, &line)
        .await
        .map_err(io)?
        .ok_or_else(|| bad(&line))
}

/// `args` on a fresh connection to `addr` (host:port), within `timeout`.
pub async fn command(addr: &str, args: &[&str], timeout: Duration) -> Result<Reply, RespError> {
    tokio::time::timeout(timeout, exchange(addr, args))
        .await
        .map_err(|_| RespError::Timeout {
            addr: addr.into(),
            timeout,
        })?
}

/// `CONFIG GET name` on `addr`: the value, if it answered.
pub async fn config_get(addr: &str, name: &str) -> Option<String> {
    match command(addr, &["CONFIG", "GET", name], Duration::from_secs(2)).await {
        Ok(Reply::Array(v)) => match v.get(1) {
            Some(Reply::Bulk(Some(s))) => Some(s.clone()),
            _ => None,
        },
        _ => None,
    }
}

/// One attempted write: when it started and ended, and whether it was acknowledged.
#[derive(Debug, Clone)]
pub struct Attempt {
    pub key: String,
    pub start: Instant,
    pub end: Instant,
    pub acked: bool,
}

/// Writes `<prefix><n>` = `v` through `addr` every 10 ms (each on a fresh
/// connection, 1 s timeout) until `stop`; returns every attempt.
pub fn write_load(
    addr: String,
    prefix: &'static str,
    stop: Arc<AtomicBool>,
) -> tokio::task::JoinHandle<Vec<Attempt>> {
    tokio::spawn(async move {
        let mut seen = Vec::new();
        let mut n = 0u64;
        while !stop.load(Ordering::Relaxed) {
            n += 1;
            let key = format!("{prefix}{n}");
            let start = Instant::now();
            let reply = command(&addr, &["SET", &key, "v"], Duration::from_secs(1)).await;
            let acked = matches!(reply, Ok(Reply::Simple(ref s)) if s == "OK");
            seen.push(Attempt {
                key,
                start,
                end: Instant::now(),
                acked,
            });
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        seen
    })
}

/// The longest time without an acknowledgement while the writer ran: from
/// one acknowledged write's end to the next one's (so slow but successful
/// writes count as outage too, not only refused ones).
pub fn longest_outage(seen: &[Attempt]) -> Duration {
    let acks: Vec<Instant> = seen.iter().filter(|a| a.acked).map(|a| a.end).collect();
    acks.windows(2)
        .map(|w| w[1].duration_since(w[0]))
        .max()
        .unwrap_or_default()
}

/// How many acknowledged keys `addr` does not hold with value `v` (checked
/// with MGET in batches on one connection per batch).
pub async fn lost_acked(addr: &str, seen: &[Attempt]) -> Result<usize, RespError> {
    let keys: Vec<&str> = seen
        .iter()
        .filter(|a| a.acked)
        .map(|a| a.key.as_str())
        .collect();
    let mut lost = 0;
    for batch in keys.chunks(500) {
        let mut args = vec!["MGET"];
        args.extend_from_slice(batch);
        match command(addr, &args, Duration::from_secs(5)).await? {
            Reply::Array(values) => {
                lost += batch.len().saturating_sub(values.len());
                lost += values
                    .iter()
                    .filter(|v| **v != Reply::Bulk(Some("v".into())))
                    .count();
            }
            other => {
                return Err(RespError::Protocol {
                    addr: addr.into(),
                    line: format!("{other:?}"),
                });
            }
        }
    }
    Ok(lost)
}

/// The floor of any restart on this machine: a bare redis-server (no
/// persistence) from spawn to answering PING on a free loopback port.
pub async fn spawn_to_ping() -> anyhow::Result<Duration> {
    let port = midplane_runtime::testing::free_port()?;
    let addr = format!("127.0.0.1:{port}");
    let start = Instant::now();
    let mut child = tokio::process::Command::new("redis-server")
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
        .args(["--save", "", "--appendonly", "no"])
        .stdout(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| anyhow::anyhow!("spawning redis-server ({e}): is it on PATH?"))?;
    let deadline = start + Duration::from_secs(10);
    let took = loop {
        let pong = command(&addr, &["PING"], Duration::from_millis(200)).await;
        if matches!(pong, Ok(Reply::Simple(ref s)) if s == "PONG") {
            break start.elapsed();
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "redis-server never answered PING"
        );
        tokio::time::sleep(Duration::from_millis(1)).await;
    };
    let _ = child.kill().await;
    Ok(took)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_are_encoded_as_resp_arrays() {
        assert_eq!(
            encode(&["SET", "k", "v"]),
            b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\n"
        );
    }

    #[test]
    fn the_outage_is_the_longest_gap_between_acks() {
        let t = Instant::now();
        let at = |ms: u64, acked| Attempt {
            key: String::new(),
            start: t,
            end: t + Duration::from_millis(ms),
            acked,
        };
        let seen = [
            at(0, true),
            at(10, true),
            at(20, false),
            at(400, true),
            at(410, true),
        ];
        assert_eq!(longest_outage(&seen), Duration::from_millis(390));
    }

    #[tokio::test]
    async fn a_bare_redis_answers_ping() {
        let took = spawn_to_ping().await.expect("redis-server on PATH");
        assert!(took > Duration::ZERO && took < Duration::from_secs(10));
    }
}
