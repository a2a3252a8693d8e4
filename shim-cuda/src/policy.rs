//! Start-up settings: the environment, overlaid by the node policy file (`FAULTLINE_POLICY_FILE`), plus what
//! an XID preset implies. Read once, in the library constructor; nothing here runs on a call.
//!
//! The policy file is how a node is "armed": the node agent writes it on the host, every pod's shim points at
//! it, and a process started while it says `FAULTLINE_ENABLED=1` fails from its first CUDA call — so restarted
//! pods fail again, as on a real dead GPU. Its format (and the one parser, shared with the node agent) is
//! shm-proto's [`node_policy`]: `NAME=VALUE` lines of start-up variables, with or without their `FAULTLINE_`
//! prefix, in any case, values optionally quoted. Its values override the environment's: the node's word wins
//! over the pod's. A missing file means "not armed" (no warning); an unreadable or invalid one is reported on
//! stderr and ignored line by line.
//!
//! An XID preset (`FAULTLINE_XID`) sets the error pool to the preset's code and the probability to 100 %,
//! unless the same source (or the policy file, over the environment) gives them.

use std::collections::BTreeMap;
use std::ffi::c_int;

use shm_proto::node_policy::{Layered, POLICY_FILE_VAR};
use shm_proto::xid::{Severity, DEFAULT_XID};

use crate::xid::{self, Preset};

/// The resolved start-up settings.
#[derive(Debug, Default)]
pub struct Settings {
    /// The environment overlaid by the policy file, with what an XID preset implies (what the runtime's start-up
    /// parser sees), and what loading the file had to say.
    pub layered: Layered,
    /// The XID preset, if any.
    pub xid: Option<Preset>,
    /// The targeted device ordinal, if any.
    pub device: Option<c_int>,
}

/// Resolves the settings from `env` and the policy file it names (read with `read_file`).
pub fn resolve(env: impl Fn(&str) -> Option<String>, read_file: impl Fn(&str) -> std::io::Result<String>) -> Settings {
    let mut settings = Settings { layered: Layered::resolve(&env, POLICY_FILE_VAR, read_file), ..Settings::default() };
    let Layered { values, file } = &mut settings.layered;
    let policy = &file.values;
    if let Some(text) = values.get("FAULTLINE_XID") {
        match text.trim().parse::<u32>().ok().and_then(xid::preset_for) {
            Some(preset) => {
                settings.xid = Some(preset);
                // Defaults from the source that named the XID: a policy XID overrides the pod's pool.
                let source: &BTreeMap<_, _> = if policy.contains_key("FAULTLINE_XID") { policy } else { values };
                let (codes_given, probability_given) =
                    (source.contains_key("FAULTLINE_ERROR_CODES"), source.contains_key("FAULTLINE_PROBABILITY"));
                if !codes_given {
                    values.insert("FAULTLINE_ERROR_CODES", preset.runtime.to_string());
                }
                if !probability_given {
                    values.insert("FAULTLINE_PROBABILITY", "100".to_string());
                }
                file.notes.push(format!(
                    "XID {} ({}): runtime calls fail with {}, driver calls with {}",
                    preset.xid, preset.name, preset.runtime, preset.driver
                ));
            }
            None => {
                file.warnings.push(format!(
                    "FAULTLINE_XID={text}: not an XID with a preset (known: {}); ignored",
                    known_presets().join(", ")
                ));
            }
        }
    }
    if let Some(text) = values.get("FAULTLINE_DEVICE") {
        match text.trim().parse::<c_int>() {
            Ok(ordinal) if ordinal >= 0 => settings.device = Some(ordinal),
            _ => file.warnings.push(format!("FAULTLINE_DEVICE={text}: not a device ordinal (0, 1, …); ignored")),
        }
    }
    settings
}

/// The XIDs with a preset, as a warning lists them: the default first, then the most severe first.
fn known_presets() -> Vec<String> {
    let mut presets: Vec<Preset> = xid::presets().collect();
    let severity = |p: &Preset| shm_proto::xid::lookup(p.xid).map_or(Severity::Low, |info| info.severity);
    presets.sort_by_key(|p| (p.xid != DEFAULT_XID, std::cmp::Reverse(severity(p)), p.xid));
    presets.iter().map(|p| p.xid.to_string()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env_of(pairs: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        move |name| pairs.iter().find(|(n, _)| *n == name).map(|(_, v)| v.to_string())
    }

    fn no_file(_: &str) -> std::io::Result<String> {
        Err(std::io::ErrorKind::NotFound.into())
    }

    #[test]
    fn without_a_policy_file_the_environment_is_used_as_is() {
        let s = resolve(env_of(&[("FAULTLINE_ENABLED", "1"), ("FAULTLINE_PROBABILITY", "30")]), no_file);
        assert_eq!(s.layered.var("FAULTLINE_ENABLED", |_| None).as_deref(), Some("1"));
        assert_eq!(s.layered.var("FAULTLINE_PROBABILITY", |_| None).as_deref(), Some("30"));
        assert_eq!(
            s.layered.var("FAULTLINE_SHM_DIR", |_| Some("/x".into())).as_deref(),
            Some("/x"),
            "others: environment"
        );
        assert!(s.xid.is_none() && s.device.is_none() && s.layered.file.warnings.is_empty());
    }

    #[test]
    fn an_xid_preset_sets_pool_and_probability_unless_given() {
        let s = resolve(env_of(&[("FAULTLINE_XID", "79")]), no_file);
        assert_eq!(s.xid.map(|p| p.xid), Some(79));
        assert_eq!(s.layered.var("FAULTLINE_ERROR_CODES", |_| None).as_deref(), Some("100"));
        assert_eq!(s.layered.var("FAULTLINE_PROBABILITY", |_| None).as_deref(), Some("100"));
        assert_eq!(s.layered.var("FAULTLINE_ENABLED", |_| None), None, "an XID alone does not enable faults");

        let s = resolve(
            env_of(&[("FAULTLINE_XID", "48"), ("FAULTLINE_PROBABILITY", "5"), ("FAULTLINE_ERROR_CODES", "719")]),
            no_file,
        );
        assert_eq!(s.layered.var("FAULTLINE_ERROR_CODES", |_| None).as_deref(), Some("719"));
        assert_eq!(s.layered.var("FAULTLINE_PROBABILITY", |_| None).as_deref(), Some("5"));
    }

    #[test]
    fn the_policy_file_overrides_the_environment() {
        let env = env_of(&[
            ("FAULTLINE_POLICY_FILE", "/etc/faultline/cuda.policy"),
            ("FAULTLINE_ENABLED", "0"),
            ("FAULTLINE_ERROR_CODES", "cudaErrorLaunchFailure"),
            ("FAULTLINE_SEED", "7"),
        ]);
        let file = |path: &str| {
            assert_eq!(path, "/etc/faultline/cuda.policy");
            Ok("# armed by faultline node arm\nenabled = 1\n  xid=\"79\"\nFaultline_Device=1\n".to_string())
        };
        let s = resolve(env, file);
        assert_eq!(s.layered.var("FAULTLINE_ENABLED", |_| None).as_deref(), Some("1"));
        assert_eq!(s.layered.var("FAULTLINE_ERROR_CODES", |_| None).as_deref(), Some("100"), "the node's XID wins");
        assert_eq!(s.layered.var("FAULTLINE_SEED", |_| None).as_deref(), Some("7"));
        assert_eq!(s.xid.map(|p| p.xid), Some(79));
        assert_eq!(s.device, Some(1));
        assert!(s.layered.file.warnings.is_empty(), "{:?}", s.layered.file.warnings);
    }

    #[test]
    fn bad_input_is_reported_and_ignored() {
        let env = env_of(&[("FAULTLINE_POLICY_FILE", "p"), ("FAULTLINE_DEVICE", "-1")]);
        let s = resolve(env, |_| Ok("xid=13\nbogus=1\nno equals sign\nenabled=1\n".to_string()));
        assert_eq!(s.layered.var("FAULTLINE_ENABLED", |_| None).as_deref(), Some("1"));
        assert!(s.xid.is_none() && s.device.is_none());
        let all = s.layered.file.warnings.join("\n");
        assert_eq!(s.layered.file.warnings.len(), 4, "{all}");
        assert!(all.contains("FAULTLINE_XID=13: not an XID with a preset (known: 79, 48"), "{all}");
        assert!(all.contains("line 2: 'bogus' is not a setting"), "{all}");
        assert!(all.contains("line 3: 'no equals sign' is not NAME=VALUE"), "{all}");
        assert!(all.contains("FAULTLINE_DEVICE=-1"), "{all}");

        let s =
            resolve(env_of(&[("FAULTLINE_POLICY_FILE", "p")]), |_| Err(std::io::ErrorKind::PermissionDenied.into()));
        assert_eq!(s.layered.file.warnings.len(), 1);
        assert!(
            s.layered.file.warnings[0].starts_with("FAULTLINE_POLICY_FILE=p: permission denied"),
            "{:?}",
            s.layered.file.warnings
        );
        let s = resolve(env_of(&[("FAULTLINE_POLICY_FILE", "p")]), no_file);
        assert!(s.layered.file.warnings.is_empty(), "a missing file is a node that is not armed");
    }
}
