//! Role changes across a Group: planned switchover and forced failover.

use std::time::{Duration, Instant};

use midplane_proto::agent::{self as pb, Role, failover_request::Mode};
use midplane_proto::gateway as gw;

use super::{
    DEFAULT_SWITCHOVER_TIMEOUT, Gateway, GatewayError, Survey, current_primary, detail, failed,
    max_term, unexpected,
};
use crate::fanout::{AgentOp, AgentReply};
use crate::resolver::PodResolver;

impl<R: PodResolver> Gateway<R> {
    async fn step(
        &self,
        target: &gw::PodTarget,
        action: &str,
        req: pb::FailoverRequest,
        deadline: Duration,
    ) -> (gw::PodStep, Option<pb::FailoverResponse>) {
        let r = self
            .fanout
            .call(&target.address, AgentOp::Failover(req), deadline)
            .await;
        let (ok, error, resp) = match r {
            Ok(AgentReply::Failover(f)) => (f.success, f.error.clone(), Some(f)),
            Ok(_) => (false, Some(unexpected("Failover")), None),
            Err(e) => (false, Some(e), None),
        };
        (
            gw::PodStep {
                target: Some(target.clone()),
                action: action.into(),
                success: ok,
                error,
            },
            resp,
        )
    }

    /// Sends FOLLOW (reachable replicas) or FENCE (everything else) to every
    /// pod except the new primary, concurrently.
    async fn repoint(
        &self,
        survey: &Survey,
        new_primary: &gw::PodTarget,
        new_address: &str,
        term: i64,
        skip: Option<&str>,
        deadline: Duration,
    ) -> Vec<gw::PodStep> {
        let steps = survey
            .iter()
            .filter(|(t, _)| {
                t.instance != new_primary.instance && Some(t.instance.as_str()) != skip
            })
            .map(|(t, r)| {
                let is_replica = r.as_ref().is_ok_and(|r| r.role == Role::Replica as i32);
                let (action, mode) = if is_replica {
                    ("follow", Mode::Follow)
                } else {
                    ("fence", Mode::Fence)
                };
                let req = pb::FailoverRequest {
                    mode: mode as i32,
                    target_address: new_address.to_string(),
                    term,
                    timeout_ms: deadline.as_millis() as u32,
                };
                async move { self.step(t, action, req, deadline).await.0 }
            });
        futures::future::join_all(steps).await
    }

    pub async fn switchover(
        &self,
        req: gw::SwitchoverRequest,
    ) -> Result<gw::OrchestrationResponse, GatewayError> {
        let pods = self.pods(req.group.as_ref(), "Switchover").await?;
        let wait = if req.timeout_ms == 0 {
            DEFAULT_SWITCHOVER_TIMEOUT
        } else {
            Duration::from_millis(req.timeout_ms.into())
        };
        let read_deadline = self.fanout.deadline(0);
        let survey = self.survey(pods, true, read_deadline).await;
        let Some((primary, primary_report)) = current_primary(&survey) else {
            return Ok(failed(detail(
                "FailedPrecondition",
                "no reachable primary in the group; use Failover",
            )));
        };
        let candidates: Vec<_> = survey
            .iter()
            .filter_map(|(t, r)| r.as_ref().ok().map(|r| (t, r)))
            .filter(|(_, r)| {
                r.role == Role::Replica as i32
                    && r.primary_link_up
                    && r.primary_address == primary_report.address
            })
            .collect();
        let chosen = choose_candidate(&candidates, &req.candidate_instance);
        let Some((candidate, candidate_report)) = chosen else {
            let why = if req.candidate_instance.is_empty() {
                "no healthy replica follows the primary".to_string()
            } else {
                format!(
                    "candidate {} is not a healthy replica of primary {}",
                    req.candidate_instance, primary.instance
                )
            };
            let mut r = failed(detail("FailedPrecondition", why));
            r.old_primary_instance = primary.instance.clone();
            return Ok(r);
        };
        let term = max_term(&survey) + 1;
        let step_deadline = wait + Duration::from_secs(3);
        tracing::info!(old = %primary.instance, new = %candidate.instance, term, "switchover");
        let (hand_over, resp) = self
            .step(
                &primary,
                "switchover",
                pb::FailoverRequest {
                    mode: Mode::Switchover as i32,
                    target_address: candidate_report.address.clone(),
                    term,
                    timeout_ms: wait.as_millis() as u32,
                },
                step_deadline,
            )
            .await;
        let write_pause_ms = resp.as_ref().map(|r| r.write_pause_ms).unwrap_or(0);
        let mut out = gw::OrchestrationResponse {
            old_primary_instance: primary.instance.clone(),
            term,
            write_pause_ms,
            ..Default::default()
        };
        let handed = hand_over.success;
        out.error = hand_over.error.clone();
        out.steps.push(hand_over);
        if !handed {
            return Ok(out);
        }
        // Confirm the promotion under the new term, then repoint the rest.
        let (promote, _) = self
            .step(
                candidate,
                "promote",
                pb::FailoverRequest {
                    mode: Mode::Forced as i32,
                    target_address: String::new(),
                    term,
                    timeout_ms: 0,
                },
                read_deadline,
            )
            .await;
        let promoted = promote.success;
        out.steps.push(promote);
        let rest = self
            .repoint(
                &survey,
                candidate,
                &candidate_report.address,
                term,
                Some(&primary.instance),
                read_deadline,
            )
            .await;
        out.steps.extend(rest);
        out.new_primary_instance = candidate.instance.clone();
        out.success = promoted && out.steps.iter().all(|s| s.success);
        if !out.success && out.error.is_none() {
            out.error = Some(detail(
                "PartialFailure",
                "some pods did not take their step; see steps",
            ));
        }
        Ok(out)
    }

    /// Tells every reachable instance that does not follow the current
    /// primary (or those named) to FOLLOW it under the primary's term.
    pub async fn rejoin(
        &self,
        req: gw::RejoinRequest,
    ) -> Result<gw::OrchestrationResponse, GatewayError> {
        let pods = self.pods(req.group.as_ref(), "Rejoin").await?;
        let deadline = self.fanout.deadline(req.timeout_ms);
        let survey = self.survey(pods, true, deadline).await;
        let Some((primary, report)) = current_primary(&survey) else {
            return Ok(failed(detail(
                "FailedPrecondition",
                "no current primary to rejoin",
            )));
        };
        let astray = survey.iter().filter(|(t, r)| {
            let named = req.instances.is_empty() || req.instances.contains(&t.instance);
            let follows = r.as_ref().is_ok_and(|r| {
                r.role == Role::Replica as i32 && r.primary_address == report.address
            });
            named && r.is_ok() && t.instance != primary.instance && !follows
        });
        let steps = astray.map(|(t, _)| {
            let req = pb::FailoverRequest {
                mode: Mode::Follow as i32,
                target_address: report.address.clone(),
                term: report.term,
                timeout_ms: deadline.as_millis() as u32,
            };
            async move { self.step(t, "follow", req, deadline).await.0 }
        });
        let steps = futures::future::join_all(steps).await;
        let success = steps.iter().all(|s| s.success);
        if !steps.is_empty() {
            tracing::info!(primary = %primary.instance, term = report.term, rejoined = steps.len(), success, "rejoin");
        }
        Ok(gw::OrchestrationResponse {
            success,
            new_primary_instance: primary.instance.clone(),
            term: report.term,
            error: (!success)
                .then(|| detail("PartialFailure", "some instances did not follow; see steps")),
            steps,
            ..Default::default()
        })
    }

    pub async fn failover(
        &self,
        req: gw::FailoverRequest,
    ) -> Result<gw::OrchestrationResponse, GatewayError> {
        let pods = self.pods(req.group.as_ref(), "Failover").await?;
        let started = Instant::now();
        let deadline = self.fanout.deadline(req.timeout_ms);
        let survey = self.survey(pods, true, deadline).await;
        if let Some((primary, _)) = current_primary(&survey) {
            let mut r = failed(detail(
                "FailedPrecondition",
                format!("primary {} is reachable; use Switchover", primary.instance),
            ));
            r.old_primary_instance = primary.instance;
            return Ok(r);
        }
        // The primary the replicas were following, for the report.
        let old_address = survey
            .iter()
            .filter_map(|(_, r)| r.as_ref().ok())
            .find(|r| r.role == Role::Replica as i32 && !r.primary_address.is_empty())
            .map(|r| r.primary_address.clone());
        let failed_primary = &req.failed_primary_instance;
        let replicas: Vec<_> = survey
            .iter()
            .filter_map(|(t, r)| r.as_ref().ok().map(|r| (t, r)))
            .filter(|(t, r)| r.role == Role::Replica as i32 && &t.instance != failed_primary)
            .collect();
        let chosen = choose_candidate(&replicas, &req.candidate_instance);
        let Some((candidate, candidate_report)) = chosen else {
            return Ok(failed(detail(
                "FailedPrecondition",
                "no reachable replica to promote",
            )));
        };
        let term = max_term(&survey) + 1;
        tracing::warn!(new = %candidate.instance, term, old = ?old_address, "forced failover");
        let (promote, _) = self
            .step(
                candidate,
                "promote",
                pb::FailoverRequest {
                    mode: Mode::Forced as i32,
                    target_address: String::new(),
                    term,
                    timeout_ms: 0,
                },
                deadline,
            )
            .await;
        let detection_to_promotion_ms = started.elapsed().as_millis() as u32;
        let old_primary_instance = if failed_primary.is_empty() {
            survey
                .iter()
                .find(|(_, r)| r.is_err())
                .map(|(t, _)| t.instance.clone())
                .unwrap_or_default()
        } else {
            failed_primary.clone()
        };
        let mut out = gw::OrchestrationResponse {
            old_primary_instance,
            term,
            detection_to_promotion_ms,
            ..Default::default()
        };
        let promoted = promote.success;
        out.error = promote.error.clone();
        out.steps.push(promote);
        if !promoted {
            return Ok(out);
        }
        out.new_primary_instance = candidate.instance.clone();
        let rest = self
            .repoint(
                &survey,
                candidate,
                &candidate_report.address,
                term,
                None,
                deadline,
            )
            .await;
        // An unreachable old primary cannot confirm its fence now; its agent
        // applies it when reachable again, and the promotion stands regardless.
        let replicas_ok = rest
            .iter()
            .filter(|s| s.action == "follow")
            .all(|s| s.success);
        out.steps.extend(rest);
        out.success = replicas_ok;
        if !replicas_ok {
            out.error = Some(detail(
                "PartialFailure",
                "some replicas did not follow; see steps",
            ));
        }
        Ok(out)
    }
}

/// The named replica, or (no name) the one with the highest replication offset.
fn choose_candidate<'a>(
    replicas: &[(&'a gw::PodTarget, &'a pb::RoleReport)],
    name: &str,
) -> Option<(&'a gw::PodTarget, &'a pb::RoleReport)> {
    if name.is_empty() {
        replicas
            .iter()
            .max_by_key(|(_, r)| r.replication_offset)
            .copied()
    } else {
        replicas.iter().find(|(t, _)| t.instance == name).copied()
    }
}
