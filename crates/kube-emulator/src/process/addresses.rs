//! Loopback addresses for process pods. One emulator owns one block `127.<b>.0.0/16`:
//!
//! - Pods: `127.<b>.0.2` – `127.<b>.191.254` (never `127.0.0.1`: block 0 and 1 are never used);
//! - ClusterIPs: `127.<b>.192.1` – `127.<b>.253.254`;
//! - the DNS responder: `127.<b>.255.53`, port 53.
//!
//! The block is claimed by binding the DNS responder's socket: two emulators on one machine
//! (parallel tests) can never pick the same block.

use std::collections::HashSet;
use std::net::{Ipv4Addr, SocketAddr, UdpSocket};

/// Pod addresses per block: third octet 0..=191, fourth 1..=254.
const POD_SLOTS: u32 = 192 * 254;
/// ClusterIPs per block: third octet 192..=253.
const SERVICE_SLOTS: u64 = 62 * 254;

/// The ClusterIP a Service gets from allocation seed `seed`.
pub fn cluster_ip(block: u8, seed: u64) -> String {
    let n = seed % SERVICE_SLOTS;
    format!("127.{block}.{}.{}", 192 + n / 254, n % 254 + 1)
}

/// Every ClusterIP of a block, starting at seed `from` (to find a free one).
pub fn cluster_ips(block: u8, from: u64) -> impl Iterator<Item = String> {
    (0..SERVICE_SLOTS).map(move |i| cluster_ip(block, from + i))
}

/// Where the block's DNS responder listens.
pub fn dns_addr(block: u8) -> SocketAddr {
    SocketAddr::from((Ipv4Addr::new(127, block, 255, 53), 53))
}

/// A claimed block: the DNS socket is bound, so no other emulator takes it.
pub struct Block {
    pub block: u8,
    pub dns_socket: UdpSocket,
}

/// Claim `preferred`, or the first free block from a random start in 2..=254.
pub fn claim(preferred: Option<u8>) -> std::io::Result<Block> {
    let try_bind = |b: u8| {
        UdpSocket::bind(dns_addr(b)).map(|s| Block {
            block: b,
            dns_socket: s,
        })
    };
    if let Some(b) = preferred {
        return try_bind(b);
    }
    let start = rand::random::<u8>() % 253;
    let mut last = None;
    for i in 0..253u16 {
        let b = 2 + ((u16::from(start) + i) % 253) as u8;
        match try_bind(b) {
            Ok(block) => return Ok(block),
            // Without the right to bind port 53 no block will do: say so at once.
            Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => return Err(e),
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| std::io::Error::other("no free loopback block")))
}

/// The pod addresses of a block: handed out in order, wrapping, never two at once.
pub struct PodIps {
    block: u8,
    next: u32,
    used: HashSet<Ipv4Addr>,
}

impl PodIps {
    pub fn new(block: u8) -> Self {
        Self {
            block,
            next: 1,
            used: HashSet::new(),
        }
    }

    fn nth(&self, n: u32) -> Ipv4Addr {
        let n = n % POD_SLOTS;
        Ipv4Addr::new(127, self.block, (n / 254) as u8, (n % 254 + 1) as u8)
    }

    /// A free address; `None` when all 48,768 are taken.
    pub fn allocate(&mut self) -> Option<Ipv4Addr> {
        for _ in 0..POD_SLOTS {
            let ip = self.nth(self.next);
            self.next = (self.next + 1) % POD_SLOTS;
            // 127.<b>.0.1 stays unused (a host address of the block).
            if ip.octets()[2] == 0 && ip.octets()[3] == 1 {
                continue;
            }
            if self.used.insert(ip) {
                return Some(ip);
            }
        }
        None
    }

    /// Give an address back once nothing of its Pod runs any more.
    pub fn release(&mut self, ip: Ipv4Addr) {
        self.used.remove(&ip);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pod_ips_are_unique_and_never_the_hosts() {
        let mut ips = PodIps::new(77);
        let a = ips.allocate().expect("free");
        assert_eq!(a, Ipv4Addr::new(127, 77, 0, 2));
        let b = ips.allocate().expect("free");
        assert_ne!(a, b);
        ips.release(a);
        assert_ne!(
            ips.allocate(),
            Some(a),
            "a released address is not reused at once"
        );
        assert!(cluster_ip(77, 0).starts_with("127.77.192."));
        assert_eq!(cluster_ip(77, SERVICE_SLOTS - 1), "127.77.253.254");
    }
}
