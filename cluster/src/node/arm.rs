//! Arming a node: the node policy file that every CUDA shim rolled out by faultline reads at start-up
//! (`FAULTLINE_POLICY_FILE`, see shim-cuda's `policy` module). While it says `FAULTLINE_ENABLED=1` with an XID
//! preset, a process started on this node fails from its first CUDA call with that XID's codes — so a pod that
//! restarts on the node fails again, as it would on a real dead GPU. Disarming removes the file; processes
//! already running keep what they read (steer them with the process commands).
//!
//! The file lives in the node agent's host directory ([`LIBRARY_DIR`], next to the shim libraries), which
//! `faultline cluster shim enable` mounts read-only into workloads at the same path. It is written atomically
//! (a temporary file renamed over it), world-readable (workloads run as any user), and carries the fault id in
//! a comment so that recovering one fault never disarms a node armed by another. Its format, writer and parser
//! are shm-proto's [`node_policy`], which the shim reads it with too.

use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use shm_proto::{node_policy, xid};

use super::NodeError;

pub use shm_proto::node_policy::{LIBRARY_DIR, POLICY_FILE};

/// What `faultline node arm` is asked to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArmRequest {
    /// The XID whose CUDA preset processes will fail with.
    pub xid: u32,
    /// The fault this is part of.
    pub fault_id: String,
    /// When the fault ends (RFC 3339, for people reading the file; the reaper disarms it).
    pub expires_at: Option<String>,
    /// The policy file (default [`POLICY_FILE`]).
    pub path: PathBuf,
}

/// The node's state after `arm` / `disarm`, printed as JSON.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArmReport {
    /// Whether the node is armed now.
    pub armed: bool,
    /// The policy file.
    pub path: PathBuf,
    /// The XID it is armed with.
    pub xid: Option<u32>,
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
}

/// Reads the policy file at `path` (`None` when there is none: the node is not armed). A file the shim would
/// ignore as a whole (oversized) reads as one written by hand, without a fault id or XID.
pub fn read(path: &Path) -> Result<Option<PolicyState>, NodeError> {
    match node_policy::read(path) {
        Ok(text) => {
            let policy = node_policy::parse(&text);
            Ok(Some(PolicyState { xid: policy.xid(), fault_id: policy.fault_id }))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(cause) => Err(NodeError::Policy { action: "read", path: path.to_path_buf(), cause }),
    }
}

/// The policy file's text for `request`.
pub fn policy_text(request: &ArmRequest) -> String {
    node_policy::render(request.xid, &request.fault_id, request.expires_at.as_deref())
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
    cuda_preset(request.xid)?;
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
    Ok(ArmReport {
        armed: true,
        path: path.clone(),
        xid: Some(request.xid),
        fault_id: Some(request.fault_id.clone()),
        changed: !unchanged,
    })
}

/// Disarms the node: removes the policy file, unless `fault_id` is given and another fault armed it (then the
/// file stays and the report says who armed it). Idempotent.
pub fn disarm(path: &Path, fault_id: Option<&str>) -> Result<ArmReport, NodeError> {
    let Some(existing) = read(path)? else {
        return Ok(ArmReport { armed: false, path: path.to_path_buf(), xid: None, fault_id: None, changed: false });
    };
    if fault_id.is_some_and(|id| existing.fault_id.as_deref() != Some(id)) {
        return Ok(ArmReport {
            armed: true,
            path: path.to_path_buf(),
            xid: existing.xid,
            fault_id: existing.fault_id,
            changed: false,
        });
    }
    match std::fs::remove_file(path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(cause) => return Err(NodeError::Policy { action: "remove", path: path.to_path_buf(), cause }),
    }
    Ok(ArmReport {
        armed: false,
        path: path.to_path_buf(),
        xid: existing.xid,
        fault_id: existing.fault_id,
        changed: true,
    })
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
            xid: 79,
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
            Some(PolicyState { fault_id: request.fault_id.clone().into(), xid: Some(79) })
        );
        assert!(!arm(&request).unwrap().changed, "arming again with the same fault changes nothing");

        let report = disarm(&request.path, Some("fl-000000000001")).unwrap();
        assert!(!report.armed && report.changed);
        assert!(!request.path.exists());
        let again = disarm(&request.path, Some("fl-000000000001")).unwrap();
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
        let kept = disarm(&first.path, Some("fl-000000000002")).unwrap();
        assert!(kept.armed && !kept.changed);
        assert!(first.path.exists());
    }

    #[test]
    fn an_xid_without_a_cuda_preset_is_refused_and_nothing_is_written() {
        let dir = tempfile::tempdir().unwrap();
        let request = ArmRequest { xid: 13, ..request(dir.path(), "fl-000000000001") };
        let error = arm(&request).unwrap_err();
        assert!(error.to_string().contains("has no preset for XID 13"), "{error}");
        assert_eq!(error.exit_code(), faultline_core::error::EXIT_USAGE);
        assert!(!request.path.exists());
    }
}
