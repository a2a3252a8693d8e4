//! The Chaos Mesh NetworkChaos for partition, loss, delay and bandwidth faults, where its CRD is installed.
//!
//! [`network_chaos`] builds a `chaos-mesh.org/v1alpha1` NetworkChaos in the namespace: mode `all` over the pods
//! matching the selector and, with `--to-selector`, a target (mode `all`, same namespace). Direction as Chaos Mesh
//! defines it: `to` acts on packets from the selected pods to the target, `from` on packets from the target to the
//! selected pods, `both` on both. Without a target the action applies to all of the selected pods' outgoing
//! traffic, so `from` and `both` need one (Chaos Mesh's admission webhook rejects them without one for netem
//! actions; faultline asks for it for every action). The duration is the fault's ttl: Chaos Mesh stops the fault
//! then, and `faultline cluster reap` removes the object.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::{json, Map, Value};

use super::units::{
    bandwidth_rate, check_count, check_peakrate, go_duration, go_duration_text, parse_bytes, parse_count,
    parse_peakrate, percent,
};
use crate::ledger::Stamp;
use crate::names::{check_selector, object_name, validate_namespace, Labels};
use crate::ClusterError;

/// Chaos Mesh's API group.
pub const CHAOS_MESH_GROUP: &str = "chaos-mesh.org";

/// The Chaos Mesh API version of NetworkChaos.
pub const CHAOS_MESH_VERSION: &str = "v1alpha1";

/// The kind.
pub const NETWORK_CHAOS_KIND: &str = "NetworkChaos";

/// The resource (plural) name for the dynamic API.
pub const NETWORK_CHAOS_PLURAL: &str = "networkchaos";

/// Chaos Mesh's `direction`: which packets between the selected pods and the target the action applies to.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum ChaosDirection {
    /// From the selected pods to the target (Chaos Mesh's default).
    #[default]
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
    pub selector: Labels,
    /// What happens to their packets.
    pub action: ChaosAction,
    /// Which packets (`from` and `both` need a target).
    pub direction: ChaosDirection,
    /// `--to-selector`: only the traffic with these pods (of the same namespace); `None`: all traffic.
    pub target: Option<Labels>,
    /// How long Chaos Mesh keeps the fault (the ttl); `None`: until the object is deleted.
    pub duration: Option<Duration>,
}

impl ChaosSpec {
    /// Checks the spec as [`network_chaos`] will: what a draft must pass before it becomes a request.
    pub fn validate(&self) -> Result<(), ClusterError> {
        validate_namespace(&self.namespace)?;
        check_selector("--selector", &self.selector)?;
        if let Some(target) = &self.target {
            check_selector("--to-selector", target)?;
        } else if self.direction != ChaosDirection::To {
            return Err(ClusterError::Usage(format!(
                "--direction {} needs --to-selector: Chaos Mesh defines `from` and `both` relative to a target (the \
                 packets from the target's pods to the selected pods); without one only `to` (all the selected pods' \
                 outgoing traffic) applies",
                self.direction.as_str()
            )));
        }
        if let Some(duration) = self.duration {
            go_duration_text(duration)?;
        }
        self.action.parameters()?;
        Ok(())
    }
}

/// The complete `chaos-mesh.org/v1alpha1` NetworkChaos object for `spec`, named [`object_name`] and carrying the
/// fault ledger's labels and annotations.
pub fn network_chaos(spec: &ChaosSpec, stamp: &Stamp) -> Result<Value, ClusterError> {
    let name = object_name(stamp)?;
    spec.validate()?;

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

#[cfg(test)]
mod tests {
    use std::net::{Ipv4Addr, Ipv6Addr};

    use super::*;
    use crate::kube_api::ObjectType;
    use crate::ledger::FaultKind;
    use crate::partition::fixtures::{in_cidr, selector, stamp};

    fn chaos(action: ChaosAction, direction: ChaosDirection, target: Option<&str>) -> ChaosSpec {
        ChaosSpec {
            namespace: "dynamo".into(),
            selector: selector("app=worker"),
            action,
            direction,
            target: target.map(selector),
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
        let no_selector =
            ChaosSpec { selector: Labels::default(), ..chaos(ChaosAction::Partition, ChaosDirection::To, None) };
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
