//! Test fixtures shared by the partition modules' tests: the fault stamp, selectors, and a reader of
//! NetworkPolicies that decides, the strict way (ipBlock matches pod addresses too, as Calico does), whether a
//! connection gets through, with a cluster of pods and addresses to try.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::Duration;

use k8s_openapi::api::networking::v1::{NetworkPolicy, NetworkPolicyPeer, NetworkPolicyPort};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::{parse_selector, Labels, NAMESPACE_NAME_LABEL};
use crate::ledger::{FaultKind, Stamp};

pub(super) fn stamp(kind: FaultKind) -> Stamp {
    let now = "2026-11-22T10:00:00Z".parse().unwrap();
    Stamp::at(kind, "fl-0123456789ab".into(), now, Some(Duration::from_secs(600)), "alice@laptop".into())
}

/// A checked selector, for building specs.
pub(super) fn selector(text: &str) -> Labels {
    parse_selector(text).unwrap()
}

/// The same labels as a map, for comparing with built objects.
pub(super) fn labels(text: &str) -> BTreeMap<String, String> {
    selector(text).into()
}

/// Where traffic goes to or comes from: a pod (namespace and labels) or an address outside the cluster.
pub(super) struct Peer {
    pub(super) namespace: Option<&'static str>,
    pub(super) labels: BTreeMap<String, String>,
    pub(super) ip: IpAddr,
}

pub(super) fn pod(namespace: &'static str, selector: &str, ip: &str) -> Peer {
    Peer { namespace: Some(namespace), labels: labels(selector), ip: ip.parse().unwrap() }
}

pub(super) fn outside(ip: &str) -> Peer {
    Peer { namespace: None, labels: BTreeMap::new(), ip: ip.parse().unwrap() }
}

#[derive(Clone, Copy, PartialEq)]
pub(super) enum Way {
    In,
    Out,
}

/// A rule's peers and ports (`None`: any).
type Rule<'a> = (Option<&'a Vec<NetworkPolicyPeer>>, Option<&'a Vec<NetworkPolicyPort>>);

/// Whether `policy` lets a new connection between its pods and `peer` through (`Way::Out`: the pods connect
/// to the peer), read the strict way: ipBlock matches pod addresses too, as Calico does.
pub(super) fn allows(policy: &NetworkPolicy, way: Way, peer: &Peer, protocol: &str, port: i32) -> bool {
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

pub(super) fn in_cidr(ip: IpAddr, cidr: &str) -> bool {
    let (network, length) = cidr.split_once('/').unwrap();
    let length: u32 = length.parse().unwrap();
    match (ip, network.parse::<IpAddr>().unwrap()) {
        (IpAddr::V4(ip), IpAddr::V4(net)) => length == 0 || (u32::from(ip) ^ u32::from(net)) >> (32 - length) == 0,
        (IpAddr::V6(ip), IpAddr::V6(net)) => length == 0 || (u128::from(ip) ^ u128::from(net)) >> (128 - length) == 0,
        _ => false,
    }
}

/// The cluster the scenarios run in.
pub(super) struct Cluster {
    pub(super) other_worker: Peer,
    pub(super) other_worker_v6: Peer,
    pub(super) frontend: Peer,
    pub(super) router: Peer,
    pub(super) worker_elsewhere: Peer,
    pub(super) nats_here: Peer,
    pub(super) nats_elsewhere: Peer,
    pub(super) kube_dns: Peer,
    pub(super) metrics_server: Peer,
    pub(super) internet: Peer,
    pub(super) internet_v6: Peer,
    pub(super) node_local_dns: Peer,
}

pub(super) fn cluster() -> Cluster {
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

pub(super) fn both_ways(policy: &NetworkPolicy, peer: &Peer, protocol: &str, port: i32) -> [bool; 2] {
    [allows(policy, Way::In, peer, protocol, port), allows(policy, Way::Out, peer, protocol, port)]
}
