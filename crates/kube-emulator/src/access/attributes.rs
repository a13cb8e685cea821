//! What a request asks to do, in the terms RBAC decides on: kube-apiserver's
//! `RequestInfo` (verb, API group, resource, subresource, namespace, name) for resource
//! paths, the path itself for everything else.

use std::collections::HashMap;

use axum::http::Method;

/// The authorization attributes of one request.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Attributes {
    pub verb: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub group: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub resource: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub subresource: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub namespace: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    /// Set for a non-resource request (`/version`, `/apis`, ...), empty otherwise.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub path: String,
}

impl Attributes {
    pub fn is_resource(&self) -> bool {
        self.path.is_empty()
    }

    /// `resource` or `resource/subresource`, as RBAC rules name it.
    pub fn resource_path(&self) -> String {
        if self.subresource.is_empty() {
            self.resource.clone()
        } else {
            format!("{}/{}", self.resource, self.subresource)
        }
    }

    /// The attributes of a request, as kube-apiserver's request-info resolver reads them.
    pub fn of_request(method: &Method, path: &str, query: &HashMap<String, String>) -> Self {
        let segs: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
        let (group, rest) = match segs.as_slice() {
            ["api", _v, rest @ ..] if !rest.is_empty() => ("", rest),
            ["apis", g, _v, rest @ ..] if !rest.is_empty() => (*g, rest),
            _ => {
                return Self {
                    verb: method.as_str().to_lowercase().replace("head", "get"),
                    path: if path.is_empty() {
                        "/".into()
                    } else {
                        path.into()
                    },
                    ..Self::default()
                };
            }
        };
        let mut parts: Vec<&str> = rest.to_vec();
        let mut watch = query
            .get("watch")
            .is_some_and(|v| matches!(v.as_str(), "1" | "true" | "True"));
        // The deprecated `/watch/` prefix.
        if parts.first() == Some(&"watch") {
            watch = true;
            parts.remove(0);
        }
        let mut namespace = String::new();
        if parts.first() == Some(&"namespaces") && parts.len() > 1 {
            namespace = parts[1].to_string();
            if parts.len() > 2 && !matches!(parts[2], "status" | "finalize") {
                parts.drain(..2);
            }
        }
        let resource = parts.first().copied().unwrap_or_default().to_string();
        let name = parts.get(1).copied().unwrap_or_default().to_string();
        let subresource = parts.get(2).copied().unwrap_or_default().to_string();
        // As upstream, a request for a Namespace object (`/api/v1/namespaces/x`) carries
        // namespace `x` too, so a RoleBinding in `x` can grant access to it.
        let verb = match *method {
            Method::POST => "create",
            Method::PUT => "update",
            Method::PATCH => "patch",
            Method::DELETE if name.is_empty() => "deletecollection",
            Method::DELETE => "delete",
            _ if watch => "watch",
            _ if name.is_empty() => "list",
            _ => "get",
        };
        Self {
            verb: verb.into(),
            group: group.into(),
            resource,
            subresource,
            namespace,
            name,
            path: String::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn of(method: Method, path: &str, query: &[(&str, &str)]) -> Attributes {
        let q = query
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Attributes::of_request(&method, path, &q)
    }

    #[test]
    fn resource_requests_as_the_apiserver_reads_them() {
        let a = of(Method::GET, "/apis/apps/v1/namespaces/ns/deployments", &[]);
        assert_eq!(
            (a.verb.as_str(), a.group.as_str(), a.resource.as_str()),
            ("list", "apps", "deployments")
        );
        assert_eq!(a.namespace, "ns");
        let a = of(
            Method::GET,
            "/apis/apps/v1/namespaces/ns/deployments",
            &[("watch", "1")],
        );
        assert_eq!(a.verb, "watch");
        let a = of(
            Method::PATCH,
            "/apis/midplane.dev/v1alpha1/namespaces/a/apps/x/status",
            &[],
        );
        assert_eq!(
            (a.verb.as_str(), a.resource_path(), a.name.as_str()),
            ("patch", "apps/status".to_string(), "x")
        );
        let a = of(Method::GET, "/api/v1/pods", &[]);
        assert_eq!((a.verb.as_str(), a.namespace.as_str()), ("list", ""));
        let a = of(Method::DELETE, "/api/v1/namespaces/ns", &[]);
        assert_eq!(
            (
                a.verb.as_str(),
                a.resource.as_str(),
                a.name.as_str(),
                a.namespace.as_str()
            ),
            ("delete", "namespaces", "ns", "ns")
        );
        let a = of(
            Method::POST,
            "/api/v1/namespaces/ns/serviceaccounts/sa/token",
            &[],
        );
        assert_eq!(a.resource_path(), "serviceaccounts/token");
        assert_eq!(a.verb, "create");
        let a = of(Method::DELETE, "/api/v1/namespaces/ns/configmaps", &[]);
        assert_eq!(a.verb, "deletecollection");
    }

    #[test]
    fn other_paths_are_non_resource_requests() {
        let a = of(Method::GET, "/apis", &[]);
        assert!(!a.is_resource());
        assert_eq!((a.verb.as_str(), a.path.as_str()), ("get", "/apis"));
        let a = of(Method::GET, "/version", &[]);
        assert_eq!(a.path, "/version");
    }
}
