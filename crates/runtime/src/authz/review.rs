//! The two questions the authorization layer asks the Kubernetes API server, with a short
//! cache so a busy caller does not cost two API calls per RPC: who is this token
//! (TokenReview) and may this identity do this (SubjectAccessReview).

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use k8s_openapi::api::authentication::v1::{TokenReview, TokenReviewSpec};
use k8s_openapi::api::authorization::v1::{
    ResourceAttributes, SubjectAccessReview, SubjectAccessReviewSpec,
};
use kube::api::{Api, PostParams};
use sha2::Digest as _;

/// An authenticated caller, as the TokenReview reported it.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Caller {
    pub username: String,
    pub uid: String,
    pub groups: Vec<String>,
    pub extra: BTreeMap<String, Vec<String>>,
}

/// One permission asked about.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Permission {
    pub verb: &'static str,
    pub group: &'static str,
    pub resource: &'static str,
    pub subresource: &'static str,
    pub namespace: String,
    pub name: String,
}

/// What went wrong asking the API server.
#[derive(Debug, thiserror::Error)]
pub enum ReviewError {
    /// The service's own identity may not create the review (its RBAC lacks it).
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    Unavailable(String),
}

fn from_kube(what: &str, e: kube::Error) -> ReviewError {
    match e {
        kube::Error::Api(s) if s.code == 401 || s.code == 403 => ReviewError::Forbidden(format!(
            "the service may not create {what} (grant its ServiceAccount create on {what}): {}",
            s.message
        )),
        other => ReviewError::Unavailable(format!("creating a {what}: {other}")),
    }
}

struct Cache<K, V> {
    ttl: Duration,
    entries: Mutex<HashMap<K, (V, Instant)>>,
}

impl<K: std::hash::Hash + Eq, V: Clone> Cache<K, V> {
    fn new(ttl: Duration) -> Self {
        Self {
            ttl,
            entries: Mutex::new(HashMap::new()),
        }
    }

    fn get(&self, k: &K) -> Option<V> {
        let entries = self.entries.lock().ok()?;
        entries
            .get(k)
            .filter(|(_, at)| at.elapsed() < self.ttl)
            .map(|(v, _)| v.clone())
    }

    fn put(&self, k: K, v: V) {
        if self.ttl.is_zero() {
            return;
        }
        if let Ok(mut entries) = self.entries.lock() {
            // Bounded: a flood of distinct tokens never grows the cache without end.
            if entries.len() >= 10_000 {
                entries.retain(|_, (_, at)| at.elapsed() < self.ttl);
                if entries.len() >= 10_000 {
                    entries.clear();
                }
            }
            entries.insert(k, (v, Instant::now()));
        }
    }
}

/// Asks the API server, remembering answers for `ttl`.
pub struct Reviewer {
    client: kube::Client,
    tokens: Cache<[u8; 32], Option<Caller>>,
    decisions: Cache<(Caller, Permission), bool>,
}

impl Reviewer {
    pub fn new(client: kube::Client, ttl: Duration) -> Self {
        Self {
            client,
            tokens: Cache::new(ttl),
            decisions: Cache::new(ttl),
        }
    }

    /// Who the token belongs to; `None` when the API server does not accept it.
    pub async fn authenticate(&self, token: &str) -> Result<Option<Caller>, ReviewError> {
        let key: [u8; 32] = sha2::Sha256::digest(token.as_bytes()).into();
        if let Some(known) = self.tokens.get(&key) {
            return Ok(known);
        }
        let review = Api::<TokenReview>::all(self.client.clone())
            .create(
                &PostParams::default(),
                &TokenReview {
                    spec: TokenReviewSpec {
                        token: Some(token.to_string()),
                        ..TokenReviewSpec::default()
                    },
                    ..TokenReview::default()
                },
            )
            .await
            .map_err(|e| from_kube("tokenreviews", e))?;
        let status = review.status.unwrap_or_default();
        let caller = match (status.authenticated, status.user) {
            (Some(true), Some(user)) => Some(Caller {
                username: user.username.unwrap_or_default(),
                uid: user.uid.unwrap_or_default(),
                groups: user.groups.unwrap_or_default(),
                extra: user.extra.unwrap_or_default(),
            }),
            _ => None,
        };
        self.tokens.put(key, caller.clone());
        Ok(caller)
    }

    /// Whether `caller` holds `permission`.
    pub async fn allowed(
        &self,
        caller: &Caller,
        permission: &Permission,
    ) -> Result<bool, ReviewError> {
        let key = (caller.clone(), permission.clone());
        if let Some(known) = self.decisions.get(&key) {
            return Ok(known);
        }
        let opt = |s: &str| (!s.is_empty()).then(|| s.to_string());
        let review = Api::<SubjectAccessReview>::all(self.client.clone())
            .create(
                &PostParams::default(),
                &SubjectAccessReview {
                    spec: SubjectAccessReviewSpec {
                        user: Some(caller.username.clone()),
                        uid: opt(&caller.uid),
                        groups: Some(caller.groups.clone()),
                        extra: (!caller.extra.is_empty()).then(|| caller.extra.clone()),
                        resource_attributes: Some(ResourceAttributes {
                            verb: Some(permission.verb.into()),
                            group: Some(permission.group.into()),
                            resource: Some(permission.resource.into()),
                            subresource: opt(permission.subresource),
                            namespace: opt(&permission.namespace),
                            name: opt(&permission.name),
                            ..ResourceAttributes::default()
                        }),
                        ..SubjectAccessReviewSpec::default()
                    },
                    ..SubjectAccessReview::default()
                },
            )
            .await
            .map_err(|e| from_kube("subjectaccessreviews", e))?;
        let allowed = review
            .status
            .is_some_and(|s| s.allowed && s.denied != Some(true));
        self.decisions.put(key, allowed);
        Ok(allowed)
    }
}
