//! Snapshot for a backup: choose the instance (a healthy replica when there
//! is one, so the primary does not pay for the fork) and have its agent 2
//! write and keep a consistent snapshot.

use std::cmp::Reverse;
use std::time::Duration;

use midplane_proto::agent::{self as pb, Role};
use midplane_proto::gateway as gw;

use super::{Gateway, GatewayError, Survey, current_primary, max_term};
use crate::fanout::{AgentOp, AgentReply};
use crate::resolver::PodResolver;

/// The agent's save deadline when the caller gives none (agent 2's default).
const DEFAULT_SNAPSHOT_TIMEOUT: Duration = Duration::from_secs(60);
/// Beyond the save deadline: the role read, linking the file, the network.
const SNAPSHOT_SLACK: Duration = Duration::from_secs(5);

/// The instance a snapshot is taken on, and why every other one was not.
#[derive(Debug, Clone, PartialEq)]
pub struct SnapshotChoice {
    pub target: gw::PodTarget,
    pub report: pb::RoleReport,
    pub skipped: Vec<String>,
}

/// Chooses from a fresh role survey: among replicas whose primary link is up
/// and whose term is the highest term reported, the highest replication
/// offset (ties: the instance name that sorts first); with none, the
/// primary of the highest term. `Err` says why nothing qualifies.
pub fn choose_snapshot_source(survey: &Survey) -> Result<SnapshotChoice, String> {
    if survey.iter().all(|(_, r)| r.is_err()) {
        let why: Vec<String> = survey
            .iter()
            .map(|(t, r)| match r {
                Err(e) => format!("{}: {}", t.instance, e.message),
                Ok(_) => String::new(),
            })
            .collect();
        return Err(if why.is_empty() {
            "the group has no pods".into()
        } else {
            format!("no instance answered its role ({})", why.join("; "))
        });
    }
    let top = max_term(survey);
    let healthy =
        |r: &pb::RoleReport| r.role == Role::Replica as i32 && r.primary_link_up && r.term == top;
    let replica = survey
        .iter()
        .filter_map(|(t, r)| r.as_ref().ok().map(|r| (t, r)))
        .filter(|(_, r)| healthy(r))
        .max_by_key(|(t, r)| (r.replication_offset, Reverse(t.instance.clone())))
        .map(|(t, r)| (t.clone(), r.clone()));
    let Some((target, report)) = replica.or_else(|| current_primary(survey)) else {
        let seen: Vec<String> = survey
            .iter()
            .map(|(t, r)| format!("{}: {}", t.instance, describe(r, top)))
            .collect();
        return Err(format!(
            "no replica with its primary link up and no primary of term {top} ({})",
            seen.join("; ")
        ));
    };
    let chose_replica = report.role == Role::Replica as i32;
    let skipped = survey
        .iter()
        .filter(|(t, _)| t.instance != target.instance)
        .map(|(t, r)| {
            let why = match r {
                Ok(r) if healthy(r) => format!(
                    "replica at offset {} behind {} at {}",
                    r.replication_offset, target.instance, report.replication_offset
                ),
                Ok(r) if r.role == Role::Primary as i32 && chose_replica => {
                    "primary; a healthy replica is preferred".to_string()
                }
                other => describe(other, top),
            };
            format!("{}: {why}", t.instance)
        })
        .collect();
    Ok(SnapshotChoice {
        target,
        report,
        skipped,
    })
}

/// Why a report does not qualify as it stands.
fn describe(r: &Result<pb::RoleReport, midplane_proto::common::ErrorDetail>, top: i64) -> String {
    match r {
        Err(e) => format!("no role: {}", e.message),
        Ok(r) if r.term < top => format!("term {} is older than {top}", r.term),
        Ok(r) if r.role == Role::Replica as i32 && !r.primary_link_up => {
            "replica whose link to its primary is down".into()
        }
        Ok(r) => match Role::try_from(r.role) {
            Ok(Role::Fenced) => "fenced".into(),
            Ok(Role::Primary) => format!("primary of term {}", r.term),
            Ok(Role::Replica) => "replica".into(),
            _ => "role unknown".into(),
        },
    }
}

impl<R: PodResolver> Gateway<R> {
    pub async fn snapshot(
        &self,
        req: gw::GroupSnapshotRequest,
    ) -> Result<gw::GroupSnapshotResponse, GatewayError> {
        let pods = self.pods(req.group.as_ref(), "Snapshot").await?;
        let group = req
            .group
            .as_ref()
            .map(|g| format!("{}/{}", g.namespace, g.name))
            .unwrap_or_default();
        let (target, skipped) = if req.instance.is_empty() {
            let survey = self.survey(pods, true, self.fanout.deadline(0)).await;
            let choice = choose_snapshot_source(&survey)
                .map_err(|why| GatewayError::NoSnapshotSource { group, why })?;
            (choice.target, choice.skipped)
        } else {
            let target = pods
                .into_iter()
                .find(|p| p.instance == req.instance)
                .ok_or_else(|| GatewayError::UnknownInstance {
                    group,
                    instance: req.instance.clone(),
                })?;
            (target, Vec::new())
        };
        let save = if req.timeout_ms == 0 {
            DEFAULT_SNAPSHOT_TIMEOUT
        } else {
            Duration::from_millis(req.timeout_ms.into())
        };
        tracing::info!(instance = %target.instance, id = %req.snapshot_id, "snapshot");
        let op = AgentOp::Snapshot(pb::SnapshotRequest {
            snapshot_id: req.snapshot_id,
            timeout_ms: req.timeout_ms,
        });
        let reply = self
            .fanout
            .call_status(&target.address, op, save + SNAPSHOT_SLACK)
            .await
            .map_err(|status| GatewayError::Agent {
                instance: target.instance.clone(),
                status,
            })?;
        let AgentReply::Snapshot(snapshot) = reply else {
            return Err(GatewayError::Agent {
                instance: target.instance.clone(),
                status: tonic::Status::internal("agent answered Snapshot with another message"),
            });
        };
        Ok(gw::GroupSnapshotResponse {
            target: Some(target),
            snapshot: Some(snapshot),
            skipped,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use midplane_proto::common::ErrorDetail;

    fn pod(instance: &str) -> gw::PodTarget {
        gw::PodTarget {
            pod: instance.into(),
            instance: instance.into(),
            address: format!("{instance}:50052"),
            lifecycle_address: String::new(),
        }
    }

    fn report(role: Role, term: i64, offset: i64, link_up: bool) -> pb::RoleReport {
        pb::RoleReport {
            role: role as i32,
            term,
            replication_offset: offset,
            primary_link_up: link_up,
            ..Default::default()
        }
    }

    fn down(message: &str) -> Result<pb::RoleReport, ErrorDetail> {
        Err(ErrorDetail {
            reason: "Unavailable".into(),
            message: message.into(),
            ..Default::default()
        })
    }

    fn chosen(survey: &Survey) -> String {
        choose_snapshot_source(survey)
            .expect("a choice")
            .target
            .instance
    }

    #[test]
    fn the_replica_with_the_highest_offset_wins() {
        let survey: Survey = vec![
            (pod("c-0"), Ok(report(Role::Primary, 2, 900, false))),
            (pod("c-1"), Ok(report(Role::Replica, 2, 850, true))),
            (pod("c-2"), Ok(report(Role::Replica, 2, 880, true))),
            (pod("c-3"), down("connection refused")),
        ];
        let c = choose_snapshot_source(&survey).expect("choice");
        assert_eq!(c.target.instance, "c-2");
        assert_eq!(c.report.replication_offset, 880);
        assert_eq!(
            c.skipped,
            vec![
                "c-0: primary; a healthy replica is preferred",
                "c-1: replica at offset 850 behind c-2 at 880",
                "c-3: no role: connection refused",
            ]
        );
    }

    #[test]
    fn ties_go_to_the_first_name_and_unhealthy_or_stale_replicas_are_skipped() {
        let survey: Survey = vec![
            (pod("c-2"), Ok(report(Role::Replica, 4, 500, true))),
            (pod("c-1"), Ok(report(Role::Replica, 4, 500, true))),
            (pod("c-0"), Ok(report(Role::Primary, 4, 500, false))),
        ];
        assert_eq!(chosen(&survey), "c-1");
        let survey: Survey = vec![
            (pod("c-0"), Ok(report(Role::Primary, 4, 100, false))),
            // Higher offset but its link is down, or it follows an old term.
            (pod("c-1"), Ok(report(Role::Replica, 4, 999, false))),
            (pod("c-2"), Ok(report(Role::Replica, 3, 999, true))),
            (pod("c-3"), Ok(report(Role::Replica, 4, 50, true))),
        ];
        let c = choose_snapshot_source(&survey).expect("choice");
        assert_eq!(c.target.instance, "c-3");
        assert!(
            c.skipped
                .contains(&"c-1: replica whose link to its primary is down".to_string()),
            "{:?}",
            c.skipped
        );
        assert!(
            c.skipped
                .contains(&"c-2: term 3 is older than 4".to_string()),
            "{:?}",
            c.skipped
        );
    }

    #[test]
    fn without_a_healthy_replica_the_newest_primary() {
        let survey: Survey = vec![
            (pod("c-0"), Ok(report(Role::Primary, 1, 700, false))),
            (pod("c-1"), Ok(report(Role::Primary, 2, 300, false))),
            (pod("c-2"), Ok(report(Role::Replica, 2, 300, false))),
        ];
        let c = choose_snapshot_source(&survey).expect("choice");
        assert_eq!(c.target.instance, "c-1");
        assert_eq!(c.skipped[0], "c-0: term 1 is older than 2");
    }

    #[test]
    fn nothing_to_choose_says_why() {
        let survey: Survey = vec![(pod("c-0"), down("refused")), (pod("c-1"), down("timeout"))];
        let err = choose_snapshot_source(&survey).expect_err("nobody answered");
        assert!(
            err.contains("no instance answered") && err.contains("c-0: refused"),
            "{err}"
        );
        assert!(choose_snapshot_source(&Vec::new()).is_err());
        let survey: Survey = vec![
            (pod("c-0"), Ok(report(Role::Fenced, 3, 10, false))),
            (pod("c-1"), Ok(report(Role::Replica, 3, 10, false))),
        ];
        let err = choose_snapshot_source(&survey).expect_err("no source");
        assert!(err.contains("c-0: fenced"), "{err}");
    }
}
