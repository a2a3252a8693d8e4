//! Running a checked experiment: probes start, each phase applies its actions, waits its duration (saying how it
//! goes on standard error), and is judged; at the end — however it ends — everything the actions changed is undone.
//!
//! What an action does to the world is the [`Actor`]'s business (the command line's: local processes through the
//! process action layer, the cluster through the cluster action layer); this file only orders the steps.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::probe;
use super::report::{ActionRecord, Report};
use super::spec::{Check, Plan};
use super::verdict::{self, Counters, Readings, Waited};
use crate::cluster::conditions::Condition;

/// What carries out an experiment's actions, and undoes them.
pub trait Actor {
    /// Finds the target and remembers what the actions may change, before the first one. `Err`: nothing was done.
    fn prepare(&mut self) -> Result<String, String>;
    /// Applies one action (its words); what it did, or why it failed.
    fn apply(&mut self, words: &[String]) -> Result<String, String>;
    /// The target's counters now (summed over its processes), if they can be read.
    fn counters(&mut self) -> Option<Counters>;
    /// Undoes everything applied so far; a line per thing undone (or not).
    fn restore(&mut self) -> Vec<String>;
    /// The cluster faults the actions created.
    fn fault_ids(&self) -> Vec<String>;
    /// Active faults in the cluster's ledger now (distinct fault ids, every namespace), if it can be listed.
    fn cluster_faults(&mut self) -> Option<usize>;
    /// Whether `condition` holds now; `first` before the phase's actions (an Event counts when it is newer than
    /// that: the actor keeps the baseline).
    fn condition(&mut self, condition: &Condition, first: bool) -> Result<bool, String>;
}

/// Runs `plan`. `stop` is set by a signal handler (Ctrl-C, SIGTERM): the phase in progress ends at once, the run is
/// reported interrupted, and the clean-up still runs. `say` gets the progress lines.
pub fn run(plan: &Plan, actor: &mut dyn Actor, stop: &Arc<AtomicBool>, say: &mut dyn FnMut(String)) -> Report {
    let experiment = &plan.experiment;
    let started = Instant::now();
    let mut report = Report {
        name: experiment.name.clone(),
        duration: Duration::ZERO,
        interrupted: None,
        phases: Vec::new(),
        actions: Vec::new(),
        probes: Vec::new(),
        verdicts: Vec::new(),
        cleanup: Vec::new(),
        fault_ids: Vec::new(),
    };
    match actor.prepare() {
        Ok(target) => say(format!("experiment {}: target {target}", experiment.name)),
        Err(why) => {
            report.interrupted = Some(format!("target: {why}"));
            return report;
        }
    }
    let probes_stop = Arc::new(AtomicBool::new(false));
    let mut probes = probe::start(&experiment.probes, started, &probes_stop);
    'phases: for (index, phase) in experiment.phases.iter().enumerate() {
        let start = started.elapsed();
        let before = actor.counters();
        let begun = Instant::now();
        // Each condition's state before the actions (an Event counts only if it is newer).
        for check in &plan.checks[index] {
            if let Check::Within(wait, _) = check {
                let _ = actor.condition(wait, true);
            }
        }
        say(format!("phase {} ({}): starting", phase.name, super::bound::Dur(phase.duration.0)));
        for (words, text) in plan.actions[index].iter().zip(&phase.actions) {
            let at = started.elapsed();
            let result = actor.apply(words);
            let (ok, outcome) = match &result {
                Ok(outcome) => (true, outcome.clone()),
                Err(why) => (false, why.clone()),
            };
            say(format!("phase {}: {text}: {outcome}", phase.name));
            report.actions.push(ActionRecord { phase: phase.name.clone(), at, action: text.clone(), ok, outcome });
            if !ok {
                report.interrupted = Some(format!("phase {}: action {text:?} failed", phase.name));
                report.phases.push((phase.name.clone(), start, started.elapsed()));
                break 'phases;
            }
        }
        let phase_start = Instant::now();
        let mut next_line = phase_start + Duration::from_secs(1);
        // The cluster conditions this phase waits for, polled twice a second until each first holds.
        let mut waits: Vec<(&Condition, Option<Waited>)> = plan.checks[index]
            .iter()
            .filter_map(|check| match check {
                Check::Within(wait, _) => Some((wait, None)),
                _ => None,
            })
            .collect();
        let mut next_poll = phase_start;
        loop {
            if !waits.is_empty() && Instant::now() >= next_poll {
                next_poll += Duration::from_millis(500);
                for (wait, state) in waits.iter_mut().filter(|(_, state)| state.is_none()) {
                    match actor.condition(wait, false) {
                        Ok(true) => *state = Some(Ok(Some(begun.elapsed()))),
                        Ok(false) => {}
                        Err(why) => *state = Some(Err(why)),
                    }
                }
            }
            if phase_start.elapsed() >= phase.duration.0 {
                break;
            }
            if stop.load(Ordering::Relaxed) {
                report.interrupted = Some(format!("interrupted during phase {}", phase.name));
                report.phases.push((phase.name.clone(), start, started.elapsed()));
                break 'phases;
            }
            if Instant::now() >= next_line {
                next_line += Duration::from_secs(1);
                let left = phase.duration.0.saturating_sub(phase_start.elapsed());
                let seen: Vec<String> = probes
                    .iter()
                    .map(|p| {
                        let samples = p.samples();
                        let now: Vec<_> = samples.iter().filter(|s| s.at >= start).collect();
                        format!("{} {}/{} ok", p.name, now.iter().filter(|s| s.ok).count(), now.len())
                    })
                    .collect();
                say(format!("phase {}: {:.0}s left · {}", phase.name, left.as_secs_f64().ceil(), seen.join(" · ")));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let end = started.elapsed();
        let after = actor.counters();
        let wants_ledger = plan.checks[index].iter().any(|c| matches!(c, Check::ClusterFaults(_)));
        let cluster_faults = if wants_ledger { actor.cluster_faults() } else { None };
        report.phases.push((phase.name.clone(), start, end));
        // Judged as the phase ends (a request still in flight then is not counted), so the verdicts show as it runs.
        let waits = waits.into_iter().map(|(wait, state)| (wait.to_string(), state.unwrap_or(Ok(None)))).collect();
        let readings = Readings { counters: before.zip(after), cluster_faults, waits };
        for check in &plan.checks[index] {
            let samples = match check {
                Check::SuccessRate(name, _) | Check::Latency(name, _, _) | Check::RecoversWithin(name, _) => {
                    probes.iter().find(|p| p.name == *name).map(probe::Running::samples).unwrap_or_default()
                }
                Check::Counter(..) | Check::ClusterFaults(_) | Check::Within(..) => Vec::new(),
            };
            let verdict = verdict::judge(&phase.name, check, &samples, (start, end), &readings);
            say(format!(
                "phase {}: {} — {}: measured {}",
                phase.name,
                verdict.check,
                if verdict.passed { "held" } else { "FAILED" },
                verdict.measured
            ));
            report.verdicts.push(verdict);
        }
    }
    probes_stop.store(true, Ordering::Relaxed);
    probe::finish(&mut probes);
    report.probes = probes.iter().map(|p| (p.name.clone(), p.samples())).collect();
    report.fault_ids = actor.fault_ids();
    report.cleanup = actor.restore();
    for line in &report.cleanup {
        say(format!("clean-up: {line}"));
    }
    report.duration = started.elapsed();
    report
}
