//! The seed UCX injector's start-up variables (`UCX_FAULT_*`, as its v0.3.5 reads them), mapped onto faultline's
//! own settings, so that a launch script written for the seed works unchanged with `libfaultline_ucx.so`:
//!
//! | seed variable | faultline setting |
//! |---|---|
//! | `UCX_FAULT_ENABLED` | `FAULTLINE_ENABLED` |
//! | `UCX_FAULT_STRATEGY=random`, or `=pattern` with `UCX_FAULT_PATTERN` | `FAULTLINE_STRATEGY` |
//! | `UCX_FAULT_PROBABILITY` (percent; the seed keeps 0.01 % steps, truncating) | `FAULTLINE_PROBABILITY` |
//! | `UCX_FAULT_ERROR_CODES` | `FAULTLINE_ERROR_CODES` |
//! | `UCX_FAULT_HOOKS` (`flush` is `ucp_ep_flush_nbx`, `all` the seed's four hooks) | `FAULTLINE_HOOKS` |
//! | `UCX_FAULT_DEBUG` (any value) | `FAULTLINE_LOG=debug` |
//! | `UCX_FAULT_STATS_LOG_INTERVAL` (calls) | `FAULTLINE_STATS_INTERVAL=<N>calls` |
//! | `UCX_FAULT_IPC_ENABLE`, `UCX_FAULT_IPC_BACKEND` | none needed: every shimmed process can be steered |
//!
//! A `FAULTLINE_*` variable wins over its seed spelling. A process with any of these variables set is configured
//! the seed's way: what no variable sets takes the seed's defaults instead of faultline's — its hooks (`get`, `put`,
//! `ep_flush`, `request_check_status`; also what `reset` goes back to) and the probability it starts with (25 in its
//! units of 0.01 %, i.e. 0.25 %). Values are then checked exactly like faultline's own: an invalid one is reported
//! once and ignored, and one that would narrow what can fail (hooks, strategy) arms nothing.

use crate::config::{format_probability, parse_pattern, ConfigError, Given};
use crate::control::Strategy;
use crate::layout::MAX_HOOKS;

/// Every start-up variable the seed reads.
pub const VARIABLES: [&str; 10] = [
    "UCX_FAULT_ENABLED",
    "UCX_FAULT_STRATEGY",
    "UCX_FAULT_PROBABILITY",
    "UCX_FAULT_PATTERN",
    "UCX_FAULT_ERROR_CODES",
    "UCX_FAULT_HOOKS",
    "UCX_FAULT_DEBUG",
    "UCX_FAULT_STATS_LOG_INTERVAL",
    "UCX_FAULT_IPC_ENABLE",
    "UCX_FAULT_IPC_BACKEND",
];

/// The hooks the seed arms by default (all it intercepts).
pub const SEED_HOOKS: [&str; 4] = ["ucp_get_nbx", "ucp_put_nbx", "ucp_ep_flush_nbx", "ucp_request_check_status"];

/// The probability a seed-configured process starts with: the seed's 25 (in its 0.01 % units) when
/// `UCX_FAULT_PROBABILITY` is not set.
pub const SEED_START_PROBABILITY_PPM: u32 = 2_500;

/// Whether any of the seed's variables is set.
pub fn configured(var: &impl Fn(&str) -> Option<String>) -> bool {
    VARIABLES.iter().any(|name| var(name).is_some())
}

/// The seed's defaults where they differ from faultline's: its hooks and its starting probability.
pub(crate) fn apply_defaults(strategy: &mut Strategy, hooks: &[&str]) {
    strategy.probability_ppm = SEED_START_PROBABILITY_PPM;
    strategy.arm_mask = [0; MAX_HOOKS / 64];
    for (index, _) in hooks.iter().enumerate().take(MAX_HOOKS).filter(|(_, name)| SEED_HOOKS.contains(name)) {
        strategy.arm_mask[index / 64] |= 1 << (index % 64);
    }
}

/// Notes about seed variables that have no effect as given.
pub(crate) fn notes(var: &impl Fn(&str) -> Option<String>) -> Vec<String> {
    let pattern_unused = var("UCX_FAULT_STRATEGY").is_none_or(|strategy| strategy.trim() != "pattern")
        && var("FAULTLINE_STRATEGY").is_none();
    match var("UCX_FAULT_PATTERN") {
        Some(pattern) if pattern_unused => {
            vec![format!("UCX_FAULT_PATTERN={pattern} is used only with UCX_FAULT_STRATEGY=pattern; ignored")]
        }
        _ => Vec::new(),
    }
}

/// The seed's spelling of faultline setting `name` (a `FAULTLINE_*` name), translated into faultline's syntax.
pub(crate) fn setting(name: &str, var: &impl Fn(&str) -> Option<String>) -> Option<Given> {
    let given = |seed_name: &str, translate: &dyn Fn(&str) -> Result<String, ConfigError>| {
        var(seed_name).map(|value| Given {
            name: seed_name.to_string(),
            shown: format!("{seed_name}={value}"),
            text: translate(&value),
        })
    };
    match name {
        "FAULTLINE_ENABLED" => given("UCX_FAULT_ENABLED", &|value| Ok(value.to_string())),
        "FAULTLINE_STRATEGY" => strategy(var),
        "FAULTLINE_PROBABILITY" => given("UCX_FAULT_PROBABILITY", &probability),
        "FAULTLINE_ERROR_CODES" => given("UCX_FAULT_ERROR_CODES", &|value| Ok(value.to_string())),
        "FAULTLINE_HOOKS" => given("UCX_FAULT_HOOKS", &|value| Ok(hooks(value))),
        "FAULTLINE_LOG" => given("UCX_FAULT_DEBUG", &|_| Ok("debug".to_string())),
        "FAULTLINE_STATS_INTERVAL" => given("UCX_FAULT_STATS_LOG_INTERVAL", &stats_interval),
        _ => None,
    }
}

/// `UCX_FAULT_STRATEGY` (`random` or `pattern`), with `UCX_FAULT_PATTERN` for `pattern`.
fn strategy(var: &impl Fn(&str) -> Option<String>) -> Option<Given> {
    let strategy = var("UCX_FAULT_STRATEGY")?;
    let pattern = var("UCX_FAULT_PATTERN");
    let (shown, text) = match (strategy.trim(), pattern) {
        ("random", _) => (format!("UCX_FAULT_STRATEGY={strategy}"), Ok("random".to_string())),
        ("pattern", Some(pattern)) => {
            (format!("UCX_FAULT_STRATEGY={strategy}, UCX_FAULT_PATTERN={pattern}"), Ok(pattern))
        }
        ("pattern", None) => (
            format!("UCX_FAULT_STRATEGY={strategy}"),
            Err(ConfigError::Seed(
                "UCX_FAULT_PATTERN is not set, and the pattern strategy needs it (X fails a call, O passes it, e.g. \
                 XOOOOXOO)"
                    .to_string(),
            )),
        ),
        // faultline's own spelling, an X/O pattern, is taken too.
        (other, _) if parse_pattern(other).is_ok() => (format!("UCX_FAULT_STRATEGY={strategy}"), Ok(other.to_string())),
        (_, _) => (
            format!("UCX_FAULT_STRATEGY={strategy}"),
            Err(ConfigError::Seed("the strategy is random or pattern".to_string())),
        ),
    };
    Some(Given { name: "UCX_FAULT_STRATEGY".to_string(), shown, text })
}

/// A percentage as the seed reads it (any float from 0 to 100, kept in 0.01 % steps by truncation), as faultline
/// text.
fn probability(value: &str) -> Result<String, ConfigError> {
    match value.parse::<f64>() {
        Ok(percent) if percent.is_finite() && (0.0..=100.0).contains(&percent) => {
            // The seed's own conversion, truncation included (`(percent * 100) as u32` hundredths of a percent).
            let hundredths = (percent * 100.0) as u32;
            Ok(format_probability(hundredths * 100))
        }
        _ => Err(ConfigError::Probability(value.to_string())),
    }
}

/// The seed's hook names: `flush` is only `ucp_ep_flush_nbx`, `all` its four hooks (faultline's names pass as they
/// are).
fn hooks(value: &str) -> String {
    let names: Vec<String> = value
        .split(',')
        .map(|name| match name.trim() {
            "flush" => "ucp_ep_flush_nbx".to_string(),
            "all" => SEED_HOOKS.join(","),
            other => other.to_string(),
        })
        .collect();
    names.join(",")
}

/// The seed's interval, a count of calls (0 turns the line off).
fn stats_interval(value: &str) -> Result<String, ConfigError> {
    match value.parse::<u32>() {
        Ok(calls) => Ok(format!("{calls}calls")),
        Err(_) => Err(ConfigError::StatsInterval(value.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{startup_from_env, LogLevel, Startup, StatsInterval};
    use crate::layout::{Kind, Mode};

    const HOOKS: [&str; 6] = [
        "ucp_get_nbx",
        "ucp_put_nbx",
        "ucp_tag_send_nbx",
        "ucp_ep_flush_nbx",
        "ucp_worker_flush_nbx",
        "ucp_request_check_status",
    ];
    /// Everything but `ucp_request_check_status`, as the UCX shim.
    const FAULTLINE_DEFAULT: u64 = 0b01_1111;
    const SEED_DEFAULT: u64 = 0b10_1011;

    fn startup(kind: Kind, env: &[(&str, &str)]) -> Startup {
        let env: Vec<(String, String)> = env.iter().map(|(n, v)| (n.to_string(), v.to_string())).collect();
        startup_from_env(
            kind,
            &HOOKS,
            |h| h != 5 && h < HOOKS.len(),
            move |name| env.iter().find(|(n, _)| n == name).map(|(_, v)| v.clone()),
        )
    }

    #[test]
    fn the_seed_pattern_start_up_arms_the_seed_hooks_from_the_first_call() {
        let s = startup(
            Kind::Ucx,
            &[("UCX_FAULT_ENABLED", "1"), ("UCX_FAULT_STRATEGY", "pattern"), ("UCX_FAULT_PATTERN", "XOOOOXOO")],
        );
        assert!(s.warnings.is_empty(), "{:?}", s.warnings);
        assert!(s.seed_configured);
        assert!(s.strategy.enabled);
        assert_eq!(s.strategy.mode, Mode::Pattern);
        assert_eq!(s.strategy.pattern_text(), "XOOOOXOO");
        assert_eq!(s.strategy.arm_mask[0], SEED_DEFAULT);
        assert_eq!(s.default_arm_mask[0], SEED_DEFAULT, "reset goes back to the seed's hooks");
        assert_eq!(s.strategy.pool, vec![-3, -6, -20]);
    }

    #[test]
    fn every_seed_variable_maps_onto_its_faultline_setting() {
        let s = startup(
            Kind::Ucx,
            &[
                ("UCX_FAULT_ENABLED", "true"),
                ("UCX_FAULT_STRATEGY", "random"),
                ("UCX_FAULT_PROBABILITY", "12.345"),
                ("UCX_FAULT_ERROR_CODES", "-3,-6"),
                ("UCX_FAULT_HOOKS", "get,flush"),
                ("UCX_FAULT_DEBUG", "1"),
                ("UCX_FAULT_STATS_LOG_INTERVAL", "64"),
                ("UCX_FAULT_IPC_ENABLE", "1"),
                ("UCX_FAULT_IPC_BACKEND", "socket"),
            ],
        );
        assert!(s.warnings.is_empty(), "{:?}", s.warnings);
        assert!(s.strategy.enabled);
        assert_eq!(s.strategy.mode, Mode::Random);
        assert_eq!(s.strategy.probability_ppm, 123_400, "the seed's 0.01 % steps, truncated");
        assert_eq!(s.strategy.pool, vec![-3, -6]);
        assert_eq!(s.strategy.arm_mask[0], 0b1001, "flush is the endpoint flush only");
        assert_eq!(s.log, LogLevel::Debug);
        assert_eq!(s.stats, StatsInterval::Calls(64));

        let all = startup(Kind::Ucx, &[("UCX_FAULT_HOOKS", "all")]);
        assert_eq!(all.strategy.arm_mask[0], SEED_DEFAULT, "all: the seed's four hooks");
        let named = startup(Kind::Ucx, &[("UCX_FAULT_HOOKS", "ucp_put_nbx,check_status")]);
        assert_eq!(named.strategy.arm_mask[0], 0b10_0010);
    }

    #[test]
    fn a_seed_configured_process_starts_from_the_seed_defaults() {
        let seed = startup(Kind::Ucx, &[("UCX_FAULT_DEBUG", "1")]);
        assert_eq!(seed.strategy.arm_mask[0], SEED_DEFAULT);
        assert_eq!(seed.strategy.probability_ppm, SEED_START_PROBABILITY_PPM);
        assert!(!seed.strategy.enabled, "disabled until asked, like the seed");
        let ipc_only = startup(Kind::Ucx, &[("UCX_FAULT_IPC_ENABLE", "1")]);
        assert_eq!(ipc_only.strategy.arm_mask[0], SEED_DEFAULT);

        let plain = startup(Kind::Ucx, &[("UCX_FAULT_INJECTOR_LIB", "/x.so"), ("UCX_FAULT_CLIENT", "/c")]);
        assert!(!plain.seed_configured, "a script's own variables are not the seed's settings");
        assert_eq!(plain.strategy.arm_mask[0], FAULTLINE_DEFAULT);
        assert_eq!(plain.strategy.probability_ppm, 0);

        let cuda = startup(Kind::Cuda, &[("UCX_FAULT_ENABLED", "1")]);
        assert!(!cuda.strategy.enabled, "the seed's variables are the UCX shim's only");
    }

    #[test]
    fn a_faultline_setting_wins_over_its_seed_spelling() {
        let s = startup(
            Kind::Ucx,
            &[
                ("UCX_FAULT_ENABLED", "1"),
                ("UCX_FAULT_STRATEGY", "pattern"),
                ("UCX_FAULT_PATTERN", "XO"),
                ("FAULTLINE_STRATEGY", "OX"),
                ("UCX_FAULT_PROBABILITY", "50"),
                ("FAULTLINE_PROBABILITY", "5"),
                ("UCX_FAULT_HOOKS", "get"),
                ("FAULTLINE_HOOKS", "tag_send"),
                ("UCX_FAULT_STATS_LOG_INTERVAL", "10"),
                ("FAULTLINE_STATS_INTERVAL", "3s"),
                ("UCX_FAULT_DEBUG", "1"),
                ("FAULTLINE_LOG", "faults"),
            ],
        );
        assert!(s.warnings.is_empty(), "{:?}", s.warnings);
        assert_eq!(s.strategy.pattern_text(), "OX");
        assert_eq!(s.strategy.probability_ppm, 50_000);
        assert_eq!(s.strategy.arm_mask[0], 0b100);
        assert_eq!(s.stats, StatsInterval::Seconds(3));
        assert_eq!(s.log, LogLevel::Faults);
        assert_eq!(s.default_arm_mask[0], SEED_DEFAULT, "what FAULTLINE_* does not set stays the seed's");
    }

    #[test]
    fn invalid_seed_values_are_reported_once_and_narrowing_ones_arm_nothing() {
        for (env, warning) in [
            (vec![("UCX_FAULT_STRATEGY", "pattern")], "UCX_FAULT_STRATEGY=pattern: UCX_FAULT_PATTERN is not set"),
            (
                vec![("UCX_FAULT_STRATEGY", "pattern"), ("UCX_FAULT_PATTERN", "XQ")],
                "UCX_FAULT_STRATEGY=pattern, UCX_FAULT_PATTERN=XQ: pattern 'XQ'",
            ),
            (vec![("UCX_FAULT_STRATEGY", "sometimes")], "the strategy is random or pattern"),
            (vec![("UCX_FAULT_HOOKS", "get,bogus")], "UCX_FAULT_HOOKS=get,bogus: unknown hook 'bogus'"),
        ] {
            let mut env = env.clone();
            env.push(("UCX_FAULT_ENABLED", "1"));
            let s = startup(Kind::Ucx, &env);
            assert_eq!(s.strategy.arm_mask, [0; MAX_HOOKS / 64], "{env:?} must arm nothing");
            assert_eq!(s.warnings.len(), 2, "{:?}", s.warnings);
            assert!(s.warnings[0].contains(warning), "{:?}", s.warnings);
            assert!(s.warnings[1].starts_with("no hook is armed: UCX_FAULT_"), "{:?}", s.warnings);
        }
        for (name, value) in [
            ("UCX_FAULT_PROBABILITY", "150"),
            ("UCX_FAULT_PROBABILITY", "lots"),
            ("UCX_FAULT_ERROR_CODES", "-3,0"),
            ("UCX_FAULT_ENABLED", "maybe"),
            ("UCX_FAULT_STATS_LOG_INTERVAL", "-1"),
        ] {
            let s = startup(Kind::Ucx, &[(name, value)]);
            assert_eq!(s.warnings.len(), 1, "{:?}", s.warnings);
            assert!(s.warnings[0].starts_with(&format!("{name}={value}: ")), "{:?}", s.warnings);
            assert!(s.warnings[0].ends_with("; ignored"), "{:?}", s.warnings);
            assert_eq!(s.strategy.arm_mask[0], SEED_DEFAULT, "{name}: the rest keeps the seed's defaults");
        }
        let unused = startup(Kind::Ucx, &[("UCX_FAULT_PATTERN", "XO")]);
        assert_eq!(unused.warnings, vec!["UCX_FAULT_PATTERN=XO is used only with UCX_FAULT_STRATEGY=pattern; ignored"]);
        assert_eq!(unused.strategy.mode, Mode::Random);
    }

    #[test]
    fn seed_probabilities_keep_the_seeds_steps() {
        assert_eq!(probability("50").unwrap(), "50");
        assert_eq!(probability("0.1").unwrap(), "0.1");
        assert_eq!(probability("12.345").unwrap(), "12.34");
        assert_eq!(probability("1e1").unwrap(), "10");
        assert_eq!(probability("100").unwrap(), "100");
        for bad in ["-1", "100.5", "NaN", "inf", "", "25%"] {
            assert!(probability(bad).is_err(), "{bad}");
        }
    }
}
