"""Running the ``faultline`` executable: finding it, its ``--json`` output, and its errors.

The package has no other way to reach a process: every call runs the binary that came with it (the one source of
truth for the segment protocol, validation and exit statuses) and parses what it prints.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path
from typing import Any, Iterable, Mapping, Optional, Sequence, Union

PathLike = Union[str, "os.PathLike[str]"]

#: Exit status: bad usage or a bad value; nothing was changed.
EXIT_USAGE = 2
#: Exit status: nothing to act on, or the request could not be carried out.
EXIT_FAILED = 1


class FaultlineError(Exception):
    """The ``faultline`` executable refused or failed a request.

    ``status`` is its exit status (2: a bad argument or value, and nothing was changed; 1: nothing to act on, or
    the change failed for some process), ``message`` what it printed on standard error (without the ``faultline:``
    prefix), and ``command`` the command line that was run.
    """

    def __init__(self, status: int, message: str, command: Sequence[str] = ()) -> None:
        super().__init__(status, message)
        self.status = status
        self.message = message
        self.command = tuple(command)

    def __str__(self) -> str:
        return f"{self.message} (faultline exit status {self.status})"


def executable() -> str:
    """The ``faultline`` executable this package drives.

    ``FAULTLINE_BIN`` if set; else the one pip installed with this package (the environment's scripts directory,
    the user scheme's, or ``bin/`` beside the package for ``pip install --target``); else ``faultline`` on ``PATH``.
    """
    override = os.environ.get("FAULTLINE_BIN")
    if override:
        return override
    name = "faultline.exe" if os.name == "nt" else "faultline"
    candidates = [Path(sysconfig.get_path("scripts")) / name]
    user_scheme = f"{os.name}_user"
    if user_scheme in sysconfig.get_scheme_names():
        candidates.append(Path(sysconfig.get_path("scripts", user_scheme)) / name)
    candidates.append(Path(__file__).resolve().parent.parent / "bin" / name)
    for candidate in candidates:
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    found = shutil.which(name)
    if found:
        return found
    looked = ", ".join(str(c.parent) for c in candidates)
    raise FaultlineError(
        127,
        f"the faultline executable was not found (looked in {looked} and on PATH); "
        f"reinstall the wheel into {sys.prefix} or set FAULTLINE_BIN",
    )


def run(
    args: Sequence[str],
    *,
    pids: Iterable[int] = (),
    kind: Optional[str] = None,
    shm_dir: Optional[PathLike] = None,
    json_output: bool = True,
    env: Optional[Mapping[str, str]] = None,
) -> str:
    """Runs ``faultline [--pid P]… [--kind K] [--json] ARGS…`` and returns its standard output.

    ``shm_dir`` becomes ``FAULTLINE_SHM_DIR`` (where the segments are). Raises :class:`FaultlineError` for a
    nonzero exit status.
    """
    command = [executable()]
    for pid in pids:
        command += ["--pid", str(int(pid))]
    if kind is not None:
        command += ["--kind", kind]
    if json_output:
        command.append("--json")
    command += list(args)
    child_env = dict(os.environ if env is None else env)
    # The tool itself must never run under a shim a test preloaded into its own environment.
    child_env.pop("LD_PRELOAD", None)
    child_env["NO_COLOR"] = "1"
    if shm_dir is not None:
        child_env["FAULTLINE_SHM_DIR"] = os.fspath(shm_dir)
    try:
        done = subprocess.run(
            command, stdin=subprocess.DEVNULL, capture_output=True, text=True, env=child_env, check=False
        )
    except OSError as error:
        raise FaultlineError(127, f"cannot run {command[0]}: {error}", command) from error
    if done.returncode != 0:
        raise FaultlineError(done.returncode, _message(done.stderr, done.returncode), command)
    return done.stdout


def run_json(args: Sequence[str], **options: Any) -> Any:
    """:func:`run` with ``--json``, its output parsed."""
    text = run(args, json_output=True, **options)
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise FaultlineError(EXIT_FAILED, f"faultline printed no JSON document: {text[:200]!r}") from error


def _message(stderr: str, status: int) -> str:
    lines = [line[len("faultline: ") :] if line.startswith("faultline: ") else line for line in stderr.splitlines()]
    lines = [line for line in lines if line.strip()]
    return "\n".join(lines) if lines else f"faultline exited with status {status} and said nothing"
