//! Rolling a faultline shim into a workload's pods and back out (`faultline cluster shim enable|disable`), as pure
//! JSON: given the object as the API server returned it, compute the RFC 7386 JSON merge patch to send. No API
//! calls here ([`super::kube_api`] makes them).
//!
//! `enable` patches the pod template of a Deployment or StatefulSet (`spec.template`), or of one service of an
//! NVIDIA Dynamo DynamoGraphDeployment (see [`Workload::Dgd`]):
//!
//! - a `hostPath` volume (type `Directory`) of the node agent's [`LIBRARY_DIR`], mounted read-only at the same path
//!   in every app container (init containers are left alone);
//! - `LD_PRELOAD` = the existing value + `:` + the shim, or the shim alone; `FAULTLINE_ENABLED` (`0` with
//!   passthrough), and for CUDA `FAULTLINE_POLICY_FILE` ([`POLICY_FILE`], how a node is armed) and `FAULTLINE_XID`,
//!   for UCX `FAULTLINE_UCX_POLICY_FILE` ([`UCX_POLICY_FILE`], how a node's NIC is failed: `cluster nic-failure`);
//! - node affinity merged into what is there: required `nodeSelectorTerms` are ORed, so the GPU-node requirement
//!   (and `--node`) is ANDed into every term; preferred terms and pod (anti-)affinity are not touched;
//! - the fault's ledger labels and annotations on the workload, and its fault-id label on the pods;
//! - the record ([`RECORD_ANNOTATION`]): the original value, or absence, of everything it changed.
//!
//! `disable` puts back exactly what the record holds, so enable then disable leaves the object as it was, byte for
//! byte. Changes made by others in between are kept, except on the paths faultline changed: those get their
//! original back (e.g. a required node affinity edited while shimmed returns to its pre-shim value). The record
//! names containers and list items (env, volumes, mounts) by name, not position, so reordering is harmless.
//!
//! One shim per pod template: a DynamoGraphDeployment may have several services shimmed, all under one fault
//! (the workload carries one fault-id label), each enabled and disabled on its own.
//!
//! By concern: `workload` (which object's pods, what to roll out, what is found), `patch` (what enable and
//! disable change), `record` (the undo record kept in [`RECORD_ANNOTATION`]), `json_path` (addressing values in
//! the object, list items by name) and `merge_patch` (the RFC 7386 diff that is sent).

#[cfg(test)]
mod fixtures;
mod json_path;
mod merge_patch;
mod patch;
mod record;
mod workload;

use shm_proto::Kind;

pub use crate::node::arm::{LIBRARY_DIR, POLICY_FILE, UCX_POLICY_FILE};
pub use merge_patch::merge_patch_diff;
pub use patch::{disable_all_patch, disable_patch, enable_patch};
pub use record::{shimmed, shims};
pub use workload::{ShimInfo, ShimSpec, Workload};

/// The pod volume that carries [`LIBRARY_DIR`] from the host.
pub const VOLUME_NAME: &str = "faultline-lib";

/// Annotation on a shimmed workload: what `shim enable` changed and how to undo it (compact JSON).
pub const RECORD_ANNOTATION: &str = "faultline.dev/shim-original";

/// The node label of GPU nodes, where the node agent runs and installs the shims (deploy/daemonset.yaml).
pub const GPU_NODE_LABEL: (&str, &str) = ("nvidia.com/gpu.present", "true");

/// The shim library's file name, e.g. `libfaultline_cuda.so`.
pub fn library_file(kind: Kind) -> String {
    format!("libfaultline_{}.so", kind.name())
}

/// Where pods find the shim library (the host's [`LIBRARY_DIR`], mounted at the same path).
pub fn library_path(kind: Kind) -> String {
    format!("{LIBRARY_DIR}/{}", library_file(kind))
}
