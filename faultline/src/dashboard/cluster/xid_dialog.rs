//! The inject-XID dialog's model: GPU, XID (named from the catalog as it is typed), for the NVLink5 XIDs 144–150
//! their subcode, link and registers (rows that appear only then), force and a watch for the cordon, on the
//! cluster dialogs' form framework ([`ClusterForm`]); its draft is an [`XidDraft`], checked as
//! `faultline cluster xid inject` checks its flags. Enter asks for confirmation and only `y` turns the draft into an
//! [`XidInjectRequest`]. Nothing here talks to the cluster.

use std::time::Duration;

use super::form::{checkbox, choice, cycle, ClusterForm, FormHints, FormLook, FormRow, FormState, Input};
use crate::cluster::action::draft::{unknown_xid, Names, XidDraft};
use crate::cluster::action::ClusterRequest;
use crate::cluster::nodes::GpuNode;
use crate::cluster::xid_inject::XidInjectRequest;
use crate::node::xid::{self, Nvl5, CATALOG, DEFAULT_XID};
use crate::node::Nvl5Options;
use crate::output::plural;

/// The fields, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum XidField {
    /// The GPU's minor number.
    Gpu,
    /// The XID.
    Xid,
    /// NVLink5: the subcode word.
    Subcode,
    /// NVLink5: the link.
    Link,
    /// NVLink5: IntrInfo.
    IntrInfo,
    /// NVLink5: Error Status.
    ErrorStatus,
    /// Allow an XID outside the catalog.
    Force,
    /// Follow the node until it is cordoned.
    Watch,
}

impl XidField {
    /// The fields of a standard XID, in display order.
    pub const ALL: [XidField; 4] = [XidField::Gpu, XidField::Xid, XidField::Force, XidField::Watch];

    /// The fields of an NVLink5 XID (144–150), in display order.
    pub const NVLINK5: [XidField; 8] = [
        XidField::Gpu,
        XidField::Xid,
        XidField::Subcode,
        XidField::Link,
        XidField::IntrInfo,
        XidField::ErrorStatus,
        XidField::Force,
        XidField::Watch,
    ];

    /// The field's label.
    pub fn label(self) -> &'static str {
        match self {
            XidField::Gpu => "GPU",
            XidField::Xid => "XID",
            XidField::Subcode => "Subcode",
            XidField::Link => "Link",
            XidField::IntrInfo => "IntrInfo",
            XidField::ErrorStatus => "Error status",
            XidField::Force => "Force",
            XidField::Watch => "Watch cordon",
        }
    }
}

/// The watch choices, in seconds (`None`: do not watch). 300 s is the CLI's `--watch-timeout` default.
pub const WATCH_CHOICES: [Option<u64>; 5] = [None, Some(60), Some(120), Some(300), Some(600)];

/// The watch timeout at `index` of [`WATCH_CHOICES`] (the XID and signal dialogs' Watch row).
pub fn watch_choice(index: usize) -> Option<Duration> {
    WATCH_CHOICES.get(index).copied().flatten().map(Duration::from_secs)
}

/// The Watch row as shown: `< 300 s >` or `< off >`.
pub fn watch_row(index: usize) -> (String, Input) {
    match watch_choice(index) {
        Some(timeout) => (choice(&format!("{} s", timeout.as_secs())), Input::Choice),
        None => (choice("off"), Input::Choice),
    }
}

/// Inject an XID on one node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct XidDialog {
    /// The node, as listed when the dialog opened.
    pub node: GpuNode,
    /// GPU minor, as typed.
    pub gpu: String,
    /// XID, as typed.
    pub xid: String,
    /// NVLink5 subcode, as typed (empty: the catalog's).
    pub subcode: String,
    /// NVLink5 link, as typed.
    pub link: String,
    /// NVLink5 IntrInfo, as typed (empty: the catalog's).
    pub intrinfo: String,
    /// NVLink5 Error Status, as typed (empty: the catalog's).
    pub error_status: String,
    /// Allow an XID outside the catalog.
    pub force: bool,
    /// Index into [`WATCH_CHOICES`].
    pub watch: usize,
    /// Focus, typing, confirmation.
    pub form: FormState,
}

impl XidDialog {
    /// A dialog for `node`: GPU 0, the catalogue's [`DEFAULT_XID`], no force, no watch.
    pub fn new(node: &GpuNode) -> XidDialog {
        XidDialog {
            node: node.clone(),
            gpu: "0".to_string(),
            xid: DEFAULT_XID.to_string(),
            subcode: String::new(),
            link: "0".to_string(),
            intrinfo: String::new(),
            error_status: String::new(),
            force: false,
            watch: 0,
            form: FormState::default(),
        }
    }

    /// The fields shown for the XID typed now (the NVLink5 rows only for 144–150).
    pub fn fields(&self) -> &'static [XidField] {
        match self.nvl5_defaults() {
            Some(_) => &XidField::NVLINK5,
            None => &XidField::ALL,
        }
    }

    /// The catalog's NVLink5 defaults of the XID typed now, if it is one of 144–150.
    fn nvl5_defaults(&self) -> Option<Nvl5> {
        self.xid.trim().parse().ok().and_then(xid::lookup).and_then(|info| info.nvlink5())
    }

    /// The NVLink5 fields as typed (blank: the catalog's default).
    fn nvl5_options(&self) -> Result<Nvl5Options, String> {
        if self.nvl5_defaults().is_none() {
            return Ok(Nvl5Options::default());
        }
        fn given(text: &str) -> Option<&str> {
            Some(text.trim()).filter(|t| !t.is_empty())
        }
        let register = |what, text: &String| {
            given(text).map(|t| xid::parse_register(what, t).map_err(|e| e.to_string())).transpose()
        };
        Ok(Nvl5Options {
            subcode: given(&self.subcode).map(str::to_string),
            link: Some(parse_number("link", &self.link)?),
            intrinfo: register("IntrInfo", &self.intrinfo)?,
            error_status: register("Error status", &self.error_status)?,
        })
    }

    /// The watch timeout chosen.
    pub fn watch_timeout(&self) -> Option<Duration> {
        watch_choice(self.watch)
    }

    /// `Ok(hint)` or `Err(why the field is invalid)`.
    pub fn check(&self, field: XidField) -> Result<String, String> {
        match field {
            XidField::Gpu => {
                let gpu = parse_number("GPU", &self.gpu)?;
                // Only a hint: the device plugin's count can differ from the driver's (time-slicing, MIG).
                Ok(match self.node.gpus {
                    Some(count) if count > 0 && gpu >= count => {
                        format!("⚠ the node reports {count} GPU{} (0–{})", plural(count), count - 1)
                    }
                    Some(count) if count > 0 => format!("of {count} on the node"),
                    _ => "the node reports no GPU count".to_string(),
                })
            }
            XidField::Xid => {
                let number = parse_number("XID", &self.xid)?;
                match xid::lookup(number) {
                    Some(info) => Ok(format!("{} · {}", info.name, info.severity.name())),
                    None if self.force => Ok(format!("{} · forced", xid::UNKNOWN_NAME)),
                    None => Err(unknown_xid(number, Names::Labels)),
                }
            }
            XidField::Subcode => match self.subcode.trim() {
                "" => Ok(format!("default {}", self.nvl5_defaults().map_or("-", |d| d.subcode))),
                typed => xid::check_subcode(typed).map(|_| "the NVLink sub-unit".to_string()).map_err(|e| rename(&e)),
            },
            XidField::Link => {
                let link = parse_number("link", &self.link)?;
                match link <= xid::MAX_LINK {
                    true => Ok("the NVLink the error is on".to_string()),
                    false => Err(format!("{link} is not a link 0–{}", xid::MAX_LINK)),
                }
            }
            XidField::IntrInfo | XidField::ErrorStatus => {
                let (text, default) = match (field, self.nvl5_defaults()) {
                    (XidField::IntrInfo, d) => (&self.intrinfo, d.map(|d| d.intrinfo)),
                    (_, d) => (&self.error_status, d.map(|d| d.error_status)),
                };
                match text.trim() {
                    "" => Ok(format!("default 0x{:08x}", default.unwrap_or(0))),
                    typed => xid::parse_register(field.label(), typed)
                        .map(|v| format!("0x{v:08x}"))
                        .map_err(|e| e.to_string()),
                }
            }
            XidField::Force => Ok("allow an XID outside the catalog".to_string()),
            XidField::Watch => Ok(match self.watch_timeout() {
                Some(timeout) => format!("follow the node up to {} s until it is cordoned", timeout.as_secs()),
                None => "do not wait for the cordon".to_string(),
            }),
        }
    }

    /// The request the draft stands for; `Err` names the first invalid field.
    pub fn inject_request(&self) -> Result<XidInjectRequest, String> {
        if let Some((label, error)) = self.first_error() {
            return Err(format!("{label}: {error}"));
        }
        let gpu = parse_number("GPU", &self.gpu)?;
        let xid = parse_number("XID", &self.xid)?;
        let draft = XidDraft {
            request: XidInjectRequest {
                nvl5: self.nvl5_options()?,
                force: self.force,
                watch: self.watch_timeout(),
                ..XidInjectRequest::new(&self.node.name, gpu, xid)
            },
        };
        draft.parse(Names::Labels).map_err(|e| e.to_string())
    }
}

/// What a dialog says about the node: its agent (the injection runs there), GPUs and cordon.
pub(super) fn agent_line(node: &GpuNode) -> String {
    let agent = match &node.agent {
        Some(agent) if agent.ready => format!("agent pod {} ready", agent.name),
        Some(agent) => format!("agent pod {} not ready ({}): the injection will fail", agent.name, agent.phase),
        None => "no faultline-node agent pod here: the injection will fail".to_string(),
    };
    let gpus = node.gpus.map_or("GPU count unknown".to_string(), |g| format!("{g} GPUs"));
    format!("{agent} · {gpus} · {}", if node.cordoned { "cordoned" } else { "not cordoned" })
}

impl ClusterForm for XidDialog {
    const NOT_DONE: &'static str = "not injected";
    const CLOSED: &'static str = "XID dialog closed; nothing injected";

    fn look(&self) -> FormLook {
        FormLook {
            title: format!(" Inject an XID on node {} ", self.node.name),
            intro: agent_line(&self.node),
            width: 96,
            label_width: 14,
            // The NVLink5 rows need room for a subcode word (`NETIR_LINK_DOWN`).
            value_width: if self.nvl5_defaults().is_some() { 18 } else { 14 },
            hints: FormHints::Steps,
            yes: "inject",
            ready: "✓ Enter asks for confirmation before anything is injected.",
            error_suffix: "; Enter injects nothing",
            terse_row_errors: true,
        }
    }

    fn state(&self) -> &FormState {
        &self.form
    }

    fn state_mut(&mut self) -> &mut FormState {
        &mut self.form
    }

    fn rows(&self) -> Vec<FormRow> {
        self.fields()
            .iter()
            .map(|&field| {
                let (value, input) = match field {
                    XidField::Gpu => (self.gpu.clone(), Input::Stepped),
                    XidField::Xid => (self.xid.clone(), Input::Stepped),
                    XidField::Subcode => (self.subcode.clone(), Input::Text),
                    XidField::Link => (self.link.clone(), Input::Stepped),
                    XidField::IntrInfo => (self.intrinfo.clone(), Input::Text),
                    XidField::ErrorStatus => (self.error_status.clone(), Input::Text),
                    XidField::Force => (checkbox(self.force), Input::Toggle),
                    XidField::Watch => watch_row(self.watch),
                };
                FormRow { label: field.label(), value, input, check: self.check(field) }
            })
            .collect()
    }

    fn text_mut(&mut self, index: usize) -> Option<&mut String> {
        match self.fields().get(index)? {
            XidField::Gpu => Some(&mut self.gpu),
            XidField::Xid => Some(&mut self.xid),
            XidField::Subcode => Some(&mut self.subcode),
            XidField::Link => Some(&mut self.link),
            XidField::IntrInfo => Some(&mut self.intrinfo),
            XidField::ErrorStatus => Some(&mut self.error_status),
            XidField::Force | XidField::Watch => None,
        }
    }

    /// GPU and link ± `delta`; XID to the previous / next catalog entry; force flips; watch cycles.
    fn step_row(&mut self, index: usize, delta: i64) {
        let Some(field) = self.fields().get(index) else { return };
        match field {
            XidField::Link => {
                let current = self.link.trim().parse::<i64>().unwrap_or(0);
                self.link = (current + delta).clamp(0, i64::from(xid::MAX_LINK)).to_string();
            }
            XidField::Subcode | XidField::IntrInfo | XidField::ErrorStatus => {}
            XidField::Gpu => {
                let current = self.gpu.trim().parse::<i64>().unwrap_or(0);
                self.gpu = (current + delta).clamp(0, i64::from(u32::MAX)).to_string();
            }
            XidField::Xid => {
                let current = self.xid.trim().parse::<u32>().ok();
                let next = if delta > 0 {
                    CATALOG.iter().find(|info| current.is_none_or(|c| info.xid > c)).or(CATALOG.last())
                } else {
                    CATALOG.iter().rev().find(|info| current.is_none_or(|c| info.xid < c)).or(CATALOG.first())
                };
                if let Some(info) = next {
                    self.xid = info.xid.to_string();
                }
            }
            XidField::Force => self.force = !self.force,
            XidField::Watch => self.watch = cycle(self.watch, delta, WATCH_CHOICES.len()),
        }
    }

    fn request(&self) -> Result<ClusterRequest, String> {
        self.inject_request().map(|request| ClusterRequest::InjectXid(Box::new(request)))
    }

    /// The confirmation question, e.g. `Inject XID 79 (GPU has fallen off the bus, critical) on GPU 0 of node
    /// gpu-a? y/n`.
    fn question(&self) -> Result<String, String> {
        let request = self.inject_request()?;
        let what = match xid::lookup(request.xid) {
            Some(info) => format!("{}, {}", info.name, info.severity.name()),
            None => format!("{}, forced", xid::UNKNOWN_NAME),
        };
        let what = match xid::Nvl5Fields::resolve(request.xid, &request.nvl5).ok().flatten() {
            Some(fields) => format!("{what}; {} on link {}", fields.subcode, fields.link),
            None => what,
        };
        let watch = match request.watch {
            Some(timeout) => format!(", then watch up to {} s for the cordon", timeout.as_secs()),
            None => String::new(),
        };
        Ok(format!("Inject XID {} ({what}) on GPU {} of node {}{watch}? y/n", request.xid, request.gpu, request.node))
    }
}

/// A node-side error in the dialog's words (row labels for flags).
fn rename(error: &crate::node::NodeError) -> String {
    Names::Labels.rename(&error.to_string())
}

fn parse_number(what: &str, text: &str) -> Result<u32, String> {
    let text = text.trim();
    if text.is_empty() {
        return Err(format!("give the {what} number"));
    }
    text.parse().map_err(|_| format!("'{text}' is not a whole number"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(gpus: Option<u32>) -> GpuNode {
        GpuNode {
            name: "gpu-a".into(),
            ready: Some(true),
            cordoned: false,
            taints: vec![],
            gpus,
            agent: None,
            recent_xids: vec![],
        }
    }

    #[test]
    fn defaults_ask_for_xid_79_on_gpu_0() {
        let dialog = XidDialog::new(&node(Some(8)));
        assert_eq!(dialog.inject_request().unwrap(), XidInjectRequest::new("gpu-a", 0, 79));
        assert_eq!(
            dialog.question().unwrap(),
            "Inject XID 79 (GPU has fallen off the bus, critical) on GPU 0 of node gpu-a? y/n"
        );
        assert_eq!(dialog.check(XidField::Xid).unwrap(), "GPU has fallen off the bus · critical");
    }

    #[test]
    fn the_first_key_replaces_the_proposed_value_and_names_follow_the_typing() {
        let mut dialog = XidDialog::new(&node(Some(8)));
        dialog.move_cursor(1);
        dialog.type_char('4');
        assert_eq!(dialog.xid, "4");
        assert!(dialog.check(XidField::Xid).unwrap_err().contains("XID 4 is not in faultline's catalog"));
        dialog.type_char('8');
        assert_eq!(dialog.check(XidField::Xid).unwrap(), "Double bit ECC error · critical");
        dialog.step(1);
        assert_eq!(dialog.xid, "54", "→ goes to the next catalog XID");
        dialog.step(-1);
        dialog.step(-1);
        assert_eq!(dialog.xid, "46");
    }

    #[test]
    fn an_unknown_xid_needs_force_and_a_bad_number_blocks_everything() {
        let mut dialog = XidDialog::new(&node(None));
        dialog.xid = "200".into();
        let error = dialog.inject_request().unwrap_err();
        assert!(error.starts_with("XID: XID 200 is not in faultline's catalog") && error.contains("turn Force on"));
        dialog.force = true;
        let request = dialog.inject_request().unwrap();
        assert!(request.force && request.xid == 200);
        assert!(dialog.question().unwrap().contains("(XID outside the faultline catalog, forced)"));
        dialog.gpu = "-1".into();
        assert_eq!(dialog.inject_request().unwrap_err(), "GPU: '-1' is not a whole number");
        dialog.gpu.clear();
        assert_eq!(dialog.inject_request().unwrap_err(), "GPU: give the GPU number");
    }

    #[test]
    fn nvlink5_xids_show_their_subcode_rows_with_the_catalog_s_defaults() {
        let mut dialog = XidDialog::new(&node(Some(8)));
        assert_eq!(dialog.rows().len(), 4);
        dialog.xid = "149".into();
        let labels: Vec<&str> = dialog.rows().iter().map(|row| row.label).collect();
        assert_eq!(labels, ["GPU", "XID", "Subcode", "Link", "IntrInfo", "Error status", "Force", "Watch cordon"]);
        assert_eq!(dialog.check(XidField::Subcode).unwrap(), "default NETIR_LINK_EVT");
        assert_eq!(dialog.check(XidField::IntrInfo).unwrap(), "default 0x000001c6");
        assert_eq!(dialog.inject_request().unwrap().nvl5, Nvl5Options { link: Some(0), ..Nvl5Options::default() });
        dialog.form.cursor = 3;
        dialog.step(9);
        dialog.subcode = "NETIR LINK".into();
        assert!(dialog.check(XidField::Subcode).unwrap_err().starts_with("Subcode `NETIR LINK` is not a subcode"));
        dialog.subcode = "NETIR_LINK_DOWN".into();
        dialog.intrinfo = "0x025525c6".into();
        let request = dialog.inject_request().unwrap();
        assert_eq!((request.nvl5.link, request.nvl5.intrinfo), (Some(9), Some(0x0255_25c6)));
        assert!(dialog.question().unwrap().contains("(NVLINK: NETIR Error, high; NETIR_LINK_DOWN on link 9)"));
        dialog.error_status = "x".into();
        assert!(dialog.inject_request().unwrap_err().starts_with("Error status: Error status `x` is not a 32-bit"));
        dialog.xid = "79".into();
        assert_eq!(dialog.inject_request().unwrap().nvl5, Nvl5Options::default(), "other XIDs send none");
    }

    #[test]
    fn force_is_sent_only_when_needed_and_the_watch_cycles() {
        let mut dialog = XidDialog::new(&node(Some(2)));
        dialog.force = true;
        assert!(!dialog.inject_request().unwrap().force, "a catalog XID needs no --force");
        dialog.gpu = "2".into();
        assert_eq!(dialog.check(XidField::Gpu).unwrap(), "⚠ the node reports 2 GPUs (0–1)");
        dialog.form.cursor = 3;
        dialog.toggle();
        dialog.toggle();
        dialog.toggle();
        assert_eq!(dialog.inject_request().unwrap().watch, Some(Duration::from_secs(300)));
        assert!(dialog.question().unwrap().ends_with("of node gpu-a, then watch up to 300 s for the cordon? y/n"));
        dialog.step(-1);
        dialog.step(-1);
        dialog.step(-1);
        assert_eq!(dialog.watch_timeout(), None);
        dialog.type_char('7');
        assert_eq!((dialog.gpu.as_str(), dialog.xid.as_str()), ("2", "79"), "typing on a choice does nothing");
    }
}
