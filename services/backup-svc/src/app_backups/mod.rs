//! BackupService's calls on Backup resources (RequestAppBackup, GetAppBackup, ListAppBackups;
//! docs/backups.md, "From the gRPC API"). A request becomes the same Backup
//! `midplane backup create --app --component` creates (`Backup::requested`), resolved first
//! against its App by the controller's own pure step (`resources::plan::resolve`), so what is
//! accepted here is what the controller runs; backup-svc's own Kubernetes client creates it.

pub mod convert;

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use kube::api::{Api, ListParams, PostParams};
use kube::{Client, ResourceExt};
use midplane_api::backup::{self, phase};
use midplane_api::validate::dns_label;
use midplane_api::{App, Backup, BackupSpec};
use midplane_proto::backup::{
    AppBackup, GetAppBackupRequest, ListAppBackupsRequest, ListAppBackupsResponse,
    RequestAppBackupRequest,
};
use midplane_runtime::status::{ApiError, RETRY_SOON, from_kubernetes, reason, require_ref};
use tonic::Code;

use crate::config::BackupSettings;
use crate::resources::plan::{self, PlanError};

/// The field manager of the Backups this API creates.
pub const FIELD_MANAGER: &str = "midplane-backup-api";
/// How often a waiting RequestAppBackup reads its Backup again.
const POLL: Duration = Duration::from_millis(500);
/// A generated name that is taken gets `-2` … up to this suffix.
const NAME_ATTEMPTS: u32 = 5;

/// The Backup resources of App components, through backup-svc's Kubernetes client.
pub struct AppBackups {
    client: Client,
    settings: Arc<BackupSettings>,
}

fn kube_error(e: kube::Error, kind: &str, name: &str, not_found: &'static str) -> ApiError {
    match e {
        kube::Error::Api(s) => {
            from_kubernetes(s.code, &s.reason, &s.message, kind, name, not_found)
        }
        other => ApiError::unavailable(
            reason::KUBERNETES_UNAVAILABLE,
            format!("Kubernetes API: {other}"),
            RETRY_SOON,
        ),
    }
}

/// RFC 1123 subdomain (a Backup or Secret name).
fn dns_subdomain(s: &str) -> Result<(), String> {
    let ok = !s.is_empty() && s.len() <= 253 && s.split('.').all(|part| dns_label(part).is_ok());
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{s:?} must be a DNS subdomain: lower-case letters, digits, '-' and '.', starting and ending with a letter or digit, at most 253 characters"
        ))
    }
}

/// INVALID_ARGUMENT REQUEST_INVALID with a field violation per (field, problem); None when
/// there is none.
fn request_invalid(bad: Vec<(&str, String)>) -> Option<tonic::Status> {
    if bad.is_empty() {
        return None;
    }
    let summary: Vec<String> = bad.iter().map(|(f, m)| format!("{f}: {m}")).collect();
    let err = ApiError::new(
        Code::InvalidArgument,
        reason::REQUEST_INVALID,
        summary.join("; "),
    );
    Some(
        bad.into_iter()
            .fold(err, |e, (field, message)| e.field(field, message))
            .into(),
    )
}

/// The request's field for a field of the Backup's spec the controller's resolve names.
fn request_field(spec_field: &str) -> &'static str {
    match spec_field {
        "spec.group" => "group",
        "spec.instance" => "instance",
        "spec.storage" => "storage",
        "spec.encryption" => "encryption",
        "spec.keySecret" => "key_secret",
        "spec.app" => "app",
        _ => "component",
    }
}

/// The Backup a request asks for (named `name`), or INVALID_ARGUMENT REQUEST_INVALID with a
/// field violation per bad field.
fn requested(req: &RequestAppBackupRequest, name: &str) -> Result<Backup, tonic::Status> {
    let mut bad: Vec<(&str, String)> = Vec::new();
    for (field, value, required) in [
        ("namespace", &req.namespace, true),
        ("app", &req.app, true),
        ("component", &req.component, true),
        ("group", &req.group, false),
        ("instance", &req.instance, false),
    ] {
        if value.is_empty() {
            if required {
                bad.push((field, "is required".into()));
            }
        } else if let Err(e) = dns_label(value) {
            bad.push((field, e));
        }
    }
    for (field, value) in [("name", &req.name), ("key_secret", &req.key_secret)] {
        if !value.is_empty()
            && let Err(e) = dns_subdomain(value)
        {
            bad.push((field, e));
        }
    }
    let encryption = convert::encryption_name(req.encryption).unwrap_or_else(|e| {
        bad.push(("encryption", e));
        None
    });
    if let Some(err) = request_invalid(bad) {
        return Err(err);
    }
    Ok(Backup::requested(
        &req.namespace,
        name,
        BackupSpec {
            app: req.app.clone(),
            component: req.component.clone(),
            group: req.group.clone(),
            instance: req.instance.clone(),
            storage: req.storage.clone(),
            encryption,
            key_secret: Some(req.key_secret.clone()).filter(|s| !s.is_empty()),
        },
        backup::trigger::API,
    ))
}

/// The error of a request the controller's resolve refuses.
fn refused(e: PlanError, b: &Backup) -> ApiError {
    let ns = b.namespace().unwrap_or_default();
    match e.field.as_str() {
        "spec.component" => ApiError::new(Code::NotFound, reason::COMPONENT_NOT_FOUND, &e.message)
            .resource(
                "Component",
                &format!(
                    "{ns}/{}",
                    midplane_api::expand::component_name(&b.spec.app, &b.spec.component)
                ),
            ),
        "spec.app" => ApiError::not_found(
            reason::APP_NOT_FOUND,
            "App",
            &format!("{ns}/{}", b.spec.app),
        ),
        f => {
            let field = request_field(f);
            let reason = if field == "storage" {
                reason::STORAGE_INVALID
            } else {
                reason::REQUEST_INVALID
            };
            ApiError::new(
                Code::InvalidArgument,
                reason,
                format!("{field}: {}", e.message),
            )
            .field(field, e.message)
        }
    }
}

fn is_final(b: &Backup) -> bool {
    b.status
        .as_ref()
        .is_some_and(|s| s.phase == phase::COMPLETED || s.phase == phase::FAILED)
}

impl AppBackups {
    pub fn new(client: Client, settings: Arc<BackupSettings>) -> Self {
        Self { client, settings }
    }

    /// RequestAppBackup: checks, creates and (with `wait`) follows the Backup until it is
    /// final or `until` passes.
    pub async fn request(
        &self,
        req: RequestAppBackupRequest,
        until: Option<Instant>,
    ) -> Result<AppBackup, tonic::Status> {
        let explicit = !req.name.is_empty();
        let base = if explicit {
            req.name.clone()
        } else {
            backup::requested_name(&req.app, &req.component, SystemTime::now())
        };
        let first = requested(&req, &base)?;
        let ns = req.namespace.as_str();
        let app = Api::<App>::namespaced(self.client.clone(), ns)
            .get_opt(&req.app)
            .await
            .map_err(|e| {
                kube_error(
                    e,
                    "App",
                    &format!("{ns}/{}", req.app),
                    reason::APP_NOT_FOUND,
                )
            })?
            .ok_or_else(|| {
                ApiError::not_found(reason::APP_NOT_FOUND, "App", &format!("{ns}/{}", req.app))
            })?;
        plan::resolve(&first, Some(&app), &self.settings).map_err(|e| refused(e, &first))?;
        let api: Api<Backup> = Api::namespaced(self.client.clone(), ns);
        let params = PostParams {
            field_manager: Some(FIELD_MANAGER.into()),
            ..Default::default()
        };
        let mut attempt = 1;
        let mut created = loop {
            let name = match attempt {
                1 => base.clone(),
                n => format!("{base}-{n}"),
            };
            let mut b = first.clone();
            b.metadata.name = Some(name.clone());
            match api.create(&params, &b).await {
                Ok(b) => break b,
                Err(kube::Error::Api(s))
                    if s.code == 409 && !explicit && attempt < NAME_ATTEMPTS =>
                {
                    attempt += 1;
                }
                Err(e) => {
                    return Err(kube_error(
                        e,
                        "Backup",
                        &format!("{ns}/{name}"),
                        reason::BACKUP_NOT_FOUND,
                    )
                    .into());
                }
            }
        };
        let name = created.name_any();
        tracing::info!(namespace = %ns, backup = %name, app = %req.app, component = %req.component, "Backup requested over gRPC");
        while req.wait && !is_final(&created) {
            let nap = match until {
                Some(t) => match t.checked_duration_since(Instant::now()) {
                    Some(left) if !left.is_zero() => left.min(POLL),
                    _ => break,
                },
                None => POLL,
            };
            tokio::time::sleep(nap).await;
            created = api.get(&name).await.map_err(|e| {
                kube_error(
                    e,
                    "Backup",
                    &format!("{ns}/{name}"),
                    reason::BACKUP_NOT_FOUND,
                )
            })?;
        }
        Ok(convert::app_backup(&created))
    }

    /// GetAppBackup.
    pub async fn get(&self, req: GetAppBackupRequest) -> Result<AppBackup, tonic::Status> {
        let (ns, name) = require_ref(req.r#ref)?;
        let b = Api::<Backup>::namespaced(self.client.clone(), &ns)
            .get(&name)
            .await
            .map_err(|e| {
                kube_error(
                    e,
                    "Backup",
                    &format!("{ns}/{name}"),
                    reason::BACKUP_NOT_FOUND,
                )
            })?;
        Ok(convert::app_backup(&b))
    }

    /// ListAppBackups: filtered by spec (a Backup created with kubectl has no labels),
    /// oldest first.
    pub async fn list(
        &self,
        req: ListAppBackupsRequest,
    ) -> Result<ListAppBackupsResponse, tonic::Status> {
        let bad: Vec<(&str, String)> = [
            ("namespace", &req.namespace),
            ("app", &req.app),
            ("component", &req.component),
        ]
        .into_iter()
        .filter(|(_, v)| !v.is_empty())
        .filter_map(|(f, v)| dns_label(v).err().map(|e| (f, e)))
        .collect();
        if let Some(err) = request_invalid(bad) {
            return Err(err);
        }
        let api: Api<Backup> = if req.namespace.is_empty() {
            Api::all(self.client.clone())
        } else {
            Api::namespaced(self.client.clone(), &req.namespace)
        };
        let mut items = api
            .list(&ListParams::default())
            .await
            .map_err(|e| kube_error(e, "Backup", &req.namespace, reason::BACKUP_NOT_FOUND))?
            .items;
        items.retain(|b| {
            (req.app.is_empty() || b.spec.app == req.app)
                && (req.component.is_empty() || b.spec.component == req.component)
        });
        items.sort_by(|a, b| {
            let at = |x: &Backup| x.metadata.creation_timestamp.as_ref().map(|t| t.0);
            at(a)
                .cmp(&at(b))
                .then_with(|| a.name_any().cmp(&b.name_any()))
        });
        Ok(ListAppBackupsResponse {
            backups: items.iter().map(convert::app_backup).collect(),
        })
    }
}
