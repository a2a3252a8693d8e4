//! Judging a phase: each check over the phase's probe samples and the target's counters, with the measured value
//! and the bound kept for the reports.

use std::time::Duration;

use super::bound::Dur;
use super::probe::Sample;
use super::spec::{quantile_name, Check, Counter};

/// One expectation's result.
#[derive(Debug, Clone, PartialEq)]
pub struct Verdict {
    /// The phase.
    pub phase: String,
    /// What was checked (`completions success rate >= 99%`).
    pub check: String,
    /// Whether it held.
    pub passed: bool,
    /// What was measured, in the bound's unit (`97.5%`, `412ms`, `no requests`).
    pub measured: String,
    /// The bound (`>= 99%`).
    pub bound: String,
}

/// The target's counters at a phase's start and end.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counters {
    /// Calls intercepted.
    pub calls: u64,
    /// Faults injected.
    pub faults: u64,
}

/// What was read of the target and the cluster around a phase.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Readings {
    /// The target's counters at the phase's start and end.
    pub counters: Option<(Counters, Counters)>,
    /// Active cluster faults at the phase's end.
    pub cluster_faults: Option<usize>,
    /// Per waited-for condition (by its text): when it first held, since the phase's start (`None`: never in the
    /// phase), or why it could not be read.
    pub waits: std::collections::BTreeMap<String, Waited>,
}

/// When a waited-for condition first held, since the phase's start (`None`: never in the phase), or why it could not
/// be read.
pub type Waited = Result<Option<Duration>, String>;

/// Judges `check` over `samples` (the probe's, in the phase: `at` from `start` to `end`) and the readings.
pub fn judge(
    phase: &str,
    check: &Check,
    samples: &[Sample],
    (start, end): (Duration, Duration),
    readings: &Readings,
) -> Verdict {
    let counters = readings.counters;
    let in_phase: Vec<&Sample> = samples.iter().filter(|s| s.at >= start && s.at < end).collect();
    let verdict = |passed: bool, measured: String, bound: String| Verdict {
        phase: phase.to_string(),
        check: check.to_string(),
        passed,
        measured,
        bound,
    };
    match check {
        Check::SuccessRate(_, bound) => {
            if in_phase.is_empty() {
                return verdict(false, "no requests".into(), bound.to_string());
            }
            let ok = in_phase.iter().filter(|s| s.ok).count();
            let rate = 100.0 * ok as f64 / in_phase.len() as f64;
            let measured = format!("{} ({ok}/{})", bound.show(rate), in_phase.len());
            verdict(bound.holds(rate), measured, bound.to_string())
        }
        Check::Latency(_, q, bound) => {
            let mut latencies: Vec<f64> = in_phase.iter().map(|s| s.latency.as_secs_f64()).collect();
            if latencies.is_empty() {
                return verdict(false, "no requests".into(), bound.to_string());
            }
            latencies.sort_by(f64::total_cmp);
            let index = ((latencies.len() as f64 - 1.0) * q).round() as usize;
            let value = latencies[index.min(latencies.len() - 1)];
            let measured = format!("{} ({} of {} requests)", bound.show(value), quantile_name(*q), latencies.len());
            verdict(bound.holds(value), measured, bound.to_string())
        }
        Check::RecoversWithin(_, within) => {
            // Steady: the first success after which every request of the phase succeeded.
            let steady_from = in_phase.iter().rposition(|s| !s.ok).map_or(0, |last_failure| last_failure + 1);
            match in_phase.get(steady_from) {
                Some(first) => {
                    let took = first.at.saturating_sub(start);
                    let measured = Dur(took).to_string();
                    verdict(took <= within.0, measured, format!("<= {within}"))
                }
                None => verdict(false, "did not recover in the phase".into(), format!("<= {within}")),
            }
        }
        Check::Counter(counter, bound) => match counters {
            Some((before, after)) => {
                let value = match counter {
                    Counter::Faults => after.faults.saturating_sub(before.faults),
                    Counter::Calls => after.calls.saturating_sub(before.calls),
                } as f64;
                verdict(bound.holds(value), bound.show(value), bound.to_string())
            }
            None => verdict(false, "the target's counters could not be read".into(), bound.to_string()),
        },
        Check::Within(wait, within) => match readings.waits.get(&wait.to_string()) {
            Some(Ok(Some(took))) => verdict(*took <= within.0, Dur(*took).to_string(), format!("<= {within}")),
            Some(Ok(None)) => verdict(false, "not in the phase".into(), format!("<= {within}")),
            Some(Err(why)) => verdict(false, format!("could not be read: {why}"), format!("<= {within}")),
            None => verdict(false, "not watched".into(), format!("<= {within}")),
        },
        Check::ClusterFaults(bound) => match readings.cluster_faults {
            Some(active) => verdict(bound.holds(active as f64), active.to_string(), bound.to_string()),
            None => verdict(false, "the cluster's faults could not be listed".into(), bound.to_string()),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::experiment::bound::Bound;

    fn samples(pattern: &str) -> Vec<Sample> {
        pattern
            .chars()
            .enumerate()
            .map(|(i, c)| Sample {
                at: Duration::from_millis(100 * i as u64),
                ok: c == 'O',
                latency: Duration::from_millis(10 * (i as u64 + 1)),
                outcome: if c == 'O' { "200" } else { "503" }.to_string(),
            })
            .collect()
    }

    const WHOLE: (Duration, Duration) = (Duration::ZERO, Duration::from_secs(10));

    #[test]
    fn success_rate_and_latency_over_the_phase() {
        let rate = Check::SuccessRate("p".into(), Bound::parse(">= 75%").unwrap());
        let v = judge("faults", &rate, &samples("OOOX"), WHOLE, &Readings::default());
        assert!(v.passed, "{v:?}");
        assert_eq!((v.measured.as_str(), v.bound.as_str()), ("75% (3/4)", ">= 75%"));
        assert!(!judge("faults", &rate, &samples("OOXX"), WHOLE, &Readings::default()).passed);
        assert_eq!(judge("faults", &rate, &[], WHOLE, &Readings::default()).measured, "no requests");
        // Only the phase's samples count.
        let window = (Duration::from_millis(200), Duration::from_millis(400));
        assert_eq!(judge("faults", &rate, &samples("XXOO"), window, &Readings::default()).measured, "100% (2/2)");
        let p99 = Check::Latency("p".into(), 0.99, Bound::parse("<= 30ms").unwrap());
        let v = judge("faults", &p99, &samples("OOO"), WHOLE, &Readings::default());
        assert!(v.passed && v.measured.starts_with("30ms (p99 of 3"), "{v:?}");
        assert!(!judge("faults", &p99, &samples("OOOO"), WHOLE, &Readings::default()).passed);
    }

    #[test]
    fn recovery_is_the_first_success_of_the_last_unbroken_run() {
        let within = Check::RecoversWithin("p".into(), Dur(Duration::from_millis(300)));
        let v = judge("recovery", &within, &samples("XXOXOOOO"), WHOLE, &Readings::default());
        assert_eq!(v.measured, "400ms");
        assert!(!v.passed);
        assert!(judge("recovery", &within, &samples("XXOOOO"), WHOLE, &Readings::default()).passed);
        let never = judge("recovery", &within, &samples("OOX"), WHOLE, &Readings::default());
        assert!(!never.passed && never.measured == "did not recover in the phase");
    }

    #[test]
    fn counters_are_measured_over_the_phase() {
        let faults = Check::Counter(Counter::Faults, Bound::parse("> 0").unwrap());
        let before = Counters { calls: 100, faults: 4 };
        let after = Counters { calls: 250, faults: 9 };
        let v =
            judge("faults", &faults, &[], WHOLE, &Readings { counters: Some((before, after)), ..Readings::default() });
        assert!(v.passed && v.measured == "5", "{v:?}");
        assert!(
            !judge("faults", &faults, &[], WHOLE, &Readings { counters: Some((after, after)), ..Readings::default() })
                .passed
        );
        assert!(!judge("faults", &faults, &[], WHOLE, &Readings::default()).passed);
    }
}
