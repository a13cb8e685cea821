//! TLS and mTLS for the gRPC server, with rustls on aws-lc-rs (the one crypto
//! provider in the workspace; never ring).
//!
//! The certificate, key and client CA are PEM files mounted from a Kubernetes
//! Secret. They are re-read every `reload_interval_ms` and on SIGHUP; when
//! their bytes changed (cert-manager rotated them) new connections use the new
//! ones, connections already open keep theirs. A rotation that does not parse
//! is logged and the previous certificates stay in use.
//!
//! Handshakes run in their own tasks, bounded by a timeout, so a client that
//! stalls in the middle of one never holds up the accept loop.

use std::path::Path;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use futures::Stream;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::server::TlsStream;

use crate::Shutdown;
use crate::config::TlsConfig;

/// How long a client may take to finish its TLS handshake.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("TLS file {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("TLS file {path}: {message}")]
    Pem { path: String, message: String },
    #[error("TLS file {path}: no PEM certificate in it")]
    NoCertificate { path: String },
    #[error("TLS client CA {path}: {message}")]
    ClientCa { path: String, message: String },
    #[error("TLS configuration: {0}")]
    Rustls(#[from] rustls::Error),
}

/// The crypto provider every Midplane TLS endpoint uses.
pub fn crypto_provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

fn read(path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Read {
        path: path.display().to_string(),
        source,
    })
}

/// The certificates of a PEM bundle (at least one).
pub fn parse_certificates(
    path: &Path,
    pem: &[u8],
) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsError::Pem {
            path: path.display().to_string(),
            message: e.to_string(),
        })?;
    if certs.is_empty() {
        return Err(TlsError::NoCertificate {
            path: path.display().to_string(),
        });
    }
    Ok(certs)
}

/// The first private key of a PEM file (PKCS#8, PKCS#1 or SEC1).
pub fn parse_private_key(path: &Path, pem: &[u8]) -> Result<PrivateKeyDer<'static>, TlsError> {
    PrivateKeyDer::from_pem_slice(pem).map_err(|e| TlsError::Pem {
        path: path.display().to_string(),
        message: e.to_string(),
    })
}

/// The bytes a server config was built from, to tell a rotation from a re-read.
#[derive(PartialEq, Eq)]
struct Material {
    cert: Vec<u8>,
    key: Vec<u8>,
    client_ca: Option<Vec<u8>>,
}

impl Material {
    fn read(config: &TlsConfig) -> Result<Self, TlsError> {
        Ok(Self {
            cert: read(&config.cert_file)?,
            key: read(&config.key_file)?,
            client_ca: match &config.client_ca_file {
                Some(p) => Some(read(p)?),
                None => None,
            },
        })
    }

    fn build(&self, config: &TlsConfig) -> Result<Arc<rustls::ServerConfig>, TlsError> {
        let provider = crypto_provider();
        let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()?;
        let builder = match (&config.client_ca_file, &self.client_ca) {
            (Some(path), Some(pem)) => {
                let ca_error = |message: String| TlsError::ClientCa {
                    path: path.display().to_string(),
                    message,
                };
                let mut roots = rustls::RootCertStore::empty();
                let ca_certs = parse_certificates(path, pem)?;
                crate::cert_expiry::record_rustls("client_ca", &ca_certs);
                for cert in ca_certs {
                    roots.add(cert).map_err(|e| ca_error(e.to_string()))?;
                }
                // Without allow_unauthenticated(): a client certificate is mandatory.
                let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
                    Arc::new(roots),
                    provider,
                )
                .build()
                .map_err(|e| ca_error(e.to_string()))?;
                builder.with_client_cert_verifier(verifier)
            }
            _ => builder.with_no_client_auth(),
        };
        let certs = parse_certificates(&config.cert_file, &self.cert)?;
        let key = parse_private_key(&config.key_file, &self.key)?;
        crate::cert_expiry::record_rustls("server", &certs);
        let mut server = builder.with_single_cert(certs, key)?;
        // gRPC clients (tonic, grpc-go) insist on HTTP/2 being negotiated.
        server.alpn_protocols = vec![b"h2".to_vec()];
        Ok(Arc::new(server))
    }
}

struct Loaded {
    server: Arc<rustls::ServerConfig>,
    material: Material,
}

/// The server side: the current rustls config, swapped on rotation.
pub struct ServerTls {
    config: TlsConfig,
    loaded: RwLock<Loaded>,
}

impl ServerTls {
    /// Reads and checks the files; an unusable certificate fails start-up.
    pub fn load(config: &TlsConfig) -> Result<Self, TlsError> {
        let material = Material::read(config)?;
        let server = material.build(config)?;
        Ok(Self {
            config: config.clone(),
            loaded: RwLock::new(Loaded { server, material }),
        })
    }

    /// Whether client certificates are required.
    pub fn mutual(&self) -> bool {
        self.config.client_ca_file.is_some()
    }

    /// An acceptor with the certificates in force now.
    pub fn acceptor(&self) -> TlsAcceptor {
        let loaded = self
            .loaded
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        TlsAcceptor::from(loaded.server.clone())
    }

    /// Re-reads the files. `Ok(true)`: they changed and new connections use
    /// them now; on an error the certificates in force stay.
    pub fn reload(&self) -> Result<bool, TlsError> {
        let material = Material::read(&self.config)?;
        {
            let loaded = self
                .loaded
                .read()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if loaded.material == material {
                return Ok(false);
            }
        }
        let server = material.build(&self.config)?;
        *self
            .loaded
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Loaded { server, material };
        Ok(true)
    }

    /// Re-reads the files every `reload_interval_ms` (unless 0) and on SIGHUP
    /// until shutdown. The SIGHUP handler is in place when this returns.
    pub fn spawn_reloader(self: &Arc<Self>, shutdown: Shutdown) -> tokio::task::JoinHandle<()> {
        let tls = Arc::clone(self);
        let interval = Duration::from_millis(self.config.reload_interval_ms);
        let mut hangup = hangup_signal();
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = shutdown.wait() => break,
                    sighup = hangup.next_reload(interval) => if sighup {
                        tracing::info!("SIGHUP: re-reading the TLS certificates");
                    }
                }
                match tls.reload() {
                    Ok(true) => {
                        metrics::counter!("midplane_tls_reloads_total").increment(1);
                        tracing::info!(
                            cert = %tls.config.cert_file.display(),
                            "TLS certificates changed; new connections use them"
                        );
                    }
                    Ok(false) => {}
                    Err(e) => {
                        metrics::counter!("midplane_tls_reload_errors_total").increment(1);
                        tracing::warn!(error = %e, "TLS certificates not reloaded; the current ones stay in use");
                    }
                }
            }
        })
    }
}

/// SIGHUP as a stream of wake-ups (never fires where signals are unavailable).
/// Once one is created, SIGHUP no longer terminates the process.
pub struct Hangup(#[cfg(unix)] Option<tokio::signal::unix::Signal>);

/// Listens for SIGHUP from now on (inside a tokio runtime).
pub fn hangup_signal() -> Hangup {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::hangup()) {
            Ok(s) => Hangup(Some(s)),
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for SIGHUP; TLS files are only polled");
                Hangup(None)
            }
        }
    }
    #[cfg(not(unix))]
    {
        Hangup()
    }
}

impl Hangup {
    /// When certificate files are re-read: after `interval` (never when it is
    /// zero) or on SIGHUP, whichever comes first. True when it was SIGHUP.
    pub async fn next_reload(&mut self, interval: Duration) -> bool {
        let tick = async {
            if interval.is_zero() {
                std::future::pending::<()>().await;
            } else {
                tokio::time::sleep(interval).await;
            }
        };
        tokio::select! {
            _ = tick => false,
            _ = self.recv() => true,
        }
    }

    /// Completes on the next SIGHUP.
    pub async fn recv(&mut self) {
        #[cfg(unix)]
        if let Some(s) = &mut self.0
            && s.recv().await.is_some()
        {
            return;
        }
        std::future::pending::<()>().await;
    }
}

/// Accepts TCP connections on `listener` and yields those that completed a
/// TLS handshake (with a valid client certificate when mTLS is on) until
/// shutdown. Refused handshakes are counted and logged, never yielded.
pub fn incoming(
    listener: TcpListener,
    tls: Arc<ServerTls>,
    shutdown: Shutdown,
) -> impl Stream<Item = Result<TlsStream<TcpStream>, std::io::Error>> + Send + 'static {
    let (tx, mut rx) = mpsc::channel::<Result<TlsStream<TcpStream>, std::io::Error>>(64);
    tokio::spawn(async move {
        loop {
            let accepted = tokio::select! {
                _ = shutdown.wait() => break,
                r = listener.accept() => r,
            };
            let (tcp, peer) = match accepted {
                Ok(x) => x,
                Err(e) => {
                    // Out of file descriptors and the like: back off, keep serving.
                    tracing::warn!(error = %e, "accepting a gRPC connection failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            let _ = tcp.set_nodelay(true);
            let acceptor = tls.acceptor();
            let tx = tx.clone();
            tokio::spawn(async move {
                let reason =
                    match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                        Ok(Ok(stream)) => {
                            let _ = tx.send(Ok(stream)).await;
                            return;
                        }
                        Ok(Err(e)) => e.to_string(),
                        Err(_) => format!("no handshake within {HANDSHAKE_TIMEOUT:?}"),
                    };
                metrics::counter!("midplane_tls_handshake_failures_total").increment(1);
                tracing::info!(%peer, reason, "TLS handshake refused");
            });
        }
    });
    futures::stream::poll_fn(move |cx| rx.poll_recv(cx))
}
