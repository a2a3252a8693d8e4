//! The `faultline` binary's library: its two front ends — the command line (in the binary) and the terminal
//! dashboard — over the two action layers, which live in their own crates and are re-exported here under the names
//! the front ends use:
//!
//! - processes: `faultline-core` ([`request`], [`actions`], [`settings`], [`targets`], [`recording`], [`state`],
//!   [`output`], [`compat`], [`error`]);
//! - the cluster and the node agent: `faultline-cluster` ([`cluster`], with its action layer in
//!   [`cluster::action`], and [`node`]);
//! - [`dashboard`]: the terminal dashboard (`faultline` without a command);
//! - [`demo`]: `faultline demo`, the dashboard on a built-in UCX workload;
//! - [`shims`]: where the shim libraries that came with this binary are (`faultline shim-path`).
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod dashboard;
pub mod demo;
pub mod experiment;
pub mod shims;

pub use faultline_cluster as cluster;
pub use faultline_cluster::node;
pub use faultline_core::{actions, aggregate, compat, error, output, recording, request, settings, state, targets};
pub use faultline_core::{execute, Error, Options, Report, Request, Selection};
