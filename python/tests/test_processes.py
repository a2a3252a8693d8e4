"""The Python API and the fixtures on a real UCX program (ucx_selfloop doing ucp_put_nbx on request)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable, Dict, List

import pytest

import faultline
from helpers import run_puts, settings_of, start_puts

POOL = ["UCS_ERR_IO_ERROR", "UCS_ERR_UNREACHABLE", "UCS_ERR_TIMED_OUT"]
POOL_CODES = [-3, -6, -20]


def test_shimmed_runs_a_real_ucx_program_with_a_private_segment(
    shimmed: faultline.Launcher, selfloop: Path, faultline_shim: str
) -> None:
    process = start_puts(shimmed, selfloop)
    assert isinstance(process, faultline.Process)
    assert process.popen.args[0] == str(selfloop)
    assert run_puts(process, 5) == [0] * 5
    status = process.status()
    assert (status["pid"], status["kind"], status["alive"]) == (process.pid, "ucx", True)
    assert status["path"].startswith(shimmed.shm_dir + "/")
    assert "ucp_put_nbx" in [hook["name"] for hook in status["hooks"]]
    assert faultline.processes(shm_dir=shimmed.shm_dir) == [process]
    assert faultline.processes("cuda", shm_dir=shimmed.shm_dir) == []
    assert faultline_shim == faultline.shim_path("ucx")


def test_every_put_fails_under_faults_with_the_pools_codes_and_passes_after(
    shimmed: faultline.Launcher, selfloop: Path
) -> None:
    process = start_puts(shimmed, selfloop)
    # A strategy of its own first, so that "restored" means these values, not the shim's defaults.
    process.set_strategy("random", probability=2.5, error_codes=[-20], hooks=["put", "get"], seed=7, skip=1)
    before = settings_of(process.status())
    with faultline.faults(process, strategy="X", hooks=["ucp_put_nbx"], error_codes=POOL) as inside:
        assert inside is process
        status = process.status()
        assert (status["enabled"], status["mode"], status["pattern"]) == (True, "pattern", "X")
        assert run_puts(process, 6) == POOL_CODES * 2, "each X takes the pool's next code"
    assert settings_of(process.status()) == before
    process.disable()
    assert run_puts(process, 4) == [0] * 4
    hooks = {hook["name"]: hook for hook in process.status()["hooks"]}
    assert hooks["ucp_put_nbx"]["faults"] == 6


def test_the_previous_strategy_comes_back_when_the_block_raises(shimmed: faultline.Launcher, selfloop: Path) -> None:
    process = start_puts(shimmed, selfloop)
    before = settings_of(process.status())
    with pytest.raises(RuntimeError, match="the test failed"):
        with faultline.faults(process.pid, strategy="XO", hooks="put", kind="ucx", shm_dir=shimmed.shm_dir):
            assert run_puts(process, 2) == [-3, 0]
            raise RuntimeError("the test failed")
    assert settings_of(process.status()) == before
    assert run_puts(process, 3) == [0] * 3


BAD_FAULTS: List[Dict[str, Any]] = [
    {"strategy": "XQ"},
    {"strategy": ""},
    {"strategy": "random", "probability": 101},
    {"error_codes": ["UCS_ERR_NOT_A_CODE"]},
    {"error_codes": [0]},
    {"error_codes": ["cudaErrorNoDevice"]},
    {"hooks": ["ucp_no_such_call"]},
    {"skip": -1},
    {"site": "sideways"},
]


@pytest.mark.parametrize("bad", BAD_FAULTS, ids=[json.dumps(bad) for bad in BAD_FAULTS])
def test_a_bad_argument_raises_with_exit_status_2_and_changes_nothing(
    shimmed: faultline.Launcher, selfloop: Path, bad: Dict[str, Any]
) -> None:
    process = start_puts(shimmed, selfloop)
    process.set_strategy("XOO", hooks="put")
    before = process.status()
    with pytest.raises(faultline.FaultlineError) as raised:
        with faultline.faults(process, **bad):
            pytest.fail("the block ran with a bad argument")
    assert raised.value.status == 2, raised.value
    assert raised.value.message and "faultline" not in raised.value.message.split(":")[0], raised.value.message
    assert process.status() == before
    assert run_puts(process, 1) == [0], "injection stayed off"


def test_process_calls_refuse_bad_values_and_unknown_pids_with_exit_status_2(
    shimmed: faultline.Launcher, selfloop: Path, tmp_path: Path
) -> None:
    process = start_puts(shimmed, selfloop)
    before = process.status()
    refusals: List[Callable[[], object]] = [
        lambda: process.set_strategy("XOX", error_codes="-3,5"),
        lambda: process.set_strategy("random", probability="12.34567"),
        lambda: process.dump("everything"),  # type: ignore[arg-type]
        lambda: process.replay(tmp_path / "no-such-dump.json"),
        lambda: faultline.Process(process.pid, "cuda", shm_dir=shimmed.shm_dir).status(),
        lambda: faultline.Process(2**22 + 7, shm_dir=shimmed.shm_dir).enable(),
    ]
    for refusal in refusals:
        with pytest.raises(faultline.FaultlineError) as raised:
            refusal()
        assert raised.value.status == 2, raised.value
        assert process.status() == before


def test_record_dump_and_replay_into_another_process(shimmed: faultline.Launcher, selfloop: Path) -> None:
    first, second = start_puts(shimmed, selfloop), start_puts(shimmed, selfloop)
    assert first.record()["recording"]
    with faultline.faults(first, strategy="XOO", hooks=["ucp_put_nbx"]):
        seen = run_puts(first, 6)
    assert seen == [-3, 0, 0, -6, 0, 0]
    summary = first.dump()
    assert isinstance(summary, dict) and summary, summary
    pattern = first.dump("pattern")
    assert pattern["pattern"] == "XOOXOO", pattern
    assert len(first.dump("records", count=2)["records"]) == 2
    assert not first.record(on=False)["recording"]

    second.set_strategy("random", hooks=["ucp_put_nbx"])
    assert second.replay(first)["mode"] == "replay"
    assert run_puts(second, 6) == seen, "replayed from the first process's recording"
    assert second.replay(pattern)["replay_length"] == 6
    assert run_puts(second, 6) == seen, "replayed from the pattern dump"
    assert run_puts(second, 2) == [0, 0], "a replay that does not loop passes everything after its end"


def test_the_fault_site_is_set_with_the_strategy_given_back_after_faults_and_replayed(
    shimmed: faultline.Launcher, selfloop: Path
) -> None:
    first, second = start_puts(shimmed, selfloop), start_puts(shimmed, selfloop)
    assert first.status()["site"] == "post"
    assert first.set_strategy("XO", hooks=["ucp_put_nbx"], site="completion")["site"] == "completion"
    before = settings_of(first.status())
    with faultline.faults(first, strategy="X", site="endpoint"):
        assert first.status()["site"] == "endpoint"
    assert settings_of(first.status()) == before, "the site is given back with the rest"

    # Faults recorded at completion say so, and a replay plays them there.
    first.record()
    first.enable()
    run_puts(first, 4)
    pattern = first.dump("pattern")
    assert (pattern["pattern"], pattern["site"]) == ("XOXO", "completion"), pattern
    assert first.dump()["faults_by_site"] == {"completion": 2}
    assert second.replay(first)["site"] == "completion"
    assert second.replay(pattern, site="post")["site"] == "post"


def test_ucx_faults_are_restored_at_the_end_of_the_block_and_refuse_other_kinds(
    shimmed: faultline.Launcher,
    selfloop: Path,
    ucx_faults: Callable[..., faultline.Faults],
    cuda_faults: Callable[..., faultline.Faults],
) -> None:
    process = start_puts(shimmed, selfloop)
    before = settings_of(process.status())
    with ucx_faults(process, strategy="X", hooks=["ucp_put_nbx"]):
        assert run_puts(process, 3) == POOL_CODES
    assert settings_of(process.status()) == before
    with pytest.raises(ValueError, match="ucx"):
        cuda_faults(process)


def test_faults_still_in_force_at_teardown_are_restored(
    shimmed: faultline.Launcher, selfloop: Path, pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    process = start_puts(shimmed, selfloop)
    before = settings_of(process.status())
    monkeypatch.setenv("FAULTLINE_SHM_DIR", shimmed.shm_dir)  # for the pid given as a number
    pytester.makepyfile(
        f"""
        import faultline

        def test_leaves_faults_on(ucx_faults):
            process = faultline.Process({process.pid}, "ucx", shm_dir={shimmed.shm_dir!r})
            ucx_faults(process, strategy="X", hooks=["ucp_put_nbx"]).start()
            assert process.status()["enabled"]

        def test_fails_inside_a_block(ucx_faults):
            with ucx_faults({process.pid}, strategy="OX"):
                assert False, "a failing test"
        """
    )
    pytester.runpytest_subprocess("-p", "no:cacheprovider").assert_outcomes(passed=1, failed=1)
    assert settings_of(process.status()) == before
    assert run_puts(process, 2) == [0, 0]
