"""The cluster's shimmed processes from Python: :func:`cluster_processes` lists every one (every pod, through the node
agents: ``faultline cluster ps``) and each :class:`ClusterProcess` is steered like a local :class:`Process`, by
its node and host pid (``faultline cluster <command> --node N --pid P``). The kubeconfig's current context is used
unless ``context`` says otherwise."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, List, Optional, Sequence

from . import _cli
from ._cli import FaultlineError
from ._process import Steered
from ._types import Kind, Site, Status


@dataclass(frozen=True)
class ClusterProcess(Steered):
    """A shimmed process in the cluster, as ``faultline cluster ps`` lists it (rates over the listing's half
    second); ``status()``, ``enable()``, ``disable()``, ``set_strategy(…)`` and ``record(on)`` act on it through its
    node's agent, as :class:`Process`'s do locally."""

    node: str
    namespace: Optional[str]
    pod: Optional[str]
    container: Optional[str]
    pid: int
    kind: Kind
    exe: str
    alive: bool
    enabled: bool
    mode: str
    calls: int
    faults: int
    calls_per_s: float
    faults_per_s: float
    #: Where its injected faults surface (``"post"`` from an agent older than fault sites).
    site: Site = "post"
    context: Optional[str] = field(default=None, repr=False, compare=False)

    def _state(self, words: Sequence[str]) -> Status:
        args = ["cluster", *words, "--node", self.node, "--pid", str(self.pid), "--kind", self.kind]
        answer = _cli.run_json([*_context(self.context), *args])
        replies: List[Any] = answer.get("nodes", [])
        if len(replies) != 1:
            raise FaultlineError(_cli.EXIT_FAILED, f"faultline reported {len(replies)} node answers, not one")
        reply = replies[0]["reply"]
        if reply.get("exit", 1) != 0:
            raise FaultlineError(int(reply.get("exit", 1)), str(reply.get("error") or reply.get("text", "")))
        states: List[Status] = reply["report"]["processes"]
        if len(states) != 1:
            raise FaultlineError(_cli.EXIT_FAILED, f"the agent reported {len(states)} processes for pid {self.pid}")
        return states[0]


def cluster_processes(
    *,
    namespace: Optional[str] = None,
    all_namespaces: bool = False,
    selector: Optional[str] = None,
    node: Optional[str] = None,
    context: Optional[str] = None,
) -> List[ClusterProcess]:
    """Every shimmed process of the cluster that the filters keep (``faultline cluster ps``): the context's namespace
    unless ``namespace`` or ``all_namespaces``; ``selector`` is ``key=value,…`` pod labels; ``node`` one node's."""
    args = ["cluster", "ps"]
    if all_namespaces:
        args.append("-A")
    elif namespace is not None:
        args += ["-n", namespace]
    if selector is not None:
        args += ["-l", selector]
    if node is not None:
        args += ["--node", node]
    listing = _cli.run_json([*_context(context), *args])
    return [
        ClusterProcess(
            node=row["node"],
            namespace=row.get("namespace"),
            pod=row.get("pod"),
            container=row.get("container"),
            pid=int(row["pid"]),
            kind=row["kind"],
            exe=row["exe"],
            alive=bool(row["alive"]),
            enabled=bool(row["enabled"]),
            mode=row["mode"],
            calls=int(row["calls"]),
            faults=int(row["faults"]),
            calls_per_s=float(row["calls_per_s"]),
            faults_per_s=float(row["faults_per_s"]),
            site=row.get("site", "post"),
            context=context,
        )
        for row in listing["processes"]
    ]


def _context(context: Optional[str]) -> List[str]:
    return ["--context", context] if context is not None else []
