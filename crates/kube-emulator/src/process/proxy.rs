//! Services that route: a userspace TCP proxy (kube-proxy's old userspace mode) listening
//! on each Service port at its ClusterIP (a loopback address) and, for NodePort and
//! LoadBalancer Services, on `127.0.0.1:<nodePort>`. Each connection goes to one ready
//! endpoint of the Service's Endpoints, round robin; with none ready it is closed at once.
//! Connections already made stay with their endpoint (as conntrack keeps them).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use serde_json::Value;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::AbortHandle;

use crate::kubelet::gr;
use crate::store::{ObjKey, Store};

struct Listening {
    fingerprint: String,
    tasks: Vec<AbortHandle>,
}

pub struct Proxy {
    store: Arc<Store>,
    services: std::sync::Mutex<HashMap<(String, String), Listening>>,
    stop: tokio::sync::watch::Sender<bool>,
    next: AtomicUsize,
}

/// One port of a Service, by its name (endpoint ports carry it; a single port may be
/// unnamed).
#[derive(Clone)]
struct Port {
    name: Option<String>,
}

impl Proxy {
    pub fn new(store: Arc<Store>) -> Arc<Self> {
        Arc::new(Self {
            store,
            services: std::sync::Mutex::new(HashMap::new()),
            stop: tokio::sync::watch::channel(false).0,
            next: AtomicUsize::new(0),
        })
    }

    /// The ready endpoints of a Service port.
    fn endpoints(&self, ns: &str, svc: &str, port: &Port) -> Vec<SocketAddr> {
        let Some(ep) = self.store.lock().get(&gr("", "endpoints"), ns, svc) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for s in ep["subsets"].as_array().into_iter().flatten() {
            let ports: Vec<&Value> = s["ports"].as_array().into_iter().flatten().collect();
            let p = ports
                .iter()
                .find(|p| p["name"].as_str() == port.name.as_deref())
                .or_else(|| {
                    if ports.len() == 1 {
                        ports.first()
                    } else {
                        None
                    }
                });
            let Some(target) = p
                .and_then(|p| p["port"].as_u64())
                .and_then(|p| u16::try_from(p).ok())
            else {
                continue;
            };
            for a in s["addresses"].as_array().into_iter().flatten() {
                if let Some(ip) = a["ip"]
                    .as_str()
                    .and_then(|ip| ip.parse::<std::net::IpAddr>().ok())
                {
                    out.push(SocketAddr::new(ip, target));
                }
            }
        }
        out
    }

    /// Listen for a Service as it now is (or stop listening when it is gone).
    pub fn reconcile(self: &Arc<Self>, key: &ObjKey) {
        let svc = self.store.lock().get_key(key);
        let id = (key.namespace.clone(), key.name.clone());
        let desired = svc.as_deref().and_then(|s| {
            let ip = s["spec"]["clusterIP"]
                .as_str()?
                .parse::<std::net::Ipv4Addr>()
                .ok()?;
            (s["spec"]["type"] != "ExternalName" && s["metadata"]["deletionTimestamp"].is_null())
                .then_some((ip, s))
        });
        let fingerprint = desired
            .as_ref()
            .map(|(ip, s)| format!("{ip} {} {}", s["spec"]["type"], s["spec"]["ports"]))
            .unwrap_or_default();
        let mut services = self
            .services
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if services
            .get(&id)
            .is_some_and(|l| l.fingerprint == fingerprint)
        {
            return;
        }
        if let Some(old) = services.remove(&id) {
            for t in old.tasks {
                t.abort();
            }
        }
        let Some((ip, s)) = desired else { return };
        let mut tasks = Vec::new();
        for p in s["spec"]["ports"].as_array().into_iter().flatten() {
            if p["protocol"].as_str().is_some_and(|x| x != "TCP") {
                tracing::warn!(service = %key.name, "the emulator's proxy forwards TCP only");
                continue;
            }
            let Some(number) = p["port"].as_u64().and_then(|n| u16::try_from(n).ok()) else {
                continue;
            };
            let port = Port {
                name: p["name"].as_str().map(String::from),
            };
            let mut addrs = vec![SocketAddr::from((ip, number))];
            if let Some(np) = p["nodePort"].as_u64().and_then(|n| u16::try_from(n).ok()) {
                addrs.push(SocketAddr::from(([127, 0, 0, 1], np)));
            }
            for addr in addrs {
                match std::net::TcpListener::bind(addr).and_then(|l| {
                    l.set_nonblocking(true)?;
                    TcpListener::from_std(l)
                }) {
                    Ok(l) => {
                        let me = self.clone();
                        let (ns, name, port) =
                            (key.namespace.clone(), key.name.clone(), port.clone());
                        tasks.push(tokio::spawn(me.accept(l, ns, name, port)).abort_handle());
                    }
                    Err(e) => {
                        tracing::warn!(service = %key.name, %addr, error = %e, "proxy cannot listen");
                    }
                }
            }
        }
        services.insert(id, Listening { fingerprint, tasks });
    }

    async fn accept(self: Arc<Self>, listener: TcpListener, ns: String, svc: String, port: Port) {
        loop {
            let Ok((client, _)) = listener.accept().await else {
                continue;
            };
            let targets = self.endpoints(&ns, &svc, &port);
            if targets.is_empty() {
                // No ready endpoint: the connection is refused (closed at once).
                continue;
            }
            let target = targets[self.next.fetch_add(1, Ordering::Relaxed) % targets.len()];
            let mut stop = self.stop.subscribe();
            tokio::spawn(async move {
                let Ok(Ok(upstream)) =
                    tokio::time::timeout(Duration::from_secs(5), TcpStream::connect(target)).await
                else {
                    return;
                };
                let _ = client.set_nodelay(true);
                let _ = upstream.set_nodelay(true);
                let (mut a, mut b) = (client, upstream);
                tokio::select! {
                    _ = tokio::io::copy_bidirectional(&mut a, &mut b) => {}
                    _ = stop.changed() => {}
                }
            });
        }
    }

    /// Close every listener and connection.
    pub fn stop(&self) {
        let _ = self.stop.send(true);
        for (_, l) in self
            .services
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .drain()
        {
            for t in l.tasks {
                t.abort();
            }
        }
    }
}
