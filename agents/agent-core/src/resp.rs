//! A minimal RESP2 client: enough for the commands an agent sends (INFO, ROLE,
//! CONFIG, REPLICAOF, FAILOVER, WAIT, SHUTDOWN). Speaking the protocol directly
//! keeps the agent small and lets every call carry its own deadline.

use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

#[derive(Debug, thiserror::Error)]
pub enum RespError {
    #[error("connect to {addr}: {source}")]
    Connect {
        addr: String,
        source: std::io::Error,
    },
    #[error("{addr}: i/o: {source}")]
    Io {
        addr: String,
        source: std::io::Error,
    },
    #[error("{addr}: no answer within {timeout:?}")]
    Timeout { addr: String, timeout: Duration },
    #[error("{addr}: protocol: {message}")]
    Protocol { addr: String, message: String },
    #[error("{addr}: server error: {message}")]
    Server { addr: String, message: String },
}

impl RespError {
    /// Whether the server answered at all (a server error means it is reachable).
    pub fn is_unreachable(&self) -> bool {
        matches!(
            self,
            RespError::Connect { .. } | RespError::Io { .. } | RespError::Timeout { .. }
        )
    }
}

/// A decoded reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    Simple(String),
    Int(i64),
    Bulk(Option<Vec<u8>>),
    Array(Option<Vec<Value>>),
}

impl Value {
    /// The reply as text (simple string, bulk string or integer).
    pub fn as_text(&self) -> Option<String> {
        match self {
            Value::Simple(s) => Some(s.clone()),
            Value::Bulk(Some(b)) => Some(String::from_utf8_lossy(b).into_owned()),
            Value::Int(i) => Some(i.to_string()),
            _ => None,
        }
    }

    pub fn into_array(self) -> Vec<Value> {
        match self {
            Value::Array(Some(v)) => v,
            _ => Vec::new(),
        }
    }
}

/// One connection to a Redis server.
pub struct Connection {
    addr: String,
    stream: BufReader<TcpStream>,
    timeout: Duration,
}

impl Connection {
    /// Connects and, when a password is given, authenticates.
    pub async fn connect(
        addr: &str,
        password: Option<&str>,
        timeout: Duration,
    ) -> Result<Self, RespError> {
        let stream = tokio::time::timeout(timeout, TcpStream::connect(addr))
            .await
            .map_err(|_| RespError::Timeout {
                addr: addr.to_string(),
                timeout,
            })?
            .map_err(|source| RespError::Connect {
                addr: addr.to_string(),
                source,
            })?;
        let _ = stream.set_nodelay(true);
        let mut conn = Self {
            addr: addr.to_string(),
            stream: BufReader::new(stream),
            timeout,
        };
        if let Some(pw) = password {
            conn.cmd(&["AUTH", pw]).await?;
        }
        Ok(conn)
    }

    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// Sends one command and reads its reply within the connection's timeout.
    pub async fn cmd(&mut self, args: &[&str]) -> Result<Value, RespError> {
        let timeout = self.timeout;
        self.cmd_timeout(args, timeout).await
    }

    /// Like [`Connection::cmd`] with an explicit deadline (for blocking commands such as WAIT).
    pub async fn cmd_timeout(
        &mut self,
        args: &[&str],
        timeout: Duration,
    ) -> Result<Value, RespError> {
        let addr = self.addr.clone();
        match tokio::time::timeout(timeout, self.roundtrip(args)).await {
            Ok(r) => r,
            Err(_) => Err(RespError::Timeout { addr, timeout }),
        }
    }

    /// A command whose reply must be text.
    pub async fn text(&mut self, args: &[&str]) -> Result<String, RespError> {
        let v = self.cmd(args).await?;
        v.as_text().ok_or_else(|| RespError::Protocol {
            addr: self.addr.clone(),
            message: format!("{} answered {v:?}, expected text", args[0]),
        })
    }

    async fn roundtrip(&mut self, args: &[&str]) -> Result<Value, RespError> {
        let mut buf = Vec::with_capacity(16 + args.iter().map(|a| a.len() + 16).sum::<usize>());
        buf.extend_from_slice(format!("*{}\r\n", args.len()).as_bytes());
        for a in args {
            buf.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
            buf.extend_from_slice(a.as_bytes());
            buf.extend_from_slice(b"\r\n");
        }
        let addr = self.addr.clone();
        let io = |source| RespError::Io {
            addr: addr.clone(),
            source,
        };
        self.stream.get_mut().write_all(&buf).await.map_err(io)?;
        let v = read_value(&mut self.stream, &self.addr).await?;
        Ok(v)
    }
}

async fn read_line(r: &mut BufReader<TcpStream>, addr: &str) -> Result<String, RespError> {
    let mut line = String::new();
    let n = r
        .read_line(&mut line)
        .await
        .map_err(|source| RespError::Io {
            addr: addr.to_string(),
            source,
        })?;
    if n == 0 {
        return Err(RespError::Io {
            addr: addr.to_string(),
            source: std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "connection closed"),
        });
    }
    Ok(line.trim_end_matches(['\r', '\n']).to_string())
}

fn read_value<'a>(
    r: &'a mut BufReader<TcpStream>,
    addr: &'a str,
) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<Value, RespError>> + Send + 'a>> {
    Box::pin(async move {
        let line = read_line(r, addr).await?;
        let proto = |message: String| RespError::Protocol {
            addr: addr.to_string(),
            message,
        };
        let (kind, rest) = line.split_at(line.len().min(1));
        let int = |s: &str| {
            s.parse::<i64>()
                .map_err(|_| proto(format!("bad length/integer {s:?}")))
        };
        match kind {
            "+" => Ok(Value::Simple(rest.to_string())),
            "-" => Err(RespError::Server {
                addr: addr.to_string(),
                message: rest.to_string(),
            }),
            ":" => Ok(Value::Int(int(rest)?)),
            "$" => {
                let len = int(rest)?;
                if len < 0 {
                    return Ok(Value::Bulk(None));
                }
                let mut data = vec![0u8; len as usize + 2];
                r.read_exact(&mut data)
                    .await
                    .map_err(|source| RespError::Io {
                        addr: addr.to_string(),
                        source,
                    })?;
                data.truncate(len as usize);
                Ok(Value::Bulk(Some(data)))
            }
            "*" => {
                let len = int(rest)?;
                if len < 0 {
                    return Ok(Value::Array(None));
                }
                let mut items = Vec::with_capacity(len as usize);
                for _ in 0..len {
                    items.push(read_value(r, addr).await?);
                }
                Ok(Value::Array(Some(items)))
            }
            _ => Err(proto(format!("unexpected reply line {line:?}"))),
        }
    })
}

/// Parses `INFO` output into `field -> value` (section headers and blanks skipped).
pub fn parse_info(text: &str) -> std::collections::HashMap<String, String> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect()
}
