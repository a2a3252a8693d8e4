//! Network partitions as Kubernetes objects, built purely (objects out, no API calls: [`super::kube_api`] creates,
//! lists and deletes them): a NetworkPolicy for the presets ([`network_policy`]), or a Chaos Mesh NetworkChaos for
//! partition, loss, delay and bandwidth faults where its CRD is installed ([`network_chaos`]).
//!
//! By concern: `policy` (the presets and the NetworkPolicy each becomes, with what it can and cannot block),
//! `chaos` (the NetworkChaos) and `units` (Go durations,
//! bandwidth rates, byte counts and percentages as Chaos Mesh parses them).

mod chaos;
#[cfg(test)]
mod fixtures;
mod policy;
mod units;

pub use super::names::{check_name, object_name, parse_selector, validate_namespace, Labels};
pub use chaos::{
    network_chaos, ChaosAction, ChaosDirection, ChaosParams, ChaosSpec, CHAOS_MESH_GROUP, CHAOS_MESH_VERSION,
    NETWORK_CHAOS_KIND, NETWORK_CHAOS_PLURAL,
};
pub use policy::{
    network_policy, PartitionSpec, Preset, DNS_LABEL, DNS_NAMESPACE, DNS_PORT, NAMESPACE_NAME_LABEL, NATS_CLIENT_PORT,
    NATS_LABEL,
};
