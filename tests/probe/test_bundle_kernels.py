"""The probe runs a bundle's kernel test vectors through the kernel runner, reading the files
from the bundle itself (layout folder or tar) by their signed digests."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from packager.probe import kernel_runner
from packager.probe.bundle import load
from packager.probe.kernels import kernel_checks
from tests.support.projects import project


@pytest.fixture(scope="module")
def bundles(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("probe-kernels")
    m = project(base / "p")
    env = {**os.environ, "AIRGAP_CACHE_DIR": str(base / "cache")}
    for args, out in (([], "tar"), (["--layout-only"], "folder")):
        r = subprocess.run(
            [sys.executable, "-m", "packager", "build", str(m), "--out", str(base / out), "--unsigned", *args],
            capture_output=True, text=True, env=env, timeout=300,
        )  # fmt: skip
        assert r.returncode == 0, r.stdout + r.stderr
    return {
        "tar": base / "tar" / "tamper-1.0.0.airgap.tar",
        "folder": base / "folder" / "tamper-1.0.0",
    }


@pytest.mark.parametrize("form", ["tar", "folder"])
def test_the_runner_gets_the_kernel_and_its_vectors(
    bundles: dict[str, Path], form: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: dict[str, Any] = {}

    def fake_run(kernel: dict[str, Any], read: Any, timeout: float = 60.0) -> tuple[str, str]:
        seen["spec"] = kernel
        seen["files"] = {
            p: read(p)
            for p in [kernel["path"], *kernel["tests"]["inputs"], *kernel["tests"]["expected"]]
        }
        return "PASS", "ran on a test double"

    monkeypatch.setattr(kernel_runner, "run_kernel_test", fake_run)
    req = load(str(bundles[form]), None, ".")
    (check,) = kernel_checks(req, live=True, timeout=10)
    assert (check.status, check.title) == ("PASS", "kernel k")
    spec = seen["spec"]
    assert spec["entry"] == "k" and spec["params"] == [8, 8]
    files = seen["files"]
    assert files["kernels/k/k.ptx"].startswith(b".version 8.0")
    assert files["kernels/k/inputs/x.npy"].startswith(b"\x93NUMPY")


def test_a_tampered_vector_is_a_fail_not_a_pass(bundles: dict[str, Path], tmp_path: Path) -> None:
    folder = tmp_path / "b"
    shutil.copytree(bundles["folder"], folder)
    doc = json.loads((folder / "airgap/bundle.json").read_text())
    blob = next(b for b in doc["blobs"] if "kernels/k/inputs/x.npy" in b["paths"])
    p = folder / "blobs/sha256" / blob["digest"].split(":")[1]
    p.write_bytes(p.read_bytes()[:-1] + b"\x00")
    req = load(str(folder), None, ".")
    (check,) = kernel_checks(req, live=True, timeout=10)
    assert check.status in ("FAIL", "NOT RUN")
    assert check.status != "PASS"


def test_without_a_device_the_probe_says_not_run(bundles: dict[str, Path]) -> None:
    r = subprocess.run([sys.executable, "-m", "packager", "probe", "--bundle", str(bundles["tar"]), "--json"],
                       capture_output=True, text=True, timeout=120)  # fmt: skip
    doc = json.loads(r.stdout)
    kernels = [c for c in doc["checks"] if c["id"] == "kernels"]
    assert kernels and kernels[0]["status"] == "NOT RUN" and "no device" in kernels[0]["reason"]
    assert r.returncode in (1, 3)  # never 0: a kernel that did not run is not a pass


def test_a_recorded_machine_runs_no_kernel(bundles: dict[str, Path]) -> None:
    machines = Path(__file__).resolve().parents[1] / "fixtures" / "machines"
    r = subprocess.run([sys.executable, "-m", "packager", "probe", "--bundle", str(bundles["tar"]), "--json",
                        "--sysroot", str(machines / "h100x8-driver550")], capture_output=True, text=True, timeout=120)  # fmt: skip
    doc = json.loads(r.stdout)
    (k,) = [c for c in doc["checks"] if c["id"] == "kernels"]
    assert k["status"] == "NOT RUN" and "recorded machine" in k["reason"]


@pytest.mark.parametrize(
    "path", ["../../etc/passwd", "/etc/passwd", "a/../../b", "a\\..\\b", "./k"]
)
def test_an_installed_bundles_kernel_path_stays_inside_it(path: str, tmp_path: Path) -> None:
    from packager.probe.bundle import Requirements
    from packager.probe.kernels import _Files

    files = _Files(Requirements("x", location=("installed", str(tmp_path))))
    with pytest.raises(OSError, match="not a relative path inside the bundle"):
        files.read(path)
