//! The shim dialog's model (`s`): roll the CUDA or UCX shim into a Deployment, StatefulSet or a
//! DynamoGraphDeployment's service, with faults on or passthrough, an XID preset (CUDA), optionally pinned to the
//! selected node, for a ttl. Checked as `faultline cluster shim enable` checks it ([`ShimSpec::validate`]); Enter
//! asks for confirmation and only `y` turns the draft into a [`ShimRequest`].

use std::time::Duration;

use shm_proto::Kind;

use super::form::{checkbox, choice, cycle, ClusterForm, FormLook, FormRow, FormState, Input};
use crate::cluster::action::draft::{Names, ShimDraft};
use crate::cluster::action::ClusterRequest;
pub use crate::cluster::action::ShimRequest;
use crate::cluster::ledger;
use crate::cluster::names::{check_name, validate_namespace};
use crate::cluster::shim::Follow;
use crate::cluster::shim_rollout::{ShimSpec, Workload};

/// How long a shim rollout is followed before the worker moves on (the change stays, and is in the fault list):
/// long enough for a small Deployment, short enough not to stall the view's refreshes for minutes.
pub const SHIM_FOLLOW: Follow = Follow { timeout: Duration::from_secs(60), interval: Duration::from_secs(2) };

/// The workload types, in the order the dialog cycles them.
pub const WORKLOAD_TYPES: [&str; 3] = ["deployment", "statefulset", "dgd"];

/// The shims, in the order the dialog cycles them.
pub const KINDS: [Kind; 2] = [Kind::Cuda, Kind::Ucx];

/// The ttl a new dialog proposes (the CLI's default).
pub const DEFAULT_TTL: &str = "1h";

/// The rows, in order; Service shows for a DynamoGraphDeployment only, XID for the CUDA shim only.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShimField {
    /// CUDA or UCX.
    Kind,
    /// Deployment, StatefulSet or DynamoGraphDeployment.
    WorkloadType,
    /// The workload's name.
    Name,
    /// The DynamoGraphDeployment's service.
    Service,
    /// The workload's namespace.
    Namespace,
    /// Faults off.
    Passthrough,
    /// CUDA: the XID preset.
    Xid,
    /// Pin the pods to the selected node.
    Pin,
    /// How long.
    Ttl,
}

impl ShimField {
    /// The row's label.
    pub fn label(self) -> &'static str {
        match self {
            ShimField::Kind => "Shim",
            ShimField::WorkloadType => "Workload type",
            ShimField::Name => "Name",
            ShimField::Service => "DGD service",
            ShimField::Namespace => "Namespace",
            ShimField::Passthrough => "Passthrough",
            ShimField::Xid => "XID",
            ShimField::Pin => "Pin to node",
            ShimField::Ttl => "TTL",
        }
    }
}

/// Roll a shim out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShimDialog {
    /// Index into [`KINDS`].
    pub kind: usize,
    /// Index into [`WORKLOAD_TYPES`].
    pub workload_type: usize,
    /// As typed.
    pub name: String,
    /// As typed (DynamoGraphDeployment only).
    pub service: String,
    /// As typed.
    pub namespace: String,
    /// Faults off.
    pub passthrough: bool,
    /// As typed; empty: no XID preset.
    pub xid: String,
    /// The node selected in the view when the dialog opened.
    pub node: Option<String>,
    /// Pin the pods to [`ShimDialog::node`].
    pub pin: bool,
    /// As typed.
    pub ttl: String,
    /// Focus, typing, confirmation.
    pub form: FormState,
}

impl ShimDialog {
    /// A CUDA shim for a Deployment in `namespace`, faults on, no XID, not pinned, for [`DEFAULT_TTL`]; `node` is
    /// the view's selected node, which Pin would use.
    pub fn new(namespace: &str, node: Option<&str>) -> ShimDialog {
        ShimDialog {
            kind: 0,
            workload_type: 0,
            name: String::new(),
            service: String::new(),
            namespace: namespace.to_string(),
            passthrough: false,
            xid: String::new(),
            node: node.map(str::to_string),
            pin: false,
            ttl: DEFAULT_TTL.to_string(),
            form: FormState::default(),
        }
    }

    /// The shim chosen.
    pub fn kind(&self) -> Kind {
        KINDS[self.kind.min(KINDS.len() - 1)]
    }

    fn is_dgd(&self) -> bool {
        WORKLOAD_TYPES[self.workload_type.min(WORKLOAD_TYPES.len() - 1)] == "dgd"
    }

    /// The rows shown now.
    pub fn fields(&self) -> Vec<ShimField> {
        use ShimField as F;
        let mut fields = vec![F::Kind, F::WorkloadType, F::Name];
        if self.is_dgd() {
            fields.push(F::Service);
        }
        fields.extend([F::Namespace, F::Passthrough]);
        if self.kind() == Kind::Cuda {
            fields.push(F::Xid);
        }
        fields.extend([F::Pin, F::Ttl]);
        fields
    }

    fn value(&self, field: ShimField) -> (String, Input) {
        match field {
            ShimField::Kind => (choice(self.kind().name()), Input::Choice),
            ShimField::WorkloadType => (choice(WORKLOAD_TYPES[self.workload_type]), Input::Choice),
            ShimField::Name => (self.name.clone(), Input::Text),
            ShimField::Service => (self.service.clone(), Input::Text),
            ShimField::Namespace => (self.namespace.clone(), Input::Text),
            ShimField::Passthrough => (checkbox(self.passthrough), Input::Toggle),
            ShimField::Xid => (self.xid.clone(), Input::Text),
            ShimField::Pin => (checkbox(self.pin), Input::Toggle),
            ShimField::Ttl => (self.ttl.clone(), Input::Text),
        }
    }

    /// The XID typed, if any.
    fn xid(&self) -> Result<Option<u32>, String> {
        match self.xid.trim() {
            "" => Ok(None),
            text => text.parse().map(Some).map_err(|_| format!("'{text}' is not a whole number")),
        }
    }

    /// The spec the rows stand for (unchecked).
    fn spec(&self) -> Result<ShimSpec, String> {
        let node =
            if self.pin { Some(self.node.clone().ok_or("no node is selected in the view to pin to")?) } else { None };
        let xid = if self.kind() == Kind::Cuda { self.xid()? } else { None };
        Ok(ShimSpec { kind: self.kind(), passthrough: self.passthrough, xid, node, container: None })
    }

    /// `Ok(hint)` or `Err(why the row is invalid)`.
    pub fn check(&self, field: ShimField) -> Result<String, String> {
        match field {
            ShimField::Kind => Ok(format!(
                "{} from the node agent's hostPath",
                crate::cluster::shim_rollout::library_file(self.kind())
            )),
            ShimField::WorkloadType if self.is_dgd() => Ok("a DynamoGraphDeployment service".into()),
            ShimField::WorkloadType => Ok("its pod template gets the shim".into()),
            ShimField::Name => check_name("name", &self.name).map(|()| "the workload's name".into()),
            ShimField::Service => {
                check_name("service", &self.service).map(|()| "a key of spec.services, e.g. VllmDecodeWorker".into())
            }
            ShimField::Namespace => validate_namespace(self.namespace.trim())
                .map(|()| "the workload's namespace".into())
                .map_err(|e| e.to_string()),
            ShimField::Passthrough => Ok("loaded with faults off (steer it later, or arm the node)".into()),
            ShimField::Xid => {
                // Without the node: a missing one is the Pin row's error, not this one's.
                let spec = ShimSpec { xid: self.xid()?, ..ShimSpec::new(self.kind()) };
                spec.validate().map_err(|e| e.to_string())?;
                Ok(match spec.xid {
                    Some(xid) => format!("fail as with XID {xid} (its preset's codes)"),
                    None => "none: the shim's own fault settings".into(),
                })
            }
            ShimField::Pin => match (&self.node, self.pin) {
                (Some(node), true) => Ok(format!("pods run on node {node} only")),
                (Some(node), false) => Ok(format!("any GPU node (tick to pin to {node})")),
                (None, true) => Err("no node is selected in the view to pin to".into()),
                (None, false) => Ok("any GPU node".into()),
            },
            ShimField::Ttl => ledger::parse_ttl(&self.ttl, Names::Labels.ttl())
                .map(|ttl| format!("restored after {} s (by the reaper if faultline is gone)", ttl.as_secs()))
                .map_err(|e| e.to_string()),
        }
    }

    /// The validated request; `Err` says what is wrong first.
    pub fn shim(&self) -> Result<ShimRequest, String> {
        if let Some((label, error)) = self.first_error() {
            return Err(format!("{label}: {error}"));
        }
        let name = self.name.clone();
        let workload = match WORKLOAD_TYPES[self.workload_type] {
            "deployment" => Workload::Deployment(name),
            "statefulset" => Workload::StatefulSet(name),
            _ => Workload::Dgd { name, service: self.service.clone() },
        };
        let draft = ShimDraft {
            namespace: self.namespace.clone(),
            workload,
            spec: self.spec()?,
            ttl: self.ttl.clone(),
            follow: Some(SHIM_FOLLOW),
        };
        draft.parse(Names::Labels).map_err(|e| e.to_string())
    }
}

impl ClusterForm for ShimDialog {
    const NOT_DONE: &'static str = "no shim rolled out";
    const CLOSED: &'static str = "dialog closed; no shim rolled out";

    fn look(&self) -> FormLook {
        FormLook::wide(
            " Roll a shim into a workload ",
            "LD_PRELOAD appended, affinity merged, the original spec saved: R restores it exactly.",
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
            ShimField::Name => Some(&mut self.name),
            ShimField::Service => Some(&mut self.service),
            ShimField::Namespace => Some(&mut self.namespace),
            ShimField::Xid => Some(&mut self.xid),
            ShimField::Ttl => Some(&mut self.ttl),
            _ => None,
        }
    }

    fn step_row(&mut self, index: usize, delta: i64) {
        let Some(field) = self.fields().get(index).copied() else { return };
        match field {
            ShimField::Kind => self.kind = cycle(self.kind, delta, KINDS.len()),
            ShimField::WorkloadType => self.workload_type = cycle(self.workload_type, delta, WORKLOAD_TYPES.len()),
            ShimField::Passthrough => self.passthrough = !self.passthrough,
            ShimField::Pin => self.pin = !self.pin,
            _ => {}
        }
    }

    fn request(&self) -> Result<ClusterRequest, String> {
        self.shim().map(|request| ClusterRequest::EnableShim(Box::new(request)))
    }

    fn question(&self) -> Result<String, String> {
        let request = self.shim()?;
        let spec = &request.spec;
        let mut how =
            vec![if spec.passthrough { "passthrough (faults off)".to_string() } else { "faults on".to_string() }];
        if let Some(xid) = spec.xid {
            how.push(format!("XID {xid}"));
        }
        if let Some(node) = &spec.node {
            how.push(format!("pinned to node {node}"));
        }
        Ok(format!(
            "Roll the {} shim into {} in namespace {} ({}), restarting its pods; restored after {}? y/n",
            spec.kind.name(),
            request.workload,
            request.namespace,
            how.join(", "),
            self.ttl.trim()
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(dialog: &mut ShimDialog, field: ShimField) {
        dialog.form.cursor = dialog.fields().iter().position(|f| *f == field).expect("a shown field");
        dialog.form.touched = false;
    }

    fn typed(dialog: &mut ShimDialog, field: ShimField, text: &str) {
        at(dialog, field);
        for c in text.chars() {
            dialog.type_char(c);
        }
    }

    #[test]
    fn a_deployment_needs_a_name_and_the_xid_needs_a_cuda_preset() {
        let mut dialog = ShimDialog::new("dynamo", Some("gpu-a"));
        assert_eq!(dialog.shim().unwrap_err(), "Name: give the name");
        typed(&mut dialog, ShimField::Name, "vllm-worker");
        let request = dialog.shim().unwrap();
        assert_eq!(request.workload, Workload::Deployment("vllm-worker".into()));
        assert_eq!((request.spec.xid, request.ttl), (None, Duration::from_secs(3600)));
        typed(&mut dialog, ShimField::Xid, "13");
        assert!(dialog.shim().unwrap_err().starts_with("XID: the CUDA shim has no preset for XID 13"));
        typed(&mut dialog, ShimField::Xid, "79");
        at(&mut dialog, ShimField::Pin);
        dialog.toggle();
        assert_eq!(
            dialog.question().unwrap(),
            "Roll the cuda shim into Deployment vllm-worker in namespace dynamo (faults on, XID 79, pinned to node \
             gpu-a), restarting its pods; restored after 1h? y/n"
        );
    }

    #[test]
    fn a_dgd_needs_its_service_and_ucx_has_no_xid_row() {
        let mut dialog = ShimDialog::new("dynamo", None);
        at(&mut dialog, ShimField::WorkloadType);
        dialog.step(-1);
        assert!(dialog.fields().contains(&ShimField::Service));
        typed(&mut dialog, ShimField::Name, "llm");
        assert_eq!(dialog.shim().unwrap_err(), "DGD service: give the service");
        typed(&mut dialog, ShimField::Service, "VllmDecodeWorker");
        at(&mut dialog, ShimField::Kind);
        dialog.toggle();
        assert!(!dialog.fields().contains(&ShimField::Xid));
        let request = dialog.shim().unwrap();
        assert_eq!(request.workload, Workload::Dgd { name: "llm".into(), service: "VllmDecodeWorker".into() });
        assert_eq!(request.spec.kind, Kind::Ucx);
        at(&mut dialog, ShimField::Pin);
        dialog.toggle();
        assert_eq!(dialog.shim().unwrap_err(), "Pin to node: no node is selected in the view to pin to");
    }
}
