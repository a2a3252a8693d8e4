"""faultline from Python: make UCX and CUDA calls fail on demand inside running processes.

The package drives the ``faultline`` executable installed with it (its ``--json`` interface), so Python, the command
line and the dashboard accept and refuse exactly the same things::

    import faultline

    for process in faultline.processes("ucx"):
        print(process.pid, process.status()["mode"])

    with faultline.faults(pid, strategy="XOOX", hooks=["ucp_put_nbx"], error_codes=["UCS_ERR_IO_ERROR"]):
        ...  # every first and fourth put fails; the previous strategy is back after the block

The cluster's shimmed processes (every pod, through the node agents) are listed by :func:`cluster_processes` and
steered like local ones.

Experiments (phases of faults while HTTP probes measure a service, with verdicts) run with
:func:`run_experiment` on the same YAML files as ``faultline experiment run``.

Programs are started under a shim with ``LD_PRELOAD=$(faultline shim-path ucx)`` (:func:`shim_path`); the pytest
plugin (``faultline.pytest_plugin``, enabled on install) has fixtures that do it for a test.
"""

from importlib.metadata import PackageNotFoundError, version

from ._cli import FaultlineError, executable
from ._cluster import ClusterProcess, cluster_processes
from ._experiment import ExperimentResult, Verdict, run_experiment, validate_experiment
from ._launch import Launcher, ShimmedProcess
from ._process import Faults, Process, faults, processes, shim_path
from ._types import DumpFormat, ErrorCode, Hook, Kind, PsRow, Site, Status

try:
    __version__ = version("faultline")
except PackageNotFoundError:  # imported from a source tree, not installed
    __version__ = "0+unknown"

__all__ = [
    "ClusterProcess",
    "DumpFormat",
    "ErrorCode",
    "ExperimentResult",
    "FaultlineError",
    "Faults",
    "Hook",
    "Kind",
    "Launcher",
    "Process",
    "PsRow",
    "ShimmedProcess",
    "Site",
    "Status",
    "Verdict",
    "cluster_processes",
    "executable",
    "faults",
    "processes",
    "run_experiment",
    "shim_path",
    "validate_experiment",
]
