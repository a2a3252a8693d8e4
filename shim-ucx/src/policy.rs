//! Start-up settings: the environment, overlaid by the UCX node policy file (`FAULTLINE_UCX_POLICY_FILE`). Read
//! once, in the library constructor; nothing here runs on a call.
//!
//! The policy file is how a node's NIC is "armed" (`faultline cluster nic-failure`): the node agent writes it on the
//! host, every UCX-shimmed pod points at it, and a process started while it says `FAULTLINE_ENABLED=1` fails its
//! endpoints from its first armed call (`FAULTLINE_SITE=endpoint`) — so a restarted pod fails again, as on a dead
//! NIC. Its format and its one loader are shm-proto's [`node_policy`] (the CUDA shim reads its own file the same
//! way). Its values override the environment's: the node's word wins over the pod's. A missing file means "not
//! armed" (no warning); an unreadable or invalid one is reported on stderr and ignored line by line.

use std::collections::BTreeMap;

use shm_proto::node_policy::{self, SETTINGS, UCX_POLICY_FILE_VAR};

/// The resolved start-up settings.
#[derive(Debug, Default)]
pub struct Settings {
    /// Values of [`SETTINGS`] after layering (what the runtime's start-up parser sees).
    values: BTreeMap<&'static str, String>,
    /// One line per ignored input.
    pub warnings: Vec<String>,
    /// Where the settings came from (logged at `FAULTLINE_LOG=debug`).
    pub notes: Vec<String>,
}

impl Settings {
    /// The value of start-up variable `name` (others, such as the seed injector's `UCX_FAULT_*`: from `env`).
    pub fn var(&self, name: &str, env: impl Fn(&str) -> Option<String>) -> Option<String> {
        match SETTINGS.iter().find(|s| **s == name) {
            Some(setting) => self.values.get(setting).cloned(),
            None => env(name),
        }
    }
}

/// Resolves the settings from `env` and the policy file it names (read with `read_file`).
pub fn resolve(env: impl Fn(&str) -> Option<String>, read_file: impl Fn(&str) -> std::io::Result<String>) -> Settings {
    let loaded = node_policy::load(&env, UCX_POLICY_FILE_VAR, read_file);
    let mut values: BTreeMap<&'static str, String> =
        SETTINGS.iter().filter_map(|name| env(name).map(|value| (*name, value))).collect();
    values.extend(loaded.values);
    Settings { values, warnings: loaded.warnings, notes: loaded.notes }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env_of(pairs: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        move |name| pairs.iter().find(|(n, _)| *n == name).map(|(_, v)| v.to_string())
    }

    #[test]
    fn the_policy_file_overrides_the_environment_and_a_missing_one_changes_nothing() {
        let env = env_of(&[
            ("FAULTLINE_UCX_POLICY_FILE", "/var/lib/faultline/ucx.policy"),
            ("FAULTLINE_ENABLED", "0"),
            ("FAULTLINE_SEED", "7"),
            ("UCX_FAULT_PROBABILITY", "5"),
        ]);
        let armed = resolve(&env, |_| Ok(node_policy::render_ucx(-80, "fl-1", None)));
        assert_eq!(armed.var("FAULTLINE_ENABLED", &env).as_deref(), Some("1"), "the node's word wins");
        assert_eq!(armed.var("FAULTLINE_SITE", &env).as_deref(), Some("endpoint"));
        assert_eq!(armed.var("FAULTLINE_ERROR_CODES", &env).as_deref(), Some("-80"));
        assert_eq!(armed.var("FAULTLINE_SEED", &env).as_deref(), Some("7"), "what the file leaves is the pod's");
        assert_eq!(armed.var("UCX_FAULT_PROBABILITY", &env).as_deref(), Some("5"), "not a setting: the environment");
        assert!(armed.warnings.is_empty(), "{:?}", armed.warnings);

        let unarmed = resolve(&env, |_| Err(std::io::ErrorKind::NotFound.into()));
        assert_eq!(unarmed.var("FAULTLINE_ENABLED", &env).as_deref(), Some("0"));
        assert_eq!(unarmed.var("FAULTLINE_SITE", &env), None);
        assert!(unarmed.warnings.is_empty(), "a missing file is a node that is not armed");
    }
}
