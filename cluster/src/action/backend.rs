//! [`Cluster`]: the calls [`super::execute`] makes, one per kind of request. [`Session`] carries them out against
//! the Kubernetes API (making each fault's ledger [`Stamp`] here); tests put a double in its place.

use k8s_openapi::jiff::Timestamp;

use super::{ArmRequest, PartitionRequest, ShimRequest, ShimTarget};
use crate::arm::{self, ArmedNode};
use crate::faults::{self, Listing, Recovered, Which};
use crate::gpu_failure::{self, GpuFailure, GpuFailureRequest, Step};
use crate::ledger::{FaultKind, Stamp};
use crate::network::{self, Created};
use crate::nic_failure::{self, NicFailure, NicFailureRequest};
use crate::nodes::{self, GpuNode};
use crate::processes::{self, NodeReply, ProcessListing, ProcessScope};
use crate::shim::{self, ShimChange};
use crate::signal_inject::{self, SignalInjectRequest, SignalInjectResult};
use crate::xid_inject::{self, Progress, XidInjectRequest, XidInjectResult};
use crate::{ClusterError, Session};

/// What a cluster can be asked; every method blocks until the API answers.
pub trait Cluster {
    /// The API server's URL.
    fn server(&self) -> String;
    /// The kubeconfig context's namespace.
    fn namespace(&self) -> String;
    /// The GPU nodes.
    fn gpu_nodes(&self) -> Result<Vec<GpuNode>, ClusterError>;
    /// The fault ledger in `namespace` (`None`: every namespace).
    fn faults(&self, namespace: Option<&str>) -> Result<Listing, ClusterError>;
    /// Injects an XID.
    fn inject_xid(
        &self,
        request: &XidInjectRequest,
        progress: &mut (dyn FnMut(&Progress) + Send),
    ) -> Result<XidInjectResult, ClusterError>;
    /// Writes another kernel-log signal.
    fn inject_signal(
        &self,
        request: &SignalInjectRequest,
        progress: &mut (dyn FnMut(&signal_inject::Progress) + Send),
    ) -> Result<SignalInjectResult, ClusterError>;
    /// Creates a partition.
    fn create_partition(&self, request: &PartitionRequest) -> Result<Created, ClusterError>;
    /// Rolls a shim in.
    fn enable_shim(
        &self,
        request: &ShimRequest,
        progress: &mut (dyn FnMut(&str) + Send),
    ) -> Result<ShimChange, ClusterError>;
    /// Restores a shimmed workload.
    fn disable_shim(
        &self,
        target: &ShimTarget,
        progress: &mut (dyn FnMut(&str) + Send),
    ) -> Result<ShimChange, ClusterError>;
    /// Arms a node.
    fn arm_node(&self, request: &ArmRequest) -> Result<ArmedNode, ClusterError>;
    /// The fault that armed `node`'s CUDA shims, if faultline armed them.
    fn armed_by(&self, node: &str) -> Result<Option<String>, ClusterError>;
    /// Undoes the faults `which` selects in `namespace` (`None`: every namespace).
    fn recover(
        &self,
        namespace: Option<&str>,
        which: &Which,
        progress: &mut (dyn FnMut(&Recovered) + Send),
    ) -> Result<Vec<Recovered>, ClusterError>;
    /// Runs the GPU-failure scenario.
    fn gpu_failure(
        &self,
        request: &GpuFailureRequest,
        progress: &mut (dyn FnMut(&Step) + Send),
    ) -> Result<GpuFailure, ClusterError>;
    /// Runs the NIC-failure scenario.
    fn nic_failure(
        &self,
        request: &NicFailureRequest,
        progress: &mut (dyn FnMut(&Step) + Send),
    ) -> Result<NicFailure, ClusterError>;
    /// The shimmed processes in scope.
    fn processes(&self, scope: &ProcessScope) -> Result<ProcessListing, ClusterError>;
    /// Sends a process command to the processes in scope.
    fn process_command(
        &self,
        scope: &ProcessScope,
        args: &[String],
        read_only: bool,
    ) -> Result<Vec<NodeReply>, ClusterError>;
}

impl Cluster for Session {
    fn server(&self) -> String {
        self.api().server().to_string()
    }

    fn namespace(&self) -> String {
        self.api().context_namespace().to_string()
    }

    fn gpu_nodes(&self) -> Result<Vec<GpuNode>, ClusterError> {
        self.block_on(nodes::gpu_nodes(self.api()))
    }

    fn faults(&self, namespace: Option<&str>) -> Result<Listing, ClusterError> {
        self.block_on(faults::list(self.api(), namespace, Timestamp::now()))
    }

    fn inject_xid(
        &self,
        request: &XidInjectRequest,
        progress: &mut (dyn FnMut(&Progress) + Send),
    ) -> Result<XidInjectResult, ClusterError> {
        self.block_on(xid_inject::inject(self.api(), self.api(), request, progress))
    }

    fn inject_signal(
        &self,
        request: &SignalInjectRequest,
        progress: &mut (dyn FnMut(&signal_inject::Progress) + Send),
    ) -> Result<SignalInjectResult, ClusterError> {
        self.block_on(signal_inject::inject(self.api(), self.api(), request, progress))
    }

    fn create_partition(&self, request: &PartitionRequest) -> Result<Created, ClusterError> {
        let stamp = Stamp::new(FaultKind::Partition, Some(request.ttl()));
        match request {
            PartitionRequest::Policy { spec, .. } => self.block_on(network::create_partition(self.api(), spec, &stamp)),
            PartitionRequest::Chaos { spec, .. } => self.block_on(network::create_chaos(self.api(), spec, &stamp)),
        }
    }

    fn enable_shim(
        &self,
        request: &ShimRequest,
        progress: &mut (dyn FnMut(&str) + Send),
    ) -> Result<ShimChange, ClusterError> {
        let stamp = Stamp::new(FaultKind::Shim, Some(request.ttl));
        let ShimRequest { namespace, workload, spec, follow, .. } = request;
        self.block_on(shim::enable(self.api(), namespace, workload, spec, &stamp, *follow, progress))
    }

    fn disable_shim(
        &self,
        target: &ShimTarget,
        progress: &mut (dyn FnMut(&str) + Send),
    ) -> Result<ShimChange, ClusterError> {
        self.block_on(shim::disable(self.api(), &target.namespace, &target.workload, target.follow, progress))
    }

    fn arm_node(&self, request: &ArmRequest) -> Result<ArmedNode, ClusterError> {
        let stamp = Stamp::new(FaultKind::ArmedNode, Some(request.ttl));
        self.block_on(arm::arm_node(self.api(), self.api(), &request.node, request.xid, &stamp))
    }

    fn armed_by(&self, node: &str) -> Result<Option<String>, ClusterError> {
        self.block_on(arm::armed_by(self.api(), node, shm_proto::Kind::Cuda))
    }

    fn recover(
        &self,
        namespace: Option<&str>,
        which: &Which,
        progress: &mut (dyn FnMut(&Recovered) + Send),
    ) -> Result<Vec<Recovered>, ClusterError> {
        self.block_on(faults::recover(self.api(), self.api(), namespace, which, Timestamp::now(), progress))
    }

    fn gpu_failure(
        &self,
        request: &GpuFailureRequest,
        progress: &mut (dyn FnMut(&Step) + Send),
    ) -> Result<GpuFailure, ClusterError> {
        self.block_on(gpu_failure::run(self.api(), self.api(), request, progress))
    }

    fn nic_failure(
        &self,
        request: &NicFailureRequest,
        progress: &mut (dyn FnMut(&Step) + Send),
    ) -> Result<NicFailure, ClusterError> {
        self.block_on(nic_failure::run(self.api(), self.api(), request, progress))
    }

    fn processes(&self, scope: &ProcessScope) -> Result<ProcessListing, ClusterError> {
        self.block_on(processes::list(self.api(), scope))
    }

    fn process_command(
        &self,
        scope: &ProcessScope,
        args: &[String],
        read_only: bool,
    ) -> Result<Vec<NodeReply>, ClusterError> {
        self.block_on(processes::command(self.api(), scope, args, read_only))
    }
}
