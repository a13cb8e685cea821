//! LIST: selectors and limit/continue paging.

use base64::Engine as _;
use serde_json::{Value, json};

use crate::error::{ApiError, ApiResult};
use crate::ops::{ListOpts, ListPage};
use crate::registry::ResourceType;
use crate::selector::{FieldSelector, LabelSelector};
use crate::store::Inner;

impl Inner {
    /// LIST with selectors and paging. Pages after the first are read from the current state
    /// (not a snapshot), labelled with the first page's resourceVersion.
    pub fn list(&self, rt: &ResourceType, ns: Option<&str>, lo: &ListOpts) -> ApiResult<ListPage> {
        let labels = LabelSelector::parse(lo.label_selector.as_deref().unwrap_or_default())?;
        let fields = FieldSelector::parse(
            &crate::events::storage_field_selector(
                rt,
                lo.field_selector.as_deref().unwrap_or_default(),
            ),
            &rt.selectable_fields,
        )?;
        let (list_rv, start) = match lo.continue_token.as_deref().filter(|t| !t.is_empty()) {
            Some(tok) => {
                let (rv, start, issued) = decode_continue(tok)?;
                let age = now_millis().saturating_sub(issued);
                if u128::from(age) > self.continue_ttl.as_millis() {
                    return Err(ApiError::gone(
                        "The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter.",
                    ));
                }
                (rv, Some(start))
            }
            None => (self.rv, None),
        };
        let mut items = Vec::new();
        let mut next = None;
        let mut remaining = 0usize;
        if let Some(coll) = self.collection(&rt.gr()) {
            let lower = match &start {
                Some((n, name)) => std::ops::Bound::Excluded((n.clone(), name.clone())),
                None => std::ops::Bound::Unbounded,
            };
            for ((ons, oname), obj) in coll.range((lower, std::ops::Bound::Unbounded)) {
                if let Some(ns) = ns
                    && ons != ns
                {
                    continue;
                }
                if !labels.matches(obj) || !fields.matches(obj) {
                    continue;
                }
                if next.is_some() {
                    remaining += 1;
                    continue;
                }
                items.push(obj.clone());
                if lo.limit.is_some_and(|l| l > 0 && items.len() >= l) {
                    next = Some(encode_continue(list_rv, ons, oname));
                }
            }
        }
        if remaining == 0 {
            next = None;
        }
        Ok(ListPage {
            items,
            resource_version: list_rv,
            continue_token: next,
            remaining: (remaining > 0).then_some(remaining),
        })
    }
}

fn now_millis() -> u64 {
    u64::try_from(chrono::Utc::now().timestamp_millis()).unwrap_or(0)
}

/// Tokens expire by age (the apiserver's expire at etcd compaction, every 5 minutes).
fn encode_continue(rv: u64, ns: &str, name: &str) -> String {
    let raw = json!({"v": "meta.k8s.io/v1", "rv": rv, "start": [ns, name], "t": now_millis()})
        .to_string();
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw)
}

fn decode_continue(tok: &str) -> ApiResult<(u64, (String, String), u64)> {
    let bad = || ApiError::bad_request(format!("continue key is not valid: {tok}"));
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(tok)
        .map_err(|_| bad())?;
    let v: Value = serde_json::from_slice(&raw).map_err(|_| bad())?;
    let rv = v["rv"].as_u64().ok_or_else(bad)?;
    let ns = v["start"][0].as_str().ok_or_else(bad)?.to_string();
    let name = v["start"][1].as_str().ok_or_else(bad)?.to_string();
    let issued = v["t"].as_u64().ok_or_else(bad)?;
    Ok((rv, (ns, name), issued))
}
