//! The NetworkPolicy a partition preset becomes ([`network_policy`]).
//!
//! # What the presets block
//!
//! The NetworkPolicy selects the pods of `--namespace` matching `--selector` (its podSelector is that selector as
//! given, never labels copied from a pod) and isolates them in the chosen directions (`--ingress`, `--egress`, both
//! when neither is given):
//!
//! - `worker-worker`: the selected pods cannot talk to the pods of the namespace matching the same selector (each
//!   worker is cut from every other) or `--to-selector`;
//! - `frontend-worker`: the selected (worker) pods cannot talk to the pods of the namespace matching
//!   `--to-selector`, which is required;
//! - `worker-nats`: the selected pods cannot reach NATS (it implies `--block-nats` and blocks nothing else; egress
//!   only, as the pods open those connections, so `--ingress` is refused);
//! - `custom`: blocks the pods of the namespace matching `--to-selector`; without it the selected pods are isolated:
//!   nothing in or out but DNS and NATS (unless those are blocked too).
//!
//! Everything else stays reachable: the other pods of the namespace, the pods of other namespaces, and addresses
//! outside the cluster. DNS (pods `k8s-app=kube-dns` in `kube-system`, UDP and TCP 53) and NATS (pods
//! `app.kubernetes.io/name=nats` in any namespace, TCP 4222) stay reachable even when the blocked pods include
//! them, unless `--block-dns` / `--block-nats` is given. Those two act on egress (the selected pods open the
//! connections, and the replies come back on them), so they need egress in the chosen directions.
//!
//! # How "block" is written in an allow-list
//!
//! A NetworkPolicy only allows, and its peers are ORed, so "every pod but those matching `k1=v1,k2=v2`" is one
//! podSelector peer per key, `k NotIn [v]` (a pod fails the selector exactly when one of its keys differs or is
//! missing, which `NotIn` also matches). With `--block-nats` every in-cluster peer also carries
//! `app.kubernetes.io/name NotIn [nats]`. Other namespaces are one peer, `kubernetes.io/metadata.name NotIn
//! [namespace]`; with `--block-dns` it leaves out `kube-system` too, whose pods get their own peer without
//! `k8s-app=kube-dns`. Addresses outside the cluster are ipBlock `0.0.0.0/0` and `::/0` except the cluster's pod
//! CIDRs ([`PartitionSpec::pod_cidrs`]): Kubernetes leaves it to the network plugin whether ipBlock also matches
//! pod addresses (Calico, for one, matches them), and where it does, an ipBlock without those exceptions would let
//! the blocked pods back in. With `--block-dns` the ipBlock peers allow TCP and UDP on every port but 53, so a
//! resolver outside the pod CIDRs (NodeLocal DNSCache, an upstream server) is cut too; ICMP and other protocols to
//! addresses outside the cluster are then blocked as well.
//!
//! # What a NetworkPolicy cannot guarantee
//!
//! - Policies are additive: another policy that selects the same pods and allows the blocked traffic wins.
//! - Only a network plugin that enforces NetworkPolicy applies it; others accept it and do nothing.
//! - Traffic from the pod's own node (kubelet probes) is always allowed, host-network pods are not pods to a
//!   podSelector, and whether traffic to the own node (NodeLocal DNSCache) is filtered depends on the plugin.
//! - Pod CIDRs that are wrong or incomplete leave pods reachable through ipBlock on plugins that match pod IPs.
//! - Whether connections opened before the policy are cut depends on the plugin's connection tracking.

use std::collections::BTreeMap;

use ipnet::IpNet;
use k8s_openapi::api::networking::v1::{
    IPBlock, NetworkPolicy, NetworkPolicyEgressRule, NetworkPolicyIngressRule, NetworkPolicyPeer, NetworkPolicyPort,
    NetworkPolicySpec,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, LabelSelectorRequirement, ObjectMeta};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use crate::ledger::Stamp;
use crate::names::{check_selector, object_name, validate_namespace, Labels};
use crate::ClusterError;

/// The label that marks NATS pods (the NATS Helm chart's), in any namespace.
pub const NATS_LABEL: (&str, &str) = ("app.kubernetes.io/name", "nats");

/// The NATS client port.
pub const NATS_CLIENT_PORT: i32 = 4222;

/// The namespace of the cluster DNS.
pub const DNS_NAMESPACE: &str = "kube-system";

/// The label of the cluster DNS pods (CoreDNS keeps kube-dns's label).
pub const DNS_LABEL: (&str, &str) = ("k8s-app", "kube-dns");

/// The DNS port (UDP and TCP).
pub const DNS_PORT: i32 = 53;

/// The label Kubernetes puts on every namespace: its name.
pub const NAMESPACE_NAME_LABEL: &str = "kubernetes.io/metadata.name";

/// A partition preset: which pods the selected pods lose.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum Preset {
    /// The selected pods cannot talk to pods matching the same selector (or `--to-selector`).
    #[default]
    WorkerWorker,
    /// The selected (worker) pods cannot talk to the pods matching `--to-selector` (the frontends).
    FrontendWorker,
    /// The selected pods cannot reach NATS.
    WorkerNats,
    /// The pods matching `--to-selector` are blocked; without it the selected pods are isolated.
    Custom,
}

impl Preset {
    /// Every preset, in the order `--help` lists them.
    pub const ALL: [Preset; 4] = [Preset::WorkerWorker, Preset::FrontendWorker, Preset::WorkerNats, Preset::Custom];

    /// The `--preset` value.
    pub fn as_str(self) -> &'static str {
        match self {
            Preset::WorkerWorker => "worker-worker",
            Preset::FrontendWorker => "frontend-worker",
            Preset::WorkerNats => "worker-nats",
            Preset::Custom => "custom",
        }
    }

    /// The preset a `--preset` value names.
    pub fn parse(text: &str) -> Result<Preset, ClusterError> {
        Preset::ALL.into_iter().find(|p| p.as_str() == text).ok_or_else(|| {
            let names: Vec<&str> = Preset::ALL.iter().map(|p| p.as_str()).collect();
            ClusterError::Usage(format!("unknown --preset {text:?}: expected one of {}", names.join(", ")))
        })
    }
}

impl std::fmt::Display for Preset {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A NetworkPolicy partition, as `faultline cluster partition create` describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionSpec {
    /// The namespace of the selected pods (and of the policy).
    pub namespace: String,
    /// The pods the policy applies to (`--selector`).
    pub selector: Labels,
    /// What they lose.
    pub preset: Preset,
    /// `--ingress`: isolate incoming connections (neither flag: both directions).
    pub ingress: bool,
    /// `--egress`: isolate outgoing connections (neither flag: both directions).
    pub egress: bool,
    /// `--block-nats`: NATS is blocked too (implied by [`Preset::WorkerNats`]).
    pub block_nats: bool,
    /// `--block-dns`: the cluster DNS is blocked too.
    pub block_dns: bool,
    /// `--to-selector`: the pods of the namespace to block (see [`Preset`]).
    pub to_selector: Option<Labels>,
    /// The cluster's pod address ranges (e.g. from the nodes' `spec.podCIDRs`), excepted from the ipBlock peers
    /// that keep addresses outside the cluster reachable; required unless the pods are isolated (see the module
    /// documentation).
    pub pod_cidrs: Vec<String>,
}

impl PartitionSpec {
    /// The isolated directions as (ingress, egress): the flags given, or both when neither is; worker-nats is
    /// egress only (it cuts the connections the pods open).
    pub fn directions(&self) -> (bool, bool) {
        if self.preset == Preset::WorkerNats {
            (false, true)
        } else if self.ingress || self.egress {
            (self.ingress, self.egress)
        } else {
            (true, true)
        }
    }

    /// Whether NATS is blocked (`--block-nats`, or the worker-nats preset).
    pub fn blocks_nats(&self) -> bool {
        self.block_nats || self.preset == Preset::WorkerNats
    }

    /// Checks everything but the pod CIDRs, which are read from the nodes when the policy is created (only
    /// their form is checked here, when given): what a draft must pass before it becomes a request.
    pub fn validate(&self) -> Result<(), ClusterError> {
        validate_namespace(&self.namespace)?;
        check_selector("--selector", &self.selector)?;
        if let Some(to) = &self.to_selector {
            check_selector("--to-selector", to)?;
        }
        if !matches!(self.blocked()?, Blocked::Everything) && !self.pod_cidrs.is_empty() {
            parse_pod_cidrs(&self.pod_cidrs)?;
        }
        Ok(())
    }

    /// Which pods of the namespace the preset blocks, after checking the combination of flags.
    fn blocked(&self) -> Result<Blocked<'_>, ClusterError> {
        if self.preset == Preset::WorkerNats && self.ingress {
            return Err(ClusterError::Usage(
                "--preset worker-nats cuts the connections the selected pods open to NATS (egress); --ingress does \
                 not apply to it"
                    .into(),
            ));
        }
        if !self.directions().1 && (self.block_dns || self.block_nats) {
            let flag = if self.block_dns { "--block-dns" } else { "--block-nats" };
            return Err(ClusterError::Usage(format!(
                "{flag} blocks connections the selected pods open (egress); with --ingress alone it would change \
                 nothing: add --egress or drop --ingress"
            )));
        }
        let blocked = match (self.preset, &self.to_selector) {
            (Preset::WorkerWorker, None) => Blocked::Pods(&self.selector),
            (Preset::FrontendWorker, None) => {
                return Err(ClusterError::Usage(
                    "--preset frontend-worker needs --to-selector naming the frontend pods (e.g. --to-selector \
                     app=frontend); the selected (worker) pods lose their connections to them"
                        .into(),
                ))
            }
            (Preset::WorkerNats, Some(_)) => {
                return Err(ClusterError::Usage(format!(
                    "--to-selector does not apply to --preset worker-nats, which blocks the NATS pods ({}={}); use \
                     --preset custom --to-selector … --block-nats to block more",
                    NATS_LABEL.0, NATS_LABEL.1
                )))
            }
            (Preset::WorkerNats, None) => Blocked::Nothing,
            (Preset::Custom, None) => Blocked::Everything,
            (_, Some(to)) => Blocked::Pods(to),
        };
        Ok(blocked)
    }
}

/// The pods of the namespace a partition blocks.
enum Blocked<'a> {
    /// Those matching this selector.
    Pods(&'a BTreeMap<String, String>),
    /// None (worker-nats: only NATS).
    Nothing,
    /// Everything (custom without `--to-selector`).
    Everything,
}

/// The NetworkPolicy for `spec`, named [`object_name`] and carrying the fault ledger's labels and annotations.
pub fn network_policy(spec: &PartitionSpec, stamp: &Stamp) -> Result<NetworkPolicy, ClusterError> {
    let name = object_name(stamp)?;
    spec.validate()?;
    let blocked = spec.blocked()?;
    let (ingress, egress) = spec.directions();
    let everything = matches!(blocked, Blocked::Everything);
    let blocked_pods = match blocked {
        Blocked::Pods(selector) => Some(selector),
        Blocked::Nothing | Blocked::Everything => None,
    };
    let pod_cidrs = if everything { Vec::new() } else { parse_pod_cidrs(&spec.pod_cidrs)? };
    let block_nats = spec.blocks_nats();

    let mut policy_types = Vec::new();
    let mut ingress_rules = Vec::new();
    let mut egress_rules = Vec::new();
    if ingress {
        policy_types.push("Ingress".to_string());
        if !everything {
            // DNS and NATS servers do not open connections to their clients, so ingress excludes only the
            // blocked pods.
            let mut from = in_cluster_peers(&spec.namespace, blocked_pods, false, false);
            from.extend(off_cluster_peers(&pod_cidrs));
            ingress_rules.push(NetworkPolicyIngressRule { from: Some(from), ports: None });
        }
    }
    if egress {
        policy_types.push("Egress".to_string());
        if !everything {
            let mut to = in_cluster_peers(&spec.namespace, blocked_pods, block_nats, spec.block_dns);
            if spec.block_dns {
                // Ports apply to every peer of a rule: addresses outside the cluster get a rule of their own.
                egress_rules.push(NetworkPolicyEgressRule { to: Some(to), ports: None });
                egress_rules.push(NetworkPolicyEgressRule {
                    to: Some(off_cluster_peers(&pod_cidrs)),
                    ports: Some(all_ports_but(DNS_PORT)),
                });
            } else {
                to.extend(off_cluster_peers(&pod_cidrs));
                egress_rules.push(NetworkPolicyEgressRule { to: Some(to), ports: None });
            }
        }
        // Explicit, so that DNS and NATS stay reachable even when the blocked pods include them.
        if !spec.block_dns {
            egress_rules.push(dns_rule());
        }
        if !block_nats {
            egress_rules.push(nats_rule());
        }
    }

    let mut metadata =
        ObjectMeta { name: Some(name), namespace: Some(spec.namespace.clone()), ..ObjectMeta::default() };
    stamp.apply(&mut metadata);
    Ok(NetworkPolicy {
        metadata,
        spec: Some(NetworkPolicySpec {
            pod_selector: Some(LabelSelector {
                match_labels: Some(spec.selector.clone().into()),
                match_expressions: None,
            }),
            policy_types: Some(policy_types),
            ingress: (!ingress_rules.is_empty()).then_some(ingress_rules),
            egress: (!egress_rules.is_empty()).then_some(egress_rules),
        }),
    })
}

/// Every pod in the cluster but the namespace's `blocked` pods (and NATS / cluster DNS pods when blocked), as ORed
/// peers.
fn in_cluster_peers(
    namespace: &str,
    blocked: Option<&BTreeMap<String, String>>,
    block_nats: bool,
    block_dns: bool,
) -> Vec<NetworkPolicyPeer> {
    let nats_excluded = block_nats.then(|| not_in(NATS_LABEL.0, &[NATS_LABEL.1]));
    let dns_excluded = block_dns.then(|| not_in(DNS_LABEL.0, &[DNS_LABEL.1]));
    let dns_here = namespace == DNS_NAMESPACE;

    // The namespace's own pods: a pod fails `k1=v1,k2=v2` when any one key differs, hence one peer per key.
    let mut peers = Vec::new();
    let mut same_namespace = |first: Option<LabelSelectorRequirement>| {
        let mut expressions: Vec<LabelSelectorRequirement> = first.into_iter().collect();
        let also = [nats_excluded.clone(), if dns_here { dns_excluded.clone() } else { None }];
        for requirement in also.into_iter().flatten() {
            if !expressions.contains(&requirement) {
                expressions.push(requirement);
            }
        }
        peers.push(NetworkPolicyPeer { pod_selector: Some(expressions_selector(expressions)), ..Default::default() });
    };
    match blocked {
        Some(selector) => selector.iter().for_each(|(key, value)| same_namespace(Some(not_in(key, &[value])))),
        None => same_namespace(None),
    }

    // Every other namespace, but kube-system when DNS is blocked: its other pods get a peer of their own.
    let mut elsewhere = vec![namespace];
    if block_dns && !dns_here {
        elsewhere.push(DNS_NAMESPACE);
    }
    peers.push(NetworkPolicyPeer {
        namespace_selector: Some(expressions_selector(vec![not_in(NAMESPACE_NAME_LABEL, &elsewhere)])),
        pod_selector: nats_excluded.clone().map(|r| expressions_selector(vec![r])),
        ..Default::default()
    });
    if let (Some(dns_excluded), false) = (dns_excluded, dns_here) {
        peers.push(NetworkPolicyPeer {
            namespace_selector: Some(labels_selector(NAMESPACE_NAME_LABEL, DNS_NAMESPACE)),
            pod_selector: Some(expressions_selector(
                [Some(dns_excluded), nats_excluded].into_iter().flatten().collect(),
            )),
            ..Default::default()
        });
    }
    peers
}

/// Every address outside the pod CIDRs, IPv4 and IPv6.
fn off_cluster_peers(pod_cidrs: &[IpNet]) -> Vec<NetworkPolicyPeer> {
    let block = |all: &str, v4: bool| {
        let except: Vec<String> =
            pod_cidrs.iter().filter(|net| matches!(net, IpNet::V4(_)) == v4).map(IpNet::to_string).collect();
        NetworkPolicyPeer {
            ip_block: Some(IPBlock { cidr: all.to_string(), except: (!except.is_empty()).then_some(except) }),
            ..Default::default()
        }
    };
    vec![block("0.0.0.0/0", true), block("::/0", false)]
}

/// TCP and UDP on every port but `port`.
fn all_ports_but(port: i32) -> Vec<NetworkPolicyPort> {
    ["TCP", "UDP"]
        .into_iter()
        .flat_map(|protocol| [port_range(protocol, 1, port - 1), port_range(protocol, port + 1, 65535)])
        .collect()
}

fn port_range(protocol: &str, first: i32, last: i32) -> NetworkPolicyPort {
    NetworkPolicyPort {
        protocol: Some(protocol.to_string()),
        port: Some(IntOrString::Int(first)),
        end_port: (last > first).then_some(last),
    }
}

fn dns_rule() -> NetworkPolicyEgressRule {
    NetworkPolicyEgressRule {
        to: Some(vec![NetworkPolicyPeer {
            namespace_selector: Some(labels_selector(NAMESPACE_NAME_LABEL, DNS_NAMESPACE)),
            pod_selector: Some(labels_selector(DNS_LABEL.0, DNS_LABEL.1)),
            ..Default::default()
        }]),
        ports: Some(vec![port_range("UDP", DNS_PORT, DNS_PORT), port_range("TCP", DNS_PORT, DNS_PORT)]),
    }
}

fn nats_rule() -> NetworkPolicyEgressRule {
    NetworkPolicyEgressRule {
        to: Some(vec![NetworkPolicyPeer {
            // Present and empty: every namespace.
            namespace_selector: Some(LabelSelector::default()),
            pod_selector: Some(labels_selector(NATS_LABEL.0, NATS_LABEL.1)),
            ..Default::default()
        }]),
        ports: Some(vec![port_range("TCP", NATS_CLIENT_PORT, NATS_CLIENT_PORT)]),
    }
}

fn not_in(key: &str, values: &[&str]) -> LabelSelectorRequirement {
    LabelSelectorRequirement {
        key: key.to_string(),
        operator: "NotIn".to_string(),
        values: Some(values.iter().map(|v| v.to_string()).collect()),
    }
}

fn expressions_selector(expressions: Vec<LabelSelectorRequirement>) -> LabelSelector {
    LabelSelector { match_expressions: (!expressions.is_empty()).then_some(expressions), match_labels: None }
}

fn labels_selector(key: &str, value: &str) -> LabelSelector {
    LabelSelector {
        match_labels: Some(BTreeMap::from([(key.to_string(), value.to_string())])),
        match_expressions: None,
    }
}

/// Parses the pod CIDRs (host bits cleared, as Kubernetes wants them), required unless nothing is left reachable.
fn parse_pod_cidrs(cidrs: &[String]) -> Result<Vec<IpNet>, ClusterError> {
    if cidrs.is_empty() {
        return Err(ClusterError::Usage(
            "the cluster's pod CIDRs are unknown: the partition keeps addresses outside the cluster reachable with \
             ipBlock 0.0.0.0/0 and ::/0, which some network plugins (Calico, for one) also match against pod \
             addresses, so without the pod CIDRs excepted the blocked pods would stay reachable; give the pod CIDRs \
             (the nodes' spec.podCIDRs, or the network plugin's IP pools)"
                .into(),
        ));
    }
    let mut parsed = Vec::new();
    for text in cidrs {
        let bad = || {
            ClusterError::Usage(format!(
                "invalid pod CIDR {text:?}: expected an address range such as 10.244.0.0/16 or fd00:10:244::/56"
            ))
        };
        let net: IpNet = text.trim().parse().map_err(|_| bad())?;
        // A /0 would except every address, i.e. block everything outside the cluster as well.
        if net.prefix_len() == 0 {
            return Err(bad());
        }
        // Host bits cleared, as Kubernetes wants them.
        let net = net.trunc();
        if !parsed.contains(&net) {
            parsed.push(net);
        }
    }
    Ok(parsed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledger::{FaultKind, EXPIRES_ANNOTATION, FAULT_ID_LABEL, MANAGED_BY};
    use crate::partition::fixtures::{allows, both_ways, cluster, labels, pod, selector, stamp, Way};
    use crate::partition::ChaosDirection;

    fn spec(preset: Preset) -> PartitionSpec {
        PartitionSpec {
            namespace: "dynamo".into(),
            selector: selector("app=worker"),
            preset,
            ingress: false,
            egress: false,
            block_nats: false,
            block_dns: false,
            to_selector: None,
            pod_cidrs: vec!["10.244.0.0/16".into(), "fd00:10:244::/56".into()],
        }
    }

    fn policy(spec: &PartitionSpec) -> NetworkPolicy {
        network_policy(spec, &stamp(FaultKind::Partition)).unwrap()
    }

    fn usage_error(spec: &PartitionSpec) -> String {
        match network_policy(spec, &stamp(FaultKind::Partition)) {
            Err(ClusterError::Usage(message)) => message,
            other => panic!("expected a usage error, got {other:?}"),
        }
    }

    #[test]
    fn worker_worker_cuts_the_workers_from_each_other_and_nothing_else() {
        let c = cluster();
        let policy = policy(&spec(Preset::WorkerWorker));
        assert_eq!(policy.metadata.name.as_deref(), Some("faultline-fl-0123456789ab"));
        assert_eq!(policy.metadata.namespace.as_deref(), Some("dynamo"));
        let meta_labels = policy.metadata.labels.as_ref().unwrap();
        assert_eq!(meta_labels[MANAGED_BY.0], MANAGED_BY.1);
        assert_eq!(meta_labels[FAULT_ID_LABEL], "fl-0123456789ab");
        assert_eq!(policy.metadata.annotations.as_ref().unwrap()[EXPIRES_ANNOTATION], "2026-11-22T10:10:00Z");
        let spec = policy.spec.as_ref().unwrap();
        assert_eq!(spec.pod_selector.as_ref().unwrap().match_labels, Some(labels("app=worker")));
        assert_eq!(spec.pod_selector.as_ref().unwrap().match_expressions, None);
        assert_eq!(spec.policy_types, Some(vec!["Ingress".to_string(), "Egress".to_string()]));

        for (protocol, port) in [("TCP", 8000), ("UDP", 53), ("TCP", 4222)] {
            assert_eq!(both_ways(&policy, &c.other_worker, protocol, port), [false, false], "{protocol} {port}");
            assert_eq!(both_ways(&policy, &c.other_worker_v6, protocol, port), [false, false]);
        }
        for peer in [&c.frontend, &c.router, &c.worker_elsewhere, &c.metrics_server, &c.internet, &c.internet_v6] {
            assert_eq!(both_ways(&policy, peer, "TCP", 443), [true, true], "{:?} {}", peer.namespace, peer.ip);
        }
        for nats in [&c.nats_here, &c.nats_elsewhere] {
            assert_eq!(both_ways(&policy, nats, "TCP", NATS_CLIENT_PORT), [true, true]);
        }
        assert!(allows(&policy, Way::Out, &c.kube_dns, "UDP", 53));
        assert!(allows(&policy, Way::Out, &c.kube_dns, "TCP", 53));
        assert!(allows(&policy, Way::Out, &c.node_local_dns, "UDP", 53));

        // The DNS and NATS exceptions are explicit rules, present by default.
        let egress = spec.egress.as_ref().unwrap();
        assert!(egress.contains(&dns_rule()) && egress.contains(&nats_rule()), "{egress:#?}");
        let dns = dns_rule();
        let dns_peer = &dns.to.as_ref().unwrap()[0];
        assert_eq!(
            dns_peer.namespace_selector.as_ref().unwrap().match_labels,
            Some(labels("kubernetes.io/metadata.name=kube-system"))
        );
        assert_eq!(dns_peer.pod_selector.as_ref().unwrap().match_labels, Some(labels("k8s-app=kube-dns")));
        let dns_ports: Vec<(String, Option<IntOrString>)> =
            dns.ports.unwrap().into_iter().map(|p| (p.protocol.unwrap(), p.port)).collect();
        assert_eq!(
            dns_ports,
            [("UDP".to_string(), Some(IntOrString::Int(53))), ("TCP".to_string(), Some(IntOrString::Int(53)))]
        );
        let nats = nats_rule();
        let nats_peer = &nats.to.as_ref().unwrap()[0];
        assert_eq!(nats_peer.namespace_selector, Some(LabelSelector::default()), "NATS in any namespace");
        assert_eq!(nats_peer.pod_selector.as_ref().unwrap().match_labels, Some(labels("app.kubernetes.io/name=nats")));
        assert_eq!(nats.ports.unwrap()[0].port, Some(IntOrString::Int(4222)));
    }

    #[test]
    fn the_ip_blocks_except_the_pod_cidrs_so_they_cannot_let_blocked_pods_back_in() {
        let mut with_host_bits = spec(Preset::WorkerWorker);
        with_host_bits.pod_cidrs = vec!["10.244.1.7/16".into(), "fd00:10:244::1/56".into(), "10.244.0.0/16".into()];
        let policy = policy(&with_host_bits);
        let blocks: Vec<IPBlock> =
            policy.spec.unwrap().ingress.unwrap()[0].from.iter().flatten().filter_map(|p| p.ip_block.clone()).collect();
        assert_eq!(
            blocks,
            [
                IPBlock { cidr: "0.0.0.0/0".into(), except: Some(vec!["10.244.0.0/16".into()]) },
                IPBlock { cidr: "::/0".into(), except: Some(vec!["fd00:10:244::/56".into()]) },
            ]
        );

        let mut missing = spec(Preset::WorkerWorker);
        missing.pod_cidrs.clear();
        assert!(usage_error(&missing).contains("pod CIDRs"));
        for bad in ["10.244.0.0", "10.244.0.0/33", "10.244.0.0/0", "fd00::/129", "pods/16", "10.244.0.0/x"] {
            let mut bad_cidr = spec(Preset::WorkerWorker);
            bad_cidr.pod_cidrs = vec![bad.into()];
            assert!(usage_error(&bad_cidr).contains("invalid pod CIDR"), "{bad}");
        }
    }

    #[test]
    fn a_selector_of_several_labels_blocks_only_pods_with_all_of_them() {
        let c = cluster();
        let mut two_labels = spec(Preset::WorkerWorker);
        two_labels.selector = selector("app=worker,tier=gpu");
        let policy = policy(&two_labels);
        let gpu_worker = pod("dynamo", "app=worker,tier=gpu,role=prefill", "10.244.5.1");
        let cpu_worker = pod("dynamo", "app=worker,tier=cpu", "10.244.5.2");
        assert_eq!(both_ways(&policy, &gpu_worker, "TCP", 8000), [false, false]);
        assert_eq!(both_ways(&policy, &cpu_worker, "TCP", 8000), [true, true]);
        assert_eq!(both_ways(&policy, &c.other_worker, "TCP", 8000), [true, true], "no tier label: not selected");
        let same_namespace_peers = policy.spec.unwrap().ingress.unwrap()[0]
            .from
            .iter()
            .flatten()
            .filter(|p| p.namespace_selector.is_none() && p.ip_block.is_none())
            .count();
        assert_eq!(same_namespace_peers, 2, "one NotIn peer per key");
    }

    #[test]
    fn block_nats_and_block_dns_remove_the_exceptions_and_really_cut_them() {
        let c = cluster();
        let mut blocking = spec(Preset::WorkerWorker);
        blocking.block_nats = true;
        blocking.block_dns = true;
        let policy = policy(&blocking);
        let egress = policy.spec.as_ref().unwrap().egress.as_ref().unwrap();
        assert!(!egress.contains(&dns_rule()) && !egress.contains(&nats_rule()));

        for nats in [&c.nats_here, &c.nats_elsewhere] {
            for port in [NATS_CLIENT_PORT, 8222] {
                assert!(!allows(&policy, Way::Out, nats, "TCP", port), "{:?}:{port}", nats.namespace);
            }
            // NATS never connects to its clients, so ingress does not exclude it.
            assert!(allows(&policy, Way::In, nats, "TCP", 8000));
        }
        for protocol in ["UDP", "TCP"] {
            assert!(!allows(&policy, Way::Out, &c.kube_dns, protocol, 53));
            assert!(!allows(&policy, Way::Out, &c.node_local_dns, protocol, 53), "off-cluster resolvers too");
            assert!(!allows(&policy, Way::Out, &c.internet, protocol, 53));
        }
        assert!(allows(&policy, Way::Out, &c.metrics_server, "TCP", 443), "the rest of kube-system stays");
        assert!(allows(&policy, Way::Out, &c.internet, "TCP", 443));
        assert!(allows(&policy, Way::Out, &c.internet_v6, "UDP", 443));
        assert!(allows(&policy, Way::Out, &c.frontend, "TCP", 8000));
        assert!(!allows(&policy, Way::Out, &c.other_worker, "TCP", 8000));

        // Each flag alone removes only its own exception.
        let mut nats_only = spec(Preset::WorkerWorker);
        nats_only.block_nats = true;
        let nats_only = self::policy(&nats_only);
        assert!(!allows(&nats_only, Way::Out, &c.nats_elsewhere, "TCP", NATS_CLIENT_PORT));
        assert!(allows(&nats_only, Way::Out, &c.kube_dns, "UDP", 53));
        let mut dns_only = spec(Preset::WorkerWorker);
        dns_only.block_dns = true;
        let dns_only = self::policy(&dns_only);
        assert!(!allows(&dns_only, Way::Out, &c.kube_dns, "UDP", 53));
        assert!(allows(&dns_only, Way::Out, &c.nats_here, "TCP", NATS_CLIENT_PORT));
    }

    #[test]
    fn blocked_pods_that_include_nats_leave_nats_reachable_unless_it_is_blocked() {
        let c = cluster();
        let nats = pod("dynamo", "app.kubernetes.io/name=nats,app.kubernetes.io/part-of=dynamo", "10.244.4.5");
        let mut everything_of_dynamo = spec(Preset::Custom);
        everything_of_dynamo.to_selector = Some(selector("app.kubernetes.io/part-of=dynamo"));
        let policy = policy(&everything_of_dynamo);
        assert!(allows(&policy, Way::Out, &nats, "TCP", NATS_CLIENT_PORT));
        assert!(!allows(&policy, Way::Out, &nats, "TCP", 8222), "only the client port is excepted");
        assert!(allows(&policy, Way::Out, &c.other_worker, "TCP", 8000));
        everything_of_dynamo.block_nats = true;
        assert!(!allows(&self::policy(&everything_of_dynamo), Way::Out, &nats, "TCP", NATS_CLIENT_PORT));
    }

    #[test]
    fn frontend_worker_cuts_the_workers_from_the_frontends() {
        let c = cluster();
        let mut frontend = spec(Preset::FrontendWorker);
        assert!(usage_error(&frontend).contains("needs --to-selector"));
        frontend.to_selector = Some(selector("app=frontend"));
        let policy = policy(&frontend);
        assert_eq!(both_ways(&policy, &c.frontend, "TCP", 8000), [false, false]);
        assert_eq!(both_ways(&policy, &c.other_worker, "TCP", 8000), [true, true]);
        assert_eq!(both_ways(&policy, &c.router, "TCP", 8000), [true, true]);
        assert!(allows(&policy, Way::Out, &c.kube_dns, "UDP", 53));

        frontend.to_selector = Some(Labels::default());
        assert!(usage_error(&frontend).contains("--to-selector is empty"));
    }

    #[test]
    fn worker_nats_cuts_only_nats_and_only_outgoing() {
        let c = cluster();
        let policy = policy(&spec(Preset::WorkerNats));
        let types = policy.spec.as_ref().unwrap().policy_types.clone();
        assert_eq!(types, Some(vec!["Egress".to_string()]));
        assert!(policy.spec.as_ref().unwrap().ingress.is_none());
        for nats in [&c.nats_here, &c.nats_elsewhere] {
            assert!(!allows(&policy, Way::Out, nats, "TCP", NATS_CLIENT_PORT));
        }
        for peer in [&c.other_worker, &c.frontend, &c.worker_elsewhere, &c.metrics_server, &c.internet] {
            assert!(allows(&policy, Way::Out, peer, "TCP", 8000));
        }
        assert!(allows(&policy, Way::Out, &c.kube_dns, "UDP", 53));
        assert!(!policy.spec.unwrap().egress.unwrap().contains(&nats_rule()));

        let mut ingress_only = spec(Preset::WorkerNats);
        ingress_only.ingress = true;
        assert!(usage_error(&ingress_only).contains("--ingress does not apply"));
        ingress_only.egress = true;
        assert!(usage_error(&ingress_only).contains("--ingress does not apply"));
        let mut with_target = spec(Preset::WorkerNats);
        with_target.to_selector = Some(selector("app=frontend"));
        assert!(usage_error(&with_target).contains("does not apply to --preset worker-nats"));
    }

    #[test]
    fn custom_blocks_the_target_or_isolates_the_pods() {
        let c = cluster();
        let mut router = spec(Preset::Custom);
        router.to_selector = Some(selector("app=router"));
        let policy = policy(&router);
        assert_eq!(both_ways(&policy, &c.router, "TCP", 8000), [false, false]);
        assert_eq!(both_ways(&policy, &c.other_worker, "TCP", 8000), [true, true]);

        // No target: nothing in or out but DNS and NATS, and no pod CIDRs needed.
        let mut isolated = spec(Preset::Custom);
        isolated.pod_cidrs.clear();
        let policy = self::policy(&isolated);
        assert_eq!(policy.spec.as_ref().unwrap().ingress, None, "no ingress rule: nothing comes in");
        for peer in [&c.other_worker, &c.frontend, &c.worker_elsewhere, &c.metrics_server, &c.internet, &c.kube_dns] {
            assert_eq!(both_ways(&policy, peer, "TCP", 8000), [false, false]);
        }
        assert!(allows(&policy, Way::Out, &c.kube_dns, "UDP", 53));
        assert!(allows(&policy, Way::Out, &c.nats_elsewhere, "TCP", NATS_CLIENT_PORT));
        assert!(!allows(&policy, Way::Out, &c.nats_elsewhere, "TCP", 8222));
        assert!(!allows(&policy, Way::In, &c.nats_elsewhere, "TCP", 8000));

        isolated.block_dns = true;
        isolated.block_nats = true;
        let policy = self::policy(&isolated);
        assert_eq!(policy.spec.as_ref().unwrap().egress, None, "no egress rule: nothing goes out");
        assert!(!allows(&policy, Way::Out, &c.kube_dns, "UDP", 53));
        assert!(!allows(&policy, Way::Out, &c.nats_here, "TCP", NATS_CLIENT_PORT));
    }

    #[test]
    fn one_direction_only() {
        let c = cluster();
        let mut ingress = spec(Preset::WorkerWorker);
        ingress.ingress = true;
        let policy = policy(&ingress);
        assert_eq!(policy.spec.as_ref().unwrap().policy_types, Some(vec!["Ingress".to_string()]));
        assert_eq!(policy.spec.as_ref().unwrap().egress, None);
        assert_eq!(both_ways(&policy, &c.other_worker, "TCP", 8000), [false, true]);

        let mut egress = spec(Preset::WorkerWorker);
        egress.egress = true;
        let policy = self::policy(&egress);
        assert_eq!(policy.spec.as_ref().unwrap().policy_types, Some(vec!["Egress".to_string()]));
        assert_eq!(both_ways(&policy, &c.other_worker, "TCP", 8000), [true, false]);

        for flag in ["dns", "nats"] {
            let mut useless = spec(Preset::WorkerWorker);
            useless.ingress = true;
            useless.block_dns = flag == "dns";
            useless.block_nats = flag == "nats";
            assert!(usage_error(&useless).contains(&format!("--block-{flag} blocks connections")), "{flag}");
        }
    }

    #[test]
    fn blocking_dns_from_kube_system_itself() {
        let c = cluster();
        let mut system = spec(Preset::WorkerWorker);
        system.namespace = "kube-system".into();
        system.block_dns = true;
        let policy = policy(&system);
        assert!(!allows(&policy, Way::Out, &c.kube_dns, "UDP", 53));
        assert!(allows(&policy, Way::Out, &c.metrics_server, "TCP", 443));
        assert!(allows(&policy, Way::Out, &c.worker_elsewhere, "TCP", 443));
    }

    #[test]
    fn bad_partition_requests_are_usage_errors() {
        let mut bad = spec(Preset::WorkerWorker);
        bad.selector = Labels::default();
        assert!(usage_error(&bad).contains("--selector is empty"));
        // A bad key cannot even be put in a selector: it only exists checked.
        assert!("bad key=x".parse::<Labels>().is_err());
        for namespace in ["", "Dynamo", "dynamo_1", "-dynamo", &"n".repeat(64)] {
            let mut bad = spec(Preset::WorkerWorker);
            bad.namespace = namespace.into();
            assert!(usage_error(&bad).contains("invalid namespace"), "{namespace:?}");
        }
        let mut bad_id = stamp(FaultKind::Partition);
        bad_id.fault_id = "FL/1".into();
        assert!(matches!(network_policy(&spec(Preset::WorkerWorker), &bad_id), Err(ClusterError::Usage(_))));
        assert_eq!(ClusterError::Usage(usage_error(&bad)).exit_code(), faultline_core::error::EXIT_USAGE);
    }

    #[test]
    fn presets_by_name() {
        for preset in Preset::ALL {
            assert_eq!(Preset::parse(preset.as_str()).unwrap(), preset);
        }
        assert_eq!(Preset::parse("worker-worker").unwrap(), Preset::WorkerWorker);
        let error = Preset::parse("worker_worker").unwrap_err().to_string();
        assert!(error.contains("worker-worker, frontend-worker, worker-nats, custom"), "{error}");
        assert!(ChaosDirection::parse("sideways").is_err());
        assert_eq!(ChaosDirection::parse("both").unwrap(), ChaosDirection::Both);
    }
}
