"""Processes running a faultline shim, steered through the ``faultline`` executable's ``--json`` interface."""

from __future__ import annotations

import json
import os
import tempfile
from decimal import Decimal
from types import TracebackType
from typing import Any, Dict, List, Mapping, Optional, Sequence, Type, Union

from . import _cli
from ._cli import EXIT_USAGE, FaultlineError, PathLike
from ._types import DumpFormat, Kind, PsRow, Site, Status

#: Error codes: one code or a list, each a number or a name (``-3``, ``"UCS_ERR_IO_ERROR"``), or the CLI's text.
Codes = Union[str, int, Sequence[Union[str, int]]]
#: Hooks: names or short names (``"ucp_put_nbx"``, ``"put"``), ``"all"`` or ``"none"``, one or a list.
Hooks = Union[str, Sequence[str]]
#: A probability in percent (``12.5``, ``"0.01"``).
Percent = Union[int, float, str, Decimal]


def shim_path(kind: Kind) -> str:
    """The absolute path of the shim library of ``kind`` (``"ucx"`` or ``"cuda"``) that came with this package, for
    ``LD_PRELOAD``."""
    return _cli.run(["shim-path", kind], json_output=False).strip()


def processes(kind: Optional[Kind] = None, *, shm_dir: Optional[PathLike] = None) -> List[Process]:
    """Every process with a faultline segment (running, or exited with its segment kept), optionally of one kind.

    ``shm_dir``: the segment directory (default: ``FAULTLINE_SHM_DIR``, else ``/dev/shm``).
    """
    rows: List[PsRow] = _cli.run_json(["ps"], kind=kind, shm_dir=shm_dir)["processes"]
    return [Process(row["pid"], row["kind"], shm_dir=shm_dir) for row in rows if row["state"] in ("alive", "dead")]


class Steered:
    """What can be asked of a shimmed process wherever it runs: its state, on/off, the strategy, recording. Each is one
    ``faultline`` command, given to :meth:`_state` (which says where the process is)."""

    def status(self) -> Status:
        """The strategy in force, every hook and the counters (``faultline status``)."""
        return self._state(["status"])

    def enable(self) -> Status:
        """Turns fault injection on."""
        return self._state(["enable"])

    def disable(self) -> Status:
        """Turns fault injection off (calls pass straight through)."""
        return self._state(["disable"])

    def set_strategy(
        self,
        pattern_or_random: str,
        probability: Optional[Percent] = None,
        error_codes: Optional[Codes] = None,
        hooks: Optional[Hooks] = None,
        seed: Optional[int] = None,
        skip: Optional[int] = None,
        limit: Optional[int] = None,
        site: Optional[Site] = None,
    ) -> Status:
        """Sets random faults or an X/O pattern, and optionally the probability, error pool, armed hooks, seed, skip,
        limit and fault site, all at once: every value is checked first and nothing changes unless all are valid.
        Does not enable injection (see :meth:`enable` and :func:`faults`).

        ``site``: where the faults surface: ``"post"`` (the call returns the error), ``"completion"`` (the operation
        runs and its completion reports the error) or ``"endpoint"`` (UCX only: the endpoint fails as a dead peer's
        does)."""
        return self._set(
            strategy_settings(pattern_or_random, probability, error_codes, hooks, seed, skip, limit, site)
        )

    def record(self, on: bool = True) -> Status:
        """Starts (or with ``on=False`` stops) recording armed calls into the flight recorder."""
        return self._state(["record", "on" if on else "off"])

    def _set(self, settings: Mapping[str, str]) -> Status:
        """``faultline set``: the given settings (``status``'s names), checked together and published at once."""
        return self._state(["set", *(f"--{name.replace('_', '-')}={value}" for name, value in settings.items())])

    def _state(self, args: Sequence[str]) -> Status:
        raise NotImplementedError


class Process(Steered):
    """One process running a faultline shim, by pid (and kind, where a process runs both shims).

    Every method runs the ``faultline`` executable once on this process and returns what it printed; a refused or
    failed request raises :class:`FaultlineError` (exit status 2: a bad argument, and nothing was changed).
    """

    def __init__(self, pid: int, kind: Optional[Kind] = None, *, shm_dir: Optional[PathLike] = None) -> None:
        self.pid = int(pid)
        self._kind = kind
        self.shm_dir: Optional[str] = None if shm_dir is None else os.fspath(shm_dir)

    def __repr__(self) -> str:
        where = "" if self.shm_dir is None else f", shm_dir={self.shm_dir!r}"
        return f"Process({self.pid}, {self._kind!r}{where})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Process):
            return NotImplemented
        return (self.pid, self._kind, self.shm_dir) == (other.pid, other._kind, other.shm_dir)

    def __hash__(self) -> int:
        return hash((self.pid, self._kind, self.shm_dir))

    @property
    def kind(self) -> Kind:
        """Which shim this process runs (asked of ``faultline ps`` once when not given)."""
        if self._kind is None:
            rows: List[PsRow] = self._run_json(["ps"], resolve_kind=False)["processes"]
            kinds = sorted({row["kind"] for row in rows})
            if len(kinds) != 1:
                raise FaultlineError(
                    EXIT_USAGE, f"pid {self.pid} runs both shims ({', '.join(kinds)}): give Process(pid, kind=…)"
                )
            self._kind = kinds[0]
        return self._kind

    def dump(self, fmt: DumpFormat = "summary", count: Optional[int] = None) -> Dict[str, Any]:
        """The recording in the seed's formats: ``summary`` (statistics), ``pattern`` (X/O and codes, which
        :meth:`replay` takes) or ``records`` (every call); ``count``: only the last N records."""
        args = ["record", "dump", fmt]
        if count is not None:
            args += ["--count", str(int(count))]
        document: Dict[str, Any] = self._run_json(args)
        return document

    def replay(
        self,
        source: Union[None, Process, int, Mapping[str, Any], PathLike] = None,
        *,
        loop: bool = False,
        site: Optional[Site] = None,
    ) -> Status:
        """Plays an exact per-call sequence of passes and faults from the next armed call (and enables injection).

        ``source``: ``None`` for this process's own recording; another :class:`Process` or a pid for its recording;
        a pattern dump (``other.dump("pattern")``) or the path of one. ``loop``: start over after the last call.
        The faults surface at the site they were recorded at, or at ``site`` if given (needed for a recording that
        mixes sites).
        """
        flags = ["--loop"] if loop else []
        if site is not None:
            flags += ["--site", site]
        if source is None:
            return self._state(["replay", *flags])
        if isinstance(source, int) or (isinstance(source, Process) and source.shm_dir == self.shm_dir):
            pid = source.pid if isinstance(source, Process) else source
            return self._state(["replay", "--from-pid", str(pid), *flags])
        if isinstance(source, Process):
            source = source.dump("pattern")
        if isinstance(source, Mapping):
            with tempfile.TemporaryDirectory(prefix="faultline-replay.") as directory:
                path = os.path.join(directory, "pattern.json")
                with open(path, "w", encoding="utf-8") as file:
                    json.dump(source, file)
                return self._state(["replay", "--from-file", path, *flags])
        return self._state(["replay", "--from-file", os.fspath(source), *flags])

    def _state(self, args: Sequence[str]) -> Status:
        states: List[Status] = self._run_json(args)["processes"]
        if len(states) != 1:
            raise FaultlineError(
                _cli.EXIT_FAILED, f"faultline reported {len(states)} processes for pid {self.pid}, not one"
            )
        return states[0]

    def _run_json(self, args: Sequence[str], *, resolve_kind: bool = True) -> Any:
        kind = self.kind if resolve_kind else self._kind
        return _cli.run_json(args, pids=[self.pid], kind=kind, shm_dir=self.shm_dir)


def strategy_settings(
    pattern_or_random: str,
    probability: Optional[Percent] = None,
    error_codes: Optional[Codes] = None,
    hooks: Optional[Hooks] = None,
    seed: Optional[int] = None,
    skip: Optional[int] = None,
    limit: Optional[int] = None,
    site: Optional[Site] = None,
) -> Dict[str, str]:
    """The ``faultline set`` settings for a strategy, as text (the binary parses and checks every value)."""
    if pattern_or_random.strip().lower() == "random":
        settings = {"mode": "random"}
    else:
        settings = {"mode": "pattern", "pattern": pattern_or_random}
    if probability is not None:
        settings["probability"] = _percent(probability)
    if error_codes is not None:
        settings["error_codes"] = _join(error_codes)
    if hooks is not None:
        settings["hooks"] = _join(hooks) or "none"
    for name, number in (("seed", seed), ("skip", skip), ("limit", limit)):
        if number is not None:
            settings[name] = str(int(number))
    if site is not None:
        settings["site"] = site
    return settings


def restore_settings(before: Status) -> Dict[str, str]:
    """The ``faultline set`` settings that give back the strategy ``before`` shows, recording aside (the pattern or
    replay position restarts)."""
    ppm = before["probability_ppm"]
    armed = [hook["name"] for hook in before["hooks"] if hook["armed"]]
    return {
        "enabled": "on" if before["enabled"] else "off",
        "pattern": before["pattern"],
        "mode": before["mode"],
        "probability": f"{ppm // 10_000}.{ppm % 10_000:04d}",
        "error_codes": ",".join(str(code["code"]) for code in before["error_codes"]),
        "hooks": ",".join(armed) or "none",
        "seed": str(before["seed"]),
        "skip": str(before["skip"]),
        "limit": str(before["limit"]),
        "delay": str(before["delay_us"]),
        "delay_mode": before["delay_mode"],
        "replay_loop": "on" if before["replay_loop"] else "off",
        # A status from a faultline older than fault sites has none: its faults surfaced at the call.
        "site": before.get("site", "post"),
    }


def _percent(value: Percent) -> str:
    if isinstance(value, str):
        return value
    return format(Decimal(str(value)), "f")


def _join(values: Union[str, int, Sequence[Union[str, int]]]) -> str:
    if isinstance(values, (str, int)):
        return str(values)
    return ",".join(str(value) for value in values)


class Faults:
    """Faults in one process for the length of a ``with`` block (or from :meth:`start` to :meth:`stop`).

    On entry the process's strategy is read, then the new one is set and injection enabled, in one change (a bad
    value raises :class:`FaultlineError` and changes nothing). On exit, exception or not, the strategy read on entry
    is set again: enabled or not, mode, pattern, probability, pool, hooks, seed, skip, limit, delay, site. Recording
    is left as it is, and a pattern or replay starts again from its first call. A process that has exited meanwhile
    is left alone.
    """

    def __init__(self, process: Process, settings: Mapping[str, str]) -> None:
        self.process = process
        self.settings = dict(settings)
        self._before: Optional[Status] = None

    @property
    def active(self) -> bool:
        """Whether the faults are in force (started and not stopped)."""
        return self._before is not None

    def start(self) -> Process:
        """Reads the strategy in force, then sets and enables the new one."""
        if self._before is not None:
            raise RuntimeError(f"faults in {self.process!r} are already in force")
        before = self.process.status()
        self.process._set({"enabled": "on", **self.settings})
        self._before = before
        return self.process

    def stop(self) -> None:
        """Sets the strategy read by :meth:`start` again (nothing if not started, or already stopped)."""
        before, self._before = self._before, None
        if before is None:
            return
        try:
            self.process._set(restore_settings(before))
        except FaultlineError:
            if self._still_running():
                raise

    def _still_running(self) -> bool:
        try:
            return self.process.status()["alive"]
        except FaultlineError:
            return False

    def __enter__(self) -> Process:
        return self.start()

    def __exit__(
        self,
        exc_type: Optional[Type[BaseException]],
        exc: Optional[BaseException],
        traceback: Optional[TracebackType],
    ) -> None:
        self.stop()


def faults(
    target: Union[Process, int],
    strategy: str = "X",
    *,
    probability: Optional[Percent] = None,
    error_codes: Optional[Codes] = None,
    hooks: Optional[Hooks] = None,
    seed: Optional[int] = None,
    skip: Optional[int] = None,
    limit: Optional[int] = None,
    site: Optional[Site] = None,
    kind: Optional[Kind] = None,
    shm_dir: Optional[PathLike] = None,
) -> Faults:
    """Faults in ``target`` (a :class:`Process` or a pid) while a ``with`` block runs, the previous strategy restored
    on exit, exception or not::

        with faultline.faults(pid, strategy="XOOX", hooks=["ucp_put_nbx"], error_codes=["UCS_ERR_IO_ERROR"]):
            ...

    ``strategy``: an X/O pattern (``X``: every armed call fails) or ``"random"`` with ``probability`` in percent.
    It starts at the next armed call: ``skip`` and ``limit`` are 0 (none) unless given; the error pool, armed hooks,
    seed, delay and fault ``site`` (``"post"``, ``"completion"``, ``"endpoint"``) stay as they are unless given. For
    a pid, ``kind`` picks the shim of one that runs both and ``shm_dir`` is its segment directory (default:
    ``FAULTLINE_SHM_DIR``, else ``/dev/shm``).
    """
    process = target if isinstance(target, Process) else Process(target, kind, shm_dir=shm_dir)
    settings = strategy_settings(strategy, probability, error_codes, hooks, seed, skip, limit, site)
    settings.setdefault("skip", "0")
    settings.setdefault("limit", "0")
    return Faults(process, settings)
