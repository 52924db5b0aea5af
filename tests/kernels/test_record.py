"""probe_spec: the object the site runner takes, built from the manifest and the binary check."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from packager.compat.facts import Chip
from packager.kernels.checks import check_kernel
from packager.kernels.record import probe_spec
from packager.manifest.model import load_manifest
from packager.probe import kernel_runner as kr
from tests.kernels.fake_cuda import FakeLibCuda
from tests.kernels.support import FIXTURES, manifest


def test_probe_spec_runs_through_the_runner(tmp_path: Path, chips: dict[str, Chip]) -> None:
    x = np.linspace(0, 1, 64, dtype=np.float32)
    for name, a in {"a": x, "b": x, "c": x + x}.items():
        np.save(tmp_path / f"{name}.npy", a)
    tests = {
        "inputs": ["a.npy", "b.npy"],
        "expected": ["c.npy"],
        "scalars": [64],
        "grid": [1],
        "block": [64],
    }
    path = manifest(
        tmp_path,
        [
            {
                "name": "vadd",
                "kind": "cuda-fatbin",
                "path": "k/two.fatbin",
                "entry": "vadd",
                "tests": tests,
            }
        ],
        files={"k/two.fatbin": FIXTURES / "two.fatbin"},
    )
    m = load_manifest(path).manifest
    assert m is not None
    (kernel,) = m.targets[0].kernels
    assert kernel.tests is not None and kernel.tests.scalars == (
        64.0,
    )  # the typed manifest: floats
    check = check_kernel(kernel, [chips["h100"]])
    site = {
        p: f"/site/{p.name}" for p in [kernel.path, *kernel.tests.inputs, *kernel.tests.expected]
    }
    spec = probe_spec(m, kernel, lambda p: site[p], check)
    json.dumps(spec)
    assert spec["params"] == [8, 8, 8, 4]
    assert spec["tests"]["scalars"] == [64] and isinstance(spec["tests"]["scalars"][0], int)
    assert spec["path"] == "/site/two.fatbin" and spec["tests"]["inputs"] == [
        "/site/a.npy",
        "/site/b.npy",
    ]
    files = {v: k.read_bytes() for k, v in site.items()}
    status, reason = kr.run_kernel_test(
        spec, files.__getitem__, driver=kr.CudaDriver(FakeLibCuda())
    )
    assert status == "PASS", reason
