//! Drafts: what a user typed — the flags of `faultline cluster …` or the rows of a dashboard dialog — turned into
//! [`super::ClusterRequest`]s, checked once, here. A front end fills a draft and calls its `parse` with the
//! [`Names`] it uses for the fields (flags or row labels), so the same check speaks each front end's words.

use std::time::Duration;

use super::{PartitionRequest, ShimRequest};
use crate::ledger::parse_ttl;
use crate::node::xid;
use crate::partition::{
    self, parse_selector, validate_namespace, ChaosAction, ChaosDirection, ChaosParams, ChaosSpec, PartitionSpec,
    Preset,
};
use crate::shim::Follow;
use crate::shim_rollout::{ShimSpec, Workload};
use crate::signal_inject::SignalInjectRequest;
use crate::xid_inject::{self, XidInjectRequest};
use crate::ClusterError;

/// How a front end names the fields: the CLI by its flags, the dashboard by its dialogs' row labels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Names {
    /// `--ttl`, `add --force`.
    Flags,
    /// `TTL`, `turn Force on`.
    Labels,
}

impl Names {
    /// The ttl field.
    pub fn ttl(self) -> &'static str {
        match self {
            Names::Flags => "--ttl",
            Names::Labels => "TTL",
        }
    }

    /// `message` (a node-side error, which names flags) in this front end's words: the dashboard's row labels
    /// instead of `--subcode`, `--link`, … .
    pub fn rename(self, message: &str) -> String {
        const LABELS: [(&str, &str); 9] = [
            ("--subcode", "Subcode"),
            ("--link", "Link"),
            ("--intrinfo", "IntrInfo"),
            ("--error-status", "Error status"),
            ("--uuid", "UUID"),
            ("--pci-id", "PCI ID"),
            ("--device", "Device"),
            ("--netdev", "Netdev"),
            ("--pci", "PCI"),
        ];
        match self {
            Names::Flags => message.to_string(),
            Names::Labels => LABELS.iter().fold(message.to_string(), |text, (flag, label)| text.replace(flag, label)),
        }
    }

    /// How to allow an XID outside the catalog.
    pub fn force(self) -> &'static str {
        match self {
            Names::Flags => "add --force",
            Names::Labels => "turn Force on",
        }
    }
}

/// Why an XID cannot be injected without force.
pub fn unknown_xid(xid: u32, names: Names) -> String {
    format!(
        "XID {xid} is not in faultline's catalog (`faultline node xid --list` shows it); {} to inject it anyway",
        names.force()
    )
}

/// A partition as typed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PartitionDraft {
    /// A Chaos Mesh NetworkChaos instead of a NetworkPolicy.
    pub chaos: bool,
    /// The namespace of the pods and of the object.
    pub namespace: String,
    /// The pods cut off, `KEY=VALUE[,…]`.
    pub selector: String,
    /// The other side, `KEY=VALUE[,…]`; empty: none.
    pub to_selector: String,
    /// How long it lasts, e.g. `10m`.
    pub ttl: String,
    /// NetworkPolicy: what the pods lose.
    pub preset: Preset,
    /// NetworkPolicy: cut incoming connections.
    pub ingress: bool,
    /// NetworkPolicy: cut outgoing connections.
    pub egress: bool,
    /// NetworkPolicy: block NATS too.
    pub block_nats: bool,
    /// NetworkPolicy: block the cluster DNS too.
    pub block_dns: bool,
    /// NetworkPolicy: the pod CIDRs (empty: read from the nodes when it is created).
    pub pod_cidrs: Vec<String>,
    /// Chaos Mesh: `partition`, `loss`, `delay`, `bandwidth`.
    pub action: String,
    /// Chaos Mesh: which packets.
    pub direction: ChaosDirection,
    /// Chaos Mesh: the action's parameters, as typed (`None` or blank: not given).
    pub params: ChaosParams,
}

impl PartitionDraft {
    /// The request the draft stands for, checked as it will be built (no object name or pod CIDRs needed).
    pub fn parse(&self, names: Names) -> Result<PartitionRequest, ClusterError> {
        let namespace = self.namespace.trim().to_string();
        validate_namespace(&namespace)?;
        let selector = parse_selector(&self.selector)?;
        let to_selector = match self.to_selector.trim() {
            "" => None,
            text => Some(parse_selector(text)?),
        };
        let ttl = parse_ttl(&self.ttl, names.ttl())?;
        if !self.chaos {
            let spec = PartitionSpec {
                namespace,
                selector,
                preset: self.preset,
                ingress: self.ingress,
                egress: self.egress,
                block_nats: self.block_nats,
                block_dns: self.block_dns,
                to_selector,
                pod_cidrs: self.pod_cidrs.clone(),
            };
            spec.validate()?;
            return Ok(PartitionRequest::Policy { spec, ttl });
        }
        let given = |text: &Option<String>| text.as_ref().map(|t| t.trim().to_string()).filter(|t| !t.is_empty());
        let p = &self.params;
        let params = ChaosParams {
            loss: given(&p.loss),
            correlation: given(&p.correlation),
            latency: given(&p.latency),
            jitter: given(&p.jitter),
            rate: given(&p.rate),
            limit: given(&p.limit),
            buffer: given(&p.buffer),
            peakrate: given(&p.peakrate),
            minburst: given(&p.minburst),
        };
        let spec = ChaosSpec {
            namespace,
            selector,
            action: ChaosAction::from_params(self.action.trim(), &params)?,
            direction: self.direction,
            target: to_selector,
            duration: Some(ttl),
        };
        spec.validate()?;
        Ok(PartitionRequest::Chaos { spec, ttl })
    }
}

/// A shim rollout as typed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShimDraft {
    /// The workload's namespace.
    pub namespace: String,
    /// The workload (its names as typed).
    pub workload: Workload,
    /// What goes in.
    pub spec: ShimSpec,
    /// How long, e.g. `1h`.
    pub ttl: String,
    /// How long to follow the rollout.
    pub follow: Option<Follow>,
}

impl ShimDraft {
    /// The request the draft stands for.
    pub fn parse(&self, names: Names) -> Result<ShimRequest, ClusterError> {
        let namespace = self.namespace.trim().to_string();
        validate_namespace(&namespace)?;
        let workload = match &self.workload {
            Workload::Deployment(name) => Workload::Deployment(name.trim().to_string()),
            Workload::StatefulSet(name) => Workload::StatefulSet(name.trim().to_string()),
            Workload::Dgd { name, service } => {
                Workload::Dgd { name: name.trim().to_string(), service: service.trim().to_string() }
            }
        };
        check_workload(&workload)?;
        self.spec.validate()?;
        let ttl = parse_ttl(&self.ttl, names.ttl())?;
        Ok(ShimRequest { namespace, workload, spec: self.spec.clone(), ttl, follow: self.follow })
    }
}

/// Checks the names of a workload: [`partition::check_name`] for the object, and a DynamoGraphDeployment's
/// service key (which may have capitals and `_`, e.g. `VllmDecodeWorker`).
pub fn check_workload(workload: &Workload) -> Result<(), ClusterError> {
    let usage = |message: String| ClusterError::Usage(message);
    partition::check_name("name", workload.name()).map_err(usage)?;
    if let Workload::Dgd { service, .. } = workload {
        partition::check_name("service", service).map_err(usage)?;
    }
    Ok(())
}

/// An XID injection as typed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct XidDraft {
    /// Everything but `force`, which [`XidDraft::parse`] keeps only where it is needed.
    pub request: XidInjectRequest,
}

impl XidDraft {
    /// The request the draft stands for: an XID outside the catalog needs force (which is sent only then).
    pub fn parse(&self, names: Names) -> Result<XidInjectRequest, ClusterError> {
        let known = xid::lookup(self.request.xid).is_some();
        if !known && !self.request.force {
            return Err(ClusterError::Usage(unknown_xid(self.request.xid, names)));
        }
        xid_inject::check_line(&self.request).map_err(|e| ClusterError::Usage(names.rename(&e.to_string())))?;
        Ok(XidInjectRequest { force: self.request.force && !known, ..self.request.clone() })
    }
}

/// A kernel-log signal (GPU fallen off the bus, SXid, NIC driver error) as typed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignalDraft {
    /// The request, its text fields as typed.
    pub request: SignalInjectRequest,
}

impl SignalDraft {
    /// The request the draft stands for: what the agent would refuse without asking the node is refused here.
    pub fn parse(&self, names: Names) -> Result<SignalInjectRequest, ClusterError> {
        self.request.signal.check().map_err(|e| ClusterError::Usage(names.rename(&e.to_string())))?;
        Ok(self.request.clone())
    }
}

/// `Some(timeout)` if `seconds` is a usable watch interval or timeout.
pub fn positive_seconds(seconds: f64) -> Option<Duration> {
    (seconds > 0.0 && seconds.is_finite()).then(|| Duration::from_secs_f64(seconds))
}

#[cfg(test)]
mod tests {
    use shm_proto::Kind;

    use super::*;

    fn draft() -> PartitionDraft {
        PartitionDraft {
            namespace: "dynamo".into(),
            selector: "app=worker".into(),
            ttl: "10m".into(),
            action: "partition".into(),
            ..PartitionDraft::default()
        }
    }

    #[test]
    fn a_partition_is_checked_without_a_stamp_or_pod_cidrs() {
        let PartitionRequest::Policy { spec, ttl } = draft().parse(Names::Flags).unwrap() else { panic!("policy") };
        assert!(spec.pod_cidrs.is_empty());
        assert_eq!(ttl, Duration::from_secs(600));
        let nats = PartitionDraft { preset: Preset::WorkerNats, to_selector: "app=x".into(), ..draft() };
        assert!(nats.parse(Names::Flags).unwrap_err().to_string().contains("does not apply to --preset worker-nats"));
        let bad_cidr = PartitionDraft { pod_cidrs: vec!["10.0.0.0/0".into()], ..draft() };
        assert!(bad_cidr.parse(Names::Flags).unwrap_err().to_string().contains("invalid pod CIDR"));
        let chaos = PartitionDraft { chaos: true, direction: ChaosDirection::Both, ..draft() };
        assert!(chaos.parse(Names::Flags).unwrap_err().to_string().contains("needs --to-selector"));
    }

    #[test]
    fn each_front_end_reads_its_own_names() {
        let late = PartitionDraft { ttl: "soon".into(), ..draft() };
        assert!(late.parse(Names::Flags).unwrap_err().to_string().starts_with("invalid --ttl \"soon\""));
        assert!(late.parse(Names::Labels).unwrap_err().to_string().starts_with("invalid TTL \"soon\""));
        let forced = XidDraft { request: XidInjectRequest::new("gpu-a", 0, 200) };
        assert!(forced.parse(Names::Flags).unwrap_err().to_string().ends_with("add --force to inject it anyway"));
        assert!(forced.parse(Names::Labels).unwrap_err().to_string().ends_with("turn Force on to inject it anyway"));
        let known = XidDraft { request: XidInjectRequest { force: true, ..XidInjectRequest::new("gpu-a", 0, 79) } };
        assert!(!known.parse(Names::Flags).unwrap().force, "force only where it is needed");
    }

    #[test]
    fn workload_names_are_checked_once_for_both_front_ends() {
        let shim = |workload| ShimDraft {
            namespace: "dynamo".into(),
            workload,
            spec: ShimSpec::new(Kind::Cuda),
            ttl: "1h".into(),
            follow: None,
        };
        assert!(shim(Workload::Deployment(" vllm ".into())).parse(Names::Flags).is_ok());
        let error = shim(Workload::Deployment("Vllm".into())).parse(Names::Flags).unwrap_err();
        assert!(error.to_string().contains("is not a valid name"), "{error}");
        let dgd = Workload::Dgd { name: "graph".into(), service: "VllmDecodeWorker".into() };
        assert!(shim(dgd).parse(Names::Labels).is_ok());
    }
}
