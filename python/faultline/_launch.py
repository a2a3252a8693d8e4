"""Starting programs under a shim with a private segment directory (what the pytest plugin's ``shimmed`` uses).

Waits are on conditions (a segment published, a line printed, the process gone), each bounded by a timeout.
"""

from __future__ import annotations

import os
import queue
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from typing import Callable, List, Mapping, Optional, Sequence, Union

from . import _cli
from ._cli import FaultlineError, PathLike
from ._process import Process, shim_path
from ._types import Kind, PsRow

#: How long a wait may take before it fails (a watchdog, not a timing assertion).
WATCHDOG_S = 120.0


class ShimmedProcess(Process):
    """A program started under a shim: a :class:`Process` with its ``subprocess.Popen`` and its standard output read
    line by line (standard error is inherited)."""

    def __init__(self, popen: "subprocess.Popen[str]", kind: Kind, shm_dir: str) -> None:
        super().__init__(popen.pid, kind, shm_dir=shm_dir)
        self.popen = popen
        #: Every standard-output line read so far.
        self.lines: List[str] = []
        self._queue: "queue.Queue[Optional[str]]" = queue.Queue()
        self._reader = threading.Thread(target=self._read, name=f"faultline-stdout-{popen.pid}", daemon=True)
        self._reader.start()

    def _read(self) -> None:
        stdout = self.popen.stdout
        if stdout is not None:
            for line in stdout:
                self._queue.put(line.rstrip("\n"))
        self._queue.put(None)

    def send(self, line: str) -> None:
        """Writes one line to the program's standard input."""
        stdin = self.popen.stdin
        if stdin is None:
            raise RuntimeError("the program's standard input is closed")
        stdin.write(line + "\n")
        stdin.flush()

    def read_until(self, done: Union[str, Callable[[str], bool]], timeout: float = WATCHDOG_S) -> List[str]:
        """Reads lines until one equals ``done`` (or satisfies it, if a function); returns them, that one included.
        Raises ``TimeoutError`` after ``timeout`` seconds, ``EOFError`` if the program closes its output first."""
        matches = (lambda line: line == done) if isinstance(done, str) else done
        deadline = time.monotonic() + timeout
        got: List[str] = []
        while True:
            left = deadline - time.monotonic()
            try:
                line = self._queue.get(timeout=max(left, 0.0))
            except queue.Empty:
                last = got[-5:]
                raise TimeoutError(f"pid {self.pid} printed no expected line in {timeout} s; last: {last}") from None
            if line is None:
                self._queue.put(None)  # later reads see the end too
                raise EOFError(f"pid {self.pid} closed its output (exit {self.popen.poll()}); last: {got[-5:]}")
            self.lines.append(line)
            got.append(line)
            if matches(line):
                return got

    def stop(self, timeout: float = 10.0) -> Optional[int]:
        """Ends the program if it still runs (standard input closed, then SIGTERM, then SIGKILL after ``timeout``
        seconds) and returns its exit status."""
        if self.popen.stdin is not None and not self.popen.stdin.closed:
            try:
                self.popen.stdin.close()
            except OSError:
                pass
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait()
        self._reader.join(timeout)
        return self.popen.returncode


class Launcher:
    """Starts programs under a shim, all with one private segment directory, and stops them in :meth:`close`."""

    def __init__(self, shm_dir: Optional[PathLike] = None) -> None:
        if shm_dir is None:
            base = "/dev/shm" if os.path.isdir("/dev/shm") else None
            self.shm_dir = tempfile.mkdtemp(prefix="faultline-pytest.", dir=base)
            self._owns_dir = True
        else:
            self.shm_dir = os.fspath(shm_dir)
            self._owns_dir = False
        self.started: List[ShimmedProcess] = []

    def __call__(
        self,
        command: Sequence[Union[str, "os.PathLike[str]"]],
        *,
        kind: Kind = "ucx",
        env: Optional[Mapping[str, str]] = None,
        cwd: Optional[PathLike] = None,
        timeout: float = WATCHDOG_S,
    ) -> ShimmedProcess:
        """Starts ``command`` with the shim of ``kind`` preloaded and its segment in this launcher's directory, and
        returns once the shim has published the segment. ``env`` is added to this process's environment, whose
        ``FAULTLINE_*`` variables are left out (give them in ``env`` to configure the shim at start-up)."""
        child_env = {name: value for name, value in os.environ.items() if not name.startswith("FAULTLINE_")}
        child_env["LD_PRELOAD"] = shim_path(kind)
        child_env["FAULTLINE_SHM_DIR"] = self.shm_dir
        child_env.update(env or {})
        popen = subprocess.Popen(
            [os.fspath(part) for part in command],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=child_env,
            cwd=cwd,
            text=True,
            bufsize=1,
        )
        process = ShimmedProcess(popen, kind, self.shm_dir)
        self.started.append(process)
        self._wait_for_segment(process, timeout)
        return process

    def _wait_for_segment(self, process: ShimmedProcess, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        delay = 0.005
        while True:
            rows: List[PsRow] = _cli.run_json(["ps"], kind=process.kind, shm_dir=self.shm_dir)["processes"]
            if any(row["pid"] == process.pid and row["state"] == "alive" for row in rows):
                return
            status = process.popen.poll()
            if status is not None:
                raise FaultlineError(
                    _cli.EXIT_FAILED, f"{process.popen.args!r} exited ({status}) before its shim published a segment"
                )
            if time.monotonic() > deadline:
                raise TimeoutError(f"pid {process.pid}: no {process.kind} segment in {self.shm_dir} after {timeout} s")
            time.sleep(delay)
            delay = min(delay * 2, 0.1)

    def close(self) -> None:
        """Stops every program started here and removes the segment directory (if this launcher made it)."""
        for process in reversed(self.started):
            process.stop()
        if self._owns_dir:
            shutil.rmtree(self.shm_dir, ignore_errors=True)
