//! AppService: Apps over gRPC for integrations that do not speak Kubernetes.
//! Every call maps onto the App custom resource; validation is the same the
//! controller runs, so a bad App is refused before it is stored.

mod convert;

use crate::Context;
use futures::{StreamExt, TryStreamExt};
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, WatchEvent, WatchParams};
use kube::{Resource, ResourceExt};
use midplane_api::App;
use midplane_proto::app as pb;
use midplane_proto::app::app_service_server::AppService;
use midplane_runtime::status::{ApiError, app_invalid, from_kubernetes, reason, require_ref};
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;
use tonic::{Code, Request, Response, Status};

/// The field manager for Apps written through this API.
pub const FIELD_MANAGER: &str = "midplane-app-api";

pub struct AppApi {
    ctx: Arc<Context>,
}

impl AppApi {
    pub fn new(ctx: Arc<Context>) -> Self {
        Self { ctx }
    }

    fn api(&self, namespace: &str) -> Api<App> {
        if namespace.is_empty() {
            Api::all(self.ctx.client.clone())
        } else {
            Api::namespaced(self.ctx.client.clone(), namespace)
        }
    }
}

/// A failed Kubernetes call about the App `name` (`<namespace>/<name>`, or a
/// description for lists and watches), by the API conventions.
fn kube_status(e: kube::Error, name: &str, selector_field: Option<&str>) -> Status {
    match &e {
        kube::Error::Api(s) if s.code == 410 => ApiError::new(
            Code::Aborted,
            reason::RESOURCE_VERSION_EXPIRED,
            format!(
                "{}; start again without a resource version or continue token",
                s.message
            ),
        )
        .into_status(),
        kube::Error::Api(s) if s.code == 400 && selector_field.is_some() => {
            let field = selector_field.unwrap_or_default();
            ApiError::new(Code::InvalidArgument, reason::REQUEST_INVALID, &s.message)
                .field(field, &s.message)
                .into_status()
        }
        // The custom resource's schema refused the App: the same field paths.
        kube::Error::Api(s) if s.code == 422 => {
            let mut err = ApiError::new(Code::InvalidArgument, reason::APP_INVALID, &s.message);
            for c in s.details.iter().flat_map(|d| &d.causes) {
                err = err.field(&c.field, &c.message);
            }
            err.into_status()
        }
        kube::Error::Api(s) => from_kubernetes(
            s.code,
            &s.reason,
            &s.message,
            "App",
            name,
            reason::APP_NOT_FOUND,
        )
        .into_status(),
        _ => ApiError::unavailable(
            reason::KUBERNETES_UNAVAILABLE,
            format!("Kubernetes API: {e}"),
            midplane_runtime::status::RETRY_SOON,
        )
        .into_status(),
    }
}

type AppEventStream = Pin<Box<dyn futures::Stream<Item = Result<pb::AppEvent, Status>> + Send>>;

#[tonic::async_trait]
impl AppService for AppApi {
    async fn apply_app(
        &self,
        req: Request<pb::ApplyAppRequest>,
    ) -> Result<Response<pb::ApplyAppResponse>, Status> {
        let req = req.into_inner();
        let Some(proto) = req.app else {
            return Err(ApiError::new(
                Code::InvalidArgument,
                reason::APP_INVALID,
                "app: is required",
            )
            .field("app", "is required")
            .into());
        };
        let (app, mut errs) = convert::app_from_proto(proto);
        let ns = app.namespace().unwrap_or_default();
        let name = app.name_any();
        let key = format!("{ns}/{name}");
        // Immutable parameters are checked against what the Components run;
        // without a namespace and name there is nothing stored to compare.
        let previous = if ns.is_empty() || name.is_empty() {
            Default::default()
        } else {
            match self
                .api(&ns)
                .get_opt(&name)
                .await
                .map_err(|e| kube_status(e, &key, None))?
            {
                Some(_) => {
                    let comps: Api<midplane_api::Component> =
                        Api::namespaced(self.ctx.client.clone(), &ns);
                    comps
                        .list(
                            &ListParams::default()
                                .labels(&format!("{}={name}", midplane_api::labels::APP)),
                        )
                        .await
                        .map_err(|e| kube_status(e, &key, None))?
                        .items
                        .into_iter()
                        .map(|c| {
                            (
                                c.spec.component.clone(),
                                c.spec.middleware.parameters.clone(),
                            )
                        })
                        .collect()
                }
                None => Default::default(),
            }
        };
        if let Err(found) =
            midplane_plugin::validate_app::validate(&app, &self.ctx.plugins.registry(), &previous)
        {
            errs.extend(found);
        }
        if !errs.is_empty() {
            let problems = errs.0.iter().map(|f| (f.field.clone(), f.message.clone()));
            return Err(app_invalid(problems, &errs.to_string()));
        }
        if req.dry_run {
            return Ok(Response::new(pb::ApplyAppResponse {
                app: Some(convert::app_to_proto(&app)),
            }));
        }
        let mut body = serde_json::to_value(&app)
            .map_err(|e| ApiError::internal(format!("encoding the App: {e}")))?;
        if let Some(m) = body.as_object_mut() {
            m.remove("status");
        }
        let mut pp = PatchParams::apply(FIELD_MANAGER);
        pp.force = req.force;
        let stored = self
            .api(&ns)
            .patch(&name, &pp, &Patch::Apply(&body))
            .await
            .map_err(|e| kube_status(e, &key, None))?;
        Ok(Response::new(pb::ApplyAppResponse {
            app: Some(convert::app_to_proto(&stored)),
        }))
    }

    async fn get_app(&self, req: Request<pb::GetAppRequest>) -> Result<Response<pb::App>, Status> {
        let (ns, name) = require_ref(req.into_inner().r#ref)?;
        let app = self
            .api(&ns)
            .get(&name)
            .await
            .map_err(|e| kube_status(e, &format!("{ns}/{name}"), None))?;
        Ok(Response::new(convert::app_to_proto(&app)))
    }

    async fn list_apps(
        &self,
        req: Request<pb::ListAppsRequest>,
    ) -> Result<Response<pb::ListAppsResponse>, Status> {
        let req = req.into_inner();
        let mut lp = ListParams::default();
        if !req.label_selector.is_empty() {
            lp = lp.labels(&req.label_selector);
        }
        if let Some(page) = &req.page {
            if page.limit > 0 {
                lp = lp.limit(page.limit);
            }
            if !page.continue_token.is_empty() {
                lp = lp.continue_token(&page.continue_token);
            }
        }
        let list = self
            .api(&req.namespace)
            .list(&lp)
            .await
            .map_err(|e| kube_status(e, "Apps", Some("label_selector")))?;
        Ok(Response::new(pb::ListAppsResponse {
            page: Some(midplane_proto::common::PageResponse {
                continue_token: list.metadata.continue_.clone().unwrap_or_default(),
            }),
            apps: list.items.iter().map(convert::app_to_proto).collect(),
        }))
    }

    async fn delete_app(
        &self,
        req: Request<pb::DeleteAppRequest>,
    ) -> Result<Response<pb::DeleteAppResponse>, Status> {
        let req = req.into_inner();
        let (ns, name) = require_ref(req.r#ref)?;
        let key = format!("{ns}/{name}");
        let api = self.api(&ns);
        api.delete(&name, &DeleteParams::default())
            .await
            .map_err(|e| kube_status(e, &key, None))?;
        if req.wait {
            // The call's deadline bounds this wait (DEADLINE_EXCEEDED).
            while api
                .get_opt(&name)
                .await
                .map_err(|e| kube_status(e, &key, None))?
                .is_some()
            {
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
        Ok(Response::new(pb::DeleteAppResponse {}))
    }

    type WatchAppsStream = AppEventStream;

    async fn watch_apps(
        &self,
        req: Request<pb::WatchAppsRequest>,
    ) -> Result<Response<Self::WatchAppsStream>, Status> {
        let req = req.into_inner();
        let api = self.api(&req.namespace);
        let mut initial = Vec::new();
        let mut rv = req.resource_version.clone();
        if rv.is_empty() {
            let mut lp = ListParams::default();
            if !req.label_selector.is_empty() {
                lp = lp.labels(&req.label_selector);
            }
            let list = api
                .list(&lp)
                .await
                .map_err(|e| kube_status(e, "Apps", Some("label_selector")))?;
            rv = list.metadata.resource_version.clone().unwrap_or_default();
            initial = list
                .items
                .iter()
                .map(|a| {
                    Ok(pb::AppEvent {
                        r#type: pb::app_event::Type::Added as i32,
                        app: Some(convert::app_to_proto(a)),
                    })
                })
                .collect();
        }
        let mut wp = WatchParams::default();
        if !req.label_selector.is_empty() {
            wp = wp.labels(&req.label_selector);
        }
        let stream = api
            .watch(&wp, &rv)
            .await
            .map_err(|e| kube_status(e, "Apps", Some("label_selector")))?;
        let events = stream
            .map_err(|e| kube_status(e, "Apps", None))
            .try_filter_map(|ev| async move {
            Ok(match ev {
                WatchEvent::Added(a) => Some((pb::app_event::Type::Added, a)),
                WatchEvent::Modified(a) => Some((pb::app_event::Type::Modified, a)),
                WatchEvent::Deleted(a) => Some((pb::app_event::Type::Deleted, a)),
                WatchEvent::Bookmark(_) => None,
                WatchEvent::Error(e) => {
                    return Err(ApiError::new(
                        Code::Aborted,
                        reason::RESOURCE_VERSION_EXPIRED,
                        format!(
                            "watch ended by the API server: {} (watch again without resource_version)",
                            e.message
                        ),
                    )
                    .into());
                }
            }
            .map(|(t, a)| pb::AppEvent {
                r#type: t as i32,
                app: Some(convert::app_to_proto(&a)),
            }))
        });
        Ok(Response::new(Box::pin(
            futures::stream::iter(initial).chain(events),
        )))
    }
}

/// The generation the App is at, for callers waiting on observedGeneration.
pub fn generation(app: &App) -> i64 {
    app.meta().generation.unwrap_or_default()
}
