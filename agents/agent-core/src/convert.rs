//! Mapping between the adapter's types and the wire messages.

use std::time::SystemTime;

use midplane_proto::agent as pb;
use midplane_proto::common::ErrorDetail;

use crate::adapter::{
    AdapterError, ParameterChange, ReloadOutcome, Role, RoleState, SnapshotOutcome,
};

pub fn role_to_pb(role: Role) -> pb::Role {
    match role {
        Role::Primary => pb::Role::Primary,
        Role::Replica => pb::Role::Replica,
        Role::Fenced => pb::Role::Fenced,
        Role::Unknown => pb::Role::Unspecified,
    }
}

pub fn role_report(instance: &str, address: &str, state: &RoleState) -> pb::RoleReport {
    pb::RoleReport {
        instance: instance.to_string(),
        role: role_to_pb(state.role) as i32,
        term: state.term,
        replication_offset: state.replication_offset,
        primary_address: state.primary_address.clone().unwrap_or_default(),
        primary_link_up: state.primary_link_up,
        connected_replicas: state.replicas.iter().filter(|r| r.online).count() as i32,
        observed_at: Some(prost_types::Timestamp::from(SystemTime::now())),
        address: address.to_string(),
        max_replica_lag_bytes: state.max_replica_lag_bytes(),
    }
}

pub fn error_detail(e: &AdapterError) -> ErrorDetail {
    ErrorDetail {
        reason: e.reason().to_string(),
        message: e.to_string(),
        fields: Vec::new(),
        retryable: e.retryable(),
    }
}

/// Metadata key on an UNAVAILABLE status that comes from a reachable agent
/// whose middleware is down: retrying the agent call does not help.
pub const MIDDLEWARE_DOWN: &str = "x-midplane-middleware-down";

/// For calls whose failure is the whole answer (reads): a gRPC status.
pub fn status(e: &AdapterError) -> tonic::Status {
    match e {
        AdapterError::Unreachable { .. } => {
            let mut s = tonic::Status::unavailable(e.to_string());
            s.metadata_mut().insert(
                MIDDLEWARE_DOWN,
                tonic::metadata::MetadataValue::from_static("1"),
            );
            s
        }
        AdapterError::Timeout { .. } => tonic::Status::deadline_exceeded(e.to_string()),
        AdapterError::StaleTerm { .. } | AdapterError::Rejected { .. } => {
            tonic::Status::failed_precondition(e.to_string())
        }
        AdapterError::Config(_) | AdapterError::Refused { .. } => {
            tonic::Status::invalid_argument(e.to_string())
        }
        AdapterError::Snapshot(s) if s.is_invalid_id() => {
            tonic::Status::invalid_argument(e.to_string())
        }
        AdapterError::Middleware { .. } | AdapterError::State(_) | AdapterError::Snapshot(_) => {
            tonic::Status::internal(e.to_string())
        }
    }
}

fn change(c: &ParameterChange) -> pb::ParameterChange {
    pb::ParameterChange {
        name: c.name.clone(),
        old_value: c.old_value.clone(),
        new_value: c.new_value.clone(),
    }
}

pub fn reload_response(o: &ReloadOutcome) -> pb::ReloadConfigResponse {
    pb::ReloadConfigResponse {
        applied: o.applied,
        requires_restart: o.requires_restart,
        applied_changes: o.applied_changes.iter().map(change).collect(),
        restart_required_changes: o.restart_required_changes.iter().map(change).collect(),
        config_hash: o.config_hash.clone(),
        error: None,
        refused_parameters: Vec::new(),
    }
}

pub fn snapshot_response(
    instance: &str,
    address: &str,
    o: &SnapshotOutcome,
) -> pb::SnapshotResponse {
    let mut role = role_report(instance, address, &o.role);
    role.observed_at = Some(prost_types::Timestamp::from(o.role_observed_at));
    pb::SnapshotResponse {
        path: o.path.clone(),
        files: o.files.clone(),
        role: Some(role),
        taken_at: Some(prost_types::Timestamp::from(o.taken_at)),
        bytes: o.bytes,
    }
}
