"""The shapes of what ``faultline --json`` prints, as typed dictionaries (the keys are the CLI's)."""

from __future__ import annotations

from typing import List, Literal, Optional, TypedDict

#: Which shim: the UCX one (``libfaultline_ucx.so``) or the CUDA one (``libfaultline_cuda.so``).
Kind = Literal["ucx", "cuda"]
#: The formats of :meth:`faultline.Process.dump`, the seed's: statistics, X/O with codes, or every call.
DumpFormat = Literal["summary", "pattern", "records"]
#: Where an injected fault surfaces: at the call (``post``, the default), at the operation's completion, or on the
#: endpoint (UCX only: it fails as a dead peer's does).
Site = Literal["post", "completion", "endpoint"]


class ErrorCode(TypedDict):
    """A code of the error pool."""

    code: int
    name: Optional[str]


class Hook(TypedDict):
    """One intercepted function: armed or not, and its counters."""

    name: str
    armed: bool
    calls: int
    faults: int


class Status(TypedDict):
    """A process's state, as ``faultline --json status`` prints it: identity, the strategy in force, counters."""

    pid: int
    kind: Kind
    exe: str
    alive: bool
    in_container: bool
    path: str
    enabled: bool
    recording: bool
    mode: Literal["random", "pattern", "replay"]
    probability_percent: float
    probability_ppm: int
    seed: int
    pattern: str
    position: int
    error_codes: List[ErrorCode]
    hooks_armed: int
    hooks: List[Hook]
    skip: int
    limit: int
    delay_us: int
    delay_mode: Literal["off", "before-fault", "instead-of-fault"]
    site: Site
    replay_length: int
    replay_faults: int
    replay_loop: bool
    calls: int
    faults: int
    armed_calls: int
    armed_faults: int
    fault_percent: float


class PsRow(TypedDict):
    """One row of ``faultline --json ps``: a segment, alive, dead, or unusable (``state`` says why)."""

    pid: int
    exe: Optional[str]
    kind: Kind
    state: str
    enabled: Optional[bool]
    mode: Optional[str]
    calls: Optional[int]
    faults: Optional[int]
    fault_percent: Optional[float]
    recording: Optional[bool]
    in_container: bool
    path: str
    reason: Optional[str]
