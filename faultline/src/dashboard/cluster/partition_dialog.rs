//! The create-partition dialog's model (`p`): a NetworkPolicy (preset, directions, NATS and DNS) or a Chaos Mesh
//! NetworkChaos (action and its parameters, direction), with the namespace, the selectors and the ttl. The rows
//! make a [`PartitionDraft`], checked as `faultline cluster partition create` checks its flags, so an error shows as
//! it is typed; Enter asks for confirmation and only `y` turns the draft into a [`PartitionRequest`].

use super::form::{checkbox, choice, cycle, ClusterForm, FormLook, FormRow, FormState, Input};
use crate::cluster::action::draft::{Names, PartitionDraft};
use crate::cluster::action::ClusterRequest;
pub use crate::cluster::action::PartitionRequest;
use crate::cluster::ledger;
use crate::cluster::partition::{self, ChaosAction, ChaosDirection, ChaosParams, Preset};

/// The rows, in order; which are shown depends on the mode and the chaos action.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PartitionField {
    /// NetworkPolicy or Chaos Mesh.
    Mode,
    /// The namespace of the pods and of the object.
    Namespace,
    /// The pods cut off.
    Selector,
    /// The other side.
    ToSelector,
    /// How long it lasts.
    Ttl,
    /// NetworkPolicy: what the pods lose.
    Preset,
    /// NetworkPolicy: cut incoming connections.
    Ingress,
    /// NetworkPolicy: cut outgoing connections.
    Egress,
    /// NetworkPolicy: block NATS too.
    BlockNats,
    /// NetworkPolicy: block the cluster DNS too.
    BlockDns,
    /// Chaos Mesh: partition, loss, delay, bandwidth.
    Action,
    /// Chaos Mesh: to, from, both.
    Direction,
    /// loss: percent lost.
    Loss,
    /// loss, delay: correlation, percent.
    Correlation,
    /// delay: the delay.
    Latency,
    /// delay: its variation.
    Jitter,
    /// bandwidth: the rate.
    Rate,
    /// bandwidth: bytes queued.
    Limit,
    /// bandwidth: bucket size.
    Buffer,
    /// bandwidth: peak rate.
    Peakrate,
    /// bandwidth: peak bucket size.
    Minburst,
}

impl PartitionField {
    /// The row's label.
    pub fn label(self) -> &'static str {
        match self {
            PartitionField::Mode => "Mode",
            PartitionField::Namespace => "Namespace",
            PartitionField::Selector => "Selector",
            PartitionField::ToSelector => "To selector",
            PartitionField::Ttl => "TTL",
            PartitionField::Preset => "Preset",
            PartitionField::Ingress => "Ingress",
            PartitionField::Egress => "Egress",
            PartitionField::BlockNats => "Block NATS",
            PartitionField::BlockDns => "Block DNS",
            PartitionField::Action => "Action",
            PartitionField::Direction => "Direction",
            PartitionField::Loss => "Loss %",
            PartitionField::Correlation => "Correlation %",
            PartitionField::Latency => "Latency",
            PartitionField::Jitter => "Jitter",
            PartitionField::Rate => "Rate",
            PartitionField::Limit => "Limit (bytes)",
            PartitionField::Buffer => "Buffer (bytes)",
            PartitionField::Peakrate => "Peak rate (B/s)",
            PartitionField::Minburst => "Min burst (B)",
        }
    }
}

/// The ttl a new dialog proposes (the CLI's default).
pub const DEFAULT_TTL: &str = "10m";

/// Create a partition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionDialog {
    /// Chaos Mesh instead of a NetworkPolicy.
    pub chaos: bool,
    /// As typed.
    pub namespace: String,
    /// As typed (`app=worker`).
    pub selector: String,
    /// As typed; empty: none.
    pub to_selector: String,
    /// As typed (`10m`).
    pub ttl: String,
    /// Index into [`Preset::ALL`].
    pub preset: usize,
    /// Cut incoming connections.
    pub ingress: bool,
    /// Cut outgoing connections.
    pub egress: bool,
    /// Block NATS too.
    pub block_nats: bool,
    /// Block the cluster DNS too.
    pub block_dns: bool,
    /// Index into [`ChaosAction::NAMES`].
    pub action: usize,
    /// Index into [`ChaosDirection::ALL`].
    pub direction: usize,
    /// The chaos action's parameters as typed (empty: not given).
    pub params: ChaosParams,
    /// Focus, typing, confirmation.
    pub form: FormState,
}

impl PartitionDialog {
    /// A NetworkPolicy worker-worker partition in `namespace` for [`DEFAULT_TTL`], selector to fill in; the chaos
    /// parameters propose the CLI's examples.
    pub fn new(namespace: &str) -> PartitionDialog {
        PartitionDialog {
            chaos: false,
            namespace: namespace.to_string(),
            selector: String::new(),
            to_selector: String::new(),
            ttl: DEFAULT_TTL.to_string(),
            preset: 0,
            ingress: false,
            egress: false,
            block_nats: false,
            block_dns: false,
            action: 0,
            direction: 0,
            params: ChaosParams {
                loss: Some("25".into()),
                correlation: Some(String::new()),
                latency: Some("100ms".into()),
                jitter: Some(String::new()),
                rate: Some("1mbps".into()),
                limit: Some("20971520".into()),
                buffer: Some("10000".into()),
                peakrate: Some(String::new()),
                minburst: Some(String::new()),
            },
            form: FormState::default(),
        }
    }

    /// The rows shown now.
    pub fn fields(&self) -> Vec<PartitionField> {
        use PartitionField as F;
        let mut fields = vec![F::Mode, F::Namespace, F::Selector, F::ToSelector, F::Ttl];
        if !self.chaos {
            fields.extend([F::Preset, F::Ingress, F::Egress, F::BlockNats, F::BlockDns]);
            return fields;
        }
        fields.extend([F::Action, F::Direction]);
        fields.extend(match self.action_name() {
            "loss" => &[F::Loss, F::Correlation][..],
            "delay" => &[F::Latency, F::Jitter, F::Correlation][..],
            "bandwidth" => &[F::Rate, F::Limit, F::Buffer, F::Peakrate, F::Minburst][..],
            _ => &[][..],
        });
        fields
    }

    /// The preset chosen.
    pub fn preset(&self) -> Preset {
        Preset::ALL[self.preset.min(Preset::ALL.len() - 1)]
    }

    /// The chaos action chosen (`partition`, `loss`, …).
    pub fn action_name(&self) -> &'static str {
        ChaosAction::NAMES[self.action.min(ChaosAction::NAMES.len() - 1)]
    }

    /// The chaos direction chosen.
    pub fn direction(&self) -> ChaosDirection {
        ChaosDirection::ALL[self.direction.min(ChaosDirection::ALL.len() - 1)]
    }

    fn param_mut(&mut self, field: PartitionField) -> Option<&mut String> {
        let p = &mut self.params;
        let slot = match field {
            PartitionField::Loss => &mut p.loss,
            PartitionField::Correlation => &mut p.correlation,
            PartitionField::Latency => &mut p.latency,
            PartitionField::Jitter => &mut p.jitter,
            PartitionField::Rate => &mut p.rate,
            PartitionField::Limit => &mut p.limit,
            PartitionField::Buffer => &mut p.buffer,
            PartitionField::Peakrate => &mut p.peakrate,
            PartitionField::Minburst => &mut p.minburst,
            _ => return None,
        };
        Some(slot.get_or_insert_with(String::new))
    }

    fn param(&self, field: PartitionField) -> String {
        let p = &self.params;
        let slot = match field {
            PartitionField::Loss => &p.loss,
            PartitionField::Correlation => &p.correlation,
            PartitionField::Latency => &p.latency,
            PartitionField::Jitter => &p.jitter,
            PartitionField::Rate => &p.rate,
            PartitionField::Limit => &p.limit,
            PartitionField::Buffer => &p.buffer,
            PartitionField::Peakrate => &p.peakrate,
            PartitionField::Minburst => &p.minburst,
            _ => return String::new(),
        };
        slot.clone().unwrap_or_default()
    }

    fn value(&self, field: PartitionField) -> (String, Input) {
        use PartitionField as F;
        match field {
            F::Mode => (choice(if self.chaos { "chaos-mesh" } else { "network-policy" }), Input::Choice),
            F::Namespace => (self.namespace.clone(), Input::Text),
            F::Selector => (self.selector.clone(), Input::Text),
            F::ToSelector => (self.to_selector.clone(), Input::Text),
            F::Ttl => (self.ttl.clone(), Input::Text),
            F::Preset => (choice(self.preset().as_str()), Input::Choice),
            F::Ingress => (checkbox(self.ingress), Input::Toggle),
            F::Egress => (checkbox(self.egress), Input::Toggle),
            F::BlockNats => (checkbox(self.block_nats), Input::Toggle),
            F::BlockDns => (checkbox(self.block_dns), Input::Toggle),
            F::Action => (choice(self.action_name()), Input::Choice),
            F::Direction => (choice(self.direction().as_str()), Input::Choice),
            param => (self.param(param), Input::Text),
        }
    }

    /// `Ok(hint)` or `Err(why the row is invalid)` for the rows that can be checked alone; the chaos parameters
    /// are checked together with their action (see [`PartitionDialog::request`]).
    pub fn check(&self, field: PartitionField) -> Result<String, String> {
        use PartitionField as F;
        let usage = |e: crate::cluster::ClusterError| e.to_string();
        match field {
            F::Mode if self.chaos => Ok("a Chaos Mesh NetworkChaos (Chaos Mesh must be installed)".into()),
            F::Mode => Ok("a Kubernetes NetworkPolicy".into()),
            F::Namespace => partition::validate_namespace(self.namespace.trim())
                .map(|()| "of the pods, and of the object".into())
                .map_err(usage),
            F::Selector => partition::parse_selector(&self.selector).map(|_| "the pods cut off".into()).map_err(usage),
            F::ToSelector if self.to_selector.trim().is_empty() => Ok(match (self.chaos, self.preset()) {
                (true, _) => "none: all of their traffic".into(),
                (false, Preset::WorkerWorker) => "none: the selected pods lose each other".into(),
                (false, Preset::Custom) => "none: the pods are isolated".into(),
                (false, _) => "pods of the namespace on the other side".into(),
            }),
            F::ToSelector => {
                partition::parse_selector(&self.to_selector).map(|_| "the other side".into()).map_err(usage)
            }
            F::Ttl => ledger::parse_ttl(&self.ttl, Names::Labels.ttl())
                .map(|ttl| format!("removed after {} s (by the reaper if faultline is gone)", ttl.as_secs()))
                .map_err(usage),
            F::Preset => Ok(match self.preset() {
                Preset::WorkerWorker => "the selected pods lose each other (or the to-selector pods)",
                Preset::FrontendWorker => "they lose the to-selector pods (the frontends)",
                Preset::WorkerNats => "they lose NATS",
                Preset::Custom => "they lose the to-selector pods, or everything",
            }
            .into()),
            F::Ingress | F::Egress => Ok(match (self.ingress, self.egress) {
                (false, false) => "neither ticked: both directions are cut",
                (true, true) => "both directions are cut",
                (true, false) => "incoming connections are cut",
                (false, true) => "outgoing connections are cut",
            }
            .into()),
            F::BlockNats => Ok("NATS stays reachable unless ticked".into()),
            F::BlockDns => Ok("the cluster DNS stays reachable unless ticked".into()),
            F::Action => Ok(match self.action_name() {
                "partition" => "drop every packet",
                "loss" => "drop a share of the packets",
                "delay" => "delay the packets",
                _ => "limit the bandwidth (token bucket)",
            }
            .into()),
            F::Direction => Ok("which packets: to, from or both (from/both need a to-selector)".into()),
            F::Loss => Ok("percent of packets lost".into()),
            F::Correlation => Ok("optional: percent, dependence on the previous packet".into()),
            F::Latency => Ok("e.g. 100ms, 1.5s".into()),
            F::Jitter => Ok("optional: e.g. 10ms".into()),
            F::Rate => Ok("e.g. 1mbps (bps, kbps, mbps, gbps)".into()),
            F::Limit => Ok("bytes that may queue".into()),
            F::Buffer => Ok("bytes the bucket holds".into()),
            F::Peakrate => Ok("optional: bytes per second".into()),
            F::Minburst => Ok("optional: bytes, usually the MTU".into()),
        }
    }

    /// The draft the rows stand for; of the chaos parameters only the shown action's (the others keep their
    /// proposals for a later switch).
    pub fn draft(&self) -> PartitionDraft {
        let shown = self.fields();
        let pick = |field: PartitionField, value: &Option<String>| value.clone().filter(|_| shown.contains(&field));
        let p = &self.params;
        PartitionDraft {
            chaos: self.chaos,
            namespace: self.namespace.clone(),
            selector: self.selector.clone(),
            to_selector: self.to_selector.clone(),
            ttl: self.ttl.clone(),
            preset: self.preset(),
            ingress: self.ingress,
            egress: self.egress,
            block_nats: self.block_nats,
            block_dns: self.block_dns,
            pod_cidrs: Vec::new(),
            action: self.action_name().to_string(),
            direction: self.direction(),
            params: ChaosParams {
                loss: pick(PartitionField::Loss, &p.loss),
                correlation: pick(PartitionField::Correlation, &p.correlation),
                latency: pick(PartitionField::Latency, &p.latency),
                jitter: pick(PartitionField::Jitter, &p.jitter),
                rate: pick(PartitionField::Rate, &p.rate),
                limit: pick(PartitionField::Limit, &p.limit),
                buffer: pick(PartitionField::Buffer, &p.buffer),
                peakrate: pick(PartitionField::Peakrate, &p.peakrate),
                minburst: pick(PartitionField::Minburst, &p.minburst),
            },
        }
    }

    /// The validated request; `Err` says what is wrong first.
    pub fn partition(&self) -> Result<PartitionRequest, String> {
        if let Some((label, error)) = self.first_error() {
            return Err(format!("{label}: {error}"));
        }
        self.draft().parse(Names::Labels).map_err(|e| e.to_string())
    }
}

impl ClusterForm for PartitionDialog {
    const NOT_DONE: &'static str = "no partition";
    const CLOSED: &'static str = "dialog closed; no partition";

    fn look(&self) -> FormLook {
        FormLook::wide(
            " Create a network partition ",
            "A NetworkPolicy or a Chaos Mesh NetworkChaos, labelled as a fault: R recovers it, the reaper ends it.",
        )
    }

    fn state(&self) -> &FormState {
        &self.form
    }

    fn state_mut(&mut self) -> &mut FormState {
        &mut self.form
    }

    fn rows(&self) -> Vec<FormRow> {
        self.fields()
            .into_iter()
            .map(|field| {
                let (value, input) = self.value(field);
                FormRow { label: field.label(), value, input, check: self.check(field) }
            })
            .collect()
    }

    fn text_mut(&mut self, index: usize) -> Option<&mut String> {
        match *self.fields().get(index)? {
            PartitionField::Namespace => Some(&mut self.namespace),
            PartitionField::Selector => Some(&mut self.selector),
            PartitionField::ToSelector => Some(&mut self.to_selector),
            PartitionField::Ttl => Some(&mut self.ttl),
            field => self.param_mut(field),
        }
    }

    fn step_row(&mut self, index: usize, delta: i64) {
        let Some(field) = self.fields().get(index).copied() else { return };
        match field {
            PartitionField::Mode => self.chaos = !self.chaos,
            PartitionField::Preset => self.preset = cycle(self.preset, delta, Preset::ALL.len()),
            PartitionField::Ingress => self.ingress = !self.ingress,
            PartitionField::Egress => self.egress = !self.egress,
            PartitionField::BlockNats => self.block_nats = !self.block_nats,
            PartitionField::BlockDns => self.block_dns = !self.block_dns,
            PartitionField::Action => self.action = cycle(self.action, delta, ChaosAction::NAMES.len()),
            PartitionField::Direction => self.direction = cycle(self.direction, delta, ChaosDirection::ALL.len()),
            _ => {}
        }
    }

    fn request(&self) -> Result<ClusterRequest, String> {
        self.partition().map(|request| ClusterRequest::CreatePartition(Box::new(request)))
    }

    fn question(&self) -> Result<String, String> {
        let request = self.partition()?;
        let ttl = self.ttl.trim();
        Ok(match &request {
            PartitionRequest::Policy { spec, .. } => {
                let (ingress, egress) = spec.directions();
                let directions = match (ingress, egress) {
                    (true, true) => "incoming and outgoing",
                    (true, false) => "incoming",
                    _ => "outgoing",
                };
                let others = match (&spec.to_selector, spec.preset) {
                    (Some(to), _) => format!("pods {}", to),
                    (None, Preset::WorkerWorker) => "each other".to_string(),
                    (None, Preset::WorkerNats) => "NATS".to_string(),
                    (None, _) => "everything".to_string(),
                };
                let nats = if spec.blocks_nats() { "blocked" } else { "kept" };
                let dns = if spec.block_dns { "blocked" } else { "kept" };
                format!(
                    "Create a NetworkPolicy in namespace {} ({} preset): pods {} lose {others}, {directions} \
                     connections; NATS {nats}, DNS {dns}; removed after {ttl}? y/n",
                    spec.namespace,
                    spec.preset.as_str(),
                    spec.selector,
                )
            }
            PartitionRequest::Chaos { spec, .. } => {
                let target = match &spec.target {
                    Some(to) => format!(" with pods {}", to),
                    None => String::new(),
                };
                let what = match &spec.action {
                    ChaosAction::Partition => "partition (every packet dropped)".to_string(),
                    ChaosAction::Loss { loss, .. } => format!("loss of {loss} % of the packets"),
                    ChaosAction::Delay { latency, .. } => format!("delay of {latency}"),
                    ChaosAction::Bandwidth { rate, .. } => format!("bandwidth limited to {rate}"),
                };
                format!(
                    "Create a Chaos Mesh NetworkChaos in namespace {}: {what} for pods {}, direction {}{target}; \
                     removed after {ttl}? y/n",
                    spec.namespace,
                    spec.selector,
                    spec.direction.as_str(),
                )
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn typed(dialog: &mut PartitionDialog, field: PartitionField, text: &str) {
        dialog.form.cursor = dialog.fields().iter().position(|f| *f == field).expect("a shown field");
        dialog.form.touched = false;
        for c in text.chars() {
            dialog.type_char(c);
        }
    }

    #[test]
    fn a_selector_is_needed_and_the_policy_is_checked_by_the_real_builder() {
        let mut dialog = PartitionDialog::new("dynamo");
        let error = dialog.partition().unwrap_err();
        assert!(error.starts_with("Selector: invalid label selector \"\": it is empty"), "{error}");
        typed(&mut dialog, PartitionField::Selector, "app=worker");
        let PartitionRequest::Policy { spec, ttl } = dialog.partition().unwrap() else { panic!("a policy") };
        assert_eq!(
            (spec.namespace.as_str(), spec.preset, ttl),
            ("dynamo", Preset::WorkerWorker, Duration::from_secs(600))
        );
        assert!(spec.pod_cidrs.is_empty(), "read from the nodes at creation");
        assert_eq!(
            dialog.question().unwrap(),
            "Create a NetworkPolicy in namespace dynamo (worker-worker preset): pods app=worker lose each other, \
             incoming and outgoing connections; NATS kept, DNS kept; removed after 10m? y/n"
        );
        // worker-nats with a to-selector is refused by network_policy itself.
        dialog.form.cursor = 5;
        dialog.step(1);
        dialog.step(1);
        assert_eq!(dialog.preset(), Preset::WorkerNats);
        typed(&mut dialog, PartitionField::ToSelector, "app=frontend");
        assert!(dialog.partition().is_err(), "worker-nats takes no to-selector");
        typed(&mut dialog, PartitionField::Ttl, "0s");
        assert!(dialog.partition().unwrap_err().starts_with("TTL: invalid TTL \"0s\""));
    }

    #[test]
    fn chaos_mode_shows_the_actions_parameters_and_sends_only_them() {
        let mut dialog = PartitionDialog::new("dynamo");
        dialog.selector = "app=worker".into();
        dialog.step(1);
        assert!(dialog.chaos);
        assert_eq!(dialog.fields().len(), 7, "partition has no parameters");
        dialog.form.cursor = 5;
        dialog.step(1);
        dialog.step(1);
        assert_eq!(dialog.action_name(), "delay");
        assert!(dialog.fields().ends_with(&[
            PartitionField::Latency,
            PartitionField::Jitter,
            PartitionField::Correlation
        ]));
        let PartitionRequest::Chaos { spec, .. } = dialog.partition().unwrap() else { panic!("chaos") };
        assert_eq!(spec.action, ChaosAction::Delay { latency: "100ms".into(), jitter: None, correlation: None });
        assert_eq!(spec.duration, Some(Duration::from_secs(600)));
        typed(&mut dialog, PartitionField::Latency, "soon");
        assert!(dialog.partition().unwrap_err().contains("--latency"));
        // `from` needs a target.
        typed(&mut dialog, PartitionField::Latency, "5ms");
        dialog.form.cursor = 6;
        dialog.step(1);
        assert!(dialog.partition().unwrap_err().contains("needs --to-selector"));
        typed(&mut dialog, PartitionField::ToSelector, "app=frontend");
        assert!(dialog
            .question()
            .unwrap()
            .contains("delay of 5ms for pods app=worker, direction from with pods app=frontend"));
        // Back to the policy: the cursor stays on a row.
        dialog.form.cursor = 0;
        dialog.step(-1);
        assert!(!dialog.chaos);
        assert_eq!(dialog.fields().len(), 10);
    }
}
