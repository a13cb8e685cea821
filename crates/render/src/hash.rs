//! Content hashes: what decides that an instance must change, and whether the
//! change needs a restart.

use crate::RenderedObject;
use midplane_plugin::{ParameterClass, PluginMetadata};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;

pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Hash of everything rendered for one instance plus the config it mounts.
/// serde_json maps are sorted, so the serialization is canonical.
pub fn instance_hash(objects: &[RenderedObject], config_hash: Option<&str>) -> String {
    let mut h = Sha256::new();
    for o in objects {
        h.update(o.object.to_string().as_bytes());
        h.update([0]);
    }
    h.update(config_hash.unwrap_or_default().as_bytes());
    hex::encode(h.finalize())
}

/// Hash of the parameters that only take effect on a restart. It goes on the
/// pod template, so a change of such a parameter rolls the Pod while a
/// dynamic one is applied live by the agent.
pub fn restart_hash(parameters: &BTreeMap<String, String>, meta: &PluginMetadata) -> String {
    let mut h = Sha256::new();
    for (k, v) in parameters {
        if meta.class_of(k) != ParameterClass::Dynamic {
            h.update(k.as_bytes());
            h.update([b'=']);
            h.update(v.as_bytes());
            h.update([b'\n']);
        }
    }
    hex::encode(h.finalize())
}
