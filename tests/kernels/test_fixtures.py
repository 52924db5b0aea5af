"""The committed fixtures are what tests/fixtures/kernels/build.sh builds from vadd.cu."""

from __future__ import annotations

import hashlib
import re
import subprocess
from pathlib import Path
from typing import Any

from packager.kernels.inspection import inspect_file
from tests.kernels.support import COMMITTED, FIXTURES

BYTE_EXACT = (
    "sm80.cubin",
    "sm90.cubin",
    "sm90a.cubin",
    "compute80.ptx",
    "two.fatbin",
    "two_lz4.fatbin",
)


def summary(path: Path) -> dict[str, Any]:
    """What inspection says, without the bytes that can vary (offsets, sizes, hashes)."""
    info = inspect_file(path)
    return {
        "format": info.format,
        "archs": [str(a) for a in info.archs()],
        "kernels": info.kernels(),
        "images": [(i.kind, str(i.arch), i.compression, i.kernels, i.params) for i in info.images],
        "ok": info.ok,
    }


def test_committed_fixtures_are_small_and_listed() -> None:
    info = (FIXTURES / "BUILD-INFO").read_text()
    for name in COMMITTED:
        size = (FIXTURES / name).stat().st_size
        assert size < 16 * 1024, (name, size)
        digest = hashlib.sha256((FIXTURES / name).read_bytes()).hexdigest()
        assert f"{digest}  {name}" in info, f"{name} changed without BUILD-INFO: run build.sh"
    readme = (FIXTURES / "README.md").read_text()
    assert all(f"`{n}`" in readme for n in COMMITTED)


def test_committed_fixtures_are_what_build_sh_builds(nvcc: str, nvcc_bins: Path) -> None:
    recorded = re.search(r"release (\S+), V(\S+)", (FIXTURES / "BUILD-INFO").read_text())
    local = re.search(
        r"release (\S+), V(\S+)",
        subprocess.run([nvcc, "--version"], capture_output=True, text=True).stdout,
    )
    same_nvcc = recorded is not None and local is not None and recorded.groups() == local.groups()
    for name in COMMITTED:
        assert summary(nvcc_bins / name) == summary(FIXTURES / name), name
        if same_nvcc and name in BYTE_EXACT:
            assert (nvcc_bins / name).read_bytes() == (FIXTURES / name).read_bytes(), name
