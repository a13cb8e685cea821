//! Per-caller authorization of the public gRPC APIs, so Kubernetes RBAC decides who may
//! do what, as it does for kubectl: with `server.authorization.mode: kubernetes` every
//! call must carry the caller's own Kubernetes bearer token (`authorization: Bearer
//! <token>`), which a TokenReview authenticates; then a SubjectAccessReview asks whether
//! that identity holds the permission the method needs ([`rules::RULES`]: verb, resource
//! in API group `midplane.dev`, the namespace and name the request names). Health checks
//! stay open; reflection needs only a valid token.
//!
//! Refusals use the API's error model: UNAUTHENTICATED `TOKEN_INVALID` for a missing or
//! rejected token, PERMISSION_DENIED `PERMISSION_MISSING` naming the missing permission
//! (ErrorInfo metadata `user`, `verb`, `group`, `resource`, `namespace`, `name`). The
//! service then acts with its own ServiceAccount, as before.

pub mod review;
pub mod rules;
pub mod wire;

use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Bytes;
use futures::future::BoxFuture;
use http_body_util::BodyExt as _;
use tonic::Code;
use tonic::body::Body;

use crate::config::{AuthorizationConfig, AuthorizationMode};
use crate::status::{ApiError, RETRY_SOON, reason};
use review::{Caller, Permission, ReviewError, Reviewer};
use rules::{GROUP, Rule, Scope};

/// Paths that need no token at all (kubelet probes, load balancers).
const OPEN_PREFIXES: &[&str] = &["/grpc.health.v1.Health/"];
/// Paths a valid token may call without a permission check.
const AUTHENTICATED_PREFIXES: &[&str] = &[
    "/grpc.reflection.v1.ServerReflection/",
    "/grpc.reflection.v1alpha.ServerReflection/",
];
/// The largest request the layer reads to find the namespace (tonic's default limit).
const MAX_REQUEST: usize = 4 * 1024 * 1024;

/// The authorization layer; without `mode: kubernetes` it passes every call through.
#[derive(Clone, Default)]
pub struct AuthorizeLayer {
    reviewer: Option<Arc<Reviewer>>,
}

impl AuthorizeLayer {
    /// Builds the Kubernetes client for the reviews and checks that every method the port
    /// serves has a rule (a service without rules cannot turn authorization on).
    pub async fn from_config(
        config: &AuthorizationConfig,
        served: &[&str],
    ) -> Result<Self, crate::RuntimeError> {
        if config.mode == AuthorizationMode::None {
            return Ok(Self::default());
        }
        let missing = methods_without_rules(served);
        if !missing.is_empty() {
            return Err(crate::RuntimeError::Authorization(format!(
                "server.authorization.mode is kubernetes, but these methods have no authorization rule: {}",
                missing.join(", ")
            )));
        }
        let client = kube_client(config).await?;
        Ok(Self::with_client(
            client,
            Duration::from_millis(config.cache_ttl_ms),
        ))
    }

    /// Authorization through `client`, remembering answers for `ttl`.
    pub fn with_client(client: kube::Client, ttl: Duration) -> Self {
        Self {
            reviewer: Some(Arc::new(Reviewer::new(client, ttl))),
        }
    }
}

async fn kube_client(config: &AuthorizationConfig) -> Result<kube::Client, crate::RuntimeError> {
    let err = |what: &str, e: &dyn std::fmt::Display| {
        crate::RuntimeError::Authorization(format!("{what}: {e}"))
    };
    let kube_config = match &config.kubeconfig {
        Some(path) => {
            let what = format!("server.authorization.kubeconfig {}", path.display());
            let kc = kube::config::Kubeconfig::read_from(path).map_err(|e| err(&what, &e))?;
            kube::Config::from_custom_kubeconfig(kc, &kube::config::KubeConfigOptions::default())
                .await
                .map_err(|e| err(&what, &e))?
        }
        None => kube::Config::infer()
            .await
            .map_err(|e| err("the Kubernetes client for authorization", &e))?,
    };
    kube::Client::try_from(kube_config)
        .map_err(|e| err("the Kubernetes client for authorization", &e))
}

/// `/<service>/<method>` of every method of `served` without a rule.
fn methods_without_rules(served: &[&str]) -> Vec<String> {
    use prost::Message as _;
    let Ok(set) = prost_types::FileDescriptorSet::decode(midplane_proto::FILE_DESCRIPTOR_SET)
    else {
        return vec!["(the API descriptors do not decode)".into()];
    };
    let mut missing = Vec::new();
    for file in &set.file {
        for service in &file.service {
            let name = format!("{}.{}", file.package(), service.name());
            if !served.contains(&name.as_str()) {
                continue;
            }
            for m in &service.method {
                let path = format!("/{name}/{}", m.name());
                if rules::rule_for(&path).is_none() {
                    missing.push(path);
                }
            }
        }
    }
    missing
}

impl<S> tower::Layer<S> for AuthorizeLayer {
    type Service = Authorize<S>;
    fn layer(&self, inner: S) -> Self::Service {
        Authorize {
            inner,
            reviewer: self.reviewer.clone(),
        }
    }
}

#[derive(Clone)]
pub struct Authorize<S> {
    inner: S,
    reviewer: Option<Arc<Reviewer>>,
}

impl<S> tower::Service<http::Request<Body>> for Authorize<S>
where
    S: tower::Service<http::Request<Body>, Response = http::Response<Body>>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = BoxFuture<'static, Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: http::Request<Body>) -> Self::Future {
        let Some(reviewer) = self.reviewer.clone() else {
            return Box::pin(self.inner.call(req));
        };
        // The clone is not ready; the ready service takes this call (tower's convention).
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        Box::pin(async move {
            match check(&reviewer, req).await {
                Ok(req) => inner.call(req).await,
                Err(e) => Ok(e.into_status().into_http()),
            }
        })
    }
}

fn bearer(req: &http::Request<Body>) -> Option<&str> {
    req.headers()
        .get(http::header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")
        .map(str::trim)
        .filter(|t| !t.is_empty())
}

fn review_failed(e: ReviewError) -> ApiError {
    match e {
        ReviewError::Forbidden(m) => {
            ApiError::new(Code::PermissionDenied, reason::KUBERNETES_FORBIDDEN, m)
        }
        ReviewError::Unavailable(m) => {
            ApiError::unavailable(reason::KUBERNETES_UNAVAILABLE, m, RETRY_SOON)
        }
    }
}

/// Authenticates and authorizes one call; the request comes back with its body intact.
async fn check(
    reviewer: &Reviewer,
    req: http::Request<Body>,
) -> Result<http::Request<Body>, ApiError> {
    let path = req.uri().path().to_string();
    if OPEN_PREFIXES.iter().any(|p| path.starts_with(p)) {
        return Ok(req);
    }
    let token = bearer(&req).ok_or_else(|| {
        ApiError::new(
            Code::Unauthenticated,
            reason::TOKEN_INVALID,
            "missing bearer token: send your Kubernetes token as `authorization: Bearer <token>`",
        )
    })?;
    let caller = reviewer
        .authenticate(token)
        .await
        .map_err(review_failed)?
        .ok_or_else(|| {
            ApiError::new(
                Code::Unauthenticated,
                reason::TOKEN_INVALID,
                "the bearer token is not valid: Kubernetes did not authenticate it (TokenReview)",
            )
        })?;
    if AUTHENTICATED_PREFIXES.iter().any(|p| path.starts_with(p)) {
        return Ok(req);
    }
    let rule = rules::rule_for(&path).ok_or_else(|| {
        ApiError::new(
            Code::PermissionDenied,
            reason::PERMISSION_MISSING,
            format!("{path} has no authorization rule, so nobody may call it"),
        )
    })?;
    let (parts, body) = req.into_parts();
    let bytes: Bytes = http_body_util::Limited::new(body, MAX_REQUEST)
        .collect()
        .await
        .map_err(|e| {
            ApiError::new(
                Code::InvalidArgument,
                reason::REQUEST_INVALID,
                format!("reading the request: {e}"),
            )
        })?
        .to_bytes();
    let permission = permission(rule, &bytes).map_err(|e| {
        ApiError::new(
            Code::InvalidArgument,
            reason::REQUEST_INVALID,
            e.to_string(),
        )
    })?;
    if !reviewer
        .allowed(&caller, &permission)
        .await
        .map_err(review_failed)?
    {
        return Err(denied(&caller, &permission));
    }
    Ok(http::Request::from_parts(
        parts,
        Body::new(http_body_util::Full::new(bytes)),
    ))
}

/// The permission a call needs, with the namespace and name its request names.
fn permission(rule: &Rule, body: &[u8]) -> Result<Permission, wire::WireError> {
    let msg = wire::single_message(body)?;
    let namespace = match rule.scope {
        Scope::Field(path) => wire::string_at(msg, path)?,
        Scope::Cluster => String::new(),
    };
    let name = match rule.name {
        Some(path) => wire::string_at(msg, path)?,
        None => String::new(),
    };
    Ok(Permission {
        verb: rule.verb,
        group: GROUP,
        resource: rule.resource,
        subresource: rule.subresource,
        namespace,
        name,
    })
}

/// PERMISSION_DENIED naming what is missing, and where to grant it.
fn denied(caller: &Caller, p: &Permission) -> ApiError {
    let resource = if p.subresource.is_empty() {
        p.resource.to_string()
    } else {
        format!("{}/{}", p.resource, p.subresource)
    };
    let object = if p.name.is_empty() {
        String::new()
    } else {
        format!(" {:?}", p.name)
    };
    let (scope, grant) = if p.namespace.is_empty() {
        (
            "cluster-wide".to_string(),
            "a ClusterRole bound with a ClusterRoleBinding".to_string(),
        )
    } else {
        (
            format!("in namespace {:?}", p.namespace),
            format!("a Role or ClusterRole bound in namespace {:?}", p.namespace),
        )
    };
    ApiError::new(
        Code::PermissionDenied,
        reason::PERMISSION_MISSING,
        format!(
            "{} may not {} {resource}.{}{object} {scope}: grant verb {:?} on resource {resource:?} in API group {:?} with {grant}",
            caller.username, p.verb, p.group, p.verb, p.group
        ),
    )
    .meta("user", caller.username.clone())
    .meta("verb", p.verb)
    .meta("group", p.group)
    .meta("resource", resource)
    .meta("namespace", p.namespace.clone())
    .meta("name", p.name.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_public_method_has_a_rule_and_the_gateway_has_none() {
        let public = [
            "midplane.app.v1.AppService",
            "midplane.group.v1.GroupService",
            "midplane.plugin.v1.PluginRegistry",
            "midplane.backup.v1.BackupService",
        ];
        assert_eq!(methods_without_rules(&public), Vec::<String>::new());
        let gateway = methods_without_rules(&["midplane.gateway.v1.AgentGateway"]);
        assert!(
            gateway.contains(&"/midplane.gateway.v1.AgentGateway/Switchover".to_string()),
            "{gateway:?}"
        );
        for r in rules::RULES {
            assert!(r.method.starts_with('/'), "{}", r.method);
        }
    }

    #[test]
    fn a_refusal_names_the_missing_permission() {
        let caller = Caller {
            username: "system:serviceaccount:callers:alice".into(),
            uid: String::new(),
            groups: Vec::new(),
            extra: Default::default(),
        };
        let p = Permission {
            verb: "patch",
            group: GROUP,
            resource: "apps",
            subresource: "",
            namespace: "b".into(),
            name: "cache".into(),
        };
        let e = denied(&caller, &p);
        assert_eq!(e.code(), Code::PermissionDenied);
        assert_eq!(e.reason(), "PERMISSION_MISSING");
        assert_eq!(
            e.message(),
            "system:serviceaccount:callers:alice may not patch apps.midplane.dev \"cache\" in namespace \"b\": grant verb \"patch\" on resource \"apps\" in API group \"midplane.dev\" with a Role or ClusterRole bound in namespace \"b\""
        );
    }
}
