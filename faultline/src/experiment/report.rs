//! What an experiment leaves behind: a JSON timeline (every action with its time and outcome, the probes' samples
//! aggregated per second, every verdict, what was undone) and a JUnit XML file (one test case per expectation; a
//! failure carries the measured value and the bound) for CI.

use std::time::Duration;

use serde_json::{json, Value};

use super::probe::Sample;
use super::verdict::Verdict;

/// An action as it happened.
#[derive(Debug, Clone, PartialEq)]
pub struct ActionRecord {
    /// The phase.
    pub phase: String,
    /// When, since the start.
    pub at: Duration,
    /// The command line.
    pub action: String,
    /// Whether it worked.
    pub ok: bool,
    /// What it said.
    pub outcome: String,
}

/// A finished (or interrupted) run.
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    /// The experiment's name.
    pub name: String,
    /// How long it ran.
    pub duration: Duration,
    /// Why it stopped early, if it did (a signal, an action that failed).
    pub interrupted: Option<String>,
    /// Phases as run: name, start, end (since the start).
    pub phases: Vec<(String, Duration, Duration)>,
    /// Every action.
    pub actions: Vec<ActionRecord>,
    /// Every probe's samples.
    pub probes: Vec<(String, Vec<Sample>)>,
    /// Every expectation judged.
    pub verdicts: Vec<Verdict>,
    /// What was undone at the end (and what could not be).
    pub cleanup: Vec<String>,
    /// Cluster faults created (their ids), all recovered at the end unless `cleanup` says otherwise.
    pub fault_ids: Vec<String>,
}

impl Report {
    /// Whether every expectation held and nothing interrupted the run.
    pub fn passed(&self) -> bool {
        self.interrupted.is_none() && self.verdicts.iter().all(|v| v.passed)
    }

    /// The JSON report.
    pub fn to_json(&self) -> Value {
        let seconds = |d: Duration| (d.as_secs_f64() * 1e3).round() / 1e3;
        let probes: Vec<Value> = self
            .probes
            .iter()
            .map(|(name, samples)| {
                let last = samples.last().map_or(0, |s| s.at.as_secs());
                let per_second: Vec<Value> = (0..=last)
                    .filter_map(|second| {
                        let these: Vec<&Sample> = samples.iter().filter(|s| s.at.as_secs() == second).collect();
                        if these.is_empty() {
                            return None;
                        }
                        let ok = these.iter().filter(|s| s.ok).count();
                        let mean = these.iter().map(|s| s.latency.as_secs_f64()).sum::<f64>() / these.len() as f64;
                        Some(json!({"second": second, "requests": these.len(), "ok": ok,
                                    "mean_latency_s": (mean * 1e4).round() / 1e4}))
                    })
                    .collect();
                json!({"name": name, "requests": samples.len(), "ok": samples.iter().filter(|s| s.ok).count(),
                       "per_second": per_second})
            })
            .collect();
        json!({
            "name": self.name,
            "passed": self.passed(),
            "interrupted": self.interrupted,
            "duration_s": seconds(self.duration),
            "phases": self.phases.iter().map(|(name, start, end)| json!({"name": name, "start_s": seconds(*start),
                "end_s": seconds(*end)})).collect::<Vec<_>>(),
            "actions": self.actions.iter().map(|a| json!({"phase": a.phase, "at_s": seconds(a.at),
                "action": a.action, "ok": a.ok, "outcome": a.outcome})).collect::<Vec<_>>(),
            "probes": probes,
            "expectations": self.verdicts.iter().map(|v| json!({"phase": v.phase, "check": v.check,
                "passed": v.passed, "measured": v.measured, "bound": v.bound})).collect::<Vec<_>>(),
            "cleanup": self.cleanup,
            "fault_ids": self.fault_ids,
        })
    }

    /// The JUnit XML report: a test suite named after the experiment, a test case per expectation (class name the
    /// phase), and, if the run was interrupted, a test case saying so.
    pub fn to_junit(&self) -> String {
        let failures = self.verdicts.iter().filter(|v| !v.passed).count() + usize::from(self.interrupted.is_some());
        let tests = self.verdicts.len() + usize::from(self.interrupted.is_some());
        let mut xml = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
        xml.push_str(&format!(
            "<testsuites name=\"faultline\" tests=\"{tests}\" failures=\"{failures}\" time=\"{:.3}\">\n",
            self.duration.as_secs_f64()
        ));
        xml.push_str(&format!(
            "  <testsuite name=\"{}\" tests=\"{tests}\" failures=\"{failures}\" errors=\"0\" time=\"{:.3}\">\n",
            escape(&self.name),
            self.duration.as_secs_f64()
        ));
        for verdict in &self.verdicts {
            let time = self
                .phases
                .iter()
                .find(|(name, _, _)| *name == verdict.phase)
                .map_or(0.0, |(_, start, end)| end.saturating_sub(*start).as_secs_f64());
            xml.push_str(&format!(
                "    <testcase classname=\"{}\" name=\"{}\" time=\"{time:.3}\"",
                escape(&verdict.phase),
                escape(&verdict.check)
            ));
            if verdict.passed {
                xml.push_str(&format!(
                    ">\n      <system-out>measured {}</system-out>\n    </testcase>\n",
                    escape(&verdict.measured)
                ));
            } else {
                let message = format!(
                    "phase {}: {}: measured {}, expected {}",
                    verdict.phase, verdict.check, verdict.measured, verdict.bound
                );
                xml.push_str(&format!(
                    ">\n      <failure message=\"{}\" type=\"expectation\">{}</failure>\n    </testcase>\n",
                    escape(&message),
                    escape(&message)
                ));
            }
        }
        if let Some(why) = &self.interrupted {
            xml.push_str(&format!(
                "    <testcase classname=\"experiment\" name=\"ran to the end\" time=\"0\">\n      <failure \
                 message=\"{}\" type=\"interrupted\">{}</failure>\n    </testcase>\n",
                escape(why),
                escape(why)
            ));
        }
        xml.push_str("  </testsuite>\n</testsuites>\n");
        xml
    }
}

/// XML text and attribute escaping (control characters other than tab and newline are dropped: XML 1.0 has none).
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' | '\n' => out.push(c),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report() -> Report {
        let sample = |ms: u64, ok: bool| Sample {
            at: Duration::from_millis(ms),
            ok,
            latency: Duration::from_millis(5),
            outcome: if ok { "200".into() } else { "503".into() },
        };
        Report {
            name: "decode <survives>".into(),
            duration: Duration::from_secs(3),
            interrupted: None,
            phases: vec![("faults".into(), Duration::ZERO, Duration::from_secs(3))],
            actions: vec![ActionRecord {
                phase: "faults".into(),
                at: Duration::ZERO,
                action: "enable".into(),
                ok: true,
                outcome: "enable: done on 1 process".into(),
            }],
            probes: vec![("p".into(), vec![sample(100, true), sample(600, false), sample(1100, true)])],
            verdicts: vec![
                Verdict {
                    phase: "faults".into(),
                    check: "p success rate >= 99%".into(),
                    passed: false,
                    measured: "66.67% (2/3)".into(),
                    bound: ">= 99%".into(),
                },
                Verdict {
                    phase: "faults".into(),
                    check: "target faults > 0".into(),
                    passed: true,
                    measured: "3".into(),
                    bound: "> 0".into(),
                },
            ],
            cleanup: vec!["pid 7: strategy restored".into()],
            fault_ids: vec![],
        }
    }

    #[test]
    fn junit_has_a_case_per_expectation_and_failures_say_measured_and_bound() {
        let xml = report().to_junit();
        assert!(xml.contains("<testsuite name=\"decode &lt;survives&gt;\" tests=\"2\" failures=\"1\""), "{xml}");
        assert!(
            xml.contains(
                "message=\"phase faults: p success rate &gt;= 99%: measured 66.67% (2/3), expected &gt;= 99%\""
            ),
            "{xml}"
        );
        assert!(xml.contains("<testcase classname=\"faults\" name=\"target faults &gt; 0\""), "{xml}");
        let mut interrupted = report();
        interrupted.interrupted = Some("interrupted by SIGINT".into());
        assert!(interrupted.to_junit().contains("tests=\"3\" failures=\"2\""));
        assert!(!interrupted.passed());
    }

    #[test]
    fn json_has_the_timeline() {
        let json = report().to_json();
        assert_eq!(json["passed"], false);
        assert_eq!(json["actions"][0]["action"], "enable");
        assert_eq!(
            json["probes"][0]["per_second"][0],
            json!({"second": 0, "requests": 2, "ok": 1, "mean_latency_s": 0.005})
        );
        assert_eq!(json["expectations"][0]["measured"], "66.67% (2/3)");
        assert_eq!(json["cleanup"][0], "pid 7: strategy restored");
    }
}
