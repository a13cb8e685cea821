//! The cluster DNS of process pods: a small UDP responder on the emulator's own loopback
//! address (`127.<block>.255.53:53`) that every Pod's resolv.conf points at, answering like
//! CoreDNS's kubernetes plugin for the zone `cluster.local`:
//!
//! - `<svc>.<ns>.svc.cluster.local`: the ClusterIP; for a headless Service the addresses of
//!   its Endpoints; for an ExternalName Service a CNAME;
//! - `<hostname>.<subdomain>.<ns>.svc.cluster.local`: the Pod address an Endpoints of the
//!   headless Service `<subdomain>` lists under that hostname;
//! - `<a-b-c-d>.<ns>.pod.cluster.local`: `a.b.c.d`.
//!
//! The same names without `.cluster.local` are answered too. Anything else is forwarded to
//! the machine's first nameserver. Records carry a 5 s TTL.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use tokio::net::UdpSocket;

use crate::kubelet::gr;
use crate::store::Store;

const TTL: u32 = 5;
const TYPE_A: u16 = 1;
const TYPE_CNAME: u16 = 5;

enum Answer {
    Ips(Vec<Ipv4Addr>),
    Cname(String),
    NxDomain,
    /// Not in the cluster zone: ask the machine's resolver.
    Forward,
}

fn endpoint_ips(store: &Store, ns: &str, svc: &str, hostname: Option<&str>) -> Vec<Ipv4Addr> {
    let Some(ep) = store.lock().get(&gr("", "endpoints"), ns, svc) else {
        return Vec::new();
    };
    ep["subsets"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|s| s["addresses"].as_array().cloned().unwrap_or_default())
        .filter(|a| hostname.is_none_or(|h| a["hostname"] == h))
        .filter_map(|a| a["ip"].as_str().and_then(|ip| ip.parse().ok()))
        .collect()
}

fn resolve(store: &Store, name: &str) -> Answer {
    let name = name.trim_end_matches('.').to_ascii_lowercase();
    let local = name.strip_suffix(".cluster.local");
    if let Some(pod) = local.and_then(|l| l.strip_suffix(".pod")) {
        let ip = pod.split('.').next().unwrap_or_default().replace('-', ".");
        return match ip.parse() {
            Ok(ip) => Answer::Ips(vec![ip]),
            Err(_) => Answer::NxDomain,
        };
    }
    let svc_part = match local {
        Some(l) => l.strip_suffix(".svc"),
        None => name.strip_suffix(".svc"),
    };
    let Some(svc_part) = svc_part else {
        return if local.is_some() {
            Answer::NxDomain
        } else {
            Answer::Forward
        };
    };
    let labels: Vec<&str> = svc_part.split('.').collect();
    match labels.as_slice() {
        [svc, ns] => {
            let Some(s) = store.lock().get(&gr("", "services"), ns, svc) else {
                return Answer::NxDomain;
            };
            if s["spec"]["type"] == "ExternalName" {
                return Answer::Cname(
                    s["spec"]["externalName"]
                        .as_str()
                        .unwrap_or_default()
                        .to_string(),
                );
            }
            let ips = match s["spec"]["clusterIP"].as_str() {
                Some("None") | None => endpoint_ips(store, ns, svc, None),
                Some(ip) => ip.parse().into_iter().collect(),
            };
            if ips.is_empty() {
                Answer::NxDomain
            } else {
                Answer::Ips(ips)
            }
        }
        [host, sub, ns] => {
            let ips = endpoint_ips(store, ns, sub, Some(host));
            if ips.is_empty() {
                Answer::NxDomain
            } else {
                Answer::Ips(ips)
            }
        }
        _ => Answer::NxDomain,
    }
}

/// The question of a query: (name, qtype, end of the question section).
fn question(q: &[u8]) -> Option<(String, u16, usize)> {
    if q.len() < 12 || u16::from_be_bytes([q[4], q[5]]) != 1 {
        return None;
    }
    let mut i = 12;
    let mut labels = Vec::new();
    loop {
        let len = *q.get(i)? as usize;
        i += 1;
        if len == 0 {
            break;
        }
        if len > 63 {
            return None;
        }
        labels.push(String::from_utf8_lossy(q.get(i..i + len)?).into_owned());
        i += len;
    }
    let qtype = u16::from_be_bytes([*q.get(i)?, *q.get(i + 1)?]);
    Some((labels.join("."), qtype, i + 4))
}

fn encode_name(name: &str) -> Vec<u8> {
    let mut out = Vec::new();
    for l in name
        .trim_end_matches('.')
        .split('.')
        .filter(|l| !l.is_empty())
    {
        out.push(l.len().min(63) as u8);
        out.extend_from_slice(&l.as_bytes()[..l.len().min(63)]);
    }
    out.push(0);
    out
}

/// The response to query `q` with the question ending at `qend`.
fn respond(q: &[u8], qend: usize, qtype: u16, answer: &Answer) -> Vec<u8> {
    let mut r = q[..qend].to_vec();
    // QR, opcode and RD from the query, AA, RA.
    r[2] = 0x80 | (q[2] & 0x79) | 0x04;
    let mut records: Vec<Vec<u8>> = Vec::new();
    let rcode = match answer {
        Answer::NxDomain => 3,
        Answer::Ips(ips) => {
            if qtype == TYPE_A || qtype == 255 {
                for ip in ips {
                    let mut rr = vec![0xc0, 0x0c];
                    rr.extend_from_slice(&TYPE_A.to_be_bytes());
                    rr.extend_from_slice(&1u16.to_be_bytes());
                    rr.extend_from_slice(&TTL.to_be_bytes());
                    rr.extend_from_slice(&4u16.to_be_bytes());
                    rr.extend_from_slice(&ip.octets());
                    records.push(rr);
                }
            }
            0
        }
        Answer::Cname(target) => {
            let data = encode_name(target);
            let mut rr = vec![0xc0, 0x0c];
            rr.extend_from_slice(&TYPE_CNAME.to_be_bytes());
            rr.extend_from_slice(&1u16.to_be_bytes());
            rr.extend_from_slice(&TTL.to_be_bytes());
            rr.extend_from_slice(&(data.len() as u16).to_be_bytes());
            rr.extend_from_slice(&data);
            records.push(rr);
            0
        }
        Answer::Forward => 2,
    };
    r[3] = 0x80 | rcode;
    r[6..8].copy_from_slice(&(records.len() as u16).to_be_bytes());
    r[8..12].fill(0);
    for rr in records {
        r.extend_from_slice(&rr);
    }
    r
}

/// The machine's first nameserver, where names outside the cluster go.
fn upstream() -> Option<SocketAddr> {
    let text = std::fs::read_to_string("/etc/resolv.conf").ok()?;
    text.lines()
        .filter_map(|l| l.trim().strip_prefix("nameserver"))
        .filter_map(|ip| ip.trim().parse::<std::net::IpAddr>().ok())
        .map(|ip| SocketAddr::new(ip, 53))
        .next()
}

async fn forward(sock: Arc<UdpSocket>, query: Vec<u8>, client: SocketAddr, up: SocketAddr) {
    let bind: SocketAddr = if up.is_ipv4() { "0.0.0.0:0" } else { "[::]:0" }
        .parse()
        .expect("literal address");
    let relay = async {
        let s = UdpSocket::bind(bind).await.ok()?;
        s.send_to(&query, up).await.ok()?;
        let mut buf = vec![0u8; 4096];
        let (n, _) = s.recv_from(&mut buf).await.ok()?;
        buf.truncate(n);
        Some(buf)
    };
    let reply = match tokio::time::timeout(Duration::from_secs(2), relay).await {
        Ok(Some(r)) => r,
        _ => match question(&query) {
            Some((_, qtype, end)) => respond(&query, end, qtype, &Answer::Forward),
            None => return,
        },
    };
    let _ = sock.send_to(&reply, client).await;
}

/// Serve until the task is aborted.
pub async fn serve(sock: std::net::UdpSocket, store: Arc<Store>) {
    if let Err(e) = sock.set_nonblocking(true) {
        tracing::error!(error = %e, "cluster DNS socket");
        return;
    }
    let sock = match UdpSocket::from_std(sock) {
        Ok(s) => Arc::new(s),
        Err(e) => {
            tracing::error!(error = %e, "cluster DNS socket");
            return;
        }
    };
    let up = upstream();
    let mut buf = vec![0u8; 1500];
    loop {
        let (n, client) = match sock.recv_from(&mut buf).await {
            Ok(x) => x,
            Err(e) => {
                tracing::debug!(error = %e, "cluster DNS receive");
                continue;
            }
        };
        let q = buf[..n].to_vec();
        let Some((name, qtype, end)) = question(&q) else {
            continue;
        };
        let answer = resolve(&store, &name);
        if let (Answer::Forward, Some(up)) = (&answer, up) {
            tokio::spawn(forward(sock.clone(), q, client, up));
            continue;
        }
        let _ = sock
            .send_to(&respond(&q, end, qtype, &answer), client)
            .await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(name: &str, qtype: u16) -> Vec<u8> {
        let mut q = vec![0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
        q.extend(encode_name(name));
        q.extend_from_slice(&qtype.to_be_bytes());
        q.extend_from_slice(&1u16.to_be_bytes());
        q
    }

    #[test]
    fn answers_carry_the_question_and_records() {
        let q = query("cache.default.svc.cluster.local", TYPE_A);
        let (name, qtype, end) = question(&q).expect("parses");
        assert_eq!(
            (name.as_str(), qtype, end),
            ("cache.default.svc.cluster.local", TYPE_A, q.len())
        );
        let r = respond(
            &q,
            end,
            qtype,
            &Answer::Ips(vec![Ipv4Addr::new(127, 9, 192, 1)]),
        );
        assert_eq!(&r[..2], &[0x12, 0x34]);
        assert_eq!(r[3] & 0x0f, 0, "NOERROR");
        assert_eq!(u16::from_be_bytes([r[6], r[7]]), 1, "one answer");
        assert_eq!(&r[r.len() - 4..], &[127, 9, 192, 1]);
        // AAAA for an existing name: NOERROR without records.
        let r = respond(
            &q,
            end,
            28,
            &Answer::Ips(vec![Ipv4Addr::new(127, 9, 192, 1)]),
        );
        assert_eq!((r[3] & 0x0f, u16::from_be_bytes([r[6], r[7]])), (0, 0));
        let r = respond(&q, end, qtype, &Answer::NxDomain);
        assert_eq!(r[3] & 0x0f, 3);
    }
}
