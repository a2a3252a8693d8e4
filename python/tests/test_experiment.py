"""Experiments from Python against the serving stand-in (`ucx_selfloop --http`, real UCX work through the shim per
request): the verdicts come back, a failed expectation says what was measured, the JUnit is written, and the target's
strategy is the same afterwards."""

from __future__ import annotations

from pathlib import Path

import pytest

import faultline
from helpers import settings_of


def experiment(port: int, pid: int, faults_bound: str) -> str:
    return f"""name: py-selfloop
target: {{pid: {pid}}}
probes:
  - name: requests
    http: {{url: "http://127.0.0.1:{port}/", interval: 50ms, timeout: 10s}}
phases:
  - name: faults
    actions: ["hooks ucp_put_nbx", "strategy X", "enable"]
    duration: 1s
    expect: [{{probe: requests, success_rate: "{faults_bound}"}}, {{target: faults, value: "> 0"}}]
  - name: recovery
    actions: ["disable"]
    duration: 1s
    expect: [{{probe: requests, recovers_within: 2s}}]
"""


def test_an_experiment_runs_from_python(shimmed: faultline.Launcher, selfloop: Path, tmp_path: Path) -> None:
    server = shimmed([selfloop, "--http", "0", "--quiet", "--ops", "put,get,flush"], kind="ucx")
    port = int(server.read_until(lambda line: line.startswith("HTTP "))[-1].split()[1])
    before = settings_of(server.status())
    file = tmp_path / "experiment.yaml"
    file.write_text(experiment(port, server.pid, "<= 10%"))
    junit = tmp_path / "junit.xml"

    result = faultline.run_experiment(file, junit=junit, shm_dir=shimmed.shm_dir)
    assert result.passed, result.log
    assert [v.check for v in result.verdicts] == [
        "requests success rate <= 10%",
        "target faults > 0",
        "requests recovers within 2s",
    ]
    assert "<testsuite name=\"py-selfloop\"" in junit.read_text()
    assert settings_of(server.status()) == before

    file.write_text(experiment(port, server.pid, ">= 99%"))
    failed = faultline.run_experiment(file, shm_dir=shimmed.shm_dir)
    assert not failed.passed
    [failure] = failed.failures
    assert (failure.phase, failure.bound) == ("faults", ">= 99%")
    assert failure.measured.endswith(")") and "%" in failure.measured

    file.write_text(experiment(port, server.pid, "<= 10%").replace('"disable"', '"disabel"'))
    with pytest.raises(faultline.FaultlineError) as refused:
        faultline.validate_experiment(file)
    assert refused.value.status == 2 and "line 12" in str(refused.value)
