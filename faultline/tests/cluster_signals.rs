//! `faultline cluster fallen-off|sxid|nic inject` against the local Kubernetes API emulator (kmock): the request
//! goes through the action layer, the agent is found, `faultline node <signal>` runs in it (through the `PodExec`
//! double, which runs the real command on this machine: the line lands in this machine's `/dev/kmsg`), an Event is
//! recorded on the Node, the fault ledger lists it, and the watch sees the cordon. Refusals change nothing.

use std::path::Path;
use std::process::{Command, Output};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use faultline::cluster::action::{self, Access, Cluster, ClusterOutcome, ClusterProgress, ClusterRequest};
use faultline::cluster::exec::{ExecOutput, ScriptedExec};
use faultline::cluster::faults::{self, Which};
use faultline::cluster::signal_inject::{self, KernelSignal, Progress, SignalInjectRequest, EVENT_REASON};
use faultline::cluster::xid_inject::{self, XidInjectRequest};
use faultline::node::{kmsg, NicEvent, Nvl5Options, SignalKind, FAULT_MARKER};
use k8s_openapi::jiff::Timestamp;
use serde_json::{json, Value};

mod kmock;
mod sysfs;

use kmock::{agent_pod, node, Kmock};

/// gpu-a with a ready agent, gpu-c without one.
fn cluster() -> Value {
    json!({
        "objects": [
            node("gpu-a", true, 8, false, json!([])),
            node("gpu-c", true, 2, false, json!([])),
            agent_pod("faultline-node-a", "gpu-a", true),
        ],
        "resources": [
            "v1/events",
            "v1/configmaps",
            "networking.k8s.io/v1/networkpolicies",
            "apps/v1/deployments",
            "apps/v1/statefulsets",
        ],
        "forbidden": [],
    })
}

fn fixture(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name).display().to_string()
}

/// An exec double that runs the agent's command on this machine, with the node's driver and sysfs trees pointed at
/// the fixtures (what the agent pod would find on a real GPU node); `cordon` makes NVSentinel's move afterwards.
fn local_agent(sysfs: &Path, cordon: Option<u16>) -> ScriptedExec {
    let sysfs = sysfs.display().to_string();
    ScriptedExec::new(move |target, command| {
        assert_eq!((target.pod.as_str(), target.container.as_str()), ("faultline-node-a", "agent"));
        assert_eq!(&command[..2], ["faultline", "node"]);
        let mut args: Vec<String> = command[1..].to_vec();
        if SignalKind::parse(&command[2]).is_some() {
            args.extend(["--sysfs".into(), sysfs.clone()]);
            args.extend(["--nvswitch-proc".into(), fixture("proc-driver-nvidia-nvswitch")]);
        }
        args.extend(["--nvidia-proc".into(), fixture("proc-driver-nvidia")]);
        let output = Command::new(&testkit::artifacts().faultline).args(&args).output().expect("runs");
        if let Some(port) = cordon {
            let patch = json!({"spec": {"unschedulable": true,
                "taints": [{"key": "nvidia.com/nic-health", "value": "fatal", "effect": "NoSchedule"}]}});
            std::thread::spawn(move || kmock::patch(port, "/api/v1/nodes/gpu-a", &patch));
        }
        Ok(ExecOutput::from(output))
    })
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap()
}

fn needs_root() {
    assert!(faultline::targets::running_as_root(), "the double runs `faultline node …` for real: needs root");
}

#[test]
fn each_signal_runs_the_agent_lands_in_the_kernel_log_and_is_recorded_on_the_node() {
    needs_root();
    let kmock = Kmock::start(&cluster());
    let tree = sysfs::fake_sysfs();
    let runtime = runtime();
    let api = runtime.block_on(async { kmock.api() });
    let exec = local_agent(tree.path(), None);
    let mut log = kmsg::Reader::open_at_end(Path::new(kmsg::DEV_KMSG)).unwrap();
    let signals = [
        (KernelSignal::FallenOff { gpu: 1, pci: None, pci_id: None }, "fallen-off --gpu 1", "SysLogsGPUFallenOff"),
        (
            KernelSignal::Sxid { switch: 2, sxid: 24007, link: 28, fatal: true, message: None, pci: None },
            "sxid --switch 2 --sxid 24007 --link 28 --fatal",
            "SysLogsSXIDError",
        ),
        (
            KernelSignal::Nic { device: "mlx5_0".into(), event: NicEvent::HealthLost, pci: None, netdev: None },
            "nic --device mlx5_0 --event health-lost",
            "SysLogsNICDriverError/health_poll_failed",
        ),
    ];
    let mut ids = Vec::new();
    for (signal, command, monitor) in signals {
        let kind = signal.kind();
        let request = SignalInjectRequest::new("gpu-a", signal);
        let steps = Arc::new(Mutex::new(Vec::new()));
        let log_steps = steps.clone();
        let mut progress = move |p: &Progress| log_steps.lock().unwrap().push(p.clone());
        let result = runtime.block_on(signal_inject::inject(&api, &exec, &request, &mut progress)).expect("written");

        let (_, sent) = exec.calls().pop().unwrap();
        assert!(sent.join(" ").starts_with(&format!("faultline node {command} --fault-id {}", result.fault_id)));
        assert!(result.agent.confirmed && result.agent.monitor == monitor, "{result:?}");
        // The line is in this machine's kernel log, with the fault id everywhere.
        let needle = format!("{FAULT_MARKER}{}", result.fault_id);
        let found = log.find_all(&needle, 1, testkit::WATCHDOG).unwrap();
        let read_back = found.first().map(|r| kmsg::unescape(&r.text));
        assert_eq!(read_back.as_deref(), result.agent.lines.first().map(String::as_str), "newlines come back escaped");

        let events = kmock.events();
        let event = events.iter().find(|e| e["metadata"]["name"] == result.event.clone().unwrap()).expect("Event");
        assert_eq!((event["reason"].as_str(), event["type"].as_str()), (Some(EVENT_REASON), Some("Warning")));
        assert_eq!(event["involvedObject"]["name"], "gpu-a");
        assert_eq!(event["metadata"]["labels"]["faultline.dev/fault-id"], result.fault_id.as_str());
        assert_eq!(event["metadata"]["labels"]["faultline.dev/fault-kind"], "kernel-log");
        assert_eq!(event["metadata"]["annotations"]["faultline.dev/kernel-signal"], kind.command());
        assert!(event["metadata"]["annotations"]["faultline.dev/expires-at"].is_string());
        assert!(event["message"].as_str().unwrap().contains(monitor), "{event}");
        let steps = steps.lock().unwrap().clone();
        assert!(matches!(steps.first(), Some(Progress::Agent { pod, .. }) if pod == "faultline-node-a"));
        assert!(matches!(steps.last(), Some(Progress::EventRecorded { .. })), "{steps:?}");
        ids.push(result.fault_id);
    }

    // The ledger lists them (from the cluster alone), and recovering one says it cannot be undone.
    let listing = runtime.block_on(faults::list(&api, None, Timestamp::now())).unwrap();
    for id in &ids {
        let fault = listing.faults.iter().find(|f| &f.fault_id == id).expect("listed");
        assert_eq!((fault.object_kind.as_str(), fault.kind.map(|k| k.as_str())), ("Event", Some("kernel-log")));
    }
    let mut ignore = |_: &faults::Recovered| {};
    let recovered = runtime
        .block_on(faults::recover(&api, &exec, None, &Which::Id(ids[0].clone()), Timestamp::now(), &mut ignore))
        .unwrap();
    assert_eq!(recovered.len(), 1);
    assert!(recovered[0].outcome.starts_with("cannot be undone (a kernel-log line stays in the log)"));
}

#[test]
fn a_fatal_nic_error_is_watched_until_the_cordon_and_dry_runs_record_nothing() {
    needs_root();
    let kmock = Kmock::start(&cluster());
    let tree = sysfs::fake_sysfs();
    let runtime = runtime();
    let api = runtime.block_on(async { kmock.api() });
    let nic = |event| KernelSignal::Nic { device: "rdmap0s6".into(), event, pci: None, netdev: None };

    let exec = local_agent(tree.path(), Some(kmock.port));
    let request = SignalInjectRequest {
        watch: Some(testkit::WATCHDOG),
        watch_interval: Some(Duration::from_millis(50)),
        ..SignalInjectRequest::new("gpu-a", nic(NicEvent::EfaQueueClosed))
    };
    let mut ignore = |_: &Progress| {};
    let result = runtime.block_on(signal_inject::inject(&api, &exec, &request, &mut ignore)).unwrap();
    let watch = result.watch.clone().unwrap();
    assert!(watch.cordoned && !result.watch_timed_out(), "{watch:?}");
    assert!(result.agent.fatal && result.agent.lines[0].contains("infiniband rdmap0s6: Admin queue is closed"));

    let quiet = local_agent(tree.path(), None);
    let dry = SignalInjectRequest { dry_run: true, ..SignalInjectRequest::new("gpu-a", nic(NicEvent::EfaNotReady)) };
    let before = kmock.events().len();
    let result = runtime.block_on(signal_inject::inject(&api, &quiet, &dry, &mut ignore)).unwrap();
    assert!(result.agent.dry_run && !result.agent.confirmed && result.event.is_none());
    assert_eq!(kmock.events().len(), before, "a dry run records no Event");

    // The agent's refusal comes back with its message and exit status, and no Event.
    let wrong = SignalInjectRequest::new("gpu-a", nic(NicEvent::CmdTimeout));
    let error = runtime.block_on(signal_inject::inject(&api, &quiet, &wrong, &mut ignore)).unwrap_err();
    assert_eq!(error.exit_code(), 2, "{error}");
    assert!(error.to_string().contains("rdmap0s6 is driven by efa, but cmd-timeout is a mlx5_core event"));
    assert_eq!(kmock.events().len(), before);
}

#[test]
fn an_nvlink5_xid_with_its_uuid_goes_through_the_agent() {
    needs_root();
    let kmock = Kmock::start(&cluster());
    let tree = sysfs::fake_sysfs();
    let runtime = runtime();
    let api = runtime.block_on(async { kmock.api() });
    let exec = local_agent(tree.path(), None);
    let request = XidInjectRequest {
        nvl5: Nvl5Options { subcode: Some("NETIR_LINK_EVT".into()), link: Some(9), ..Nvl5Options::default() },
        ..XidInjectRequest::new("gpu-a", 1, 149)
    };
    let mut ignore = |_: &xid_inject::Progress| {};
    let result = runtime.block_on(xid_inject::inject(&api, &exec, &request, &mut ignore)).unwrap();
    assert_eq!(result.agent.uuid.as_deref(), Some("GPU-3f5a6e2c-0000-4000-8000-000000000001"));
    assert!(result.agent.mapping_line.as_deref().unwrap().contains("NVRM: GPU at PCI:0000:1a:00: GPU-3f5a6e2c"));
    assert!(result.agent.line.contains("149, NETIR_LINK_EVT Fatal XC0 i0 Link 09 (0x000001c6 "), "{result:?}");
    let (_, sent) = exec.calls().pop().unwrap();
    assert!(
        sent.windows(2).any(|w| w == ["--subcode", "NETIR_LINK_EVT"]) && sent.windows(2).any(|w| w == ["--link", "9"])
    );
}

/// The real CLI against kmock: refusals before anything reaches the node, and the Session's own exec path.
fn cli(kmock: &Kmock, args: &[&str], code: i32) -> String {
    let output: Output = kmock.faultline(args);
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert_eq!(output.status.code(), Some(code), "{args:?}: {stderr}");
    stderr
}

#[test]
fn the_cli_refuses_clearly_before_changing_anything() {
    let kmock = Kmock::start(&cluster());
    let stderr = cli(
        &kmock,
        &["cluster", "nic", "inject", "--node", "ghost", "--device", "mlx5_0", "--event", "cmd-timeout"],
        2,
    );
    assert!(stderr.contains("node ghost not found"), "{stderr}");
    let stderr = cli(&kmock, &["cluster", "sxid", "inject", "--node", "gpu-c", "--sxid", "1", "--link", "1"], 1);
    assert!(stderr.contains("no faultline-node agent pod on node gpu-c"), "{stderr}");
    let stderr = cli(&kmock, &["--read-only", "cluster", "fallen-off", "inject", "--node", "gpu-a"], 2);
    assert!(stderr.contains("--read-only: refusing to write to a node's kernel log"), "{stderr}");
    let stderr =
        cli(&kmock, &["cluster", "nic", "inject", "--node", "gpu-a", "--device", "../x", "--event", "tx-timeout"], 2);
    assert!(stderr.contains("--device `../x` is not a device name"), "{stderr}");
    let stderr =
        cli(&kmock, &["cluster", "nic", "inject", "--node", "gpu-a", "--device", "mlx5_0", "--event", "melt"], 2);
    assert!(stderr.contains("a NIC event"), "{stderr}");
    let stderr = cli(&kmock, &["cluster", "sxid", "inject", "--node", "gpu-a", "--sxid", "1", "--link", "64"], 2);
    assert!(stderr.contains("--link `64` is not a link 0–63"), "{stderr}");
    let stderr = cli(&kmock, &["cluster", "fallen-off", "inject", "--node", "gpu-a", "--pci-id", "nvidia"], 2);
    assert!(stderr.contains("--pci-id `nvidia` is not a PCI vendor:device ID"), "{stderr}");
    let stderr = cli(&kmock, &["cluster", "xid", "inject", "--node", "gpu-a", "--xid", "79", "--subcode", "X"], 2);
    assert!(stderr.contains("--subcode applies to the NVLink5 XIDs 144–150 only"), "{stderr}");
    // kmock has no exec endpoint: the real path fails naming the pod, and nothing is recorded.
    let stderr = cli(&kmock, &["cluster", "fallen-off", "inject", "--node", "gpu-a", "--dry-run"], 1);
    assert!(stderr.contains("exec into pod faultline-node-a in namespace faultline-system"), "{stderr}");
    assert!(kmock.events().is_empty(), "nothing was recorded");
}

/// A cluster double that records what it was asked.
struct Recording(Mutex<Vec<SignalInjectRequest>>);

#[test]
fn the_action_layer_refuses_read_only_and_says_each_step_once() {
    let request = ClusterRequest::InjectSignal(Box::new(SignalInjectRequest::new(
        "gpu-a",
        KernelSignal::Sxid { switch: 0, sxid: 24007, link: 28, fatal: true, message: None, pci: None },
    )));
    assert_eq!(request.busy(), "writing SXid 24007 (Fatal) on link 28 of NVSwitch 0 into the kernel log of node gpu-a");
    let recording = Recording(Mutex::new(Vec::new()));
    let mut steps = Vec::new();
    let refused = action::execute(&recording, &request, Access { read_only: true }, &mut |s| steps.push(s));
    assert_eq!(refused.unwrap_err().to_string(), "--read-only: refusing to write to a node's kernel log");
    assert!(recording.0.lock().unwrap().is_empty() && steps.is_empty());

    let ClusterRequest::InjectSignal(mut dry) = request.clone() else { unreachable!() };
    dry.dry_run = true;
    let dry = ClusterRequest::InjectSignal(dry);
    assert_eq!(dry.action(), None, "a dry run changes nothing");
    let outcome = action::execute(&recording, &dry, Access { read_only: true }, &mut |s| steps.push(s)).unwrap();
    let text: Vec<String> = steps.iter().map(ToString::to_string).collect();
    assert_eq!(text, ["running `faultline node sxid` in agent pod faultline-node-a", "dry run, nothing written: kernel: nvidia-nvswitch0: SXid (PCI:0000:05:00.0): 24007, Fatal, Link 28 sourcetrack timeout error (First) faultline-fault=fl-000000000001"]);
    assert_eq!(
        outcome.to_string(),
        "NVSwitch SXid: SXid 24007 (Fatal) on NVSwitch 0 link 28 formatted (dry run, nothing written) into the kernel \
         log of node gpu-a (read by SysLogsSXIDError, fatal): fault fl-000000000001"
    );
    assert!(matches!(outcome, ClusterOutcome::Signal(_)) && outcome.exit_code() == 0);
    assert!(ClusterProgress::Signal(Progress::Watch(xid_inject::Progress::Waiting {
        elapsed: Duration::ZERO,
        taints: vec![]
    }))
    .is_waiting());
}

impl Cluster for Recording {
    fn server(&self) -> String {
        "https://fake:6443".into()
    }
    fn namespace(&self) -> String {
        "default".into()
    }
    fn gpu_nodes(&self) -> Result<Vec<faultline::cluster::nodes::GpuNode>, faultline::cluster::ClusterError> {
        Ok(vec![])
    }
    fn faults(&self, _: Option<&str>) -> Result<faults::Listing, faultline::cluster::ClusterError> {
        Ok(faults::Listing::default())
    }
    fn inject_xid(
        &self,
        _: &XidInjectRequest,
        _: &mut (dyn FnMut(&xid_inject::Progress) + Send),
    ) -> Result<xid_inject::XidInjectResult, faultline::cluster::ClusterError> {
        unreachable!("not asked")
    }
    fn inject_signal(
        &self,
        request: &SignalInjectRequest,
        progress: &mut (dyn FnMut(&Progress) + Send),
    ) -> Result<signal_inject::SignalInjectResult, faultline::cluster::ClusterError> {
        self.0.lock().unwrap().push(request.clone());
        progress(&Progress::Agent { pod: "faultline-node-a".into(), command: request.signal.kind().command() });
        let KernelSignal::Sxid { switch, sxid, link, fatal, .. } = request.signal.clone() else { unreachable!() };
        let pci = faultline::node::gpus::PciAddress::parse("0000:05:00.0").unwrap();
        let message =
            faultline::node::sxid::sxid_message(switch, &pci, sxid, fatal, link, "sourcetrack timeout error (First)");
        let line = faultline::node::signal::Line::new(3, &message, "fl-000000000001");
        let mut report =
            faultline::node::SignalReport::formatted(SignalKind::Sxid, "fl-000000000001", &[line], request.dry_run);
        report.summary = format!("SXid {sxid} (Fatal) on NVSwitch {switch} link {link}");
        report.fatal = fatal;
        progress(&Progress::Injected { report: Box::new(report.clone()) });
        Ok(signal_inject::SignalInjectResult {
            fault_id: report.fault_id.clone(),
            node: request.node.clone(),
            pod: "faultline-node-a".into(),
            agent: report,
            event: None,
            watch: None,
        })
    }
    fn create_partition(
        &self,
        _: &action::PartitionRequest,
    ) -> Result<faultline::cluster::network::Created, faultline::cluster::ClusterError> {
        unreachable!("not asked")
    }
    fn enable_shim(
        &self,
        _: &action::ShimRequest,
        _: &mut (dyn FnMut(&str) + Send),
    ) -> Result<faultline::cluster::shim::ShimChange, faultline::cluster::ClusterError> {
        unreachable!("not asked")
    }
    fn disable_shim(
        &self,
        _: &action::ShimTarget,
        _: &mut (dyn FnMut(&str) + Send),
    ) -> Result<faultline::cluster::shim::ShimChange, faultline::cluster::ClusterError> {
        unreachable!("not asked")
    }
    fn arm_node(
        &self,
        _: &action::ArmRequest,
    ) -> Result<faultline::cluster::arm::ArmedNode, faultline::cluster::ClusterError> {
        unreachable!("not asked")
    }
    fn armed_by(&self, _: &str) -> Result<Option<String>, faultline::cluster::ClusterError> {
        Ok(None)
    }
    fn recover(
        &self,
        _: Option<&str>,
        _: &Which,
        _: &mut (dyn FnMut(&faults::Recovered) + Send),
    ) -> Result<Vec<faults::Recovered>, faultline::cluster::ClusterError> {
        Ok(vec![])
    }
    fn gpu_failure(
        &self,
        _: &faultline::cluster::gpu_failure::GpuFailureRequest,
        _: &mut (dyn FnMut(&faultline::cluster::gpu_failure::Step) + Send),
    ) -> Result<faultline::cluster::gpu_failure::GpuFailure, faultline::cluster::ClusterError> {
        unreachable!("not asked")
    }
    fn nic_failure(
        &self,
        _: &faultline::cluster::nic_failure::NicFailureRequest,
        _: &mut (dyn FnMut(&faultline::cluster::gpu_failure::Step) + Send),
    ) -> Result<faultline::cluster::nic_failure::NicFailure, faultline::cluster::ClusterError> {
        unreachable!("not asked")
    }
    fn processes(
        &self,
        _: &faultline::cluster::processes::ProcessScope,
    ) -> Result<faultline::cluster::processes::ProcessListing, faultline::cluster::ClusterError> {
        unreachable!("not asked")
    }
    fn process_command(
        &self,
        _: &faultline::cluster::processes::ProcessScope,
        _: &[String],
        _: bool,
    ) -> Result<Vec<faultline::cluster::processes::NodeReply>, faultline::cluster::ClusterError> {
        unreachable!("not asked")
    }
}
