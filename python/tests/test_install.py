"""What `pip install` of the wheel gives: the executable on PATH, both shims, an importable typed package."""

from __future__ import annotations

import os
import re
import shutil
import stat
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import List, Tuple

import faultline
from helpers import in_this_environment

SHIMS = ("libfaultline_ucx.so", "libfaultline_cuda.so")
# What manylinux allows an ELF file to need (PEP 600: the glibc family, libgcc_s).
MANYLINUX_LIBRARIES = {
    "libc.so.6",
    "libm.so.6",
    "libdl.so.2",
    "librt.so.1",
    "libpthread.so.0",
    "libgcc_s.so.1",
    "ld-linux-x86-64.so.2",
}


def run(*command: str) -> str:
    return subprocess.run(command, check=True, capture_output=True, text=True).stdout


def test_the_executable_on_path_is_the_installed_one_and_runs() -> None:
    found = shutil.which("faultline")
    assert found is not None and in_this_environment(found), found
    assert faultline.executable() == found
    assert run("faultline", "--version") == f"faultline {faultline.__version__}\n"


def test_shim_path_prints_the_installed_shims() -> None:
    for kind, file in zip(("ucx", "cuda"), SHIMS):
        printed = run("faultline", "shim-path", kind).strip()
        assert os.path.isabs(printed) and Path(printed).name == file
        assert Path(printed).is_file() and in_this_environment(printed), printed
        assert Path(printed).parent == Path(faultline.__file__).parent / "shims"
        assert faultline.shim_path(kind) == printed


def test_shim_path_refuses_an_unknown_kind_with_exit_status_2() -> None:
    done = subprocess.run(["faultline", "shim-path", "rdma"], capture_output=True, text=True)
    assert done.returncode == 2 and "rdma" in done.stderr


def test_the_package_is_the_installed_one_and_typed() -> None:
    package = Path(faultline.__file__).parent
    assert in_this_environment(str(package)), package
    assert (package / "py.typed").is_file()


def test_the_package_type_checks_strictly(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--cache-dir", str(tmp_path), "-p", "faultline"],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def elf_needs(path: Path) -> Tuple[List[str], Tuple[int, int]]:
    """The libraries an ELF file needs and the newest glibc symbol version it uses."""
    needed = re.findall(r"\(NEEDED\)\s+Shared library: \[([^\]]+)\]", run("readelf", "-d", str(path)))
    versions = re.findall(r"GLIBC_(\d+)\.(\d+)", run("objdump", "-T", str(path)))
    return needed, max((int(major), int(minor)) for major, minor in versions)


def test_the_wheel_holds_the_executable_and_both_shims_and_its_tag_fits_them(wheel: Path, tmp_path: Path) -> None:
    name = re.fullmatch(r"faultline-([^-]+)-py3-none-manylinux_(\d+)_(\d+)_x86_64\.whl", wheel.name)
    assert name, f"not a manylinux wheel for any Python 3: {wheel.name}"
    version, tag_glibc = name.group(1), (int(name.group(2)), int(name.group(3)))
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        executable = f"faultline-{version}.data/scripts/faultline"
        members = [executable] + [f"faultline/shims/{shim}" for shim in SHIMS]
        assert set(members) <= names, sorted(names)
        assert {"faultline/__init__.py", "faultline/py.typed", "faultline/pytest_plugin.py"} <= names
        assert stat.S_IMODE(archive.getinfo(executable).external_attr >> 16) & 0o111, "the executable is not +x"
        info = archive.read(f"faultline-{version}.dist-info/WHEEL").decode()
        assert "Root-Is-Purelib: false" in info
        assert f"Tag: py3-none-manylinux_{tag_glibc[0]}_{tag_glibc[1]}_x86_64" in info
        entry_points = archive.read(f"faultline-{version}.dist-info/entry_points.txt").decode()
        assert re.search(r"\[pytest11\]\s+faultline\s*=\s*faultline\.pytest_plugin", entry_points), entry_points
        record = archive.read(f"faultline-{version}.dist-info/RECORD").decode()
        assert all(member in record for member in members)
        for member in members:
            path = Path(archive.extract(member, tmp_path))
            needed, newest_glibc = elf_needs(path)
            assert set(needed) <= MANYLINUX_LIBRARIES, f"{member} needs {needed}"
            assert newest_glibc <= tag_glibc, f"{member} needs glibc {newest_glibc}, the tag says {tag_glibc}"
