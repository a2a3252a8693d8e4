//! The node policy file: how a node is "armed". The `faultline` node agent writes it on the host
//! (`faultline node arm`, [`render`]); every CUDA shim rolled out by faultline points at it
//! ([`POLICY_FILE_VAR`]) and reads it once at start-up ([`parse`]). While it says `FAULTLINE_ENABLED=1` with an
//! XID preset, a process started on the node fails from its first CUDA call — so restarted pods fail again, as on
//! a real dead GPU.
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
