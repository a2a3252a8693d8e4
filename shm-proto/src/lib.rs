//! The per-process faultline segment, shared by the shims (which create it and decide every intercepted call from
//! it) and the `faultline` tool (which discovers, reads and steers it).
//!
//! - [`layout`]: the `#[repr(C)]` shared structures and their pinned layout;
//! - [`seqlock`], [`ring`]: the lock-free protocols (model-checked with loom under `--cfg loom`);
//! - [`decide`], [`call`]: the decision engine and the per-call path both shims run;
//! - [`clock`]: `CLOCK_MONOTONIC`, and the cheaper tick source the ring stamps records with;
//! - [`control`]: the strategy as a value, read and published consistently;
//! - [`config`], [`codes`]: parsing what users type (probabilities, patterns, hooks, codes) and the environment;
//!   [`seed_env`]: the seed injector's `UCX_FAULT_*` start-up variables, mapped onto faultline's;
//! - [`xid`], [`node_policy`]: what the shims and the node agent agree on outside the segment: the XID catalogue
//!   (with the CUDA shim's presets) and the node policy file that arms a node;
//! - [`pod`]: which Kubernetes pod a process runs in (environment, cgroup), recorded in its segment;
//! - [`segment`]: create, attach, discover, liveness, cleanup; [`process`]: who a process is across pid
//!   namespaces; [`guard`]: surviving a segment file truncated under its mapping.
#![deny(unsafe_op_in_unsafe_fn)]

pub mod clock;
#[cfg(not(loom))]
pub mod guard;
#[cfg(not(loom))]
pub mod process;
pub mod ring;
pub mod seqlock;
pub mod site;
pub mod sync;

#[cfg(not(loom))]
pub mod call;
#[cfg(not(loom))]
pub mod codes;
#[cfg(not(loom))]
pub mod config;
#[cfg(not(loom))]
pub mod control;
#[cfg(not(loom))]
pub mod decide;
#[cfg(not(loom))]
pub mod layout;
#[cfg(not(loom))]
pub mod node_policy;
#[cfg(not(loom))]
pub mod pod;
#[cfg(not(loom))]
pub mod seed_env;
#[cfg(not(loom))]
pub mod segment;
#[cfg(not(loom))]
pub mod xid;

#[cfg(not(loom))]
pub use {
    call::ThreadCtx,
    control::Strategy,
    decide::Decision,
    layout::{Cursor, Kind, Mode, Segment},
    segment::{Access, AttachOptions, SegmentError, SegmentMap},
};
