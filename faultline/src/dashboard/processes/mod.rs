//! The dashboard's process side: the shimmed processes on this machine, what is known of them and the dialogs that
//! change them. Drawing is not here but in `render/` (`process_list`, `process_view`, `recording`, `editor`,
//! `dialogs`), over the state kept here.
//!
//! - [`sampler`]: the engine thread — discovers and samples segments, publishes snapshots, carries out changes
//!   through [`crate::request::execute`];
//! - [`list`]: the process list's filter, sort, selection and scroll position;
//! - [`editor`] and its [`picker`]: the strategy editor and its error-code picker;
//! - [`dump`], [`replay`]: the dialogs that write a recording to a file or play it back;
//! - [`form`]: what those dialogs share — the [`form::Reply`] a dialog gives the App after a key, and field helpers;
//! - `keys`: the main screen's keys, which open those dialogs and make the one-key changes.
//!
//! The list, the editor and each dialog handle their own keys (`on_key`, `on_intent`) and change only themselves;
//! they answer with what the App must do (close, run a job, say something), so only the App touches the status
//! line, the overlay and the engine's outbox.

pub mod dump;
pub mod editor;
pub mod form;
mod keys;
pub mod list;
pub mod picker;
pub mod remote;
pub mod replay;
pub mod sampler;
