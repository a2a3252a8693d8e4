//! Experiments with verdicts (`faultline experiment run FILE`): inject faults in phases while probes measure the
//! service, judge each phase against its expectations, report (JSON, JUnit XML), and always undo what was changed.
//!
//! - [`spec`]: the YAML file, read and checked whole (a bad file is refused naming its line, nothing done);
//! - [`bound`]: durations and bounds (`>= 99%`, `<= 500ms`);
//! - [`probe`]: HTTP probes, one thread each, every request a [`probe::Sample`];
//! - [`verdict`]: judging a phase's checks over its samples and the target's counters;
//! - [`run`]: the order of things, over an [`run::Actor`] that applies the actions (the command line's, through the
//!   process and cluster action layers) and undoes them;
//! - [`report`]: the JSON timeline and the JUnit XML.

pub mod bound;
pub mod probe;
pub mod report;
pub mod run;
pub mod spec;
pub mod verdict;
