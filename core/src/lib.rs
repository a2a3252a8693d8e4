//! `faultline-core`: everything faultline does to shimmed processes on this machine, without a terminal or a
//! cluster — the process action layer every front end shares (the CLI, the dashboard, the node agent, and later
//! experiments and Python).
//!
//! - [`targets`]: discover segments, attach them, tell live from dead, select by `--pid` / `--kind`;
//! - [`actions`]: every change, once: plan (validate) per target, then apply;
//! - [`settings`]: `set`, several settings validated together and published as one change;
//! - [`request`]: the single entry point — a [`request::Request`] is executed into a [`request::Report`];
//! - [`recording`]: the flight recorder: read, dump (the seed's formats), replay programs;
//! - [`state`]: what a process's state and counters look like as plain values;
//! - [`output`]: text and JSON rendering of reports;
//! - [`compat`]: the seed client's JSON command objects; [`aggregate`]: its `aggregate-stats` tables;
//! - [`error`]: errors and their exit statuses.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod actions;
pub mod aggregate;
pub mod compat;
pub mod error;
pub mod output;
pub mod recording;
pub mod request;
pub mod settings;
pub mod state;
pub mod targets;

pub use error::Error;
pub use request::{execute, Options, Report, Request};
pub use targets::Selection;
