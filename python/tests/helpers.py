"""Helpers of the wheel's acceptance suite."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, Dict, List

import faultline


def start_puts(shimmed: faultline.Launcher, selfloop: Path) -> faultline.ShimmedProcess:
    """The self-loop program doing puts on request, under the UCX shim."""
    return shimmed([selfloop, "--stdin", "--ops", "put"], kind="ucx")


def run_puts(process: faultline.ShimmedProcess, count: int) -> List[int]:
    """Runs `count` puts and returns the status each returned to the program (0: passed)."""
    process.send(f"run {count}")
    lines = process.read_until("DONE")
    statuses = [int(line.split()[3]) for line in lines if line.startswith("CALL ")]
    assert len(statuses) == count, lines
    return statuses


def settings_of(status: faultline.Status) -> Dict[str, Any]:
    """Everything `faults()` promises to give back, from a status (counters and the position left out)."""
    keys = ["enabled", "recording", "mode", "probability_ppm", "seed", "pattern", "error_codes", "skip", "limit"]
    keys += ["delay_us", "delay_mode", "site", "replay_loop", "replay_length"]
    settings = {key: status[key] for key in keys}  # type: ignore[literal-required]
    settings["armed"] = [hook["name"] for hook in status["hooks"] if hook["armed"]]
    return settings


def in_this_environment(path: str) -> bool:
    """Whether `path` lies inside the running venv (not in a checkout or the base interpreter)."""
    return Path(path).resolve().is_relative_to(Path(sys.prefix).resolve())
