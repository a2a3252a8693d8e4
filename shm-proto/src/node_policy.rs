//! The node policy files: how a node is "armed". The `faultline` node agent writes them on the host
//! (`faultline node arm`, [`render`] / [`render_ucx`]); every shim rolled out by faultline points at its kind's file
//! ([`POLICY_FILE_VAR`] for CUDA, [`UCX_POLICY_FILE_VAR`] for UCX) and reads it once at start-up ([`load`],
//! [`parse`]). While the CUDA file says `FAULTLINE_ENABLED=1` with an XID preset, a process started on the node
//! fails from its first CUDA call; while the UCX file says `FAULTLINE_ENABLED=1` (with `FAULTLINE_SITE=endpoint`),
//! its UCX operations fail their endpoints as on a dead NIC — so restarted pods fail again, as on real broken
//! hardware.
//!
//! Format: one `NAME=VALUE` per line; blank lines and lines starting with `#` are ignored (no trailing comments),
//! except the `# faultline-fault=<id>` comment naming the fault that armed the node. `NAME` is one of
//! [`SETTINGS`], with or without its `FAULTLINE_` prefix, in any case (`xid = 79`, `FAULTLINE_ENABLED=1`);
//! spaces around names and values are ignored; a value may be enclosed in one matching pair of `"` or `'`. A later
//! line overrides an earlier one. Lines that are not `NAME=VALUE` or name no setting are ignored and reported
//! ([`Issue`]); a file larger than [`MAX_POLICY_BYTES`] is ignored as a whole.

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

/// The host directory the node agent fills with the shim libraries, mounted at the same path in shimmed pods.
pub const LIBRARY_DIR: &str = "/var/lib/faultline";

/// The node policy file, in [`LIBRARY_DIR`].
pub const POLICY_FILE: &str = "/var/lib/faultline/cuda.policy";

/// The variable naming the policy file (set in shimmed pods to [`POLICY_FILE`]).
pub const POLICY_FILE_VAR: &str = "FAULTLINE_POLICY_FILE";

/// The UCX shim's node policy file, in [`LIBRARY_DIR`] beside the CUDA one.
pub const UCX_POLICY_FILE: &str = "/var/lib/faultline/ucx.policy";

/// The variable naming the UCX shim's policy file (set in UCX-shimmed pods to [`UCX_POLICY_FILE`]).
pub const UCX_POLICY_FILE_VAR: &str = "FAULTLINE_UCX_POLICY_FILE";

/// The fault site a UCX node policy fails at.
pub const UCX_POLICY_SITE: &str = "endpoint";

/// The UCX hooks a NIC failure fails: the operations on an endpoint, its flush, and creating one (a new endpoint
/// fails as an unreachable peer's). Not closing one (the application's force close and reconnect must work), nor
/// memory registration or the worker's own operations.
pub const UCX_POLICY_HOOKS: &str = "ucp_get_nbx,ucp_put_nbx,ucp_tag_send_nbx,ucp_tag_send_sync_nbx,ucp_am_send_nbx,\
                                    ucp_stream_send_nbx,ucp_stream_recv_nbx,ucp_atomic_op_nbx,ucp_ep_flush_nbx,\
                                    ucp_ep_create";

/// Larger policy files are refused (it is a handful of lines).
pub const MAX_POLICY_BYTES: u64 = 64 * 1024;

/// The comment line that names the fault which armed the node.
pub const FAULT_COMMENT: &str = "# faultline-fault=";

/// The prefix every setting has (and a policy file may leave out).
const PREFIX: &str = "FAULTLINE_";

/// Start-up variables a policy file may set (the shim runtime's, plus the CUDA shim's own `XID` and `DEVICE`).
pub const SETTINGS: &[&str] = &[
    "FAULTLINE_ENABLED",
    "FAULTLINE_RECORD",
    "FAULTLINE_STRATEGY",
    "FAULTLINE_PROBABILITY",
    "FAULTLINE_ERROR_CODES",
    "FAULTLINE_HOOKS",
    "FAULTLINE_SEED",
    "FAULTLINE_SKIP",
    "FAULTLINE_LIMIT",
    "FAULTLINE_DELAY_US",
    "FAULTLINE_DELAY_MODE",
    "FAULTLINE_SITE",
    "FAULTLINE_LOG",
    "FAULTLINE_XID",
    "FAULTLINE_DEVICE",
];

/// The canonical name (one of [`SETTINGS`]) of `name` as a policy file may spell it: any case, surrounding spaces,
/// `FAULTLINE_` prefix optional.
pub fn setting(name: &str) -> Option<&'static str> {
    let upper = name.trim().to_ascii_uppercase();
    let bare = upper.strip_prefix(PREFIX).unwrap_or(&upper);
    SETTINGS.iter().copied().find(|s| s.strip_prefix(PREFIX) == Some(bare))
}

/// The policy file's text arming a node with `xid` for fault `fault_id` (until `expires_at`, RFC 3339, which is
/// for people reading the file: the reaper disarms the node). Line breaks in `fault_id` or `expires_at` are
/// replaced by spaces, so neither can add a setting.
pub fn render(xid: u32, fault_id: &str, expires_at: Option<&str>) -> String {
    let id = one_line(fault_id);
    let mut text = format!(
        "# Written by faultline: CUDA shims started on this node fail from their first call, as with XID {xid}.\n\
         # `faultline cluster recover {id}` disarms the node.\n{FAULT_COMMENT}{id}\n",
    );
    if let Some(expires) = expires_at {
        text.push_str(&format!("# expires-at={}\n", one_line(expires)));
    }
    text.push_str(&format!("FAULTLINE_ENABLED=1\nFAULTLINE_XID={xid}\n"));
    text
}

/// The UCX policy file's text arming a node so that every operation on an endpoint ([`UCX_POLICY_HOOKS`]) fails
/// the endpoint with `code` (a UCX status, e.g. -80 `UCS_ERR_ENDPOINT_TIMEOUT`), as on a dead NIC, for fault
/// `fault_id` (until `expires_at`, as in [`render`]). Random mode at 100 %, whatever the pod's own start-up
/// strategy: the node's word wins.
pub fn render_ucx(code: i32, fault_id: &str, expires_at: Option<&str>) -> String {
    let id = one_line(fault_id);
    let mut text = format!(
        "# Written by faultline: UCX shims started on this node fail their endpoints with {code}, as on a dead NIC.\n\
         # `faultline cluster recover {id}` disarms the node.\n{FAULT_COMMENT}{id}\n",
    );
    if let Some(expires) = expires_at {
        text.push_str(&format!("# expires-at={}\n", one_line(expires)));
    }
    text.push_str(&format!(
        "FAULTLINE_ENABLED=1\nFAULTLINE_SITE={UCX_POLICY_SITE}\nFAULTLINE_STRATEGY=random\n\
         FAULTLINE_PROBABILITY=100\nFAULTLINE_ERROR_CODES={code}\nFAULTLINE_HOOKS={UCX_POLICY_HOOKS}\n"
    ));
    text
}

/// A policy file loaded at start-up ([`load`]): its settings, and what a shim says about it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Loaded {
    /// Canonical setting names ([`SETTINGS`]) → values, from the file (empty: no file, or none named).
    pub values: BTreeMap<&'static str, String>,
    /// One line per ignored input (said on stderr).
    pub warnings: Vec<String>,
    /// Where the settings came from (said at `FAULTLINE_LOG=debug`).
    pub notes: Vec<String>,
}

/// Loads the policy file that variable `file_var` of `env` names, read with `read_file` (a shim passes [`read`]):
/// a missing file is a node that is not armed (a note, no warning); an unreadable one, and each ignored line, a
/// warning. The one loader of both shims, through [`Layered::resolve`], which overlays it on the environment.
pub fn load(
    env: impl Fn(&str) -> Option<String>,
    file_var: &str,
    read_file: impl Fn(&str) -> std::io::Result<String>,
) -> Loaded {
    let mut loaded = Loaded::default();
    let Some(path) = env(file_var).filter(|p| !p.trim().is_empty()) else { return loaded };
    match read_file(&path) {
        Ok(text) => {
            let policy = parse(&text);
            for issue in &policy.issues {
                let line = issue.line().map(|n| format!(" line {n}")).unwrap_or_default();
                loaded.warnings.push(format!("policy file {path}{line}: {issue}"));
            }
            loaded.notes.push(format!("policy file {path}: {} setting(s)", policy.values.len()));
            loaded.values = policy.values;
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            loaded.notes.push(format!("policy file {path} does not exist: this node is not armed"));
        }
        Err(e) => loaded.warnings.push(format!("{file_var}={path}: {e}; ignored")),
    }
    loaded
}

/// A shim's start-up settings: the environment's [`SETTINGS`], overlaid by the policy file's (the node's word wins
/// over the pod's); what is not a setting still comes from the environment. Both shims resolve theirs with
/// [`Layered::resolve`]; the CUDA shim then adds what an XID preset implies.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Layered {
    /// Each setting's value after layering.
    pub values: BTreeMap<&'static str, String>,
    /// The policy file as loaded: its own values, warnings and notes.
    pub file: Loaded,
}

impl Layered {
    /// The environment `env`, overlaid by the policy file that its variable `file_var` names (see [`load`]).
    pub fn resolve(
        env: impl Fn(&str) -> Option<String>,
        file_var: &str,
        read_file: impl Fn(&str) -> std::io::Result<String>,
    ) -> Layered {
        let file = load(&env, file_var, read_file);
        let mut values: BTreeMap<&'static str, String> =
            SETTINGS.iter().filter_map(|name| env(name).map(|value| (*name, value))).collect();
        values.extend(file.values.iter().map(|(name, value)| (*name, value.clone())));
        Layered { values, file }
    }

    /// The value of start-up variable `name`: a setting's after layering, anything else (such as the seed
    /// injector's `UCX_FAULT_*`) from `env`.
    pub fn var(&self, name: &str, env: impl Fn(&str) -> Option<String>) -> Option<String> {
        match SETTINGS.iter().find(|s| **s == name) {
            Some(setting) => self.values.get(setting).cloned(),
            None => env(name),
        }
    }
}

fn one_line(text: &str) -> String {
    text.replace(['\n', '\r'], " ")
}

/// Reads the policy file at `path`: at most [`MAX_POLICY_BYTES`] and one byte, so that [`parse`] refuses an
/// oversized one without the whole of it being read.
pub fn read(path: &Path) -> std::io::Result<String> {
    use std::io::Read;
    let mut bytes = Vec::new();
    std::fs::File::open(path)?.take(MAX_POLICY_BYTES + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > MAX_POLICY_BYTES {
        // Cut anywhere, possibly inside a character; parse ignores it anyway.
        return Ok(String::from_utf8_lossy(&bytes).into_owned());
    }
    String::from_utf8(bytes).map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))
}

/// What a policy file says.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Policy {
    /// The fault id in its `# faultline-fault=` comment, if any (a file written by hand has none).
    pub fault_id: Option<String>,
    /// Canonical setting names ([`SETTINGS`]) → values, unquoted.
    pub values: BTreeMap<&'static str, String>,
    /// What was ignored, in file order.
    pub issues: Vec<Issue>,
}

impl Policy {
    /// The value of setting `name` (canonical, e.g. `FAULTLINE_XID`), if the file gives it.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.values.get(name).map(String::as_str)
    }

    /// `FAULTLINE_XID` as a number, if the file gives one (whether it has a preset is the reader's business).
    pub fn xid(&self) -> Option<u32> {
        self.get("FAULTLINE_XID")?.trim().parse().ok()
    }
}

/// A part of a policy file that was ignored. Displays as the reason, without the file's name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Issue {
    /// The file is larger than [`MAX_POLICY_BYTES`]: all of it is ignored.
    TooLarge,
    /// A line (1-based) that is not `NAME=VALUE`.
    NotAssignment {
        /// The line number.
        line: usize,
        /// The line, trimmed.
        text: String,
    },
    /// A line (1-based) whose name is not a setting.
    UnknownSetting {
        /// The line number.
        line: usize,
        /// The name, trimmed.
        name: String,
    },
}

impl Issue {
    /// The line the issue is on (none: the whole file).
    pub fn line(&self) -> Option<usize> {
        match self {
            Issue::TooLarge => None,
            Issue::NotAssignment { line, .. } | Issue::UnknownSetting { line, .. } => Some(*line),
        }
    }
}

impl fmt::Display for Issue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Issue::TooLarge => write!(f, "larger than {MAX_POLICY_BYTES} bytes; ignored"),
            Issue::NotAssignment { text, .. } => write!(f, "'{text}' is not NAME=VALUE; ignored"),
            Issue::UnknownSetting { name, .. } => {
                let known: Vec<&str> = SETTINGS.iter().map(|s| &s[PREFIX.len()..]).collect();
                write!(f, "'{name}' is not a setting a policy file can give (known: {}); ignored", known.join(", "))
            }
        }
    }
}

/// Parses a policy file's text (see the module docs for the format).
pub fn parse(text: &str) -> Policy {
    let mut policy = Policy::default();
    if text.len() as u64 > MAX_POLICY_BYTES {
        policy.issues.push(Issue::TooLarge);
        return policy;
    }
    for (index, line) in text.lines().enumerate() {
        let line = line.trim();
        if let Some(id) = line.strip_prefix(FAULT_COMMENT) {
            policy.fault_id = Some(id.trim().to_string());
            continue;
        }
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let Some((name, value)) = line.split_once('=') else {
            policy.issues.push(Issue::NotAssignment { line: index + 1, text: line.to_string() });
            continue;
        };
        let Some(setting) = setting(name) else {
            policy.issues.push(Issue::UnknownSetting { line: index + 1, name: name.trim().to_string() });
            continue;
        };
        policy.values.insert(setting, unquoted(value.trim()).to_string());
    }
    policy
}

/// `value` without one matching pair of enclosing `"` or `'` (unchanged otherwise).
fn unquoted(value: &str) -> &str {
    ['"', '\''].iter().find_map(|q| value.strip_prefix(*q).and_then(|v| v.strip_suffix(*q))).unwrap_or(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_render_writes_parse_reads_back() {
        let text = render(79, "fl-000000000001", Some("2026-11-22T10:10:00Z"));
        assert!(text.contains("\nFAULTLINE_ENABLED=1\nFAULTLINE_XID=79\n"), "{text}");
        assert!(text.contains("\n# faultline-fault=fl-000000000001\n# expires-at=2026-11-22T10:10:00Z\n"), "{text}");
        let policy = parse(&text);
        assert_eq!(policy.fault_id.as_deref(), Some("fl-000000000001"));
        assert_eq!(policy.xid(), Some(79));
        assert_eq!(policy.get("FAULTLINE_ENABLED"), Some("1"));
        assert_eq!(policy.values.len(), 2);
        assert!(policy.issues.is_empty(), "{:?}", policy.issues);

        let text = render(48, "fl-2", None);
        assert!(!text.contains("expires-at"), "{text}");
        assert_eq!((parse(&text).fault_id.as_deref(), parse(&text).xid()), (Some("fl-2"), Some(48)));
    }

    #[test]
    fn the_ucx_policy_fails_every_operation_at_the_endpoint_with_the_code() {
        let text = render_ucx(-80, "fl-000000000003", Some("2026-11-22T10:10:00Z"));
        let policy = parse(&text);
        assert!(policy.issues.is_empty(), "{:?}", policy.issues);
        assert_eq!(policy.fault_id.as_deref(), Some("fl-000000000003"));
        let values: Vec<(&str, &str)> = policy.values.iter().map(|(k, v)| (*k, v.as_str())).collect();
        assert_eq!(
            values,
            [
                ("FAULTLINE_ENABLED", "1"),
                ("FAULTLINE_ERROR_CODES", "-80"),
                ("FAULTLINE_HOOKS", UCX_POLICY_HOOKS),
                ("FAULTLINE_PROBABILITY", "100"),
                ("FAULTLINE_SITE", "endpoint"),
                ("FAULTLINE_STRATEGY", "random"),
            ]
        );
        assert_eq!(policy.xid(), None);
        let hostile = parse(&render_ucx(-25, "fl-1\nFAULTLINE_SEED=1", None));
        assert_eq!(hostile.get("FAULTLINE_SEED"), None);
    }

    #[test]
    fn the_policy_file_overrides_the_environment_and_a_missing_one_changes_nothing() {
        let pairs = [
            ("FAULTLINE_UCX_POLICY_FILE", "/var/lib/faultline/ucx.policy"),
            ("FAULTLINE_ENABLED", "0"),
            ("FAULTLINE_SEED", "7"),
            ("UCX_FAULT_PROBABILITY", "5"),
        ];
        let env = |name: &str| pairs.iter().find(|(n, _)| *n == name).map(|(_, v)| v.to_string());
        let armed = Layered::resolve(env, UCX_POLICY_FILE_VAR, |_| Ok(render_ucx(-80, "fl-1", None)));
        assert_eq!(armed.var("FAULTLINE_ENABLED", env).as_deref(), Some("1"), "the node's word wins");
        assert_eq!(armed.var("FAULTLINE_SITE", env).as_deref(), Some("endpoint"));
        assert_eq!(armed.var("FAULTLINE_ERROR_CODES", env).as_deref(), Some("-80"));
        assert_eq!(armed.var("FAULTLINE_SEED", env).as_deref(), Some("7"), "what the file leaves is the pod's");
        assert_eq!(armed.var("UCX_FAULT_PROBABILITY", env).as_deref(), Some("5"), "not a setting: the environment");
        assert!(armed.file.warnings.is_empty(), "{:?}", armed.file.warnings);

        let unarmed = Layered::resolve(env, UCX_POLICY_FILE_VAR, |_| Err(std::io::ErrorKind::NotFound.into()));
        assert_eq!(unarmed.var("FAULTLINE_ENABLED", env).as_deref(), Some("0"));
        assert_eq!(unarmed.var("FAULTLINE_SITE", env), None);
        assert!(unarmed.file.warnings.is_empty(), "a missing file is a node that is not armed");
    }

    #[test]
    fn load_overlays_nothing_without_a_file_and_reports_what_it_ignores() {
        let env = |path: &'static str| move |name: &str| (name == UCX_POLICY_FILE_VAR).then(|| path.to_string());
        let missing = load(env("/x/ucx.policy"), UCX_POLICY_FILE_VAR, |_| Err(std::io::ErrorKind::NotFound.into()));
        assert!(missing.values.is_empty() && missing.warnings.is_empty(), "{missing:?}");
        assert_eq!(missing.notes, ["policy file /x/ucx.policy does not exist: this node is not armed"]);
        let unnamed = load(|_| None, UCX_POLICY_FILE_VAR, |_| panic!("no file is named"));
        assert_eq!(unnamed, Loaded::default());
        let denied = load(env("p"), UCX_POLICY_FILE_VAR, |_| Err(std::io::ErrorKind::PermissionDenied.into()));
        assert!(denied.warnings[0].starts_with("FAULTLINE_UCX_POLICY_FILE=p: permission denied"), "{denied:?}");
        let loaded = load(env("p"), UCX_POLICY_FILE_VAR, |path| {
            assert_eq!(path, "p");
            Ok("site=endpoint\nbogus=1\n".to_string())
        });
        assert_eq!(loaded.values.get("FAULTLINE_SITE").map(String::as_str), Some("endpoint"));
        assert_eq!(loaded.warnings.len(), 1, "{loaded:?}");
        assert!(loaded.warnings[0].starts_with("policy file p line 2: 'bogus' is not a setting"), "{loaded:?}");
    }

    #[test]
    fn rendered_fields_cannot_add_lines() {
        let text = render(79, "fl-1\nFAULTLINE_PROBABILITY=5", Some("soon\r\nFAULTLINE_SEED=1"));
        let policy = parse(&text);
        assert_eq!(policy.get("FAULTLINE_PROBABILITY"), None, "{text}");
        assert_eq!(policy.get("FAULTLINE_SEED"), None, "{text}");
        assert_eq!(policy.fault_id.as_deref(), Some("fl-1 FAULTLINE_PROBABILITY=5"));
        assert_eq!(policy.values.len(), 2);
    }

    #[test]
    fn names_in_any_case_with_or_without_prefix_and_quoted_values() {
        let policy = parse("enabled = 1\n  xid=\"79\"\nFaultline_Device=1\nseed = ' 7 '\nLOG=\"debug'\n");
        assert_eq!(policy.get("FAULTLINE_ENABLED"), Some("1"));
        assert_eq!(policy.get("FAULTLINE_XID"), Some("79"));
        assert_eq!(policy.xid(), Some(79));
        assert_eq!(policy.get("FAULTLINE_DEVICE"), Some("1"));
        assert_eq!(policy.get("FAULTLINE_SEED"), Some(" 7 "), "inside quotes, spaces are the value's");
        assert_eq!(policy.get("FAULTLINE_LOG"), Some("\"debug'"), "mismatched quotes stay");
        assert!(policy.issues.is_empty(), "{:?}", policy.issues);
        assert_eq!(setting(" faultline_xid "), Some("FAULTLINE_XID"));
        assert_eq!(setting("FAULTLINE_FAULTLINE_XID"), None);
    }

    #[test]
    fn odd_quoting_is_not_unquoted_further() {
        for (value, expected) in [
            ("\"79", None),
            ("79\"", None),
            ("\"\"79\"\"", None),
            ("'79'", Some(79)),
            ("\"79'", None),
            ("\"\"", None),
            ("\"", None),
            ("\" 79 \"", Some(79)),
        ] {
            let policy = parse(&format!("FAULTLINE_XID={value}\n"));
            assert_eq!(policy.xid(), expected, "{value}");
        }
        assert_eq!(parse("xid=\"\"").get("FAULTLINE_XID"), Some(""));
        assert_eq!(parse("xid=\"").get("FAULTLINE_XID"), Some("\""));
    }

    #[test]
    fn comments_blank_lines_and_later_lines() {
        let policy = parse("# armed by hand\n\n   # xid=48\nxid=79 # not a comment\nxid=79\n#faultline-fault=x\n");
        assert_eq!(policy.xid(), Some(79), "a later line overrides");
        assert_eq!(policy.fault_id, None, "only `# faultline-fault=` names the fault");
        assert!(policy.issues.is_empty(), "{:?}", policy.issues);
        assert_eq!(parse("xid=79 # trailing").xid(), None, "no trailing comments");
        let policy = parse("  # faultline-fault=  fl-1  \n# faultline-fault=fl-2\r\nenabled=1\r\n");
        assert_eq!(policy.fault_id.as_deref(), Some("fl-2"));
        assert_eq!(policy.get("FAULTLINE_ENABLED"), Some("1"), "CRLF line ends");
    }

    #[test]
    fn unknown_names_and_lines_without_equals_are_reported_and_ignored() {
        let policy = parse("xid=13\nbogus=1\nno equals sign\nenabled=1\n=5\nFAULTLINE_POLICY_FILE=/x\n");
        assert_eq!(policy.get("FAULTLINE_XID"), Some("13"), "whether 13 has a preset is the reader's business");
        assert_eq!(policy.get("FAULTLINE_ENABLED"), Some("1"));
        assert_eq!(policy.values.len(), 2);
        let lines: Vec<String> =
            policy.issues.iter().map(|i| format!("line {}: {i}", i.line().unwrap_or_default())).collect();
        assert_eq!(lines.len(), 4, "{lines:?}");
        assert!(lines[0].starts_with("line 2: 'bogus' is not a setting a policy file can give (known: ENABLED, RECORD"));
        assert!(lines[0].ends_with("XID, DEVICE); ignored"), "{}", lines[0]);
        assert_eq!(lines[1], "line 3: 'no equals sign' is not NAME=VALUE; ignored");
        assert!(lines[2].starts_with("line 5: '' is not a setting"), "{}", lines[2]);
        assert!(lines[3].starts_with("line 6: 'FAULTLINE_POLICY_FILE' is not a setting"), "{}", lines[3]);
    }

    #[test]
    fn an_oversized_file_is_ignored_as_a_whole() {
        let mut text = render(79, "fl-1", None);
        text.push_str(&"#".repeat(MAX_POLICY_BYTES as usize));
        let policy = parse(&text);
        assert_eq!(policy, Policy { issues: vec![Issue::TooLarge], ..Policy::default() });
        assert_eq!(Issue::TooLarge.to_string(), "larger than 65536 bytes; ignored");
        assert_eq!(Issue::TooLarge.line(), None);
        let limit = "#".repeat(MAX_POLICY_BYTES as usize);
        assert!(parse(&limit).issues.is_empty(), "exactly the limit is fine");
    }

    #[test]
    fn hostile_bytes_do_not_panic() {
        for text in ["\0=\0", "=", "==", "xid==79", "\u{feff}xid=79", "xid=\u{0}", "é=ü", "\r\r\n\n", "'", "#"] {
            let _ = parse(text);
        }
        assert_eq!(parse("xid==79").get("FAULTLINE_XID"), Some("=79"));
        assert_eq!(parse("\u{feff}xid=79").xid(), None, "a byte-order mark is part of the name");
    }

    #[test]
    fn read_is_bounded_and_a_missing_file_is_not_found() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cuda.policy");
        assert_eq!(read(&path).unwrap_err().kind(), std::io::ErrorKind::NotFound);
        std::fs::write(&path, render(79, "fl-1", None)).unwrap();
        assert_eq!(parse(&read(&path).unwrap()).xid(), Some(79));
        // Oversized, with a multi-byte character across the cut: still refused as too large.
        let mut big = "é".repeat(MAX_POLICY_BYTES as usize / 2);
        big.insert_str(0, "##");
        std::fs::write(&path, &big).unwrap();
        let text = read(&path).unwrap();
        assert!(text.len() as u64 > MAX_POLICY_BYTES && text.len() as u64 <= MAX_POLICY_BYTES + 4);
        assert_eq!(parse(&text).issues, [Issue::TooLarge]);
        std::fs::write(&path, [b'x', b'=', 0xff, b'\n']).unwrap();
        assert_eq!(read(&path).unwrap_err().kind(), std::io::ErrorKind::InvalidData);
    }
}
