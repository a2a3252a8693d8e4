//! What the process dialogs (the strategy editor, dump, replay) share: the [`Reply`] a dialog gives the App after a
//! key, and the helpers their fields are edited with — ±steps on a typed number, cycling through choices.

use shm_proto::config;

use super::sampler::Job;

/// What the App does after a process dialog handled a key. The dialog changes only itself; everything else (the
/// status line, the engine's outbox, closing the overlay) is the App's, so it is asked for here.
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use]
pub enum Reply {
    /// The dialog stays open.
    Open,
    /// The dialog stays open and the status line shows this error; nothing was done.
    Refused(String),
    /// The dialog closes; the status line says this, if anything.
    Closed(Option<String>),
    /// The dialog closes and the job goes to the engine; the status line says this first, if anything.
    Run(Job, Option<String>),
}

/// `text` parsed as a whole number and moved by `delta` (saturating at 0 and `u64::MAX`); `None` if it is not one.
pub fn step_count(text: &str, delta: i64) -> Option<String> {
    let value = config::parse_count("value", text).ok()?;
    let next = if delta < 0 { value.saturating_sub(delta.unsigned_abs()) } else { value.saturating_add(delta as u64) };
    Some(next.to_string())
}

/// The choice after (`delta` > 0) or before (`delta` < 0) `current`, wrapping; one step whatever `delta`'s size.
pub fn cycle<T: Copy + PartialEq>(choices: &[T], current: T, delta: i64) -> T {
    let len = choices.len() as i64;
    let at = choices.iter().position(|c| *c == current).unwrap_or(0) as i64;
    choices[(at + delta.signum()).rem_euclid(len.max(1)) as usize]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_step_without_wrapping_and_choices_cycle_one_at_a_time() {
        assert_eq!(step_count("5", -10).as_deref(), Some("0"));
        assert_eq!(step_count("5", 10).as_deref(), Some("15"));
        assert_eq!(step_count("five", 1), None);
        assert_eq!(cycle(&[1, 2, 3], 3, 10), 1);
        assert_eq!(cycle(&[1, 2, 3], 1, -1), 3);
    }
}
