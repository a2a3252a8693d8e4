//! Network partitions as Kubernetes objects, built purely (objects out, no API calls: [`super::kube_api`] creates,
//! lists and deletes them): a NetworkPolicy for the presets ([`network_policy`]), or a Chaos Mesh NetworkChaos for
//! partition, loss, delay and bandwidth faults where its CRD is installed ([`network_chaos`]).
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
//!
//! # Chaos Mesh
//!
//! [`network_chaos`] builds a `chaos-mesh.org/v1alpha1` NetworkChaos in the namespace: mode `all` over the pods
//! matching the selector and, with `--to-selector`, a target (mode `all`, same namespace). Direction as Chaos Mesh
//! defines it: `to` acts on packets from the selected pods to the target, `from` on packets from the target to the
//! selected pods, `both` on both. Without a target the action applies to all of the selected pods' outgoing
//! traffic, so `from` and `both` need one (Chaos Mesh's admission webhook rejects them without one for netem
//! actions; faultline asks for it for every action). The duration is the fault's ttl: Chaos Mesh stops the fault
//! then, and `faultline cluster reap` removes the object.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::Duration;

use k8s_openapi::api::networking::v1::{
    IPBlock, NetworkPolicy, NetworkPolicyEgressRule, NetworkPolicyIngressRule, NetworkPolicyPeer, NetworkPolicyPort,
    NetworkPolicySpec,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, LabelSelectorRequirement, ObjectMeta};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use serde_json::{json, Map, Value};

use super::ledger::Stamp;
use super::ClusterError;

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

/// Chaos Mesh's API group.
pub const CHAOS_MESH_GROUP: &str = "chaos-mesh.org";

/// The Chaos Mesh API version of NetworkChaos.
pub const CHAOS_MESH_VERSION: &str = "v1alpha1";

/// The kind.
pub const NETWORK_CHAOS_KIND: &str = "NetworkChaos";

/// The resource (plural) name for the dynamic API.
pub const NETWORK_CHAOS_PLURAL: &str = "networkchaos";

/// The name of the object a fault creates: `faultline-<fault id>`.
pub fn object_name(stamp: &Stamp) -> Result<String, ClusterError> {
    let name = format!("faultline-{}", stamp.fault_id);
    if name.len() > 253 || !is_dns_subdomain(&name) {
        return Err(ClusterError::Usage(format!(
            "fault id {:?} does not make a valid object name ({name:?} must be lower-case letters, digits, '-' and \
             '.', at most 253 characters)",
            stamp.fault_id
        )));
    }
    Ok(name)
}

/// Parses a label selector `KEY=VALUE[,KEY=VALUE…]` (equality only, as `--selector` and `--to-selector` take it),
/// checking keys and values the way Kubernetes does.
pub fn parse_selector(text: &str) -> Result<BTreeMap<String, String>, ClusterError> {
    let bad = |why: String| ClusterError::Usage(format!("invalid label selector {text:?}: {why}"));
    if text.trim().is_empty() {
        return Err(bad("it is empty; expected KEY=VALUE[,KEY=VALUE…], e.g. app=worker".into()));
    }
    let mut selector = BTreeMap::new();
    for item in text.split(',') {
        let item = item.trim();
        if item.is_empty() {
            return Err(bad("an empty KEY=VALUE between commas".into()));
        }
        let Some((key, value)) = item.split_once('=') else {
            return Err(bad(format!("{item:?} is not KEY=VALUE (only equality selectors are supported)")));
        };
        if key.ends_with('!') {
            return Err(bad(format!("{item:?}: only equality (KEY=VALUE) is supported, not !=")));
        }
        // `k==v` is kubectl's other spelling of `k=v`.
        let (key, value) = (key.trim(), value.strip_prefix('=').unwrap_or(value).trim());
        check_selector_entry(key, value).map_err(bad)?;
        if let Some(previous) = selector.insert(key.to_string(), value.to_string()) {
            if previous != value {
                return Err(bad(format!("key {key:?} is given twice, as {previous:?} and {value:?}")));
            }
        }
    }
    Ok(selector)
}

/// Checks that `namespace` can be a namespace name (a DNS-1123 label).
pub fn validate_namespace(namespace: &str) -> Result<(), ClusterError> {
    if is_dns_label(namespace) {
        Ok(())
    } else {
        Err(ClusterError::Usage(format!(
            "invalid namespace {namespace:?}: expected lower-case letters, digits and '-', starting and ending with a \
             letter or digit, at most 63 characters"
        )))
    }
}

/// A partition preset: which pods the selected pods lose.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Preset {
    /// The selected pods cannot talk to pods matching the same selector (or `--to-selector`).
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
    pub selector: BTreeMap<String, String>,
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
    pub to_selector: Option<BTreeMap<String, String>>,
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
    validate_namespace(&spec.namespace)?;
    check_selector("--selector", &spec.selector)?;
    if let Some(to) = &spec.to_selector {
        check_selector("--to-selector", to)?;
    }
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
            pod_selector: Some(LabelSelector { match_labels: Some(spec.selector.clone()), match_expressions: None }),
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
fn off_cluster_peers(pod_cidrs: &[(IpAddr, u8)]) -> Vec<NetworkPolicyPeer> {
    let block = |all: &str, v4: bool| {
        let except: Vec<String> =
            pod_cidrs.iter().filter(|(ip, _)| ip.is_ipv4() == v4).map(|(ip, len)| format!("{ip}/{len}")).collect();
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
fn parse_pod_cidrs(cidrs: &[String]) -> Result<Vec<(IpAddr, u8)>, ClusterError> {
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
        let (address, length) = text.trim().split_once('/').ok_or_else(bad)?;
        let address: IpAddr = address.parse().map_err(|_| bad())?;
        let length: u8 = length.parse().map_err(|_| bad())?;
        let bits = if address.is_ipv4() { 32 } else { 128 };
        // A /0 would except every address, i.e. block everything outside the cluster as well.
        if length == 0 || length > bits {
            return Err(bad());
        }
        let network = match address {
            IpAddr::V4(v4) => IpAddr::V4((u32::from(v4) & (u32::MAX << (32 - length))).into()),
            IpAddr::V6(v6) => IpAddr::V6((u128::from(v6) & (u128::MAX << (128 - length))).into()),
        };
        if !parsed.contains(&(network, length)) {
            parsed.push((network, length));
        }
    }
    Ok(parsed)
}

/// Chaos Mesh's `direction`: which packets between the selected pods and the target the action applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ChaosDirection {
    /// From the selected pods to the target (Chaos Mesh's default).
    To,
    /// From the target to the selected pods.
    From,
    /// Both ways.
    Both,
}

impl ChaosDirection {
    /// Every direction.
    pub const ALL: [ChaosDirection; 3] = [ChaosDirection::To, ChaosDirection::From, ChaosDirection::Both];

    /// The `--direction` value (and Chaos Mesh's).
    pub fn as_str(self) -> &'static str {
        match self {
            ChaosDirection::To => "to",
            ChaosDirection::From => "from",
            ChaosDirection::Both => "both",
        }
    }

    /// The direction a `--direction` value names.
    pub fn parse(text: &str) -> Result<ChaosDirection, ClusterError> {
        ChaosDirection::ALL
            .into_iter()
            .find(|d| d.as_str() == text)
            .ok_or_else(|| ClusterError::Usage(format!("unknown --direction {text:?}: expected to, from or both")))
    }
}

/// A Chaos Mesh network action with its parameters, as the CRD spells them (strings where it wants strings).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChaosAction {
    /// Drop every packet.
    Partition,
    /// Drop a share of the packets.
    Loss {
        /// Percent of packets lost, more than 0 and at most 100 (`25`, `0.5`).
        loss: String,
        /// Percent by which each loss depends on the previous one, 0 to 100.
        correlation: Option<String>,
    },
    /// Delay the packets.
    Delay {
        /// The delay, a Go duration (`100ms`, `1.5s`), more than 0.
        latency: String,
        /// Its variation, a Go duration.
        jitter: Option<String>,
        /// Percent by which each delay depends on the previous one, 0 to 100.
        correlation: Option<String>,
    },
    /// Limit the bandwidth (a token bucket: tc tbf).
    Bandwidth {
        /// The rate: a whole number with `bps`, `kbps`, `mbps`, `gbps` or `tbps` (bytes per second, 1024-based).
        rate: String,
        /// Bytes that may queue waiting for tokens (at least 1).
        limit: u32,
        /// Bytes the bucket holds, the largest instantaneous burst (at least 1).
        buffer: u32,
        /// The peak rate in bytes per second, when millisecond-scale shaping is needed.
        peakrate: Option<u64>,
        /// The size of the peak-rate bucket in bytes (usually the MTU).
        minburst: Option<u32>,
    },
}

/// The action parameters as the command line gives them (each flag's text, `None` when absent).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ChaosParams {
    /// `--loss` (percent).
    pub loss: Option<String>,
    /// `--correlation` (percent; loss and delay).
    pub correlation: Option<String>,
    /// `--latency` (Go duration).
    pub latency: Option<String>,
    /// `--jitter` (Go duration).
    pub jitter: Option<String>,
    /// `--rate` (`1mbps`).
    pub rate: Option<String>,
    /// `--limit` (bytes).
    pub limit: Option<String>,
    /// `--buffer` (bytes).
    pub buffer: Option<String>,
    /// `--peakrate` (bytes per second).
    pub peakrate: Option<String>,
    /// `--minburst` (bytes).
    pub minburst: Option<String>,
}

impl ChaosAction {
    /// The `--action` values, in the order `--help` lists them.
    pub const NAMES: [&'static str; 4] = ["partition", "loss", "delay", "bandwidth"];

    /// Chaos Mesh's `spec.action`.
    pub fn name(&self) -> &'static str {
        match self {
            ChaosAction::Partition => "partition",
            ChaosAction::Loss { .. } => "loss",
            ChaosAction::Delay { .. } => "delay",
            ChaosAction::Bandwidth { .. } => "bandwidth",
        }
    }

    /// The action `--action` names with its parameters: each required one present, none that belongs to another
    /// action, every value valid.
    pub fn from_params(action: &str, params: &ChaosParams) -> Result<ChaosAction, ClusterError> {
        let flags: [(&str, &Option<String>, &[&str]); 9] = [
            ("--loss", &params.loss, &["loss"]),
            ("--correlation", &params.correlation, &["loss", "delay"]),
            ("--latency", &params.latency, &["delay"]),
            ("--jitter", &params.jitter, &["delay"]),
            ("--rate", &params.rate, &["bandwidth"]),
            ("--limit", &params.limit, &["bandwidth"]),
            ("--buffer", &params.buffer, &["bandwidth"]),
            ("--peakrate", &params.peakrate, &["bandwidth"]),
            ("--minburst", &params.minburst, &["bandwidth"]),
        ];
        if !ChaosAction::NAMES.contains(&action) {
            return Err(ClusterError::Usage(format!(
                "unknown --action {action:?}: expected one of {}",
                ChaosAction::NAMES.join(", ")
            )));
        }
        for (flag, value, actions) in flags {
            if value.is_some() && !actions.contains(&action) {
                return Err(ClusterError::Usage(format!(
                    "{flag} does not apply to --action {action} (it is a parameter of --action {})",
                    actions.join(" and --action ")
                )));
            }
        }
        let required = |flag: &str, value: &Option<String>, example: &str| {
            value
                .clone()
                .ok_or_else(|| ClusterError::Usage(format!("--action {action} needs {flag} (e.g. {flag} {example})")))
        };
        let chaos = match action {
            "partition" => ChaosAction::Partition,
            "loss" => ChaosAction::Loss {
                loss: required("--loss", &params.loss, "25")?,
                correlation: params.correlation.clone(),
            },
            "delay" => ChaosAction::Delay {
                latency: required("--latency", &params.latency, "100ms")?,
                jitter: params.jitter.clone(),
                correlation: params.correlation.clone(),
            },
            _ => ChaosAction::Bandwidth {
                rate: required("--rate", &params.rate, "1mbps")?,
                limit: parse_bytes("--limit", &required("--limit", &params.limit, "20971520")?)?,
                buffer: parse_bytes("--buffer", &required("--buffer", &params.buffer, "10000")?)?,
                peakrate: params.peakrate.as_deref().map(parse_peakrate).transpose()?,
                minburst: params.minburst.as_deref().map(|m| parse_count("--minburst", m, 0)).transpose()?,
            },
        };
        chaos.parameters()?;
        Ok(chaos)
    }

    /// The CRD's parameter block for the action (`loss`, `delay`, `bandwidth`; none for partition), validated.
    fn parameters(&self) -> Result<Option<(&'static str, Value)>, ClusterError> {
        Ok(match self {
            ChaosAction::Partition => None,
            ChaosAction::Loss { loss, correlation } => {
                let mut block = Map::new();
                block.insert("loss".into(), percent("--loss", loss, false)?.into());
                if let Some(correlation) = correlation {
                    block.insert("correlation".into(), percent("--correlation", correlation, true)?.into());
                }
                Some(("loss", Value::Object(block)))
            }
            ChaosAction::Delay { latency, jitter, correlation } => {
                let mut block = Map::new();
                block.insert("latency".into(), go_duration("--latency", latency, false)?.into());
                if let Some(jitter) = jitter {
                    block.insert("jitter".into(), go_duration("--jitter", jitter, true)?.into());
                }
                if let Some(correlation) = correlation {
                    block.insert("correlation".into(), percent("--correlation", correlation, true)?.into());
                }
                Some(("delay", Value::Object(block)))
            }
            ChaosAction::Bandwidth { rate, limit, buffer, peakrate, minburst } => {
                let mut block = Map::new();
                block.insert("rate".into(), bandwidth_rate(rate)?.into());
                block.insert("limit".into(), check_count("--limit", (*limit).into(), 1)?.into());
                block.insert("buffer".into(), check_count("--buffer", (*buffer).into(), 1)?.into());
                if let Some(peakrate) = peakrate {
                    block.insert("peakrate".into(), check_peakrate(&peakrate.to_string(), Some(*peakrate))?.into());
                }
                if let Some(minburst) = minburst {
                    block.insert("minburst".into(), check_count("--minburst", (*minburst).into(), 0)?.into());
                }
                Some(("bandwidth", Value::Object(block)))
            }
        })
    }
}

/// A Chaos Mesh NetworkChaos, as `faultline cluster partition create --mode chaos-mesh` describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChaosSpec {
    /// The namespace of the selected pods, of the target and of the NetworkChaos.
    pub namespace: String,
    /// The pods the action applies to (`--selector`).
    pub selector: BTreeMap<String, String>,
    /// What happens to their packets.
    pub action: ChaosAction,
    /// Which packets (`from` and `both` need a target).
    pub direction: ChaosDirection,
    /// `--to-selector`: only the traffic with these pods (of the same namespace); `None`: all traffic.
    pub target: Option<BTreeMap<String, String>>,
    /// How long Chaos Mesh keeps the fault (the ttl); `None`: until the object is deleted.
    pub duration: Option<Duration>,
}

/// The complete `chaos-mesh.org/v1alpha1` NetworkChaos object for `spec`, named [`object_name`] and carrying the
/// fault ledger's labels and annotations.
pub fn network_chaos(spec: &ChaosSpec, stamp: &Stamp) -> Result<Value, ClusterError> {
    let name = object_name(stamp)?;
    validate_namespace(&spec.namespace)?;
    check_selector("--selector", &spec.selector)?;
    if let Some(target) = &spec.target {
        check_selector("--to-selector", target)?;
    } else if spec.direction != ChaosDirection::To {
        return Err(ClusterError::Usage(format!(
            "--direction {} needs --to-selector: Chaos Mesh defines `from` and `both` relative to a target (the \
             packets from the target's pods to the selected pods); without one only `to` (all the selected pods' \
             outgoing traffic) applies",
            spec.direction.as_str()
        )));
    }

    let mut body = Map::new();
    body.insert("action".into(), spec.action.name().into());
    body.insert("mode".into(), "all".into());
    body.insert("selector".into(), pod_selector(&spec.namespace, &spec.selector));
    body.insert("direction".into(), spec.direction.as_str().into());
    if let Some(target) = &spec.target {
        body.insert("target".into(), json!({ "mode": "all", "selector": pod_selector(&spec.namespace, target) }));
    }
    if let Some(duration) = spec.duration {
        body.insert("duration".into(), go_duration_text(duration)?.into());
    }
    if let Some((key, parameters)) = spec.action.parameters()? {
        body.insert(key.into(), parameters);
    }
    Ok(json!({
        "apiVersion": format!("{CHAOS_MESH_GROUP}/{CHAOS_MESH_VERSION}"),
        "kind": NETWORK_CHAOS_KIND,
        "metadata": {
            "name": name,
            "namespace": spec.namespace,
            "labels": stamp.labels(),
            "annotations": stamp.annotations(),
        },
        "spec": body,
    }))
}

fn pod_selector(namespace: &str, labels: &BTreeMap<String, String>) -> Value {
    json!({ "namespaces": [namespace], "labelSelectors": labels })
}

/// A duration as Go writes it (Chaos Mesh parses `spec.duration` with `time.ParseDuration`).
fn go_duration_text(duration: Duration) -> Result<String, ClusterError> {
    if duration.is_zero() {
        return Err(ClusterError::Usage("the fault's duration (--ttl) must be more than 0".into()));
    }
    Ok(if duration.subsec_nanos() == 0 {
        format!("{}s", duration.as_secs())
    } else if duration.subsec_nanos().is_multiple_of(1_000_000) {
        format!("{}ms", duration.as_millis())
    } else {
        format!("{}ns", duration.as_nanos())
    })
}

/// A percentage as Chaos Mesh takes it (a decimal string; a trailing `%` is dropped).
fn percent(flag: &str, text: &str, zero_allowed: bool) -> Result<String, ClusterError> {
    let number = text.trim().strip_suffix('%').unwrap_or(text.trim()).trim();
    let value: Option<f64> = number.parse().ok().filter(|v: &f64| v.is_finite());
    match value {
        Some(v) if (v > 0.0 || (zero_allowed && v == 0.0)) && v <= 100.0 => Ok(number.to_string()),
        _ => Err(ClusterError::Usage(format!(
            "invalid {flag} {text:?}: expected a percentage {} 0 to 100, e.g. 25 or 0.5",
            if zero_allowed { "from" } else { "above" }
        ))),
    }
}

/// A Go duration (`300ms`, `1.5s`, `1m30s`; units ns, us, µs, ms, s, m, h), as `time.ParseDuration` takes it.
fn go_duration(flag: &str, text: &str, zero_allowed: bool) -> Result<String, ClusterError> {
    let text = text.trim();
    let nanos = go_duration_nanos(text);
    match nanos {
        Some(n) if n > 0.0 || zero_allowed => Ok(text.to_string()),
        _ => Err(ClusterError::Usage(format!(
            "invalid {flag} {text:?}: expected a {}duration with a unit such as 100ms, 1.5s or 10us (units ns, us, \
             ms, s, m, h)",
            if zero_allowed { "" } else { "positive " }
        ))),
    }
}

/// The nanoseconds in a Go duration without a sign, or `None` when it is not one.
fn go_duration_nanos(text: &str) -> Option<f64> {
    if text == "0" {
        return Some(0.0);
    }
    let mut rest = text;
    let mut total = 0.0;
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let number_end = rest.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(rest.len());
        let (number, tail) = rest.split_at(number_end);
        if number.is_empty() || number == "." || number.matches('.').count() > 1 {
            return None;
        }
        let unit_end = tail.find(|c: char| c.is_ascii_digit() || c == '.').unwrap_or(tail.len());
        let (unit, tail) = tail.split_at(unit_end);
        let scale = match unit {
            "ns" => 1.0,
            "us" | "µs" | "μs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => return None,
        };
        total += number.parse::<f64>().ok()? * scale;
        rest = tail;
    }
    // time.ParseDuration overflows past about 292 years.
    (total <= i64::MAX as f64).then_some(total)
}

/// A bandwidth rate as Chaos Mesh takes it: a whole number and a unit (`bps` … `tbps`).
fn bandwidth_rate(text: &str) -> Result<String, ClusterError> {
    let bad = || {
        ClusterError::Usage(format!(
            "invalid --rate {text:?}: expected a whole number of bytes per second with a unit bps, kbps, mbps, gbps or \
             tbps (1024-based), e.g. 1mbps"
        ))
    };
    let normalized = text.trim().to_ascii_lowercase();
    // Longest first: every unit ends in "bps".
    for (power, unit) in [(4, "tbps"), (3, "gbps"), (2, "mbps"), (1, "kbps"), (0, "bps")] {
        if let Some(number) = normalized.strip_suffix(unit) {
            let number = number.trim();
            if number.is_empty() || !number.bytes().all(|b| b.is_ascii_digit()) {
                return Err(bad());
            }
            let count: u64 = number.parse().map_err(|_| bad())?;
            let bytes = (0..power).try_fold(count, |n, _| n.checked_mul(1024)).ok_or_else(bad)?;
            if bytes == 0 {
                return Err(bad());
            }
            return Ok(format!("{count}{unit}"));
        }
    }
    Err(bad())
}

/// A byte count for `--limit` / `--buffer` (the CRD: int32, at least 1).
fn parse_bytes(flag: &str, text: &str) -> Result<u32, ClusterError> {
    parse_count(flag, text, 1)
}

/// A whole number from `minimum` up to the CRD's int32 maximum.
fn parse_count(flag: &str, text: &str, minimum: u32) -> Result<u32, ClusterError> {
    let count = text.trim().parse::<u64>().unwrap_or(u64::MAX);
    check_count(flag, count, minimum).map_err(|_| count_error(flag, text, minimum))
}

fn check_count(flag: &str, count: u64, minimum: u32) -> Result<u32, ClusterError> {
    match u32::try_from(count) {
        Ok(n) if n >= minimum && i32::try_from(n).is_ok() => Ok(n),
        _ => Err(count_error(flag, &count.to_string(), minimum)),
    }
}

fn count_error(flag: &str, text: &str, minimum: u32) -> ClusterError {
    ClusterError::Usage(format!(
        "invalid {flag} {text:?}: expected a whole number of bytes from {minimum} to {}",
        i32::MAX
    ))
}

/// `--peakrate` (the CRD: int64, at least 0).
fn parse_peakrate(text: &str) -> Result<u64, ClusterError> {
    check_peakrate(text, text.trim().parse::<u64>().ok())
}

fn check_peakrate(text: &str, peakrate: Option<u64>) -> Result<u64, ClusterError> {
    match peakrate {
        Some(n) if i64::try_from(n).is_ok() => Ok(n),
        _ => Err(ClusterError::Usage(format!(
            "invalid --peakrate {text:?}: expected a whole number of bytes per second up to {}",
            i64::MAX
        ))),
    }
}

/// Checks a selector given as a map (the specs' fields are public, so not necessarily from [`parse_selector`]).
fn check_selector(flag: &str, selector: &BTreeMap<String, String>) -> Result<(), ClusterError> {
    if selector.is_empty() {
        return Err(ClusterError::Usage(format!(
            "{flag} is empty: give at least one KEY=VALUE (an empty selector would select every pod)"
        )));
    }
    for (key, value) in selector {
        check_selector_entry(key, value)
            .map_err(|why| ClusterError::Usage(format!("invalid {flag} {key}={value}: {why}")))?;
    }
    Ok(())
}

/// Why `key=value` cannot be a label, if it cannot.
fn check_selector_entry(key: &str, value: &str) -> Result<(), String> {
    let (prefix, name) = match key.rsplit_once('/') {
        Some((prefix, name)) => (Some(prefix), name),
        None => (None, key),
    };
    if let Some(prefix) = prefix {
        if prefix.is_empty() || prefix.len() > 253 || !is_dns_subdomain(prefix) {
            return Err(format!(
                "label key {key:?}: the prefix before '/' must be a DNS subdomain (lower-case letters, digits, '-' \
                 and '.', at most 253 characters)"
            ));
        }
    }
    if !is_label_name(name) {
        return Err(format!(
            "label key {key:?}: the name must be 1 to 63 letters, digits, '-', '_' or '.', starting and ending with a \
             letter or digit"
        ));
    }
    if !value.is_empty() && !is_label_name(value) {
        return Err(format!(
            "label value {value:?}: at most 63 letters, digits, '-', '_' or '.', starting and ending with a letter or \
             digit"
        ));
    }
    Ok(())
}

/// A label name or value: `([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]`, at most 63 characters.
fn is_label_name(text: &str) -> bool {
    let bytes = text.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= 63
        && bytes[0].is_ascii_alphanumeric()
        && bytes[bytes.len() - 1].is_ascii_alphanumeric()
        && bytes.iter().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

/// A DNS-1123 label: `[a-z0-9]([-a-z0-9]*[a-z0-9])?`, at most 63 characters.
fn is_dns_label(text: &str) -> bool {
    let bytes = text.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= 63
        && bytes[0].is_ascii_alphanumeric()
        && bytes[bytes.len() - 1].is_ascii_alphanumeric()
        && bytes.iter().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-')
}

/// A DNS-1123 subdomain: DNS labels joined by dots (the caller checks the length).
fn is_dns_subdomain(text: &str) -> bool {
    text.split('.').all(is_dns_label)
}

#[cfg(test)]
mod tests {
    use std::net::{Ipv4Addr, Ipv6Addr};

    use super::*;
    use crate::cluster::kube_api::ObjectType;
    use crate::cluster::ledger::{FaultKind, EXPIRES_ANNOTATION, FAULT_ID_LABEL, MANAGED_BY};

    fn stamp(kind: FaultKind) -> Stamp {
        let now = "2026-11-22T10:00:00Z".parse().unwrap();
        Stamp::at(kind, "fl-0123456789ab".into(), now, Some(Duration::from_secs(600)), "alice@laptop".into())
    }

    fn labels(text: &str) -> BTreeMap<String, String> {
        parse_selector(text).unwrap()
    }

    fn spec(preset: Preset) -> PartitionSpec {
        PartitionSpec {
            namespace: "dynamo".into(),
            selector: labels("app=worker"),
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

    /// Where traffic goes to or comes from: a pod (namespace and labels) or an address outside the cluster.
    struct Peer {
        namespace: Option<&'static str>,
        labels: BTreeMap<String, String>,
        ip: IpAddr,
    }

    fn pod(namespace: &'static str, selector: &str, ip: &str) -> Peer {
        Peer { namespace: Some(namespace), labels: labels(selector), ip: ip.parse().unwrap() }
    }

    fn outside(ip: &str) -> Peer {
        Peer { namespace: None, labels: BTreeMap::new(), ip: ip.parse().unwrap() }
    }

    #[derive(Clone, Copy, PartialEq)]
    enum Way {
        In,
        Out,
    }

    /// A rule's peers and ports (`None`: any).
    type Rule<'a> = (Option<&'a Vec<NetworkPolicyPeer>>, Option<&'a Vec<NetworkPolicyPort>>);

    /// Whether `policy` lets a new connection between its pods and `peer` through (`Way::Out`: the pods connect
    /// to the peer), read the strict way: ipBlock matches pod addresses too, as Calico does.
    fn allows(policy: &NetworkPolicy, way: Way, peer: &Peer, protocol: &str, port: i32) -> bool {
        let spec = policy.spec.as_ref().unwrap();
        let types = spec.policy_types.as_ref().unwrap();
        let namespace = policy.metadata.namespace.as_deref().unwrap();
        let rules: Vec<Rule<'_>> = match way {
            Way::In if types.iter().any(|t| t == "Ingress") => {
                spec.ingress.iter().flatten().map(|r| (r.from.as_ref(), r.ports.as_ref())).collect()
            }
            Way::Out if types.iter().any(|t| t == "Egress") => {
                spec.egress.iter().flatten().map(|r| (r.to.as_ref(), r.ports.as_ref())).collect()
            }
            // Not isolated in that direction by this policy.
            _ => return true,
        };
        rules.into_iter().any(|(peers, ports)| {
            let peer_ok = peers.is_none_or(|peers| peers.iter().any(|p| peer_matches(p, namespace, peer)));
            let port_ok = ports.is_none_or(|ports| ports.iter().any(|p| port_matches(p, protocol, port)));
            peer_ok && port_ok
        })
    }

    fn peer_matches(rule_peer: &NetworkPolicyPeer, policy_namespace: &str, peer: &Peer) -> bool {
        if let Some(block) = &rule_peer.ip_block {
            return in_cidr(peer.ip, &block.cidr) && !block.except.iter().flatten().any(|c| in_cidr(peer.ip, c));
        }
        let Some(namespace) = peer.namespace else { return false };
        let namespace_ok = match &rule_peer.namespace_selector {
            None => namespace == policy_namespace,
            Some(selector) => {
                selects(selector, &BTreeMap::from([(NAMESPACE_NAME_LABEL.to_string(), namespace.to_string())]))
            }
        };
        namespace_ok && rule_peer.pod_selector.as_ref().is_none_or(|s| selects(s, &peer.labels))
    }

    fn selects(selector: &LabelSelector, labels: &BTreeMap<String, String>) -> bool {
        let labels_ok = selector.match_labels.iter().flatten().all(|(k, v)| labels.get(k) == Some(v));
        let expressions_ok = selector.match_expressions.iter().flatten().all(|r| {
            let values = r.values.clone().unwrap_or_default();
            let value = labels.get(&r.key);
            match r.operator.as_str() {
                "In" => value.is_some_and(|v| values.contains(v)),
                "NotIn" => !value.is_some_and(|v| values.contains(v)),
                "Exists" => value.is_some(),
                "DoesNotExist" => value.is_none(),
                other => panic!("operator {other}"),
            }
        });
        labels_ok && expressions_ok
    }

    fn port_matches(rule_port: &NetworkPolicyPort, protocol: &str, port: i32) -> bool {
        let protocol_ok = rule_port.protocol.as_deref().unwrap_or("TCP") == protocol;
        protocol_ok
            && match &rule_port.port {
                None => true,
                Some(IntOrString::Int(first)) => (*first..=rule_port.end_port.unwrap_or(*first)).contains(&port),
                Some(IntOrString::String(name)) => panic!("named port {name}"),
            }
    }

    fn in_cidr(ip: IpAddr, cidr: &str) -> bool {
        let (network, length) = cidr.split_once('/').unwrap();
        let length: u32 = length.parse().unwrap();
        match (ip, network.parse::<IpAddr>().unwrap()) {
            (IpAddr::V4(ip), IpAddr::V4(net)) => length == 0 || (u32::from(ip) ^ u32::from(net)) >> (32 - length) == 0,
            (IpAddr::V6(ip), IpAddr::V6(net)) => {
                length == 0 || (u128::from(ip) ^ u128::from(net)) >> (128 - length) == 0
            }
            _ => false,
        }
    }

    /// The cluster the scenarios run in.
    struct Cluster {
        other_worker: Peer,
        other_worker_v6: Peer,
        frontend: Peer,
        router: Peer,
        worker_elsewhere: Peer,
        nats_here: Peer,
        nats_elsewhere: Peer,
        kube_dns: Peer,
        metrics_server: Peer,
        internet: Peer,
        internet_v6: Peer,
        node_local_dns: Peer,
    }

    fn cluster() -> Cluster {
        Cluster {
            other_worker: pod("dynamo", "app=worker,role=decode", "10.244.1.5"),
            other_worker_v6: pod("dynamo", "app=worker", "fd00:10:244::5"),
            frontend: pod("dynamo", "app=frontend", "10.244.2.3"),
            router: pod("dynamo", "app=router", "10.244.2.4"),
            worker_elsewhere: pod("team-b", "app=worker", "10.244.3.9"),
            nats_here: pod("dynamo", "app.kubernetes.io/name=nats", "10.244.4.2"),
            nats_elsewhere: pod("nats-system", "app.kubernetes.io/name=nats", "10.244.4.3"),
            kube_dns: pod("kube-system", "k8s-app=kube-dns", "10.244.0.10"),
            metrics_server: pod("kube-system", "k8s-app=metrics-server", "10.244.0.11"),
            internet: outside("93.184.216.34"),
            internet_v6: outside("2001:db8::1"),
            node_local_dns: outside("169.254.20.10"),
        }
    }

    fn both_ways(policy: &NetworkPolicy, peer: &Peer, protocol: &str, port: i32) -> [bool; 2] {
        [allows(policy, Way::In, peer, protocol, port), allows(policy, Way::Out, peer, protocol, port)]
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
        two_labels.selector = labels("app=worker,tier=gpu");
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
        everything_of_dynamo.to_selector = Some(labels("app.kubernetes.io/part-of=dynamo"));
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
        frontend.to_selector = Some(labels("app=frontend"));
        let policy = policy(&frontend);
        assert_eq!(both_ways(&policy, &c.frontend, "TCP", 8000), [false, false]);
        assert_eq!(both_ways(&policy, &c.other_worker, "TCP", 8000), [true, true]);
        assert_eq!(both_ways(&policy, &c.router, "TCP", 8000), [true, true]);
        assert!(allows(&policy, Way::Out, &c.kube_dns, "UDP", 53));

        frontend.to_selector = Some(BTreeMap::new());
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
        with_target.to_selector = Some(labels("app=frontend"));
        assert!(usage_error(&with_target).contains("does not apply to --preset worker-nats"));
    }

    #[test]
    fn custom_blocks_the_target_or_isolates_the_pods() {
        let c = cluster();
        let mut router = spec(Preset::Custom);
        router.to_selector = Some(labels("app=router"));
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
        bad.selector.clear();
        assert!(usage_error(&bad).contains("--selector is empty"));
        let mut bad = spec(Preset::WorkerWorker);
        bad.selector.insert("bad key".into(), "x".into());
        assert!(usage_error(&bad).contains("invalid --selector bad key=x"));
        for namespace in ["", "Dynamo", "dynamo_1", "-dynamo", &"n".repeat(64)] {
            let mut bad = spec(Preset::WorkerWorker);
            bad.namespace = namespace.into();
            assert!(usage_error(&bad).contains("invalid namespace"), "{namespace:?}");
        }
        let mut bad_id = stamp(FaultKind::Partition);
        bad_id.fault_id = "FL/1".into();
        assert!(matches!(network_policy(&spec(Preset::WorkerWorker), &bad_id), Err(ClusterError::Usage(_))));
        assert_eq!(ClusterError::Usage(usage_error(&bad)).exit_code(), crate::error::EXIT_USAGE);
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

    #[test]
    fn selectors() {
        assert_eq!(
            parse_selector(" app=worker , app.kubernetes.io/component=decode,tier==gpu,empty=").unwrap(),
            BTreeMap::from([
                ("app".to_string(), "worker".to_string()),
                ("app.kubernetes.io/component".to_string(), "decode".to_string()),
                ("empty".to_string(), String::new()),
                ("tier".to_string(), "gpu".to_string()),
            ])
        );
        assert_eq!(parse_selector("a=b,a=b").unwrap().len(), 1);
        let cases = [
            ("", "it is empty"),
            ("  ", "it is empty"),
            ("app", "is not KEY=VALUE"),
            ("app!=worker", "not !="),
            ("app=worker,", "empty KEY=VALUE"),
            ("app=a,app=b", "given twice"),
            ("=worker", "label key \"\""),
            ("-app=worker", "label key"),
            ("App.Example.com/app=x", "prefix"),
            ("/app=x", "prefix"),
            ("example.com/=x", "label key"),
            ("app=-worker", "label value"),
            ("app=wor ker", "label value"),
        ];
        for (text, expected) in cases {
            let error = parse_selector(text).unwrap_err();
            assert!(matches!(error, ClusterError::Usage(_)));
            let message = error.to_string();
            assert!(message.contains("invalid label selector") && message.contains(expected), "{text:?}: {message}");
        }
        let long = format!("app={}", "v".repeat(64));
        assert!(parse_selector(&long).is_err());
        assert!(parse_selector(&format!("app={}", "v".repeat(63))).is_ok());
    }

    fn chaos(action: ChaosAction, direction: ChaosDirection, target: Option<&str>) -> ChaosSpec {
        ChaosSpec {
            namespace: "dynamo".into(),
            selector: labels("app=worker"),
            action,
            direction,
            target: target.map(labels),
            duration: Some(Duration::from_secs(600)),
        }
    }

    fn params(pairs: &[(&str, &str)]) -> ChaosParams {
        let mut params = ChaosParams::default();
        for (flag, value) in pairs {
            let slot = match *flag {
                "loss" => &mut params.loss,
                "correlation" => &mut params.correlation,
                "latency" => &mut params.latency,
                "jitter" => &mut params.jitter,
                "rate" => &mut params.rate,
                "limit" => &mut params.limit,
                "buffer" => &mut params.buffer,
                "peakrate" => &mut params.peakrate,
                "minburst" => &mut params.minburst,
                other => panic!("{other}"),
            };
            *slot = Some(value.to_string());
        }
        params
    }

    fn chaos_usage_error(action: &str, pairs: &[(&str, &str)]) -> String {
        match ChaosAction::from_params(action, &params(pairs)) {
            Err(ClusterError::Usage(message)) => message,
            other => panic!("{action} {pairs:?}: expected a usage error, got {other:?}"),
        }
    }

    #[test]
    fn a_loss_between_workers_is_the_complete_object() {
        let action = ChaosAction::from_params("loss", &params(&[("loss", "25%"), ("correlation", "50")])).unwrap();
        let object = network_chaos(
            &chaos(action, ChaosDirection::Both, Some("app=worker,role=decode")),
            &stamp(FaultKind::Chaos),
        )
        .unwrap();
        let expected = json!({
            "apiVersion": "chaos-mesh.org/v1alpha1",
            "kind": "NetworkChaos",
            "metadata": {
                "name": "faultline-fl-0123456789ab",
                "namespace": "dynamo",
                "labels": stamp(FaultKind::Chaos).labels(),
                "annotations": stamp(FaultKind::Chaos).annotations(),
            },
            "spec": {
                "action": "loss",
                "mode": "all",
                "selector": { "namespaces": ["dynamo"], "labelSelectors": { "app": "worker" } },
                "direction": "both",
                "target": {
                    "mode": "all",
                    "selector": { "namespaces": ["dynamo"], "labelSelectors": { "app": "worker", "role": "decode" } },
                },
                "duration": "600s",
                "loss": { "loss": "25", "correlation": "50" },
            },
        });
        assert_eq!(object, expected);
        assert_eq!(object["metadata"]["labels"]["faultline.dev/fault-kind"], "chaos");
    }

    #[test]
    fn every_action_writes_its_parameter_block_as_the_crd_names_it() {
        let delay = ChaosAction::from_params(
            "delay",
            &params(&[("latency", "100ms"), ("jitter", "10ms"), ("correlation", "25")]),
        )
        .unwrap();
        let object = network_chaos(&chaos(delay, ChaosDirection::To, None), &stamp(FaultKind::Chaos)).unwrap();
        assert_eq!(object["spec"]["delay"], json!({ "latency": "100ms", "jitter": "10ms", "correlation": "25" }));
        assert_eq!(object["spec"]["direction"], "to");
        assert!(object["spec"].get("target").is_none());

        let bandwidth = ChaosAction::from_params(
            "bandwidth",
            &params(&[
                ("rate", "1MBps"),
                ("limit", "20971520"),
                ("buffer", "10000"),
                ("peakrate", "2000000"),
                ("minburst", "1500"),
            ]),
        )
        .unwrap();
        let object = network_chaos(&chaos(bandwidth, ChaosDirection::To, None), &stamp(FaultKind::Chaos)).unwrap();
        assert_eq!(
            object["spec"]["bandwidth"],
            json!({ "rate": "1mbps", "limit": 20971520, "buffer": 10000, "peakrate": 2000000, "minburst": 1500 })
        );

        let partition = ChaosAction::from_params("partition", &ChaosParams::default()).unwrap();
        let mut spec = chaos(partition, ChaosDirection::From, Some("app=frontend"));
        spec.duration = Some(Duration::from_millis(1500));
        let object = network_chaos(&spec, &stamp(FaultKind::Chaos)).unwrap();
        assert_eq!(object["spec"]["action"], "partition");
        assert_eq!(object["spec"]["duration"], "1500ms");
        let keys: Vec<&String> = object["spec"].as_object().unwrap().keys().collect();
        assert_eq!(keys, ["action", "mode", "selector", "direction", "target", "duration"]);
        spec.duration = None;
        assert!(network_chaos(&spec, &stamp(FaultKind::Chaos)).unwrap()["spec"].get("duration").is_none());
    }

    #[test]
    fn from_and_both_need_a_target() {
        for direction in [ChaosDirection::From, ChaosDirection::Both] {
            let spec = chaos(ChaosAction::Partition, direction, None);
            let error = network_chaos(&spec, &stamp(FaultKind::Chaos)).unwrap_err().to_string();
            assert!(error.contains(&format!("--direction {} needs --to-selector", direction.as_str())), "{error}");
        }
        let mut no_selector = chaos(ChaosAction::Partition, ChaosDirection::To, None);
        no_selector.selector.clear();
        assert!(network_chaos(&no_selector, &stamp(FaultKind::Chaos)).is_err());
        let mut zero = chaos(ChaosAction::Partition, ChaosDirection::To, None);
        zero.duration = Some(Duration::ZERO);
        assert!(network_chaos(&zero, &stamp(FaultKind::Chaos)).is_err());
    }

    #[test]
    fn bad_chaos_parameters_are_usage_errors() {
        // (action, flags, what the error says)
        type Case<'a> = (&'a str, &'a [(&'a str, &'a str)], &'a str);
        let cases: &[Case] = &[
            ("drop", &[], "unknown --action \"drop\": expected one of partition, loss, delay, bandwidth"),
            ("loss", &[], "--action loss needs --loss"),
            ("loss", &[("loss", "0")], "invalid --loss"),
            ("loss", &[("loss", "101")], "invalid --loss"),
            ("loss", &[("loss", "-1")], "invalid --loss"),
            ("loss", &[("loss", "NaN")], "invalid --loss"),
            ("loss", &[("loss", "inf")], "invalid --loss"),
            ("loss", &[("loss", "a lot")], "invalid --loss"),
            ("loss", &[("loss", "5"), ("correlation", "150")], "invalid --correlation"),
            ("loss", &[("loss", "5"), ("latency", "10ms")], "--latency does not apply to --action loss"),
            ("partition", &[("correlation", "5")], "it is a parameter of --action loss and --action delay"),
            ("delay", &[], "--action delay needs --latency"),
            ("delay", &[("latency", "100")], "invalid --latency"),
            ("delay", &[("latency", "0ms")], "invalid --latency"),
            ("delay", &[("latency", "-5ms")], "invalid --latency"),
            ("delay", &[("latency", "5 ms")], "invalid --latency"),
            ("delay", &[("latency", "1..5s")], "invalid --latency"),
            ("delay", &[("latency", "5sec")], "invalid --latency"),
            ("delay", &[("latency", "10ms"), ("jitter", "x")], "invalid --jitter"),
            ("bandwidth", &[("rate", "1mbps"), ("limit", "10")], "--action bandwidth needs --buffer"),
            ("bandwidth", &[("rate", "1mbps"), ("buffer", "10")], "--action bandwidth needs --limit"),
            ("bandwidth", &[("limit", "10"), ("buffer", "10")], "--action bandwidth needs --rate"),
            ("bandwidth", &[("rate", "1mb"), ("limit", "10"), ("buffer", "10")], "invalid --rate"),
            ("bandwidth", &[("rate", "mbps"), ("limit", "10"), ("buffer", "10")], "invalid --rate"),
            ("bandwidth", &[("rate", "1.5mbps"), ("limit", "10"), ("buffer", "10")], "invalid --rate"),
            ("bandwidth", &[("rate", "0kbps"), ("limit", "10"), ("buffer", "10")], "invalid --rate"),
            ("bandwidth", &[("rate", "99999999999tbps"), ("limit", "10"), ("buffer", "10")], "invalid --rate"),
            ("bandwidth", &[("rate", "1mbps"), ("limit", "0"), ("buffer", "10")], "invalid --limit"),
            ("bandwidth", &[("rate", "1mbps"), ("limit", "2147483648"), ("buffer", "10")], "invalid --limit"),
            ("bandwidth", &[("rate", "1mbps"), ("limit", "10"), ("buffer", "-1")], "invalid --buffer"),
            (
                "bandwidth",
                &[("rate", "1mbps"), ("limit", "10"), ("buffer", "10"), ("minburst", "x")],
                "invalid --minburst",
            ),
            (
                "bandwidth",
                &[("rate", "1mbps"), ("limit", "10"), ("buffer", "10"), ("peakrate", "-3")],
                "invalid --peakrate",
            ),
        ];
        for (action, pairs, expected) in cases {
            let message = chaos_usage_error(action, pairs);
            assert!(message.contains(expected), "{action} {pairs:?}: {message}");
        }
        // The enum can be built directly: network_chaos checks it too.
        let direct =
            ChaosAction::Bandwidth { rate: "1mbps".into(), limit: 0, buffer: 1, peakrate: None, minburst: None };
        assert!(network_chaos(&chaos(direct, ChaosDirection::To, None), &stamp(FaultKind::Chaos)).is_err());
        let direct = ChaosAction::Loss { loss: "200".into(), correlation: None };
        assert!(network_chaos(&chaos(direct, ChaosDirection::To, None), &stamp(FaultKind::Chaos)).is_err());
    }

    #[test]
    fn go_durations_as_chaos_mesh_parses_them() {
        for good in ["100ms", "1.5s", "1m30s", "10us", "10µs", "2h", "0.5ms", "1h2m3s4ms5us6ns", "3.s"] {
            assert!(go_duration_nanos(good).is_some_and(|n| n > 0.0), "{good}");
        }
        assert_eq!(go_duration_nanos("1m30s"), Some(90e9));
        assert_eq!(go_duration_nanos("0"), Some(0.0));
        for bad in ["", "100", "ms", "1d", "1.2.3s", ".s", "+5ms", "5ms ", "99999999999h"] {
            assert_eq!(go_duration_nanos(bad), None, "{bad}");
        }
        assert_eq!(go_duration_text(Duration::from_secs(600)).unwrap(), "600s");
        assert_eq!(go_duration_text(Duration::from_nanos(1_000_001)).unwrap(), "1000001ns");
    }

    #[test]
    fn the_chaos_mesh_constants_match_the_api_module() {
        let object = ObjectType::NETWORK_CHAOS;
        assert_eq!(
            (object.group, object.version, object.kind, object.plural),
            (CHAOS_MESH_GROUP, CHAOS_MESH_VERSION, NETWORK_CHAOS_KIND, NETWORK_CHAOS_PLURAL)
        );
        let ipv4 = Ipv4Addr::new(10, 0, 0, 1);
        assert!(in_cidr(ipv4.into(), "10.0.0.0/8") && !in_cidr(Ipv6Addr::LOCALHOST.into(), "10.0.0.0/8"));
    }
}
