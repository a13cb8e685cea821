//! Object storage through opendal, configured the way the seed names the fields (§9.2):
//! s3 (bucket, region), gcs (bucket, project), azure (container, account), minio (bucket,
//! endpoint, path-style) and fs (root). Credentials come from explicit values or each cloud's
//! usual environment variables, never from a URI.

use std::collections::BTreeMap;
use std::fmt;

use opendal::Operator;
use opendal::layers::RetryLayer;
use serde::{Deserialize, Serialize};

#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("storage URI {uri:?}: {reason}")]
    BadUri { uri: String, reason: String },
    #[error("storage config: {field} is required for provider {provider}")]
    MissingField {
        provider: &'static str,
        field: &'static str,
    },
    #[error("storage {provider}: {error}")]
    Build {
        provider: &'static str,
        error: Box<opendal::Error>,
    },
}

/// Where backups live. `prefix` is a path inside the bucket/container under which each backup
/// gets its own `<id>/` folder.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "provider", rename_all = "lowercase")]
pub enum StorageConfig {
    S3 {
        bucket: String,
        region: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        endpoint: Option<String>,
        /// Path-style addressing; defaults to true when an endpoint is given, else virtual-host.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        path_style: Option<bool>,
        #[serde(default)]
        prefix: String,
    },
    Gcs {
        bucket: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        project: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        endpoint: Option<String>,
        #[serde(default)]
        prefix: String,
    },
    Azure {
        container: String,
        account: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        endpoint: Option<String>,
        #[serde(default)]
        prefix: String,
    },
    Minio {
        bucket: String,
        endpoint: String,
        #[serde(default = "yes")]
        path_style: bool,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        region: Option<String>,
        #[serde(default)]
        prefix: String,
    },
    Fs {
        root: String,
    },
}

fn yes() -> bool {
    true
}

/// Secrets for a backend. `Debug` never prints them.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Credentials {
    /// S3 / MinIO access key id.
    #[serde(default)]
    pub access_key_id: Option<String>,
    #[serde(default)]
    pub secret_access_key: Option<String>,
    #[serde(default)]
    pub session_token: Option<String>,
    /// Azure storage account key (base64).
    #[serde(default)]
    pub account_key: Option<String>,
    /// GCS service-account JSON, base64-encoded.
    #[serde(default)]
    pub gcs_credential: Option<String>,
    /// Path of a GCS service-account JSON file.
    #[serde(default)]
    pub gcs_credential_path: Option<String>,
    /// A GCS OAuth2 access token.
    #[serde(default)]
    pub gcs_token: Option<String>,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let set = |o: &Option<String>| if o.is_some() { "<set>" } else { "<unset>" };
        f.debug_struct("Credentials")
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &set(&self.secret_access_key))
            .field("session_token", &set(&self.session_token))
            .field("account_key", &set(&self.account_key))
            .field("gcs_credential", &set(&self.gcs_credential))
            .field("gcs_credential_path", &self.gcs_credential_path)
            .field("gcs_token", &set(&self.gcs_token))
            .finish()
    }
}

impl Credentials {
    /// Reads each cloud's usual environment variables for `config`'s provider:
    /// s3/minio `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN` (minio also
    /// `MINIO_ACCESS_KEY` / `MINIO_SECRET_KEY`); azure `AZURE_STORAGE_KEY`; gcs
    /// `GOOGLE_APPLICATION_CREDENTIALS` (a file) or `GOOGLE_OAUTH_ACCESS_TOKEN`.
    pub fn from_env(config: &StorageConfig) -> Self {
        let env = |n: &str| std::env::var(n).ok().filter(|v| !v.is_empty());
        let mut c = Credentials::default();
        match config {
            StorageConfig::S3 { .. } | StorageConfig::Minio { .. } => {
                let minio = matches!(config, StorageConfig::Minio { .. });
                c.access_key_id = minio
                    .then(|| env("MINIO_ACCESS_KEY"))
                    .flatten()
                    .or_else(|| env("AWS_ACCESS_KEY_ID"));
                c.secret_access_key = minio
                    .then(|| env("MINIO_SECRET_KEY"))
                    .flatten()
                    .or_else(|| env("AWS_SECRET_ACCESS_KEY"));
                c.session_token = env("AWS_SESSION_TOKEN");
            }
            StorageConfig::Azure { .. } => c.account_key = env("AZURE_STORAGE_KEY"),
            StorageConfig::Gcs { .. } => {
                c.gcs_credential_path = env("GOOGLE_APPLICATION_CREDENTIALS");
                c.gcs_token = env("GOOGLE_OAUTH_ACCESS_TOKEN");
            }
            StorageConfig::Fs { .. } => {}
        }
        c
    }
}

fn normalize_prefix(p: &str) -> String {
    let trimmed = p.trim_matches('/');
    if trimmed.is_empty() {
        "/".to_string()
    } else {
        format!("/{trimmed}/")
    }
}

impl StorageConfig {
    pub fn provider(&self) -> &'static str {
        match self {
            StorageConfig::S3 { .. } => "s3",
            StorageConfig::Gcs { .. } => "gcs",
            StorageConfig::Azure { .. } => "azure",
            StorageConfig::Minio { .. } => "minio",
            StorageConfig::Fs { .. } => "fs",
        }
    }

    /// Parses the CLI's URI forms: `file:///path`, `s3://bucket/prefix?region=…&endpoint=…`,
    /// `minio://bucket/prefix?endpoint=…`, `gcs://bucket/prefix?project=…&endpoint=…`,
    /// `azure://container/prefix?account=…&endpoint=…`.
    pub fn from_uri(uri: &str) -> Result<Self, StorageError> {
        let bad = |reason: &str| StorageError::BadUri {
            uri: uri.to_string(),
            reason: reason.to_string(),
        };
        let (scheme, rest) = uri
            .split_once("://")
            .ok_or_else(|| bad("expected SCHEME://…"))?;
        let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
        let mut params = BTreeMap::new();
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            params.insert(percent_decode(k), percent_decode(v));
        }
        let (bucket, prefix) = path.split_once('/').unwrap_or((path, ""));
        let bucket = percent_decode(bucket);
        let prefix = percent_decode(prefix);
        let mut take = |k: &str| params.remove(k);
        let need_bucket = |what: &str| {
            if bucket.is_empty() {
                Err(bad(&format!("missing {what} name after ://")))
            } else {
                Ok(bucket.clone())
            }
        };
        let parse_bool = |v: Option<String>, name: &str| -> Result<Option<bool>, StorageError> {
            match v.as_deref() {
                None => Ok(None),
                Some("true" | "1" | "yes") => Ok(Some(true)),
                Some("false" | "0" | "no") => Ok(Some(false)),
                Some(other) => Err(bad(&format!("{name}={other} is not a boolean"))),
            }
        };
        let cfg = match scheme {
            "file" | "fs" => {
                if query.is_empty() && !path.starts_with('/') {
                    return Err(bad("file URIs need an absolute path: file:///path"));
                }
                StorageConfig::Fs {
                    root: percent_decode(path),
                }
            }
            "s3" => StorageConfig::S3 {
                bucket: need_bucket("bucket")?,
                region: take("region").unwrap_or_else(|| "us-east-1".into()),
                endpoint: take("endpoint"),
                path_style: parse_bool(take("path_style"), "path_style")?,
                prefix,
            },
            "minio" => StorageConfig::Minio {
                bucket: need_bucket("bucket")?,
                endpoint: take("endpoint").ok_or_else(|| bad("minio needs ?endpoint=…"))?,
                path_style: parse_bool(take("path_style"), "path_style")?.unwrap_or(true),
                region: take("region"),
                prefix,
            },
            "gcs" | "gs" => StorageConfig::Gcs {
                bucket: need_bucket("bucket")?,
                project: take("project"),
                endpoint: take("endpoint"),
                prefix,
            },
            "azure" | "azblob" => StorageConfig::Azure {
                container: need_bucket("container")?,
                account: take("account")
                    .or_else(|| std::env::var("AZURE_STORAGE_ACCOUNT").ok())
                    .ok_or_else(|| bad("azure needs ?account=… (or AZURE_STORAGE_ACCOUNT)"))?,
                endpoint: take("endpoint"),
                prefix,
            },
            other => return Err(bad(&format!("unknown scheme {other:?}"))),
        };
        if let Some(k) = params.keys().next() {
            return Err(bad(&format!(
                "unknown parameter {k:?} (credentials come from the environment, never the URI)"
            )));
        }
        Ok(cfg)
    }

    /// Builds the opendal operator, rooted at the prefix.
    pub fn operator(&self, creds: &Credentials) -> Result<Operator, StorageError> {
        opendal::install_default();
        let provider = self.provider();
        let wrap = |source: opendal::Error| StorageError::Build {
            provider,
            error: Box::new(source),
        };
        let op = match self {
            StorageConfig::S3 {
                bucket,
                region,
                endpoint,
                path_style,
                prefix,
            } => {
                let mut b = opendal::services::S3::default()
                    .bucket(bucket)
                    .region(region)
                    .root(&normalize_prefix(prefix));
                if let Some(e) = endpoint {
                    b = b.endpoint(e);
                }
                if !path_style.unwrap_or(endpoint.is_some()) {
                    b = b.enable_virtual_host_style();
                }
                Operator::new(s3_creds(b, creds)).map_err(wrap)?
            }
            StorageConfig::Minio {
                bucket,
                endpoint,
                path_style,
                region,
                prefix,
            } => {
                let mut b = opendal::services::S3::default()
                    .bucket(bucket)
                    .endpoint(endpoint)
                    .region(region.as_deref().unwrap_or("us-east-1"))
                    .root(&normalize_prefix(prefix));
                if !path_style {
                    b = b.enable_virtual_host_style();
                }
                Operator::new(s3_creds(b, creds)).map_err(wrap)?
            }
            StorageConfig::Gcs {
                bucket,
                endpoint,
                prefix,
                ..
            } => {
                let mut b = opendal::services::Gcs::default()
                    .bucket(bucket)
                    .root(&normalize_prefix(prefix));
                if let Some(e) = endpoint {
                    b = b.endpoint(e);
                }
                let mut any = false;
                if let Some(c) = &creds.gcs_credential {
                    b = b.credential(c);
                    any = true;
                }
                if let Some(p) = &creds.gcs_credential_path {
                    b = b.credential_path(p);
                    any = true;
                }
                if let Some(t) = &creds.gcs_token {
                    b = b.token(t.clone());
                    any = true;
                }
                if !any && endpoint.is_some() {
                    // An emulator or private endpoint without credentials: send no auth at all
                    // rather than probing the VM metadata server.
                    b = b
                        .skip_signature()
                        .disable_vm_metadata()
                        .disable_config_load();
                }
                Operator::new(b).map_err(wrap)?
            }
            StorageConfig::Azure {
                container,
                account,
                endpoint,
                prefix,
            } => {
                let endpoint = endpoint
                    .clone()
                    .unwrap_or_else(|| format!("https://{account}.blob.core.windows.net"));
                let mut b = opendal::services::Azblob::default()
                    .container(container)
                    .account_name(account)
                    .endpoint(&endpoint)
                    .root(&normalize_prefix(prefix));
                if let Some(k) = &creds.account_key {
                    b = b.account_key(k);
                }
                Operator::new(b).map_err(wrap)?
            }
            StorageConfig::Fs { root } => {
                Operator::new(opendal::services::Fs::default().root(root)).map_err(wrap)?
            }
        };
        Ok(op.layer(RetryLayer::new().with_max_times(4).with_jitter()))
    }

    /// A description without secrets, for logs and manifests.
    pub fn describe(&self) -> String {
        match self {
            StorageConfig::S3 { bucket, prefix, .. } => format!("s3://{bucket}/{prefix}"),
            StorageConfig::Gcs { bucket, prefix, .. } => format!("gcs://{bucket}/{prefix}"),
            StorageConfig::Azure {
                container, prefix, ..
            } => format!("azure://{container}/{prefix}"),
            StorageConfig::Minio { bucket, prefix, .. } => format!("minio://{bucket}/{prefix}"),
            StorageConfig::Fs { root } => format!("file://{root}"),
        }
    }
}

fn s3_creds(mut b: opendal::services::S3, creds: &Credentials) -> opendal::services::S3 {
    if let (Some(id), Some(secret)) = (&creds.access_key_id, &creds.secret_access_key) {
        // Explicit keys: do not let opendal fall back to ~/.aws or instance metadata.
        b = b
            .access_key_id(id)
            .secret_access_key(secret)
            .disable_config_load()
            .disable_ec2_metadata();
        if let Some(t) = &creds.session_token {
            b = b.session_token(t);
        }
    }
    b
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let Some(v) = std::str::from_utf8(&bytes[i + 1..i + 3])
                .ok()
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            out.push(v);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uris_parse_into_seed_fields() {
        assert_eq!(
            StorageConfig::from_uri(
                "s3://b/daily/redis?region=eu-west-1&endpoint=http://127.0.0.1:9000"
            )
            .expect("s3"),
            StorageConfig::S3 {
                bucket: "b".into(),
                region: "eu-west-1".into(),
                endpoint: Some("http://127.0.0.1:9000".into()),
                path_style: None,
                prefix: "daily/redis".into(),
            }
        );
        assert!(matches!(
            StorageConfig::from_uri("minio://b/p?endpoint=http%3A%2F%2Fh%3A9000").expect("minio"),
            StorageConfig::Minio { ref endpoint, path_style: true, .. } if endpoint == "http://h:9000"
        ));
        assert!(matches!(
            StorageConfig::from_uri("gcs://b/p?project=proj").expect("gcs"),
            StorageConfig::Gcs { project: Some(ref p), .. } if p == "proj"
        ));
        assert!(matches!(
            StorageConfig::from_uri("azure://c/p?account=acc").expect("azure"),
            StorageConfig::Azure { ref account, .. } if account == "acc"
        ));
        assert_eq!(
            StorageConfig::from_uri("file:///var/backups").expect("file"),
            StorageConfig::Fs {
                root: "/var/backups".into()
            }
        );
    }

    #[test]
    fn bad_uris_are_explained() {
        let e = StorageConfig::from_uri("s3://b/p?secret=x")
            .unwrap_err()
            .to_string();
        assert!(e.contains("never the URI"), "{e}");
        assert!(
            StorageConfig::from_uri("minio://b/p")
                .unwrap_err()
                .to_string()
                .contains("endpoint")
        );
        assert!(
            StorageConfig::from_uri("ftp://x")
                .unwrap_err()
                .to_string()
                .contains("ftp")
        );
        assert!(StorageConfig::from_uri("nothing").is_err());
    }

    #[test]
    fn config_deserializes_with_provider_tag_and_debug_hides_secrets() {
        let c: StorageConfig =
            serde_json::from_str(r#"{"provider":"minio","bucket":"b","endpoint":"http://m:9000"}"#)
                .expect("json");
        assert!(matches!(
            c,
            StorageConfig::Minio {
                path_style: true,
                ..
            }
        ));
        let creds = Credentials {
            secret_access_key: Some("hunter2".into()),
            ..Default::default()
        };
        assert!(!format!("{creds:?}").contains("hunter2"));
    }
}
