//! Which Kubernetes pod a shimmed process runs in, as the shim records it in its segment at start-up: the namespace,
//! pod and container names from `FAULTLINE_POD_NAMESPACE`, `FAULTLINE_POD_NAME` and `FAULTLINE_CONTAINER_NAME` (the
//! shim roll-out sets them with the downward API; anyone may set them by hand), and the pod's UID from the
//! process's cgroup (`kubepods…pod<uid>…`), which the cluster side maps to a pod through the API when the names
//! were not given.
//!
//! Everything here is parsing: the shim passes its environment and `/proc/self/cgroup` in, the tools read the
//! result back from the segment ([`crate::layout::PodSlot`]).

/// The variable naming the pod's namespace.
pub const NAMESPACE_VAR: &str = "FAULTLINE_POD_NAMESPACE";
/// The variable naming the pod.
pub const POD_VAR: &str = "FAULTLINE_POD_NAME";
/// The variable naming the container.
pub const CONTAINER_VAR: &str = "FAULTLINE_CONTAINER_NAME";

/// The longest namespace kept (a DNS label: 63).
pub const NAMESPACE_LEN: usize = 63;
/// The longest pod name kept (a DNS subdomain: 253).
pub const POD_LEN: usize = 253;
/// The longest container name kept (a DNS label: 63).
pub const CONTAINER_LEN: usize = 63;
/// A pod UID's length (`8-4-4-4-12` hex digits).
pub const UID_LEN: usize = 36;

/// A process's pod, as far as it is known; every field may be empty.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PodIdentity {
    /// The pod's namespace.
    pub namespace: String,
    /// The pod's name.
    pub pod: String,
    /// The container's name.
    pub container: String,
    /// The pod's UID, from the cgroup (lower-case, dashed).
    pub uid: String,
}

impl PodIdentity {
    /// Whether nothing is known (a process outside Kubernetes).
    pub fn is_empty(&self) -> bool {
        self.namespace.is_empty() && self.pod.is_empty() && self.container.is_empty() && self.uid.is_empty()
    }

    /// What the shim records: the names from the environment (`var` looks one up), each kept only when it is a
    /// plausible Kubernetes name, and the pod UID from `cgroup` (the text of `/proc/self/cgroup`, if it could be
    /// read).
    pub fn detect(var: impl Fn(&str) -> Option<String>, cgroup: Option<&str>) -> PodIdentity {
        let name = |variable: &str, longest: usize| {
            var(variable).map(|v| v.trim().to_string()).filter(|v| is_name(v, longest)).unwrap_or_default()
        };
        PodIdentity {
            namespace: name(NAMESPACE_VAR, NAMESPACE_LEN),
            pod: name(POD_VAR, POD_LEN),
            container: name(CONTAINER_VAR, CONTAINER_LEN),
            uid: cgroup.and_then(pod_uid_from_cgroup).unwrap_or_default(),
        }
    }
}

/// Whether `text` can be a namespace, pod or container name of at most `longest` bytes: lower-case letters,
/// digits, `-` and `.` (anything else — control characters included — is not recorded).
fn is_name(text: &str, longest: usize) -> bool {
    !text.is_empty()
        && text.len() <= longest
        && text.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
}

/// The pod UID in a `/proc/<pid>/cgroup` text: the kubelet names a pod's cgroup `pod<uid>` under `kubepods`
/// (cgroupfs driver: `/kubepods/burstable/pod1234-…/<container>`; systemd driver:
/// `/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod1234_….slice/…`, dashes as underscores).
pub fn pod_uid_from_cgroup(cgroup: &str) -> Option<String> {
    cgroup.lines().filter(|line| line.contains("kubepods")).find_map(|line| {
        let path = line.splitn(3, ':').nth(2)?;
        path.split('/').find_map(|part| {
            let at = part.rfind("pod")?;
            let rest = part[at + 3..].trim_end_matches(".slice");
            let candidate: String = rest.chars().take(UID_LEN).map(|c| if c == '_' { '-' } else { c }).collect();
            is_uid(&candidate).then_some(candidate)
        })
    })
}

/// `8-4-4-4-12` lower-case hex digits.
fn is_uid(text: &str) -> bool {
    let groups: Vec<&str> = text.split('-').collect();
    groups.len() == 5
        && groups.iter().zip([8, 4, 4, 4, 12]).all(|(group, len)| {
            group.len() == len && group.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    const UID: &str = "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0";

    #[test]
    fn names_come_from_the_environment_and_bad_ones_are_dropped() {
        let env = |name: &str| match name {
            NAMESPACE_VAR => Some("dynamo".to_string()),
            POD_VAR => Some(" decode-0 ".to_string()),
            CONTAINER_VAR => Some("Worker\n".to_string()),
            _ => None,
        };
        let identity = PodIdentity::detect(env, None);
        assert_eq!((identity.namespace.as_str(), identity.pod.as_str()), ("dynamo", "decode-0"));
        assert_eq!(identity.container, "", "not a Kubernetes name: not recorded");
        assert!(PodIdentity::detect(|_| None, None).is_empty());
        let long = "p".repeat(POD_LEN + 1);
        assert_eq!(PodIdentity::detect(|v| (v == POD_VAR).then(|| long.clone()), None).pod, "");
    }

    #[test]
    fn the_pod_uid_comes_from_either_cgroup_driver() {
        let cgroupfs = format!("0::/kubepods/burstable/pod{UID}/8a7b6c5d4e3f\n");
        assert_eq!(pod_uid_from_cgroup(&cgroupfs).as_deref(), Some(UID));
        let systemd = format!(
            "12:memory:/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{}.slice/cri-containerd-ab.scope\n",
            UID.replace('-', "_")
        );
        assert_eq!(pod_uid_from_cgroup(&systemd).as_deref(), Some(UID));
        let besteffort = format!("0::/kubepods.slice/kubepods-pod{}.slice/x\n", UID.replace('-', "_"));
        assert_eq!(pod_uid_from_cgroup(&besteffort).as_deref(), Some(UID));
        for outside in
            ["0::/user.slice/user-1000.slice/session-2.scope\n", "0::/kubepods/burstable/podnot-a-uid/x\n", ""]
        {
            assert_eq!(pod_uid_from_cgroup(outside), None, "{outside:?}");
        }
        let identity = PodIdentity::detect(|_| None, Some(&cgroupfs));
        assert_eq!(identity.uid, UID);
        assert!(!identity.is_empty());
    }
}
