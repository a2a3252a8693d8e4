"""The pytest plugin (registered through the ``pytest11`` entry point, so installing the wheel enables it).

Fixtures:

- ``faultline_shim``: the path of the UCX shim that came with the package (``faultline.shim_path("cuda")`` gives the
  CUDA one);
- ``shimmed``: starts programs under a shim with a private segment directory —
  ``proc = shimmed([program, *args], kind="ucx", env={...})`` returns a :class:`faultline.ShimmedProcess` once its
  segment is published; every program is stopped and the directory removed at teardown;
- ``ucx_faults`` / ``cuda_faults``: ``with ucx_faults(proc, strategy="X", hooks=["ucp_put_nbx"]): …`` is
  :func:`faultline.faults` bound to the test: the previous strategy comes back when the block ends, and whatever
  is still in force (``ucx_faults(proc, …).start()`` without a block) at teardown.
"""

from __future__ import annotations

from typing import Any, Callable, Iterator, List, Union

import pytest

from ._cli import FaultlineError
from ._launch import Launcher
from ._process import Faults, Process, faults, shim_path
from ._types import Kind

FaultsFactory = Callable[..., Faults]


@pytest.fixture(scope="session")
def faultline_shim() -> str:
    """The absolute path of the UCX shim (``libfaultline_ucx.so``) that came with the package."""
    return shim_path("ucx")


@pytest.fixture
def shimmed() -> Iterator[Launcher]:
    """Starts programs under a faultline shim in a private segment directory; stops them all at teardown."""
    launcher = Launcher()
    try:
        yield launcher
    finally:
        launcher.close()


def _bound_faults(kind: Kind) -> Iterator[FaultsFactory]:
    made: List[Faults] = []

    def factory(target: Union[Process, int], strategy: str = "X", **options: Any) -> Faults:
        if isinstance(target, Process) and target.kind != kind:
            raise ValueError(f"{target!r} runs the {target.kind} shim, not {kind}")
        made.append(faults(target, strategy, kind=kind, **options))
        return made[-1]

    try:
        yield factory
    finally:
        errors: List[FaultlineError] = []
        for block in reversed(made):
            try:
                block.stop()
            except FaultlineError as error:
                errors.append(error)
        if errors:
            raise errors[0]


@pytest.fixture
def ucx_faults() -> Iterator[FaultsFactory]:
    """:func:`faultline.faults` for UCX processes, restored at the end of the block or at teardown."""
    yield from _bound_faults("ucx")


@pytest.fixture
def cuda_faults() -> Iterator[FaultsFactory]:
    """:func:`faultline.faults` for CUDA processes, restored at the end of the block or at teardown."""
    yield from _bound_faults("cuda")
