//! Who calls the emulator and what they may do: ServiceAccount tokens the emulator issues
//! (TokenRequest, and the token it mounts into process pods), the RBAC authorizer, the
//! TokenReview and SubjectAccessReview APIs, and an audit of every authenticated request.
//!
//! A request without credentials is the cluster administrator, as before (tests, `midplane
//! dev`, the scale benchmarks: one header lookup is all they pay). A request with a bearer
//! token the emulator issued is that ServiceAccount, checked by RBAC; any other token is
//! 401 Unauthorized.

mod attributes;
mod audit;
mod rbac;
pub(crate) mod reviews;
pub mod tls;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Mutex, OnceLock, RwLock};

use axum::http::{HeaderMap, header};

pub use attributes::Attributes;
pub use audit::AuditRecord;
pub use rbac::Decision;

use crate::error::ApiError;
use crate::registry::GroupResource;
use crate::store::{Inner, Store};

/// An authenticated caller, as a TokenReview reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Identity {
    pub username: String,
    pub uid: String,
    pub groups: Vec<String>,
}

/// The ServiceAccount a token was issued for.
#[derive(Clone, Debug)]
struct Issued {
    namespace: String,
    name: String,
    uid: String,
}

/// The HTTPS endpoint Pods reach, and the CA that signed its certificate.
#[derive(Clone, Debug)]
pub struct Secure {
    pub addr: SocketAddr,
    pub ca_pem: String,
}

/// Tokens, the audit and the HTTPS endpoint; one per emulator (in its [`Store`]).
#[derive(Default)]
pub struct Access {
    tokens: RwLock<HashMap<String, Issued>>,
    audit: Mutex<audit::Log>,
    secure: OnceLock<Secure>,
}

impl Access {
    /// A new bearer token for the ServiceAccount `namespace/name` (uid `uid`). It stays
    /// valid while that ServiceAccount exists with that uid.
    pub fn issue(&self, namespace: &str, name: &str, uid: &str) -> String {
        let token = format!("emu-{}", hex::encode(rand::random::<[u8; 24]>()));
        if let Ok(mut t) = self.tokens.write() {
            t.insert(
                token.clone(),
                Issued {
                    namespace: namespace.into(),
                    name: name.into(),
                    uid: uid.into(),
                },
            );
        }
        token
    }

    /// The identity a token stands for, if the emulator issued it and its ServiceAccount
    /// still exists.
    pub fn authenticate(&self, inner: &Inner, token: &str) -> Option<Identity> {
        let issued = self.tokens.read().ok()?.get(token)?.clone();
        let sa = inner.get(
            &GroupResource::new("", "serviceaccounts"),
            &issued.namespace,
            &issued.name,
        )?;
        if sa["metadata"]["uid"].as_str() != Some(issued.uid.as_str()) {
            return None;
        }
        Some(service_account_identity(
            &issued.namespace,
            &issued.name,
            &issued.uid,
        ))
    }

    pub(crate) fn set_secure(&self, secure: Secure) {
        let _ = self.secure.set(secure);
    }

    /// The HTTPS endpoint, when the emulator serves one.
    pub fn secure(&self) -> Option<&Secure> {
        self.secure.get()
    }

    pub(crate) fn record(&self, who: &Identity, attributes: &Attributes, code: u16) {
        if let Ok(mut log) = self.audit.lock() {
            log.push(AuditRecord {
                user: who.username.clone(),
                attributes: attributes.clone(),
                code,
            });
        }
    }

    /// Every authenticated request so far, oldest first.
    pub fn audit(&self) -> Vec<AuditRecord> {
        self.audit.lock().map(|l| l.all()).unwrap_or_default()
    }
}

/// The identity of a ServiceAccount, as upstream's token authenticator reports it.
pub fn service_account_identity(namespace: &str, name: &str, uid: &str) -> Identity {
    Identity {
        username: format!("system:serviceaccount:{namespace}:{name}"),
        uid: uid.into(),
        groups: vec![
            "system:serviceaccounts".into(),
            format!("system:serviceaccounts:{namespace}"),
            "system:authenticated".into(),
        ],
    }
}

/// The caller of a request: `None` without credentials (the administrator), the
/// ServiceAccount of a token the emulator issued, or 401 for anything else.
pub fn caller(store: &Store, headers: &HeaderMap) -> Result<Option<Identity>, ApiError> {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Ok(None);
    };
    let token = value
        .to_str()
        .ok()
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .ok_or_else(ApiError::unauthorized)?;
    store
        .access
        .authenticate(&store.lock(), token)
        .map(Some)
        .ok_or_else(ApiError::unauthorized)
}

/// Decide a request of `who`: allowed, or the apiserver's 403 naming what is missing.
pub fn authorize(store: &Store, who: &Identity, a: &Attributes) -> Result<(), ApiError> {
    let decision = rbac::authorize(&store.lock(), who, a);
    if decision.allowed {
        return Ok(());
    }
    let kind = a.resource.clone();
    Err(ApiError::forbidden_on(
        &a.group,
        &kind,
        &a.name,
        rbac::forbidden_message(who, a),
    ))
}

/// Decide for someone else (SubjectAccessReview).
pub fn review(store: &Store, who: &Identity, a: &Attributes) -> Decision {
    rbac::authorize(&store.lock(), who, a)
}
