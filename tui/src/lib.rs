//! The `faultline` tool as a library: everything the binary and the dashboard do to shimmed processes,
//! separate from argument parsing and printing.
//!
//! - [`targets`]: discover segments, attach them, tell live from dead, select by `--pid` / `--kind`;
//! - [`actions`]: every change, once: plan (validate) per target, then apply;
//! - [`recording`]: the flight recorder: read, dump (the seed's formats), replay programs;
//! - [`state`]: what a process's state and counters look like as plain values;
//! - [`request`]: the single entry point — a [`request::Request`] is executed into a [`request::Report`];
//! - [`output`]: text and JSON rendering of reports;
//! - [`compat`]: the seed client's JSON command objects; [`aggregate`]: its `aggregate-stats` tables;
//! - [`dashboard`]: the terminal dashboard (`faultline` without a command);
//! - [`demo`]: `faultline demo`, the dashboard on a built-in UCX workload;
//! - [`node`]: on a Kubernetes node: XID lines into the kernel log, process commands across containers;
//! - [`cluster`]: against the Kubernetes API: GPU nodes, XID injection through the node agent, Events;
//! - [`error`]: errors and their exit statuses.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod actions;
pub mod aggregate;
pub mod cluster;
pub mod compat;
pub mod dashboard;
pub mod demo;
pub mod error;
pub mod node;
pub mod output;
pub mod recording;
pub mod request;
pub mod state;
pub mod targets;

pub use error::Error;
pub use request::{execute, Options, Report, Request};
pub use targets::Selection;
