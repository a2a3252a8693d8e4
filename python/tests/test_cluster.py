"""The cluster's processes from Python, against the local Kubernetes API emulator (kmock_server.py, with the pods'
exec endpoint running the installed `faultline` as the node agent would): a shimmed program "in" pod dynamo/decode-0
is listed with its node and pod, and steered through the agent."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Iterator

import pytest

import faultline
from helpers import run_puts

HERE = Path(__file__).resolve().parent


@pytest.fixture
def api(shimmed: faultline.Launcher, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The emulator with node gpu-a, its agent pod and pod dynamo/decode-0; KUBECONFIG points at it."""
    spec = {
        "objects": [
            {"resource": "v1/nodes", "body": {"apiVersion": "v1", "kind": "Node",
             "metadata": {"name": "gpu-a", "labels": {"nvidia.com/gpu.present": "true"}},
             "status": {"conditions": [{"type": "Ready", "status": "True"}]}}},
            {"resource": "v1/pods", "body": {"apiVersion": "v1", "kind": "Pod",
             "metadata": {"name": "faultline-node-a", "namespace": "faultline-system",
                          "labels": {"app.kubernetes.io/name": "faultline-node"}},
             "spec": {"nodeName": "gpu-a", "containers": [{"name": "agent", "image": "faultline"}]},
             "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]}}},
            {"resource": "v1/pods", "body": {"apiVersion": "v1", "kind": "Pod",
             "metadata": {"name": "decode-0", "namespace": "dynamo", "uid": "uid-decode-0"},
             "spec": {"nodeName": "gpu-a", "containers": [{"name": "worker", "image": "vllm"}]},
             "status": {"phase": "Running"}}},
        ],
        "resources": ["v1/events"],
        "exec": {"faultline-system/faultline-node-a":
                 {"faultline": faultline.executable(), "env": {"FAULTLINE_SHM_DIR": shimmed.shm_dir}}},
    }
    server = subprocess.Popen(
        [sys.executable, str(HERE / "kmock_server.py")], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert server.stdin is not None and server.stdout is not None
    server.stdin.write(json.dumps(spec) + "\n")
    server.stdin.flush()
    line = server.stdout.readline()
    while line and not line.startswith("PORT "):
        line = server.stdout.readline()
    assert line.startswith("PORT "), "the emulator did not start"
    port = int(line.split()[1])
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        "apiVersion: v1\nkind: Config\n"
        f"clusters:\n- name: kmock\n  cluster:\n    server: http://127.0.0.1:{port}\n"
        "contexts:\n- name: kmock\n  context:\n    cluster: kmock\n    user: tester\n"
        "current-context: kmock\nusers:\n- name: tester\n  user: {}\n"
    )
    monkeypatch.setenv("KUBECONFIG", str(kubeconfig))
    try:
        yield
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_a_pods_process_is_listed_and_steered_through_its_agent(
    api: None, shimmed: faultline.Launcher, selfloop: Path
) -> None:
    env = {"FAULTLINE_POD_NAMESPACE": "dynamo", "FAULTLINE_POD_NAME": "decode-0", "FAULTLINE_CONTAINER_NAME": "worker"}
    program = shimmed([selfloop, "--stdin", "--ops", "put"], kind="ucx", env=env)

    [decode] = [p for p in faultline.cluster_processes(all_namespaces=True) if p.pid == program.pid]
    assert (decode.node, decode.namespace, decode.pod, decode.container) == ("gpu-a", "dynamo", "decode-0", "worker")
    assert decode.kind == "ucx" and decode.alive and not decode.enabled

    state = decode.set_strategy("X", hooks=["ucp_put_nbx"], error_codes=["UCS_ERR_IO_ERROR"])
    assert state["mode"] == "pattern" and state["pattern"] == "X"
    assert decode.enable()["enabled"]
    assert run_puts(program, 3) == [-3, -3, -3]
    assert not decode.disable()["enabled"]
    assert run_puts(program, 2) == [0, 0]
    assert decode.status()["faults"] == 3

    with pytest.raises(faultline.FaultlineError) as refused:
        decode.set_strategy("random", probability=200)
    assert refused.value.status == 2
