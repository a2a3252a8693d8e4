//! Arming a node: the node policy files that the shims rolled out by faultline read at start-up. The CUDA file
//! (`FAULTLINE_POLICY_FILE`, see shim-cuda's `policy` module): while it says `FAULTLINE_ENABLED=1` with an XID
//! preset, a process started on this node fails from its first CUDA call with that XID's codes. The UCX file
//! (`FAULTLINE_UCX_POLICY_FILE`, see shim-ucx's `policy` module; `faultline node arm --kind ucx`): while it is
//! there, a process started on this node fails its UCX endpoints with the code from its first armed call, as on a
//! dead NIC. Either way a pod that restarts on the node fails again, as on real broken hardware. Disarming removes
//! the file; processes already running keep what they read (steer them with the process commands).
//!
//! The files live in the node agent's host directory ([`LIBRARY_DIR`], next to the shim libraries), which
//! `faultline cluster shim enable` mounts read-only into workloads at the same path. Each is written atomically
//! (a temporary file renamed over it), world-readable (workloads run as any user), and carries the fault id in
//! a comment so that recovering one fault never disarms a node armed by another. Their format, writers and parser
//! are shm-proto's [`node_policy`], which the shims read them with too.

use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use shm_proto::{codes, node_policy, xid, Kind};

use super::NodeError;

pub use shm_proto::node_policy::{LIBRARY_DIR, POLICY_FILE, UCX_POLICY_FILE};

/// The code a UCX node fails with unless told otherwise: `UCS_ERR_ENDPOINT_TIMEOUT`, what UCX reports when a
/// peer's NIC stops answering.
pub const DEFAULT_UCX_CODE: i32 = -80;

/// What a node's shims are armed with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arming {
    /// CUDA shims fail as with this XID (one with a CUDA shim preset).
    Cuda {
        /// The XID.
        xid: u32,
    },
    /// UCX shims fail their endpoints with this UCX status.
    Ucx {
        /// The status (negative).
        code: i32,
    },
}

impl Arming {
    /// Which shim reads the file.
    pub fn kind(self) -> Kind {
        match self {
            Arming::Cuda { .. } => Kind::Cuda,
            Arming::Ucx { .. } => Kind::Ucx,
        }
    }

    /// Checks it: an XID with a CUDA preset, or a UCX error status.
    pub fn check(self) -> Result<(), NodeError> {
        match self {
            Arming::Cuda { xid } => cuda_preset(xid).map(drop),
            Arming::Ucx { code } => check_ucx_code(code).map(drop),
        }
    }

    /// What processes started on the node will see, e.g. `fail as with XID 79`, `fail their endpoints with -80
    /// (UCS_ERR_ENDPOINT_TIMEOUT)`.
    pub fn describe(self) -> String {
        match self {
            Arming::Cuda { xid } => format!("fail as with XID {xid}"),
            Arming::Ucx { code } => format!("fail their endpoints with {}", ucx_code_text(code)),
        }
    }

    fn render(self, fault_id: &str, expires_at: Option<&str>) -> String {
        match self {
            Arming::Cuda { xid } => node_policy::render(xid, fault_id, expires_at),
            Arming::Ucx { code } => node_policy::render_ucx(code, fault_id, expires_at),
        }
    }
}

/// A UCX status with its name, e.g. `-80 (UCS_ERR_ENDPOINT_TIMEOUT)`.
pub fn ucx_code_text(code: i32) -> String {
    match codes::name_of(Kind::Ucx, code) {
        Some(name) => format!("{code} ({name})"),
        None => code.to_string(),
    }
}

/// Parses a UCX error status given by number or name (`-80`, `UCS_ERR_ENDPOINT_TIMEOUT`), refusing one that is
/// not an error.
pub fn parse_ucx_code(text: &str) -> Result<i32, NodeError> {
    let code = codes::parse_code(Kind::Ucx, text).map_err(|e| NodeError::BadValue {
        what: "--code",
        value: format!("{text} ({e})"),
        expected: "a UCX error status, by number or name (e.g. UCS_ERR_ENDPOINT_TIMEOUT, UCS_ERR_CONNECTION_RESET)",
    })?;
    check_ucx_code(code)
}

fn check_ucx_code(code: i32) -> Result<i32, NodeError> {
    if codes::is_error(Kind::Ucx, code) {
        Ok(code)
    } else {
        Err(NodeError::BadValue {
            what: "--code",
            value: code.to_string(),
            expected:
                "a UCX error status (negative), e.g. -80 UCS_ERR_ENDPOINT_TIMEOUT or -25 UCS_ERR_CONNECTION_RESET",
        })
    }
}

/// What `faultline node arm` is asked to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArmRequest {
    /// What the shims fail with.
    pub arming: Arming,
    /// The fault this is part of.
    pub fault_id: String,
    /// When the fault ends (RFC 3339, for people reading the file; the reaper disarms it).
    pub expires_at: Option<String>,
    /// The policy file (default [`POLICY_FILE`], [`UCX_POLICY_FILE`] for UCX).
    pub path: PathBuf,
}

fn cuda_name() -> String {
    Kind::Cuda.name().to_string()
}

/// The node's state after `arm` / `disarm`, printed as JSON.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArmReport {
    /// Whether the node is armed now.
    pub armed: bool,
    /// Which shim's file: `cuda` or `ucx`.
    #[serde(default = "cuda_name")]
    pub kind: String,
    /// The policy file.
    pub path: PathBuf,
    /// The XID it is armed with (CUDA).
    pub xid: Option<u32>,
    /// The code it is armed with (UCX).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<i32>,
    /// The fault that armed it.
    pub fault_id: Option<String>,
    /// Whether this call changed anything (re-arming with the same fault, or disarming a disarmed node, does not).
    pub changed: bool,
}

/// What an existing policy file says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyState {
    /// The fault id in its comment, if any (a file written by hand has none).
    pub fault_id: Option<String>,
    /// `FAULTLINE_XID`, if set.
    pub xid: Option<u32>,
    /// The first of `FAULTLINE_ERROR_CODES` as a UCX status, if it is one.
    pub code: Option<i32>,
}

/// Reads the policy file at `path` (`None` when there is none: the node is not armed). A file the shim would
/// ignore as a whole (oversized) reads as one written by hand, without a fault id or XID.
pub fn read(path: &Path) -> Result<Option<PolicyState>, NodeError> {
    match node_policy::read(path) {
        Ok(text) => {
            let policy = node_policy::parse(&text);
            let code = policy
                .get("FAULTLINE_ERROR_CODES")
                .and_then(|codes| codes::parse_code_list(Kind::Ucx, codes).ok())
                .and_then(|pool| pool.first().copied());
            Ok(Some(PolicyState { xid: policy.xid(), code, fault_id: policy.fault_id }))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(cause) => Err(NodeError::Policy { action: "read", path: path.to_path_buf(), cause }),
    }
}

/// The policy file's text for `request`.
pub fn policy_text(request: &ArmRequest) -> String {
    request.arming.render(&request.fault_id, request.expires_at.as_deref())
}

/// The CUDA shim's preset for `xid`, or the error every command that needs one reports.
pub fn cuda_preset(xid: u32) -> Result<xid::Preset, NodeError> {
    xid::preset(xid).ok_or_else(|| {
        let xids: Vec<String> = xid::presets().map(|p| p.xid.to_string()).collect();
        NodeError::NoCudaPreset { xid, presets: xids.join(", ") }
    })
}

/// Arms the node: writes the policy file. Idempotent for the same fault; refused when another fault armed it.
pub fn arm(request: &ArmRequest) -> Result<ArmReport, NodeError> {
    request.arming.check()?;
    super::checked_field("--fault-id", &request.fault_id)?;
    let path = &request.path;
    let existing = read(path)?;
    if let Some(existing) = &existing {
        if existing.fault_id.as_deref() != Some(request.fault_id.as_str()) {
            let fault_id = existing.fault_id.clone().unwrap_or_else(|| "(written by hand)".to_string());
            return Err(NodeError::ArmedByOther { fault_id, path: path.clone() });
        }
    }
    let text = policy_text(request);
    let unchanged = std::fs::read_to_string(path).is_ok_and(|old| old == text);
    if !unchanged {
        write_atomically(path, &text)?;
    }
    let (xid, code) = match request.arming {
        Arming::Cuda { xid } => (Some(xid), None),
        Arming::Ucx { code } => (None, Some(code)),
    };
    Ok(ArmReport {
        armed: true,
        kind: request.arming.kind().name().to_string(),
        path: path.clone(),
        xid,
        code,
        fault_id: Some(request.fault_id.clone()),
        changed: !unchanged,
    })
}

/// Disarms the node's `kind` shims: removes the policy file, unless `fault_id` is given and another fault armed it
/// (then the file stays and the report says who armed it). Idempotent.
pub fn disarm(kind: Kind, path: &Path, fault_id: Option<&str>) -> Result<ArmReport, NodeError> {
    let report = |armed: bool, state: Option<PolicyState>, changed: bool| {
        let state = state.unwrap_or(PolicyState { fault_id: None, xid: None, code: None });
        ArmReport {
            armed,
            kind: kind.name().to_string(),
            path: path.to_path_buf(),
            xid: state.xid,
            code: if kind == Kind::Ucx { state.code } else { None },
            fault_id: state.fault_id,
            changed,
        }
    };
    let Some(existing) = read(path)? else {
        return Ok(report(false, None, false));
    };
    if fault_id.is_some_and(|id| existing.fault_id.as_deref() != Some(id)) {
        return Ok(report(true, Some(existing), false));
    }
    match std::fs::remove_file(path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(cause) => return Err(NodeError::Policy { action: "remove", path: path.to_path_buf(), cause }),
    }
    Ok(report(false, Some(existing), true))
}

fn write_atomically(path: &Path, text: &str) -> Result<(), NodeError> {
    let error = |cause| NodeError::Policy { action: "write", path: path.to_path_buf(), cause };
    let file_name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let temporary = path.with_file_name(format!(".{file_name}.new"));
    let mut file = std::fs::File::create(&temporary).map_err(error)?;
    let written = file
        .write_all(text.as_bytes())
        .and_then(|()| {
            use std::os::unix::fs::PermissionsExt;
            file.set_permissions(std::fs::Permissions::from_mode(0o644))
        })
        .and_then(|()| file.sync_all())
        .and_then(|()| std::fs::rename(&temporary, path));
    if let Err(cause) = written {
        let _ = std::fs::remove_file(&temporary);
        return Err(error(cause));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(dir: &Path, fault_id: &str) -> ArmRequest {
        ArmRequest {
            arming: Arming::Cuda { xid: 79 },
            fault_id: fault_id.into(),
            expires_at: Some("2026-11-22T10:10:00Z".into()),
            path: dir.join("cuda.policy"),
        }
    }

    #[test]
    fn arm_writes_a_policy_the_cuda_shim_reads_and_disarm_removes_it() {
        let dir = tempfile::tempdir().unwrap();
        let request = request(dir.path(), "fl-000000000001");
        let report = arm(&request).unwrap();
        assert!(report.armed && report.changed);
        let text = std::fs::read_to_string(&request.path).unwrap();
        assert!(text.contains("\nFAULTLINE_ENABLED=1\nFAULTLINE_XID=79\n"), "{text}");
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&request.path).unwrap().permissions().mode() & 0o777, 0o644);
        assert_eq!(
            read(&request.path).unwrap(),
            Some(PolicyState { fault_id: request.fault_id.clone().into(), xid: Some(79), code: None })
        );
        assert!(!arm(&request).unwrap().changed, "arming again with the same fault changes nothing");

        let report = disarm(Kind::Cuda, &request.path, Some("fl-000000000001")).unwrap();
        assert!(!report.armed && report.changed);
        assert!(!request.path.exists());
        let again = disarm(Kind::Cuda, &request.path, Some("fl-000000000001")).unwrap();
        assert!(!again.armed && !again.changed, "disarming is idempotent");
    }

    #[test]
    fn another_fault_neither_rearms_nor_disarms_the_node() {
        let dir = tempfile::tempdir().unwrap();
        let first = request(dir.path(), "fl-000000000001");
        arm(&first).unwrap();
        let second = request(dir.path(), "fl-000000000002");
        let error = arm(&second).unwrap_err();
        assert!(
            matches!(error, NodeError::ArmedByOther { ref fault_id, .. } if fault_id == "fl-000000000001"),
            "{error}"
        );
        let kept = disarm(Kind::Cuda, &first.path, Some("fl-000000000002")).unwrap();
        assert!(kept.armed && !kept.changed);
        assert!(first.path.exists());
    }

    #[test]
    fn an_xid_without_a_cuda_preset_is_refused_and_nothing_is_written() {
        let dir = tempfile::tempdir().unwrap();
        let request = ArmRequest { arming: Arming::Cuda { xid: 13 }, ..request(dir.path(), "fl-000000000001") };
        let error = arm(&request).unwrap_err();
        assert!(error.to_string().contains("has no preset for XID 13"), "{error}");
        assert_eq!(error.exit_code(), faultline_core::error::EXIT_USAGE);
        assert!(!request.path.exists());
    }

    #[test]
    fn a_ucx_arming_writes_the_endpoint_policy_and_refuses_a_code_that_is_not_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ucx.policy");
        let request =
            ArmRequest { arming: Arming::Ucx { code: -25 }, path: path.clone(), ..request(dir.path(), "fl-7") };
        let report = arm(&request).unwrap();
        assert_eq!((report.kind.as_str(), report.code, report.xid), ("ucx", Some(-25), None));
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains("FAULTLINE_SITE=endpoint\n") && text.contains("FAULTLINE_ERROR_CODES=-25\n"), "{text}");
        assert_eq!(
            read(&path).unwrap(),
            Some(PolicyState { fault_id: Some("fl-7".into()), xid: None, code: Some(-25) })
        );
        let json = serde_json::to_value(&report).unwrap();
        let back: ArmReport = serde_json::from_value(json).unwrap();
        assert_eq!(back, report);
        let report = disarm(Kind::Ucx, &path, Some("fl-7")).unwrap();
        assert!(!report.armed && report.changed && report.code == Some(-25));
        assert!(!path.exists());

        for bad in [0, 3] {
            let request = ArmRequest { arming: Arming::Ucx { code: bad }, ..request.clone() };
            assert!(arm(&request).unwrap_err().to_string().contains("a UCX error status"));
            assert!(!path.exists());
        }
        assert_eq!(parse_ucx_code("UCS_ERR_ENDPOINT_TIMEOUT").unwrap(), DEFAULT_UCX_CODE);
        assert_eq!(parse_ucx_code("-25").unwrap(), -25);
        assert!(parse_ucx_code("cudaErrorNoDevice").is_err());
        assert_eq!(ucx_code_text(-80), "-80 (UCS_ERR_ENDPOINT_TIMEOUT)");
        assert_eq!(Arming::Ucx { code: -80 }.describe(), "fail their endpoints with -80 (UCS_ERR_ENDPOINT_TIMEOUT)");
    }

    #[test]
    fn a_report_from_an_older_agent_reads_as_cuda() {
        let old = r#"{"armed": true, "path": "/var/lib/faultline/cuda.policy", "xid": 79, "fault_id": "fl-1", "changed": true}"#;
        let report: ArmReport = serde_json::from_str(old).unwrap();
        assert_eq!((report.kind.as_str(), report.code), ("cuda", None));
    }
}
