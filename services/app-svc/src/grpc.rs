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
use midplane_proto::common::{ErrorDetail, FieldError};
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;
use tonic::{Request, Response, Status};

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

fn kube_status(e: kube::Error) -> Status {
    match &e {
        kube::Error::Api(s) => match s.code {
            404 => Status::not_found(s.message.clone()),
            409 => Status::aborted(s.message.clone()),
            400 | 422 => Status::invalid_argument(s.message.clone()),
            401 => Status::unauthenticated(s.message.clone()),
            403 => Status::permission_denied(s.message.clone()),
            429 => Status::resource_exhausted(s.message.clone()),
            _ => Status::unavailable(s.message.clone()),
        },
        _ => Status::unavailable(e.to_string()),
    }
}

fn object_ref(r: Option<midplane_proto::common::ObjectRef>) -> Result<(String, String), Status> {
    let r = r.ok_or_else(|| Status::invalid_argument("ref: is required"))?;
    if r.namespace.is_empty() || r.name.is_empty() {
        return Err(Status::invalid_argument(
            "ref: namespace and name are required",
        ));
    }
    Ok((r.namespace, r.name))
}

type AppEventStream = Pin<Box<dyn futures::Stream<Item = Result<pb::AppEvent, Status>> + Send>>;

#[tonic::async_trait]
impl AppService for AppApi {
    async fn apply_app(
        &self,
        req: Request<pb::ApplyAppRequest>,
    ) -> Result<Response<pb::ApplyAppResponse>, Status> {
        let req = req.into_inner();
        let app = convert::app_from_proto(
            req.app
                .ok_or_else(|| Status::invalid_argument("app: is required"))?,
        )?;
        let ns = app.namespace().unwrap_or_default();
        let name = app.name_any();
        let api = self.api(&ns);
        let previous = match api.get_opt(&name).await.map_err(kube_status)? {
            Some(_) => {
                let comps: Api<midplane_api::Component> =
                    Api::namespaced(self.ctx.client.clone(), &ns);
                comps
                    .list(
                        &ListParams::default()
                            .labels(&format!("{}={name}", midplane_api::labels::APP)),
                    )
                    .await
                    .map_err(kube_status)?
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
        };
        if let Err(errs) =
            midplane_plugin::validate_app::validate(&app, &self.ctx.plugins.registry(), &previous)
        {
            let detail = ErrorDetail {
                reason: "Invalid".into(),
                message: errs.to_string(),
                fields: errs
                    .0
                    .iter()
                    .map(|f| FieldError {
                        field: f.field.clone(),
                        message: f.message.clone(),
                    })
                    .collect(),
                retryable: false,
            };
            return Err(Status::with_details(
                tonic::Code::InvalidArgument,
                format!("invalid App:\n{errs}"),
                prost::Message::encode_to_vec(&detail).into(),
            ));
        }
        if req.dry_run {
            return Ok(Response::new(pb::ApplyAppResponse {
                app: Some(convert::app_to_proto(&app)),
                errors: vec![],
            }));
        }
        let mut body = serde_json::to_value(&app).map_err(|e| Status::internal(e.to_string()))?;
        if let Some(m) = body.as_object_mut() {
            m.remove("status");
        }
        let mut pp = PatchParams::apply(FIELD_MANAGER);
        pp.force = req.force;
        let stored = api
            .patch(&name, &pp, &Patch::Apply(&body))
            .await
            .map_err(kube_status)?;
        Ok(Response::new(pb::ApplyAppResponse {
            app: Some(convert::app_to_proto(&stored)),
            errors: vec![],
        }))
    }

    async fn get_app(&self, req: Request<pb::GetAppRequest>) -> Result<Response<pb::App>, Status> {
        let (ns, name) = object_ref(req.into_inner().r#ref)?;
        let app = self.api(&ns).get(&name).await.map_err(kube_status)?;
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
            .map_err(kube_status)?;
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
        let (ns, name) = object_ref(req.r#ref)?;
        let api = self.api(&ns);
        api.delete(&name, &DeleteParams::default())
            .await
            .map_err(kube_status)?;
        if req.wait {
            // The caller's deadline bounds this wait.
            loop {
                match api.get_opt(&name).await.map_err(kube_status)? {
                    None => break,
                    Some(_) => tokio::time::sleep(Duration::from_millis(200)).await,
                }
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
            let list = api.list(&lp).await.map_err(kube_status)?;
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
        let stream = api.watch(&wp, &rv).await.map_err(kube_status)?;
        let events = stream.map_err(kube_status).try_filter_map(|ev| async move {
            Ok(match ev {
                WatchEvent::Added(a) => Some((pb::app_event::Type::Added, a)),
                WatchEvent::Modified(a) => Some((pb::app_event::Type::Modified, a)),
                WatchEvent::Deleted(a) => Some((pb::app_event::Type::Deleted, a)),
                WatchEvent::Bookmark(_) => None,
                WatchEvent::Error(e) => {
                    return Err(Status::aborted(format!(
                        "watch ended by the API server: {} (resume with a fresh watch)",
                        e.message
                    )));
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
