//! The RBAC authorizer: Roles, ClusterRoles, RoleBindings and ClusterRoleBindings from the
//! store, evaluated as kube-apiserver's RBAC authorizer does (rule matching on verbs, API
//! groups, resources with `*` and `*/sub` wildcards, resourceNames, nonResourceURLs), plus
//! the grants the bootstrap ClusterRoles `system:discovery`, `system:public-info-viewer`
//! and `system:basic-user` give every authenticated user.

use serde_json::Value;

use super::Identity;
use super::attributes::Attributes;
use crate::registry::GroupResource;
use crate::store::Inner;

const RBAC: &str = "rbac.authorization.k8s.io";

/// What the authorizer decided, and why (the binding that allowed it).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Decision {
    pub allowed: bool,
    pub reason: String,
}

/// Non-resource paths any authenticated user may GET (`system:discovery`,
/// `system:public-info-viewer`).
fn discovery_path(path: &str) -> bool {
    matches!(
        path,
        "/api" | "/apis" | "/version" | "/healthz" | "/livez" | "/readyz" | "/openapi/v2"
    ) || [
        "/api/",
        "/apis/",
        "/openapi/v3",
        "/healthz/",
        "/livez/",
        "/readyz/",
    ]
    .iter()
    .any(|p| path.starts_with(p))
}

/// The reviews every authenticated user may create about itself (`system:basic-user`).
fn basic_user(a: &Attributes) -> bool {
    a.verb == "create"
        && ((a.group == "authorization.k8s.io"
            && matches!(
                a.resource.as_str(),
                "selfsubjectaccessreviews" | "selfsubjectrulesreviews"
            ))
            || (a.group == "authentication.k8s.io" && a.resource == "selfsubjectreviews"))
}

fn strings(v: &Value) -> impl Iterator<Item = &str> {
    v.as_array().into_iter().flatten().filter_map(Value::as_str)
}

fn subject_matches(subject: &Value, binding_ns: &str, who: &Identity) -> bool {
    let name = subject["name"].as_str().unwrap_or_default();
    match subject["kind"].as_str().unwrap_or_default() {
        "ServiceAccount" => {
            let ns = subject["namespace"]
                .as_str()
                .filter(|n| !n.is_empty())
                .unwrap_or(binding_ns);
            who.username == format!("system:serviceaccount:{ns}:{name}")
        }
        "User" => who.username == name,
        "Group" => who.groups.iter().any(|g| g == name),
        _ => false,
    }
}

/// Does one PolicyRule allow the request?
pub fn rule_allows(rule: &Value, a: &Attributes) -> bool {
    if !strings(&rule["verbs"]).any(|v| v == "*" || v == a.verb) {
        return false;
    }
    if !a.is_resource() {
        return strings(&rule["nonResourceURLs"]).any(|u| {
            u == "*" || u == a.path || u.strip_suffix('*').is_some_and(|p| a.path.starts_with(p))
        });
    }
    if !strings(&rule["apiGroups"]).any(|g| g == "*" || g == a.group) {
        return false;
    }
    let combined = a.resource_path();
    let resource_ok = strings(&rule["resources"]).any(|r| {
        r == "*"
            || r == combined
            || (!a.subresource.is_empty()
                && r.strip_prefix("*/").is_some_and(|s| s == a.subresource))
    });
    if !resource_ok {
        return false;
    }
    let mut names = strings(&rule["resourceNames"]).peekable();
    names.peek().is_none() || names.any(|n| n == a.name)
}

fn objects<'a>(inner: &'a Inner, resource: &str) -> impl Iterator<Item = &'a Value> {
    inner
        .objects
        .get(&GroupResource::new(RBAC, resource))
        .into_iter()
        .flat_map(|m| m.values().map(std::convert::AsRef::as_ref))
}

/// The rules a binding's roleRef points at (none when the role does not exist, as upstream).
fn role_rules<'a>(inner: &'a Inner, binding_ns: &str, role_ref: &Value) -> Option<&'a Value> {
    let name = role_ref["name"].as_str().unwrap_or_default();
    let (resource, ns) = match role_ref["kind"].as_str().unwrap_or_default() {
        "ClusterRole" => ("clusterroles", ""),
        "Role" => ("roles", binding_ns),
        _ => return None,
    };
    inner
        .objects
        .get(&GroupResource::new(RBAC, resource))?
        .get(&(ns.to_string(), name.to_string()))
        .map(|r| &r["rules"])
}

/// Decide a request of `who` with the RBAC objects in the store.
pub fn authorize(inner: &Inner, who: &Identity, a: &Attributes) -> Decision {
    if (!a.is_resource() && a.verb == "get" && discovery_path(&a.path)) || basic_user(a) {
        return Decision {
            allowed: true,
            reason: "allowed to every authenticated user (bootstrap policy)".into(),
        };
    }
    let check = |binding: &Value, binding_ns: &str, what: &str| -> Option<String> {
        let subjects = binding["subjects"].as_array()?;
        if !subjects.iter().any(|s| subject_matches(s, binding_ns, who)) {
            return None;
        }
        let rules = role_rules(inner, binding_ns, &binding["roleRef"])?;
        rules
            .as_array()?
            .iter()
            .any(|r| rule_allows(r, a))
            .then(|| {
                let name = binding["metadata"]["name"].as_str().unwrap_or_default();
                let role = &binding["roleRef"];
                format!(
                    "RBAC: allowed by {what} \"{name}\" of {} \"{}\"",
                    role["kind"].as_str().unwrap_or_default(),
                    role["name"].as_str().unwrap_or_default()
                )
            })
    };
    for b in objects(inner, "clusterrolebindings") {
        if let Some(reason) = check(b, "", "ClusterRoleBinding") {
            return Decision {
                allowed: true,
                reason,
            };
        }
    }
    if !a.namespace.is_empty() {
        for b in objects(inner, "rolebindings")
            .filter(|b| b["metadata"]["namespace"].as_str() == Some(a.namespace.as_str()))
        {
            if let Some(reason) = check(b, &a.namespace, "RoleBinding") {
                return Decision {
                    allowed: true,
                    reason,
                };
            }
        }
    }
    Decision {
        allowed: false,
        reason: String::new(),
    }
}

/// kube-apiserver's message for a refused request.
pub fn forbidden_message(who: &Identity, a: &Attributes) -> String {
    if !a.is_resource() {
        return format!(
            "forbidden: User \"{}\" cannot {} path \"{}\"",
            who.username, a.verb, a.path
        );
    }
    let qualified = if a.group.is_empty() {
        a.resource.clone()
    } else {
        format!("{}.{}", a.resource, a.group)
    };
    let object = if a.name.is_empty() {
        qualified
    } else {
        format!("{qualified} \"{}\"", a.name)
    };
    let scope = if a.namespace.is_empty() {
        "at the cluster scope".to_string()
    } else {
        format!("in the namespace \"{}\"", a.namespace)
    };
    format!(
        "{object} is forbidden: User \"{}\" cannot {} resource \"{}\" in API group \"{}\" {scope}",
        who.username,
        a.verb,
        a.resource_path(),
        a.group
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn attrs(verb: &str, group: &str, resource: &str, sub: &str, name: &str) -> Attributes {
        Attributes {
            verb: verb.into(),
            group: group.into(),
            resource: resource.into(),
            subresource: sub.into(),
            namespace: "ns".into(),
            name: name.into(),
            path: String::new(),
        }
    }

    #[test]
    fn rules_match_as_upstream() {
        let rule =
            json!({"apiGroups": ["apps"], "resources": ["deployments"], "verbs": ["get", "list"]});
        assert!(rule_allows(
            &rule,
            &attrs("get", "apps", "deployments", "", "x")
        ));
        assert!(!rule_allows(
            &rule,
            &attrs("patch", "apps", "deployments", "", "x")
        ));
        assert!(!rule_allows(
            &rule,
            &attrs("get", "", "deployments", "", "x")
        ));
        assert!(
            !rule_allows(&rule, &attrs("get", "apps", "deployments", "status", "x")),
            "a subresource needs its own grant"
        );
        let sub = json!({"apiGroups": ["*"], "resources": ["*/status"], "verbs": ["*"]});
        assert!(rule_allows(
            &sub,
            &attrs("patch", "midplane.dev", "apps", "status", "x")
        ));
        assert!(!rule_allows(
            &sub,
            &attrs("patch", "midplane.dev", "apps", "", "x")
        ));
        let named = json!({"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get"], "resourceNames": ["a"]});
        assert!(rule_allows(
            &named,
            &attrs("get", "", "configmaps", "", "a")
        ));
        assert!(!rule_allows(
            &named,
            &attrs("get", "", "configmaps", "", "b")
        ));
        let urls = json!({"nonResourceURLs": ["/metrics", "/debug/*"], "verbs": ["get"]});
        let path = |p: &str| Attributes {
            verb: "get".into(),
            path: p.into(),
            ..Attributes::default()
        };
        assert!(rule_allows(&urls, &path("/metrics")));
        assert!(rule_allows(&urls, &path("/debug/pprof")));
        assert!(!rule_allows(&urls, &path("/other")));
    }

    #[test]
    fn forbidden_messages_read_like_the_apiservers() {
        let who = Identity {
            username: "system:serviceaccount:a:b".into(),
            uid: String::new(),
            groups: Vec::new(),
        };
        assert_eq!(
            forbidden_message(&who, &attrs("list", "apps", "deployments", "", "")),
            "deployments.apps is forbidden: User \"system:serviceaccount:a:b\" cannot list resource \"deployments\" in API group \"apps\" in the namespace \"ns\""
        );
        let mut a = attrs("get", "", "pods", "log", "p");
        a.namespace.clear();
        assert_eq!(
            forbidden_message(&who, &a),
            "pods \"p\" is forbidden: User \"system:serviceaccount:a:b\" cannot get resource \"pods/log\" in API group \"\" at the cluster scope"
        );
    }
}
