//! Running a command in a pod: the [`PodExec`] trait, its real implementation (the Kubernetes exec API over a
//! WebSocket, in [`KubeApi::exec_in_pod`]) and [`ScriptedExec`], a test double that answers from a closure and
//! remembers every call. Everything else that talks to the cluster uses the real API; only exec is swappable,
//! because the local API emulator the tests use has no exec endpoint.

use std::future::Future;
use std::sync::Mutex;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Status;

use super::{ClusterError, KubeApi};

/// Which container of which pod.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecTarget {
    /// The pod.
    pub pod: String,
    /// The container.
    pub container: String,
}

/// What a command printed and how it ended.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExecOutput {
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
    /// Whether it exited with status 0.
    pub success: bool,
    /// Its exit status, when the API reported one.
    pub exit_code: Option<i32>,
}

impl ExecOutput {
    /// Builds the output from the exec API's final status: `Success`, or `Failure` with reason
    /// `NonZeroExitCode` and the code in `details.causes[reason=ExitCode].message`.
    pub fn from_status(stdout: String, stderr: String, status: Option<&Status>) -> ExecOutput {
        let success = status.is_some_and(|s| s.status.as_deref() == Some("Success"));
        let exit_code = if success {
            Some(0)
        } else {
            let causes = status.and_then(|s| s.details.as_ref()).and_then(|d| d.causes.as_ref());
            causes
                .into_iter()
                .flatten()
                .find(|c| c.reason.as_deref() == Some("ExitCode"))
                .and_then(|c| c.message.as_deref().and_then(|m| m.parse().ok()))
        };
        ExecOutput { stdout, stderr, success, exit_code }
    }
}

/// A command run locally, as an exec answer (what a [`ScriptedExec`] that runs the real `faultline` returns).
impl From<std::process::Output> for ExecOutput {
    fn from(output: std::process::Output) -> ExecOutput {
        ExecOutput {
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
            success: output.status.success(),
            exit_code: output.status.code(),
        }
    }
}

/// Runs a command in a container and returns what it printed.
pub trait PodExec {
    /// Runs `command` in `target` (in the agent's namespace).
    fn exec(
        &self,
        target: &ExecTarget,
        command: &[String],
    ) -> impl Future<Output = Result<ExecOutput, ClusterError>> + Send;
}

impl PodExec for KubeApi {
    fn exec(
        &self,
        target: &ExecTarget,
        command: &[String],
    ) -> impl Future<Output = Result<ExecOutput, ClusterError>> + Send {
        let target = target.clone();
        let command = command.to_vec();
        async move { self.exec_in_pod(&target.pod, &target.container, &command).await }
    }
}

/// The answering closure of a [`ScriptedExec`].
pub type Script = dyn Fn(&ExecTarget, &[String]) -> Result<ExecOutput, ClusterError> + Send + Sync;

/// A test double: answers each exec with `script` and records the calls.
pub struct ScriptedExec {
    script: Box<Script>,
    calls: Mutex<Vec<(ExecTarget, Vec<String>)>>,
}

impl ScriptedExec {
    /// A double answering with `script`.
    pub fn new(
        script: impl Fn(&ExecTarget, &[String]) -> Result<ExecOutput, ClusterError> + Send + Sync + 'static,
    ) -> Self {
        ScriptedExec { script: Box::new(script), calls: Mutex::new(Vec::new()) }
    }

    /// Every call so far.
    pub fn calls(&self) -> Vec<(ExecTarget, Vec<String>)> {
        self.calls.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

impl PodExec for ScriptedExec {
    fn exec(
        &self,
        target: &ExecTarget,
        command: &[String],
    ) -> impl Future<Output = Result<ExecOutput, ClusterError>> + Send {
        self.calls.lock().unwrap_or_else(|e| e.into_inner()).push((target.clone(), command.to_vec()));
        let answer = (self.script)(target, command);
        async move { answer }
    }
}

#[cfg(test)]
mod tests {
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{StatusCause, StatusDetails};

    use super::*;

    #[test]
    fn the_exit_status_comes_from_the_exec_api_s_final_status() {
        let success = Status { status: Some("Success".into()), ..Status::default() };
        let output = ExecOutput::from_status("{}".into(), String::new(), Some(&success));
        assert_eq!((output.success, output.exit_code), (true, Some(0)));

        let cause = StatusCause { reason: Some("ExitCode".into()), message: Some("2".into()), field: None };
        let failure = Status {
            status: Some("Failure".into()),
            reason: Some("NonZeroExitCode".into()),
            details: Some(StatusDetails { causes: Some(vec![cause]), ..StatusDetails::default() }),
            ..Status::default()
        };
        let output = ExecOutput::from_status(String::new(), "bad".into(), Some(&failure));
        assert_eq!((output.success, output.exit_code), (false, Some(2)));
        let output = ExecOutput::from_status(String::new(), String::new(), None);
        assert_eq!((output.success, output.exit_code), (false, None), "a stream that ended without a status");
    }
}
