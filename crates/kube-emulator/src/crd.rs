//! CustomResourceDefinition objects → the kinds they define, with the apiserver's checks, and
//! the status the apiextensions controller reports once a CRD is served.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use crate::error::{ApiError, ApiResult, Cause};
use crate::registry::{PrinterColumn, ResourceType};

fn cause(field: &str, message: &str) -> Cause {
    Cause {
        reason: "FieldValueRequired".into(),
        field: field.into(),
        message: message.into(),
    }
}

/// Turn a CustomResourceDefinition object into the kind it defines, validating what the
/// apiserver validates (names, scope, at least one served + exactly one storage version).
pub fn from_crd(crd: &Value) -> ApiResult<ResourceType> {
    let name = crd["metadata"]["name"].as_str().unwrap_or_default();
    let spec = &crd["spec"];
    let group = spec["group"].as_str().unwrap_or_default();
    let names = &spec["names"];
    let plural = names["plural"].as_str().unwrap_or_default();
    let kind = names["kind"].as_str().unwrap_or_default();
    let mut causes = Vec::new();
    if group.is_empty() {
        causes.push(cause("spec.group", "Required value"));
    }
    if plural.is_empty() {
        causes.push(cause("spec.names.plural", "Required value"));
    }
    if kind.is_empty() {
        causes.push(cause("spec.names.kind", "Required value"));
    }
    if !plural.is_empty() && !group.is_empty() && name != format!("{plural}.{group}") {
        causes.push(cause(
            "metadata.name",
            &format!("Invalid value: \"{name}\": must be spec.names.plural+\".\"+spec.group"),
        ));
    }
    let scope = spec["scope"].as_str().unwrap_or_default();
    if scope != "Namespaced" && scope != "Cluster" {
        causes.push(cause(
            "spec.scope",
            "Unsupported value: must be \"Namespaced\" or \"Cluster\"",
        ));
    }
    let mut versions = Vec::new();
    let mut schemas = BTreeMap::new();
    let mut status = false;
    let mut columns = Vec::new();
    let mut selectable = Vec::new();
    let mut storage = None;
    for v in spec["versions"].as_array().into_iter().flatten() {
        let vname = v["name"].as_str().unwrap_or_default().to_string();
        if v["storage"].as_bool() == Some(true) {
            if storage.is_some() {
                causes.push(cause(
                    "spec.versions",
                    "Invalid value: must have exactly one version marked as storage version",
                ));
            }
            storage = Some(vname.clone());
        }
        if v["served"].as_bool() != Some(true) {
            continue;
        }
        if v["subresources"]["status"].is_object() {
            status = true;
        }
        if let Some(schema) = v["schema"].get("openAPIV3Schema") {
            schemas.insert(vname.clone(), schema.clone());
        }
        if columns.is_empty() {
            for c in v["additionalPrinterColumns"]
                .as_array()
                .into_iter()
                .flatten()
            {
                columns.push(PrinterColumn {
                    name: c["name"].as_str().unwrap_or_default().into(),
                    type_: c["type"].as_str().unwrap_or("string").into(),
                    json_path: c["jsonPath"].as_str().unwrap_or_default().into(),
                    priority: c["priority"].as_i64().unwrap_or(0),
                });
            }
            for f in v["selectableFields"].as_array().into_iter().flatten() {
                if let Some(p) = f["jsonPath"].as_str() {
                    selectable.push(p.trim_start_matches('.').to_string());
                }
            }
        }
        versions.push(vname);
    }
    if versions.is_empty() {
        causes.push(cause(
            "spec.versions",
            "Invalid value: must have at least one served version",
        ));
    }
    let Some(storage) = storage else {
        causes.push(cause(
            "spec.versions",
            "Invalid value: must have exactly one version marked as storage version",
        ));
        return Err(ApiError::invalid(
            "apiextensions.k8s.io",
            "CustomResourceDefinition",
            name,
            causes,
        ));
    };
    if !causes.is_empty() {
        return Err(ApiError::invalid(
            "apiextensions.k8s.io",
            "CustomResourceDefinition",
            name,
            causes,
        ));
    }
    // Storage version first; the served order otherwise follows the CRD.
    versions.retain(|v| *v != storage);
    versions.insert(0, storage);
    let strings = |v: &Value| -> Vec<String> {
        v.as_array()
            .into_iter()
            .flatten()
            .filter_map(|s| s.as_str().map(String::from))
            .collect()
    };
    Ok(ResourceType {
        group: group.into(),
        versions,
        kind: kind.into(),
        plural: plural.into(),
        singular: names["singular"]
            .as_str()
            .map(String::from)
            .unwrap_or_else(|| kind.to_lowercase()),
        namespaced: scope == "Namespaced",
        status_subresource: status,
        short_names: strings(&names["shortNames"]),
        categories: strings(&names["categories"]),
        tracks_generation: true,
        custom: true,
        schemas,
        printer_columns: columns,
        selectable_fields: selectable,
        storage: None,
    })
}

/// The status the apiextensions controller writes once a CRD is served.
pub fn crd_established_status(crd: &Value, now: &str) -> Value {
    let names = crd["spec"]["names"].clone();
    let versions: Vec<Value> = crd["spec"]["versions"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|v| v["storage"].as_bool() == Some(true))
        .map(|v| v["name"].clone())
        .collect();
    json!({
        "acceptedNames": names,
        "storedVersions": versions,
        "conditions": [
            {"type": "NamesAccepted", "status": "True", "reason": "NoConflicts",
             "message": "no conflicts found", "lastTransitionTime": now},
            {"type": "Established", "status": "True", "reason": "InitialNamesAccepted",
             "message": "the initial names have been accepted", "lastTransitionTime": now},
        ],
    })
}
