//! What faultline shows about a process: its strategy in force, counters and identity, as plain values
//! ([`ProcessState`] for `status` and after every change, [`PsRow`] for `ps`). Both serialize to the `--json` output.
//!
//! Nothing here depends on time passing: reading an idle process twice gives equal values.

use std::cmp::Ordering;

use serde::{Deserialize, Serialize};
use shm_proto::codes;
use shm_proto::config;
use shm_proto::layout::{DelayMode, Site};
use shm_proto::sync::Ordering::Relaxed;
use shm_proto::Strategy;

use crate::actions::current_strategy;
use crate::error::Error;
use crate::targets::{process_label, Target, Unusable};

/// One hook's settings and counters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HookState {
    /// The intercepted function.
    pub name: String,
    /// Whether its calls are subject to injection.
    pub armed: bool,
    /// Intercepted calls while injection was enabled.
    pub calls: u64,
    /// Injected faults.
    pub faults: u64,
}

/// A code of the error pool.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CodeState {
    /// The number.
    pub code: i32,
    /// Its name, where the kind's table has one (looked up again from the code when read from JSON).
    #[serde(skip_deserializing)]
    pub name: Option<&'static str>,
}

/// The Kubernetes pod a process runs in, as its shim recorded it (`None` outside Kubernetes).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Pod {
    /// The pod's namespace.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub namespace: String,
    /// The pod's name.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub pod: String,
    /// The container's name.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub container: String,
    /// The pod's UID (from the process's cgroup).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub pod_uid: String,
}

impl Pod {
    /// The pod `target`'s shim recorded, if any.
    pub fn of(target: &Target) -> Option<Pod> {
        let pod = target.pod();
        if pod.is_empty() {
            return None;
        }
        Some(Pod { namespace: pod.namespace, pod: pod.pod, container: pod.container, pod_uid: pod.uid })
    }
}

/// Everything faultline knows about one process: identity, the strategy in force, counters. Read back from JSON
/// with [`ProcessState::from_json`] (a state another machine's agent sent).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProcessState {
    /// Pid as seen from here.
    pub pid: u32,
    /// `ucx` or `cuda`.
    #[serde(skip_deserializing)]
    pub kind: &'static str,
    /// Executable name.
    pub exe: String,
    /// The Kubernetes pod it runs in, when its shim recorded one.
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    pub pod: Option<Pod>,
    /// Whether the process is running.
    pub alive: bool,
    /// Found inside a container's `/dev/shm`.
    pub in_container: bool,
    /// The segment file.
    pub path: String,
    /// Faults are injected at all.
    pub enabled: bool,
    /// Armed calls are recorded.
    pub recording: bool,
    /// `random`, `pattern` or `replay`.
    #[serde(skip_deserializing)]
    pub mode: &'static str,
    /// Random mode: percent.
    pub probability_percent: f64,
    /// Random mode: parts per million (exact).
    pub probability_ppm: u32,
    /// Random mode: RNG seed.
    pub seed: u64,
    /// Pattern mode: X/O text (kept while another mode is in force).
    pub pattern: String,
    /// Armed calls since the current sequence started (the pattern / replay position).
    pub position: u64,
    /// The error pool.
    pub error_codes: Vec<CodeState>,
    /// Number of armed hooks.
    pub hooks_armed: usize,
    /// Every hook.
    pub hooks: Vec<HookState>,
    /// Armed calls passed before the strategy starts.
    pub skip: u64,
    /// Faults after which injection stops (0: unlimited).
    pub limit: u64,
    /// Delay action length.
    pub delay_us: u32,
    /// `off`, `before-fault` or `instead-of-fault`.
    #[serde(skip_deserializing)]
    pub delay_mode: &'static str,
    /// Where injected faults surface: `post`, `completion` or `endpoint`.
    #[serde(skip_deserializing)]
    pub site: &'static str,
    /// Replay program length.
    pub replay_length: usize,
    /// Faults in the replay program.
    pub replay_faults: usize,
    /// The replay loops.
    pub replay_loop: bool,
    /// Calls of every hook while enabled.
    pub calls: u64,
    /// Faults injected.
    pub faults: u64,
    /// Calls of the hooks armed now.
    pub armed_calls: u64,
    /// Faults of the hooks armed now.
    pub armed_faults: u64,
    /// FAULT%: `armed_faults / armed_calls` in percent, 0 without armed calls (see [`fault_percent`]).
    pub fault_percent: f64,
}

/// The one of `names` that `value[field]` holds, as the `&'static str` that spells it.
fn one_of(value: &serde_json::Value, field: &str, names: &[&'static str]) -> Result<&'static str, serde_json::Error> {
    let text = value[field].as_str().unwrap_or_default();
    names
        .iter()
        .find(|name| **name == text)
        .copied()
        .ok_or_else(|| serde::de::Error::custom(format!("{field}: unknown value {text:?}, expected one of {names:?}")))
}

impl ProcessState {
    /// A state as `status --json` printed it (on this machine or another: an agent's snapshot), checked: the kind,
    /// the modes and every field must be what faultline writes. The codes' names are looked up again.
    pub fn from_json(value: &serde_json::Value) -> Result<ProcessState, serde_json::Error> {
        let mut state = ProcessState::deserialize(value)?;
        let kinds = [shm_proto::Kind::Ucx, shm_proto::Kind::Cuda];
        state.kind = one_of(value, "kind", &kinds.map(shm_proto::Kind::name))?;
        let modes = [shm_proto::Mode::Random, shm_proto::Mode::Pattern, shm_proto::Mode::Replay];
        state.mode = one_of(value, "mode", &modes.map(shm_proto::Mode::name))?;
        let delays = [DelayMode::Off, DelayMode::BeforeFault, DelayMode::InsteadOfFault];
        state.delay_mode = one_of(value, "delay_mode", &delays.map(DelayMode::name))?;
        // An agent older than fault sites sends none: its processes inject at the call, `post`.
        state.site = match value.get("site") {
            None => Site::Post.name(),
            Some(_) => one_of(value, "site", &Site::ALL.map(Site::name))?,
        };
        let kind = shm_proto::Kind::from_name(state.kind).unwrap_or(shm_proto::Kind::Ucx);
        for code in &mut state.error_codes {
            code.name = codes::name_of(kind, code.code);
        }
        if state.pod.as_ref().is_some_and(|pod| *pod == Pod::default()) {
            state.pod = None;
        }
        Ok(state)
    }

    /// The `set` command (its words, `set` first) that puts a process back to this state's settings: enabled,
    /// mode, pattern, probability, pool, hooks, seed, skip, limit, delay, replay loop and site (not the recording
    /// switch). The experiment runner and the NIC-failure scenario put processes back with it.
    pub fn restoring_set(&self) -> Vec<String> {
        let armed: Vec<&str> = self.hooks.iter().filter(|h| h.armed).map(|h| h.name.as_str()).collect();
        let codes: Vec<String> = self.error_codes.iter().map(|c| c.code.to_string()).collect();
        let on_off = |on: bool| if on { "on" } else { "off" }.to_string();
        let mut settings: std::collections::BTreeMap<&str, String> = std::collections::BTreeMap::new();
        settings.insert("--enabled", on_off(self.enabled));
        settings.insert("--mode", self.mode.to_string());
        settings.insert("--probability", shm_proto::config::format_probability(self.probability_ppm));
        settings.insert("--seed", self.seed.to_string());
        settings.insert("--skip", self.skip.to_string());
        settings.insert("--limit", self.limit.to_string());
        settings.insert("--delay", self.delay_us.to_string());
        settings.insert("--delay-mode", self.delay_mode.to_string());
        settings.insert("--replay-loop", on_off(self.replay_loop));
        settings.insert("--site", self.site.to_string());
        settings.insert("--hooks", if armed.is_empty() { "none".to_string() } else { armed.join(",") });
        if !codes.is_empty() {
            settings.insert("--error-codes", codes.join(","));
        }
        let mut set = vec!["set".to_string()];
        if !self.pattern.is_empty() {
            set.extend(["--pattern".to_string(), self.pattern.clone()]);
        }
        for (flag, value) in settings {
            set.extend([flag.to_string(), value]);
        }
        set
    }

    /// Reads `target`'s current state.
    pub fn read(target: &Target) -> Result<ProcessState, Error> {
        let strategy = current_strategy(target)?;
        Ok(ProcessState::of(target, &strategy))
    }

    /// The state of `target` with `strategy` in force.
    pub fn of(target: &Target, strategy: &Strategy) -> ProcessState {
        let segment = target.segment();
        let kind = target.kind();
        let hooks: Vec<HookState> = segment
            .header
            .hook_names()
            .into_iter()
            .enumerate()
            .map(|(index, name)| {
                let (calls, faults) = segment.hook_totals(index);
                HookState { name, armed: strategy.is_armed(index), calls, faults }
            })
            .collect();
        let calls = hooks.iter().map(|h| h.calls).sum();
        let faults = hooks.iter().map(|h| h.faults).sum();
        let armed_calls = hooks.iter().filter(|h| h.armed).map(|h| h.calls).sum();
        let armed_faults = hooks.iter().filter(|h| h.armed).map(|h| h.faults).sum();
        ProcessState {
            pid: target.pid(),
            kind: kind.name(),
            exe: target.exe(),
            pod: Pod::of(target),
            alive: target.alive,
            in_container: target.found.in_container,
            path: target.found.path.display().to_string(),
            enabled: strategy.enabled,
            recording: strategy.recording,
            mode: strategy.mode.name(),
            probability_percent: f64::from(strategy.probability_ppm) / 10_000.0,
            probability_ppm: strategy.probability_ppm,
            seed: strategy.seed,
            pattern: strategy.pattern_text(),
            position: segment.cursor.armed_calls.load(Relaxed),
            error_codes: strategy
                .pool
                .iter()
                .map(|&code| CodeState { code, name: codes::name_of(kind, code) })
                .collect(),
            hooks_armed: hooks.iter().filter(|h| h.armed).count(),
            hooks,
            skip: strategy.skip,
            limit: strategy.limit,
            delay_us: strategy.delay_us,
            delay_mode: strategy.delay_mode.name(),
            site: strategy.site.name(),
            replay_length: strategy.replay.len(),
            replay_faults: strategy.replay.iter().filter(|&&c| c != 0).count(),
            replay_loop: strategy.replay_loop,
            calls,
            faults,
            armed_calls,
            armed_faults,
            fault_percent: fault_percent(armed_faults as f64, armed_calls as f64).unwrap_or(0.0),
        }
    }

    /// `pid 1234 (ucx_selfloop, ucx)`, with `, dead` / `, container` where they apply.
    pub fn label(&self) -> String {
        process_label(self.pid, &self.exe, self.kind, self.alive, self.in_container)
    }

    /// The mode and its parameters: `random 30%`, `pattern XOOOOXOO (pos 17)`, `replay 120 calls once (pos 3)`.
    pub fn mode_text(&self) -> String {
        match self.mode {
            "pattern" => format!("pattern {} (pos {})", shorten(&self.pattern, 64), self.position),
            "replay" => format!(
                "replay {} calls ({} faults) {} (pos {})",
                self.replay_length,
                self.replay_faults,
                if self.replay_loop { "looping" } else { "once" },
                self.position
            ),
            _ => format!("random {}%", config::format_probability(self.probability_ppm)),
        }
    }

    /// The error pool as `UCS_ERR_IO_ERROR(-3),UCS_ERR_UNREACHABLE(-6)`.
    pub fn pool_text(&self) -> String {
        let names: Vec<String> = self
            .error_codes
            .iter()
            .map(|c| c.name.map_or_else(|| c.code.to_string(), |name| format!("{name}({})", c.code)))
            .collect();
        names.join(",")
    }

    /// `delay off` or `delay 500µs before-fault`.
    pub fn delay_text(&self) -> String {
        if self.delay_mode == DelayMode::Off.name() {
            "delay off".to_string()
        } else {
            format!("delay {}µs {}", self.delay_us, self.delay_mode)
        }
    }

    /// The one-line summary printed after every change.
    pub fn line(&self) -> String {
        format!(
            "{}: {}, {}, pool {}, hooks {}/{} armed, skip {}, limit {}, {}, site {}, seed {:#x}, recording {}; calls {} faults {} ({:.1}% of armed calls)",
            self.label(),
            if self.enabled { "enabled" } else { "disabled" },
            self.mode_text(),
            self.pool_text(),
            self.hooks_armed,
            self.hooks.len(),
            self.skip,
            self.limit,
            self.delay_text(),
            self.site,
            self.seed,
            if self.recording { "on" } else { "off" },
            self.calls,
            self.faults,
            self.fault_percent,
        )
    }
}

fn shorten(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        text.to_string()
    } else {
        let head: String = text.chars().take(max).collect();
        format!("{head}… ({} positions)", text.chars().count())
    }
}

/// FAULT%, the one definition `ps`, `status` and the dashboard share: the faults of the armed hooks as a percentage
/// of their calls, the calls that can fail. Calls of hooks that are not armed (a polling client's
/// `ucp_request_check_status`) do not water it down, so 30 % random faults reads 30 %. Takes totals (`ps`, `status`)
/// or per-second rates (the dashboard) alike; `None` without armed calls.
pub fn fault_percent(armed_faults: f64, armed_calls: f64) -> Option<f64> {
    (armed_calls > 0.0).then(|| armed_faults * 100.0 / armed_calls)
}

/// The order of every process list (`ps`, the dashboard): live processes first, then the dead and unusable ones,
/// each group in `order` (a sort key, reversed or not), so dozens of leftover segments never push a live process off
/// the first screen.
pub fn sort_live_first<T>(rows: &mut [T], alive: impl Fn(&T) -> bool, mut order: impl FnMut(&T, &T) -> Ordering) {
    rows.sort_by(|a, b| alive(b).cmp(&alive(a)).then_with(|| order(a, b)));
}

/// One line of `ps`: a usable segment's summary, or an unusable one with the reason.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PsRow {
    /// Pid as seen from here.
    pub pid: u32,
    /// Executable name (unknown for unusable segments).
    pub exe: Option<String>,
    /// The Kubernetes pod it runs in, when its shim recorded one.
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    pub pod: Option<Pod>,
    /// `ucx` or `cuda`.
    pub kind: &'static str,
    /// `alive`, `dead`, or why the segment cannot be used (see [`crate::targets::problem_of`]).
    pub state: &'static str,
    /// Faults are injected.
    pub enabled: Option<bool>,
    /// `random`, `pattern` or `replay`.
    pub mode: Option<&'static str>,
    /// Calls while enabled.
    pub calls: Option<u64>,
    /// Faults injected.
    pub faults: Option<u64>,
    /// FAULT% (see [`fault_percent`]).
    pub fault_percent: Option<f64>,
    /// Recording is on.
    pub recording: Option<bool>,
    /// Found inside a container.
    pub in_container: bool,
    /// The segment file.
    pub path: String,
    /// Why the segment cannot be used, or why its state could not be read.
    pub reason: Option<String>,
}

impl PsRow {
    /// Whether the process runs (else it is dead, or its segment unusable).
    pub fn is_alive(&self) -> bool {
        self.state == "alive"
    }

    /// The row of an attached segment.
    pub fn of(target: &Target) -> PsRow {
        let mut row = PsRow {
            pid: target.pid(),
            exe: Some(target.exe()),
            pod: Pod::of(target),
            kind: target.kind().name(),
            state: if target.alive { "alive" } else { "dead" },
            enabled: None,
            mode: None,
            calls: None,
            faults: None,
            fault_percent: None,
            recording: None,
            in_container: target.found.in_container,
            path: target.found.path.display().to_string(),
            reason: None,
        };
        match ProcessState::read(target) {
            Ok(state) => {
                row.enabled = Some(state.enabled);
                row.mode = Some(state.mode);
                row.calls = Some(state.calls);
                row.faults = Some(state.faults);
                row.fault_percent = Some(state.fault_percent);
                row.recording = Some(state.recording);
            }
            Err(error) => row.reason = Some(error.to_string()),
        }
        row
    }

    /// The row of a segment that cannot be used.
    pub fn unusable(unusable: &Unusable) -> PsRow {
        PsRow {
            pid: unusable.pid,
            exe: None,
            pod: None,
            kind: unusable.kind.name(),
            state: unusable.problem,
            enabled: None,
            mode: None,
            calls: None,
            faults: None,
            fault_percent: None,
            recording: None,
            in_container: false,
            path: unusable.path.display().to_string(),
            reason: Some(unusable.reason.clone()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What `status --json` prints for one process (an agent's snapshot carries the same).
    fn status_json() -> serde_json::Value {
        serde_json::json!({
            "pid": 4242, "kind": "ucx", "exe": "app", "alive": true, "in_container": true, "path": "/dev/shm/x",
            "enabled": true, "recording": false, "mode": "random", "probability_percent": 5.0,
            "probability_ppm": 50_000, "seed": 7, "pattern": "", "position": 0,
            "error_codes": [{"code": -3, "name": "UCS_ERR_IO_ERROR"}], "hooks_armed": 1,
            "hooks": [{"name": "ucp_put_nbx", "armed": true, "calls": 10, "faults": 1}],
            "skip": 0, "limit": 0, "delay_us": 0, "delay_mode": "off", "site": "completion",
            "replay_length": 0, "replay_faults": 0, "replay_loop": false,
            "calls": 10, "faults": 1, "armed_calls": 10, "armed_faults": 1, "fault_percent": 10.0
        })
    }

    #[test]
    fn a_states_site_is_read_back_and_an_older_agents_state_without_one_is_at_post() {
        let state = ProcessState::from_json(&status_json()).unwrap();
        assert_eq!(state.site, "completion");
        assert_eq!(serde_json::to_value(&state).unwrap()["site"], "completion", "written as read");
        assert!(state.line().contains(", site completion, "), "{}", state.line());

        let mut older = status_json();
        older.as_object_mut().unwrap().remove("site");
        assert_eq!(ProcessState::from_json(&older).unwrap().site, "post");

        let mut unknown = status_json();
        unknown["site"] = "callback".into();
        let error = ProcessState::from_json(&unknown).unwrap_err().to_string();
        assert!(error.contains("site: unknown value \"callback\""), "{error}");
    }
}
