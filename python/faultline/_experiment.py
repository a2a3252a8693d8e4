"""Experiments from Python: :func:`run_experiment` runs ``faultline experiment run`` on a file and returns its
verdicts; :func:`validate_experiment` only checks the file. The engine is the executable's (one implementation of
probes, expectations, reports and the clean-up)."""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Union

from ._cli import FaultlineError, _message, executable

PathLike = Union[str, "os.PathLike[str]"]

#: `faultline experiment` exit statuses.
EXIT_PASSED, EXIT_FAILED, EXIT_INVALID = 0, 1, 2


@dataclass(frozen=True)
class Verdict:
    """One expectation's result."""

    phase: str
    check: str
    passed: bool
    measured: str
    bound: str


@dataclass(frozen=True)
class ExperimentResult:
    """What an experiment did: its verdicts, the JSON report (timeline, probes per second, clean-up) and its
    standard error (the progress lines)."""

    name: str
    passed: bool
    interrupted: Optional[str]
    verdicts: List[Verdict]
    report: Dict[str, Any] = field(repr=False)
    log: str = field(repr=False)

    @property
    def failures(self) -> List[Verdict]:
        """The expectations that did not hold."""
        return [verdict for verdict in self.verdicts if not verdict.passed]


def validate_experiment(path: PathLike, *, env: Optional[Mapping[str, str]] = None) -> None:
    """Checks an experiment file; raises :class:`FaultlineError` (status 2, the message naming the line) if it is
    invalid."""
    done = _faultline(["experiment", "validate", os.fspath(path)], env)
    if done.returncode != 0:
        raise FaultlineError(done.returncode, _message(done.stderr, done.returncode))


def run_experiment(
    path: PathLike,
    *,
    junit: Optional[PathLike] = None,
    shm_dir: Optional[PathLike] = None,
    env: Optional[Mapping[str, str]] = None,
) -> ExperimentResult:
    """Runs the experiment in ``path`` to its end (everything it changed is undone, also on failure) and returns the
    result; ``result.passed`` says whether every expectation held. ``junit`` also writes the JUnit XML report.
    ``shm_dir`` becomes ``FAULTLINE_SHM_DIR`` (local targets). Raises :class:`FaultlineError` for an invalid file
    (status 2) or when no report came back."""
    with tempfile.TemporaryDirectory(prefix="faultline-experiment.") as scratch:
        report_path = Path(scratch) / "report.json"
        args = ["experiment", "run", os.fspath(path), "--json-report", str(report_path)]
        if junit is not None:
            args += ["--junit", os.fspath(junit)]
        extra = dict(env) if env is not None else {}
        if shm_dir is not None:
            extra["FAULTLINE_SHM_DIR"] = os.fspath(shm_dir)
        done = _faultline(args, extra or None)
        if done.returncode == EXIT_INVALID or not report_path.is_file():
            raise FaultlineError(done.returncode, _message(done.stderr, done.returncode))
        report: Dict[str, Any] = json.loads(report_path.read_text())
    verdicts = [
        Verdict(v["phase"], v["check"], bool(v["passed"]), v["measured"], v["bound"])
        for v in report.get("expectations", [])
    ]
    return ExperimentResult(
        name=report["name"],
        passed=done.returncode == EXIT_PASSED,
        interrupted=report.get("interrupted"),
        verdicts=verdicts,
        report=report,
        log=done.stderr,
    )


def _faultline(args: List[str], env: Optional[Mapping[str, str]]) -> "subprocess.CompletedProcess[str]":
    child_env = dict(os.environ)
    child_env.update(env or {})
    # The tool itself must never run under a shim a test preloaded into its own environment.
    child_env.pop("LD_PRELOAD", None)
    child_env["NO_COLOR"] = "1"
    command = [executable(), *args]
    try:
        return subprocess.run(
            command, stdin=subprocess.DEVNULL, capture_output=True, text=True, env=child_env, check=False
        )
    except OSError as error:
        raise FaultlineError(127, f"cannot run {command[0]}: {error}", command) from error
