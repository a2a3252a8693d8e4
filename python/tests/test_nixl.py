"""A NIXL transfer under the fixtures: NIXL's wheel bundles its own UCX and opens it RTLD_LOCAL, and the shim that
came with the package still finds and faults its ucp_get_nbx."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, Callable, Dict

import faultline

READER = Path(__file__).resolve().parent / "nixl_reader.py"


def read(process: faultline.ShimmedProcess) -> Dict[str, Any]:
    process.send("read")
    result: Dict[str, Any] = json.loads(process.read_until(lambda line: line.startswith("{"))[-1])
    return result


def test_a_nixl_read_fails_under_the_fixture_and_succeeds_after_it(
    shimmed: faultline.Launcher, ucx_faults: Callable[..., faultline.Faults]
) -> None:
    reader = shimmed([sys.executable, READER], kind="ucx", env={"UCX_TLS": "tcp,self", "UCX_MODULES": "^efa"})
    assert json.loads(reader.read_until(lambda line: line.startswith("{"))[-1]) == {"ready": True}
    assert read(reader) == {"result": "ok", "intact": True}

    with ucx_faults(reader, strategy="X", hooks=["ucp_get_nbx"], error_codes=["UCS_ERR_IO_ERROR"]):
        failed = read(reader)
        assert failed["result"] == "error", failed
        hooks = {hook["name"]: hook for hook in reader.status()["hooks"]}
        assert hooks["ucp_get_nbx"]["faults"] >= 1

    assert read(reader) == {"result": "ok", "intact": True}
    assert not reader.status()["enabled"]
    reader.send("quit")
    assert reader.popen.wait(timeout=60) == 0
