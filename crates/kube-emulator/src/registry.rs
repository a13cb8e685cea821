//! The kinds the emulator serves: the built-ins the platform uses plus every registered CRD.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::Value;

/// A resource identity independent of version: objects of all served versions share storage.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct GroupResource {
    pub group: String,
    pub resource: String,
}

impl GroupResource {
    pub fn new(group: &str, resource: &str) -> Self {
        Self {
            group: group.into(),
            resource: resource.into(),
        }
    }
}

/// One printer column of a CRD (`additionalPrinterColumns`).
#[derive(Clone, Debug)]
pub struct PrinterColumn {
    pub name: String,
    pub type_: String,
    pub json_path: String,
    pub priority: i64,
}

/// Everything the server needs to know about one kind.
#[derive(Clone, Debug)]
pub struct ResourceType {
    pub group: String,
    /// Served versions, the storage version first.
    pub versions: Vec<String>,
    pub kind: String,
    pub plural: String,
    pub singular: String,
    pub namespaced: bool,
    pub status_subresource: bool,
    pub short_names: Vec<String>,
    pub categories: Vec<String>,
    /// Whether `metadata.generation` is maintained (CRs, Deployments, CRDs).
    pub tracks_generation: bool,
    /// A CRD-defined kind (schemas, pruning, no strategic merge patch).
    pub custom: bool,
    /// openAPIV3Schema per version, for CRDs.
    pub schemas: BTreeMap<String, Value>,
    pub printer_columns: Vec<PrinterColumn>,
    /// Extra field-selector labels a kind supports beyond metadata.name/namespace.
    pub selectable_fields: Vec<String>,
    /// Another resource whose storage this one views (events.k8s.io Events are core Events).
    pub storage: Option<GroupResource>,
}

impl ResourceType {
    /// Where the objects live (the viewed resource for an alias such as events.k8s.io).
    pub fn gr(&self) -> GroupResource {
        match &self.storage {
            Some(s) => s.clone(),
            None => GroupResource::new(&self.group, &self.plural),
        }
    }

    /// The apiVersion objects are stored at.
    pub fn storage_api_version(&self) -> String {
        match &self.storage {
            Some(s) if s.group.is_empty() => "v1".into(),
            Some(s) => format!("{}/v1", s.group),
            None => self.api_version(self.storage_version()),
        }
    }

    pub fn storage_version(&self) -> &str {
        self.versions.first().map(String::as_str).unwrap_or("v1")
    }

    pub fn api_version(&self, version: &str) -> String {
        if self.group.is_empty() {
            version.to_string()
        } else {
            format!("{}/{version}", self.group)
        }
    }

    pub fn serves(&self, version: &str) -> bool {
        self.versions.iter().any(|v| v == version)
    }
}

#[allow(clippy::too_many_arguments)]
fn builtin(
    group: &str,
    version: &str,
    kind: &str,
    plural: &str,
    namespaced: bool,
    status: bool,
    short: &[&str],
    generation: bool,
    fields: &[&str],
) -> ResourceType {
    ResourceType {
        group: group.into(),
        versions: vec![version.into()],
        kind: kind.into(),
        plural: plural.into(),
        singular: kind.to_lowercase(),
        namespaced,
        status_subresource: status,
        short_names: short.iter().map(std::string::ToString::to_string).collect(),
        categories: Vec::new(),
        tracks_generation: generation,
        custom: false,
        schemas: BTreeMap::new(),
        printer_columns: Vec::new(),
        selectable_fields: fields
            .iter()
            .map(std::string::ToString::to_string)
            .collect(),
        storage: None,
    }
}

/// The built-in kinds the platform's controllers and kubectl use.
pub fn builtins() -> Vec<ResourceType> {
    let mut all = builtin_list();
    for t in &mut all {
        // `kubectl get all` expands the "all" category.
        if matches!(
            t.kind.as_str(),
            "Pod" | "Service" | "Deployment" | "ReplicaSet" | "Job"
        ) {
            t.categories.push("all".into());
        }
        if t.group == "events.k8s.io" {
            t.storage = Some(GroupResource::new("", "events"));
        }
    }
    all
}

fn builtin_list() -> Vec<ResourceType> {
    let ev_fields = [
        "involvedObject.kind",
        "involvedObject.namespace",
        "involvedObject.name",
        "involvedObject.uid",
        "involvedObject.apiVersion",
        "involvedObject.resourceVersion",
        "involvedObject.fieldPath",
        "reason",
        "type",
    ];
    let pod_fields = [
        "spec.nodeName",
        "spec.restartPolicy",
        "spec.schedulerName",
        "spec.serviceAccountName",
        "status.phase",
        "status.podIP",
    ];
    vec![
        builtin(
            "",
            "v1",
            "Namespace",
            "namespaces",
            false,
            true,
            &["ns"],
            false,
            &["status.phase"],
        ),
        builtin(
            "",
            "v1",
            "ConfigMap",
            "configmaps",
            true,
            false,
            &["cm"],
            false,
            &[],
        ),
        builtin(
            "",
            "v1",
            "Secret",
            "secrets",
            true,
            false,
            &[],
            false,
            &["type"],
        ),
        builtin(
            "",
            "v1",
            "Service",
            "services",
            true,
            true,
            &["svc"],
            false,
            &[],
        ),
        builtin(
            "",
            "v1",
            "Pod",
            "pods",
            true,
            true,
            &["po"],
            false,
            &pod_fields,
        ),
        builtin(
            "",
            "v1",
            "PersistentVolumeClaim",
            "persistentvolumeclaims",
            true,
            true,
            &["pvc"],
            false,
            &[],
        ),
        builtin(
            "",
            "v1",
            "Event",
            "events",
            true,
            false,
            &["ev"],
            false,
            &ev_fields,
        ),
        builtin(
            "",
            "v1",
            "Endpoints",
            "endpoints",
            true,
            false,
            &["ep"],
            false,
            &[],
        ),
        builtin(
            "",
            "v1",
            "ServiceAccount",
            "serviceaccounts",
            true,
            false,
            &["sa"],
            false,
            &[],
        ),
        builtin(
            "apps",
            "v1",
            "Deployment",
            "deployments",
            true,
            true,
            &["deploy"],
            true,
            &[],
        ),
        builtin(
            "apps",
            "v1",
            "ReplicaSet",
            "replicasets",
            true,
            true,
            &["rs"],
            true,
            &[],
        ),
        builtin("batch", "v1", "Job", "jobs", true, true, &[], true, &[]),
        builtin(
            "discovery.k8s.io",
            "v1",
            "EndpointSlice",
            "endpointslices",
            true,
            false,
            &[],
            false,
            &[],
        ),
        builtin(
            "coordination.k8s.io",
            "v1",
            "Lease",
            "leases",
            true,
            false,
            &[],
            false,
            &[],
        ),
        builtin(
            "events.k8s.io",
            "v1",
            "Event",
            "events",
            true,
            false,
            &["ev"],
            false,
            &ev_fields,
        ),
        builtin(
            "rbac.authorization.k8s.io",
            "v1",
            "Role",
            "roles",
            true,
            false,
            &[],
            false,
            &[],
        ),
        builtin(
            "rbac.authorization.k8s.io",
            "v1",
            "ClusterRole",
            "clusterroles",
            false,
            false,
            &[],
            false,
            &[],
        ),
        builtin(
            "rbac.authorization.k8s.io",
            "v1",
            "RoleBinding",
            "rolebindings",
            true,
            false,
            &[],
            false,
            &[],
        ),
        builtin(
            "rbac.authorization.k8s.io",
            "v1",
            "ClusterRoleBinding",
            "clusterrolebindings",
            false,
            false,
            &[],
            false,
            &[],
        ),
        builtin(
            "policy",
            "v1",
            "PodDisruptionBudget",
            "poddisruptionbudgets",
            true,
            true,
            &["pdb"],
            true,
            &[],
        ),
        builtin(
            "networking.k8s.io",
            "v1",
            "NetworkPolicy",
            "networkpolicies",
            true,
            false,
            &["netpol"],
            true,
            &[],
        ),
        builtin(
            "apiextensions.k8s.io",
            "v1",
            "CustomResourceDefinition",
            "customresourcedefinitions",
            false,
            true,
            &["crd", "crds"],
            true,
            &[],
        ),
    ]
}

/// The registry of served kinds, indexed both by group/resource and by group/version.
#[derive(Clone, Default)]
pub struct Registry {
    types: BTreeMap<GroupResource, Arc<ResourceType>>,
}

impl Registry {
    pub fn with_builtins() -> Self {
        let mut r = Self::default();
        for t in builtins() {
            r.insert(t);
        }
        r
    }

    pub fn insert(&mut self, t: ResourceType) {
        self.types
            .insert(GroupResource::new(&t.group, &t.plural), Arc::new(t));
    }

    pub fn remove(&mut self, gr: &GroupResource) {
        self.types.remove(gr);
    }

    pub fn get(&self, gr: &GroupResource) -> Option<Arc<ResourceType>> {
        self.types.get(gr).cloned()
    }

    /// Look a kind up as an HTTP path names it: group, version and plural.
    pub fn lookup(&self, group: &str, version: &str, plural: &str) -> Option<Arc<ResourceType>> {
        self.types
            .get(&GroupResource::new(group, plural))
            .filter(|t| t.serves(version))
            .cloned()
    }

    pub fn all(&self) -> impl Iterator<Item = &Arc<ResourceType>> {
        self.types.values()
    }

    /// group → versions (preferred first), with "" for the legacy core group.
    pub fn groups(&self) -> BTreeMap<String, Vec<String>> {
        let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for t in self.types.values() {
            let e = out.entry(t.group.clone()).or_default();
            for v in &t.versions {
                if !e.contains(v) {
                    e.push(v.clone());
                }
            }
        }
        out
    }
}
