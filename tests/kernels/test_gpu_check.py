"""scripts/gpu-check.sh on this machine: it builds the kernels and says NOT RUN: no device."""

from __future__ import annotations

import ctypes
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def _has_libcuda() -> bool:
    try:
        ctypes.CDLL("libcuda.so.1")
    except OSError:
        return False
    return True


@pytest.mark.skipif(_has_libcuda(), reason="a GPU host: run scripts/gpu-check.sh itself")
def test_gpu_check_without_a_gpu(nvcc: str) -> None:
    """NOT RUN exits 0, or 3 with --require-gpu (one run: the compiles take a few seconds)."""
    env = {**os.environ, "NVCC": nvcc, "PYTHON": sys.executable}
    r = subprocess.run(
        ["bash", str(REPO / "scripts" / "gpu-check.sh"), "--require-gpu"],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert r.returncode == 3, r.stdout + r.stderr
    lines = r.stdout.splitlines()
    assert lines[0].startswith("gpu-check: GPU: none; compiling for sm_90")
    cases = [line for line in lines[1:] if not line.startswith("gpu-check:")]
    assert len(cases) == 7
    assert all(line.startswith("NOT RUN  ") and ": no device: " in line for line in cases)
    assert lines[-1] == "gpu-check: NOT RUN: no device (nothing was launched; this is not a pass)"


def test_gpu_check_without_nvcc(tmp_path: Path) -> None:
    env = {**os.environ, "NVCC": str(tmp_path / "no-nvcc"), "PATH": "/usr/bin:/bin"}
    r = subprocess.run(
        ["bash", str(REPO / "scripts" / "gpu-check.sh")], capture_output=True, text=True, env=env
    )
    assert r.returncode == 2 and "nvcc not found" in r.stderr
