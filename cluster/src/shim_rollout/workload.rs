//! Which workload's pods get the shim ([`Workload`]), what is rolled out ([`ShimSpec`]) and what a listing finds
//! ([`ShimInfo`]).

use std::fmt;

use serde::{Serialize, Serializer};
use serde_json::Value;
use shm_proto::Kind;

use super::json_path::{keys, lookup, pointer, Seg};
use super::{POLICY_FILE, UCX_POLICY_FILE};
use crate::kube_api::ObjectType;
use crate::node::xid;
use crate::ClusterError;
use shm_proto::node_policy;

/// The object whose pods get the shim.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Workload {
    /// An `apps/v1` Deployment (pods from `spec.template`).
    Deployment(String),
    /// An `apps/v1` StatefulSet (pods from `spec.template`).
    StatefulSet(String),
    /// One service of an NVIDIA Dynamo `nvidia.com/v1alpha1` DynamoGraphDeployment. Its pods come from
    /// `spec.services.<service>`: `extraPodSpec` is a Kubernetes PodSpec (volumes, affinity, sidecar `containers`)
    /// plus `mainContainer`, merged by the operator over the main container it generates (named `main`); the main
    /// container's env is `spec.envs`, overridden by the service's `envs`, overridden by `mainContainer.env`, by
    /// name. Pod labels go in `extraPodMetadata.labels`.
    Dgd {
        /// The DynamoGraphDeployment.
        name: String,
        /// The key under `spec.services`, e.g. `VllmDecodeWorker`.
        service: String,
    },
}

impl Workload {
    /// The object's name.
    pub fn name(&self) -> &str {
        match self {
            Workload::Deployment(name) | Workload::StatefulSet(name) | Workload::Dgd { name, .. } => name,
        }
    }

    /// The DynamoGraphDeployment service, if this is one.
    pub fn service(&self) -> Option<&str> {
        match self {
            Workload::Dgd { service, .. } => Some(service),
            _ => None,
        }
    }

    /// The API type to get and patch.
    pub fn object_type(&self) -> ObjectType {
        match self {
            Workload::Deployment(_) => ObjectType::DEPLOYMENT,
            Workload::StatefulSet(_) => ObjectType::STATEFUL_SET,
            Workload::Dgd { .. } => ObjectType::DYNAMO_GRAPH_DEPLOYMENT,
        }
    }

    /// The path of the pod spec in the object, as a JSON pointer (RFC 6901): `/spec/template/spec`, or
    /// `/spec/services/<service>/extraPodSpec` (a partial pod spec, see [`Workload::Dgd`]).
    pub fn pod_spec_pointer(&self) -> String {
        pointer(&self.pod_spec_path())
    }

    /// The pod spec in `object`, if it has one.
    pub fn pod_spec<'a>(&self, object: &'a Value) -> Option<&'a Value> {
        lookup(object, &self.pod_spec_path())
    }

    pub(super) fn pod_spec_path(&self) -> Vec<Seg> {
        match self {
            Workload::Deployment(_) | Workload::StatefulSet(_) => keys(&["spec", "template", "spec"]),
            Workload::Dgd { service, .. } => keys(&["spec", "services", service, "extraPodSpec"]),
        }
    }

    pub(super) fn pod_labels_path(&self) -> Vec<Seg> {
        match self {
            Workload::Deployment(_) | Workload::StatefulSet(_) => keys(&["spec", "template", "metadata", "labels"]),
            Workload::Dgd { service, .. } => keys(&["spec", "services", service, "extraPodMetadata", "labels"]),
        }
    }
}

impl fmt::Display for Workload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Workload::Dgd { name, service } => write!(f, "DynamoGraphDeployment {name} (service {service})"),
            other => write!(f, "{} {}", other.object_type().kind, other.name()),
        }
    }
}

/// What to roll out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShimSpec {
    /// Which shim.
    pub kind: Kind,
    /// Load the shim with faults off (`FAULTLINE_ENABLED=0`): steer it later, or arm the node.
    pub passthrough: bool,
    /// CUDA only: the XID preset the shim fails with (`FAULTLINE_XID`).
    pub xid: Option<u32>,
    /// Pin the pods to this node (by name), on top of the GPU-node requirement.
    pub node: Option<String>,
    /// Only this container (default: every app container; init containers never).
    pub container: Option<String>,
}

impl ShimSpec {
    /// A shim of `kind` with faults on, no XID, no node, every container.
    pub fn new(kind: Kind) -> ShimSpec {
        ShimSpec { kind, passthrough: false, xid: None, node: None, container: None }
    }

    /// Checks the spec on its own (the XID has a CUDA shim preset, the node name is one), as `enable_patch` does
    /// first: lets a form show the error while it is typed.
    pub fn validate(&self) -> Result<(), ClusterError> {
        if let Some(code) = self.xid {
            if self.kind != Kind::Cuda {
                return Err(ClusterError::Usage("--xid applies to the CUDA shim only (--kind cuda)".into()));
            }
            if let Err(no_preset) = crate::node::arm::cuda_preset(code) {
                let unknown = if xid::lookup(code).is_none() {
                    format!("XID {code} is not in faultline's catalog (`faultline node xid --list`); ")
                } else {
                    String::new()
                };
                return Err(ClusterError::Usage(format!("{unknown}{no_preset}")));
            }
        }
        if let Some(node) = &self.node {
            if node.len() > 253 || !crate::names::is_dns_subdomain(node) {
                return Err(ClusterError::Usage(format!(
                    "invalid --node {node:?}: a node name is lower-case letters, digits, '-' and '.' (at most 253)"
                )));
            }
        }
        Ok(())
    }

    /// The env entries the shim needs in container `container` (the shim's settings, and the pod identity it
    /// records in its segment: namespace and pod name through the downward API, the container by name).
    pub(super) fn env(&self, preload: String, container: &str) -> Vec<(&'static str, Value)> {
        let value = |name: &'static str, value: String| (name, serde_json::json!({ "name": name, "value": value }));
        let field = |name: &'static str, path: &str| {
            (name, serde_json::json!({ "name": name, "valueFrom": { "fieldRef": { "fieldPath": path } } }))
        };
        let mut env = vec![
            value("LD_PRELOAD", preload),
            value("FAULTLINE_ENABLED", if self.passthrough { "0" } else { "1" }.to_string()),
            field(shm_proto::pod::NAMESPACE_VAR, "metadata.namespace"),
            field(shm_proto::pod::POD_VAR, "metadata.name"),
            value(shm_proto::pod::CONTAINER_VAR, container.to_string()),
        ];
        match self.kind {
            Kind::Cuda => {
                env.push(value(node_policy::POLICY_FILE_VAR, POLICY_FILE.to_string()));
                if let Some(code) = self.xid {
                    env.push(value("FAULTLINE_XID", code.to_string()));
                }
            }
            Kind::Ucx => env.push(value(node_policy::UCX_POLICY_FILE_VAR, UCX_POLICY_FILE.to_string())),
        }
        env
    }
}

/// A shim found on a workload (for listing).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ShimInfo {
    /// The fault it belongs to.
    pub fault_id: String,
    /// The DynamoGraphDeployment service (`None` for a Deployment or StatefulSet).
    pub service: Option<String>,
    /// Which shim.
    #[serde(serialize_with = "kind_name")]
    pub kind: Kind,
    /// Loaded with faults off.
    pub passthrough: bool,
    /// The XID preset.
    pub xid: Option<u32>,
    /// The node the pods are pinned to.
    pub node: Option<String>,
    /// The containers that preload it.
    pub containers: Vec<String>,
}

fn kind_name<S: Serializer>(kind: &Kind, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(kind.name())
}

pub(super) fn not_a(workload: &Workload, path: &[Seg], what: &str) -> ClusterError {
    ClusterError::Usage(format!("{workload}: {} is not {what}; faultline leaves such a spec alone", pointer(path)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::shim_rollout::fixtures::{decode, dgd};
    use crate::shim_rollout::{library_path, LIBRARY_DIR};

    #[test]
    fn paths_and_names() {
        assert_eq!(Workload::Deployment("d".into()).pod_spec_pointer(), "/spec/template/spec");
        assert_eq!(decode().pod_spec_pointer(), "/spec/services/VllmDecodeWorker/extraPodSpec");
        assert_eq!(decode().object_type(), ObjectType::DYNAMO_GRAPH_DEPLOYMENT);
        assert_eq!(Workload::StatefulSet("s".into()).object_type(), ObjectType::STATEFUL_SET);
        assert_eq!(decode().pod_spec(&dgd()).unwrap()["mainContainer"]["image"], "vllm-runtime:1");
        assert_eq!(decode().to_string(), "DynamoGraphDeployment disagg (service VllmDecodeWorker)");
        assert_eq!(Workload::StatefulSet("s".into()).to_string(), "StatefulSet s");
        assert_eq!(library_path(Kind::Ucx), "/var/lib/faultline/libfaultline_ucx.so");
        assert!(POLICY_FILE.starts_with(LIBRARY_DIR), "the mount carries the policy file too");
        assert!(UCX_POLICY_FILE.starts_with(LIBRARY_DIR), "and the UCX one");
        for preset in shm_proto::xid::presets() {
            assert!(xid::lookup(preset.xid).is_some(), "preset XID {} is in the catalog", preset.xid);
        }
    }
}
