//! Certificates for TLS tests, made at test time with the stock `openssl`
//! command line (no key material is checked in): a CA, server certificates
//! with chosen DNS names, client certificates.

use std::path::{Path, PathBuf};
use std::process::Command;

/// A PEM certificate and its private key on disk.
#[derive(Debug, Clone)]
pub struct CertFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

impl CertFiles {
    pub fn cert_pem(&self) -> std::io::Result<String> {
        std::fs::read_to_string(&self.cert)
    }
    pub fn key_pem(&self) -> std::io::Result<String> {
        std::fs::read_to_string(&self.key)
    }
}

/// A throw-away certificate authority in `dir`.
#[derive(Debug, Clone)]
pub struct TestCa {
    dir: PathBuf,
    pub name: String,
    pub files: CertFiles,
}

fn openssl(args: &[&str]) -> std::io::Result<()> {
    let out = Command::new("openssl").args(args).output().map_err(|e| {
        std::io::Error::new(e.kind(), format!("openssl (needed for TLS tests): {e}"))
    })?;
    if !out.status.success() {
        return Err(std::io::Error::other(format!(
            "openssl {}: {}",
            args.first().copied().unwrap_or_default(),
            String::from_utf8_lossy(&out.stderr)
        )));
    }
    Ok(())
}

fn path_str(p: &Path) -> std::io::Result<&str> {
    p.to_str()
        .ok_or_else(|| std::io::Error::other(format!("non-UTF-8 path {}", p.display())))
}

impl TestCa {
    /// A self-signed P-256 CA named `name`, valid for a day.
    pub fn new(dir: &Path, name: &str) -> std::io::Result<Self> {
        let files = CertFiles {
            cert: dir.join(format!("{name}-ca.crt")),
            key: dir.join(format!("{name}-ca.key")),
        };
        openssl(&[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-days",
            "1",
            "-subj",
            &format!("/CN={name}"),
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
            "-keyout",
            path_str(&files.key)?,
            "-out",
            path_str(&files.cert)?,
        ])?;
        Ok(Self {
            dir: dir.to_path_buf(),
            name: name.to_string(),
            files,
        })
    }

    /// A leaf certificate for `cn` with the given DNS names, usable as a TLS
    /// server and client certificate, signed by this CA.
    pub fn issue(&self, cn: &str, dns_names: &[&str]) -> std::io::Result<CertFiles> {
        let stem = format!("{}-{cn}", self.name);
        let files = CertFiles {
            cert: self.dir.join(format!("{stem}.crt")),
            key: self.dir.join(format!("{stem}.key")),
        };
        let csr = self.dir.join(format!("{stem}.csr"));
        let ext = self.dir.join(format!("{stem}.ext"));
        let mut san: Vec<String> = dns_names.iter().map(|d| format!("DNS:{d}")).collect();
        if san.is_empty() {
            san.push(format!("DNS:{cn}"));
        }
        std::fs::write(
            &ext,
            format!(
                "basicConstraints=critical,CA:FALSE\n\
                 keyUsage=critical,digitalSignature\n\
                 extendedKeyUsage=serverAuth,clientAuth\n\
                 subjectAltName={}\n",
                san.join(",")
            ),
        )?;
        openssl(&[
            "req",
            "-new",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-subj",
            &format!("/CN={cn}"),
            "-keyout",
            path_str(&files.key)?,
            "-out",
            path_str(&csr)?,
        ])?;
        let serial = format!(
            "0x{:x}",
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or_default()
        );
        openssl(&[
            "x509",
            "-req",
            "-in",
            path_str(&csr)?,
            "-CA",
            path_str(&self.files.cert)?,
            "-CAkey",
            path_str(&self.files.key)?,
            "-set_serial",
            &serial,
            "-days",
            "1",
            "-extfile",
            path_str(&ext)?,
            "-out",
            path_str(&files.cert)?,
        ])?;
        Ok(files)
    }
}
