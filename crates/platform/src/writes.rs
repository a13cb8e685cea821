//! Counts the writes the platform's controllers send to the API server, by
//! field manager, resource and verb — what `--writes` figures in the scale
//! benchmark are made of. Counted on the client side, so the figure is ours
//! alone, whatever else writes to the API server.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

/// One kind of write: (field manager, `resource[/subresource]`, HTTP verb).
pub type WriteKey = (String, String, String);

#[derive(Clone, Default)]
pub struct WriteCounter(Arc<Mutex<BTreeMap<WriteKey, u64>>>);

impl WriteCounter {
    /// Counts `req` if it writes.
    pub fn observe<B>(&self, req: &http::Request<B>) {
        let method = req.method().as_str();
        if matches!(method, "GET" | "HEAD" | "OPTIONS") {
            return;
        }
        let manager = req
            .uri()
            .query()
            .unwrap_or_default()
            .split('&')
            .find_map(|kv| kv.strip_prefix("fieldManager="))
            .map(|m| m.replace("%2F", "/"))
            .unwrap_or_else(|| "-".into());
        let key = (manager, resource_of(req.uri().path()), method.to_string());
        *self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .entry(key)
            .or_default() += 1;
    }

    pub fn snapshot(&self) -> BTreeMap<WriteKey, u64> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    pub fn total(&self) -> u64 {
        self.snapshot().values().sum()
    }
}

/// `pods`, `pods/status`, `apps` … from an API path.
pub fn resource_of(path: &str) -> String {
    let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
    // /api/v1/... or /apis/group/version/...
    let rest = match parts.first() {
        Some(&"api") => parts.get(2..),
        Some(&"apis") => parts.get(3..),
        _ => None,
    }
    .unwrap_or_default();
    let rest = match rest {
        ["namespaces", _, tail @ ..] if !tail.is_empty() => tail,
        other => other,
    };
    match rest {
        [resource, _name, sub, ..] => format!("{resource}/{sub}"),
        [resource, ..] => (*resource).to_string(),
        [] => "namespaces".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_are_counted_by_manager_resource_and_verb() {
        let c = WriteCounter::default();
        let req = |m: &str, uri: &str| {
            http::Request::builder()
                .method(m)
                .uri(uri)
                .body(())
                .expect("request")
        };
        c.observe(&req("GET", "/api/v1/namespaces/ns/pods"));
        c.observe(&req(
            "PATCH",
            "/api/v1/namespaces/ns/pods/p?fieldManager=midplane%2Fgroup&force=true",
        ));
        c.observe(&req("PATCH", "/apis/midplane.dev/v1alpha1/namespaces/ns/groups/g/status?fieldManager=midplane%2Fgroup"));
        c.observe(&req("POST", "/apis/events.k8s.io/v1/namespaces/ns/events"));
        let s = c.snapshot();
        assert_eq!(c.total(), 3, "reads are not writes");
        assert_eq!(
            s[&("midplane/group".into(), "pods".into(), "PATCH".into())],
            1
        );
        assert_eq!(
            s[&(
                "midplane/group".into(),
                "groups/status".into(),
                "PATCH".into()
            )],
            1
        );
        assert_eq!(s[&("-".into(), "events".into(), "POST".into())], 1);
    }
}
