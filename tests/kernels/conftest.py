"""Kernel binaries for the tests: compiled once per session with nvcc, or the committed fixtures.

``kernel_bins`` is a folder holding the files tests/fixtures/kernels/build.sh makes (sm80.cubin,
sm90.cubin, sm90a.cubin, compute80.ptx, two.fatbin, two_lz4.fatbin, libvadd.so). With nvcc on the
machine it is built for this session (with ``--all``: the extra variants too); without nvcc it is
the committed fixtures folder. ``nvcc_bins`` is the compiled folder only: it skips without nvcc,
or fails when AIRGAP_REQUIRE_NVCC=1.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from packager.compat.facts import Chip, load_facts
from tests.kernels.support import BUILD, FIXTURES


def find_nvcc() -> str | None:
    for cand in (os.environ.get("NVCC"), shutil.which("nvcc"), "/usr/local/cuda/bin/nvcc"):
        if cand and Path(cand).is_file() and os.access(cand, os.X_OK):
            return cand
    return None


@pytest.fixture(scope="session")
def nvcc() -> str:
    found = find_nvcc()
    if found is None:
        if os.environ.get("AIRGAP_REQUIRE_NVCC") == "1":
            pytest.fail("nvcc not found and AIRGAP_REQUIRE_NVCC=1")
        pytest.skip("nvcc not found: the committed fixtures stand in")
    return found


@pytest.fixture(scope="session")
def nvcc_bins(nvcc: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("nvcc-kernels")
    subprocess.run(
        ["bash", str(BUILD), str(out), "--all"],
        check=True,
        env={**os.environ, "NVCC": nvcc},
        capture_output=True,
        timeout=300,
    )
    return out


@pytest.fixture(scope="session")
def kernel_bins(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> Path:
    if find_nvcc() is None and os.environ.get("AIRGAP_REQUIRE_NVCC") != "1":
        return FIXTURES
    return Path(request.getfixturevalue("nvcc_bins"))


@pytest.fixture(scope="session")
def chips() -> dict[str, Chip]:
    return dict(load_facts().chips)
