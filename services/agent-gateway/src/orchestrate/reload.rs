//! ReloadConfig for a whole Group, with the union of restart-required parameters.

use std::collections::BTreeSet;
use std::time::Duration;

use midplane_proto::agent as pb;
use midplane_proto::gateway as gw;

use super::{Gateway, GatewayError, split, unexpected};
use crate::fanout::{AgentOp, AgentReply};
use crate::resolver::PodResolver;

impl<R: PodResolver> Gateway<R> {
    pub async fn reload_config(
        &self,
        req: gw::ReloadConfigRequest,
    ) -> Result<gw::ReloadConfigResponse, GatewayError> {
        let pods = self.pods(req.group.as_ref(), "ReloadConfig").await?;
        let wait = if req.wait_timeout_ms == 0 {
            10_000
        } else {
            req.wait_timeout_ms
        };
        let deadline = Duration::from_millis(u64::from(wait) + 2_000);
        let op = AgentOp::ReloadConfig(pb::ReloadConfigRequest {
            config_path: req.config_path,
            content_hash: req.content_hash,
            wait_timeout_ms: wait,
            restart_required_parameters: req.restart_required_parameters,
        });
        let results = self.fanout.all(pods, op, deadline, false).await;
        let mut restart_required = BTreeSet::new();
        let mut all_applied = true;
        let pods = results
            .into_iter()
            .map(|(target, r)| {
                let (result, error) = split(r.and_then(|r| match r {
                    AgentReply::Reload(x) => Ok(x),
                    _ => Err(unexpected("ReloadConfig")),
                }));
                match &result {
                    Some(x) => {
                        all_applied &= x.applied && x.error.is_none();
                        restart_required
                            .extend(x.restart_required_changes.iter().map(|c| c.name.clone()));
                    }
                    None => all_applied = false,
                }
                gw::PodReload {
                    target: Some(target),
                    result,
                    error,
                }
            })
            .collect();
        Ok(gw::ReloadConfigResponse {
            pods,
            restart_required: restart_required.into_iter().collect(),
            all_applied,
        })
    }
}
