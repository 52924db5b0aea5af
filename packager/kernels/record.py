"""The kernel object the site-side runner takes (packager.probe.kernel_runner.run_kernel_test).

``probe_spec(manifest, kernel, install_path)`` builds it from the manifest: install paths for the
binary and the test vectors, the launch geometry and tolerances, the scalars *as the manifest
wrote them* (read from the YAML document: ``1024`` stays an integer, passed as int32; ``0.5`` a
float, passed as float32; typed.Manifest keeps them all as floats), and, from a ``KernelCheck``,
the byte size of each of the entry's parameters so the runner can refuse a mismatched test even
where it cannot decompress the binary itself.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from packager.kernels.checks import KernelCheck
from packager.manifest.model import Kernel, Manifest


def probe_spec(
    manifest: Manifest,
    kernel: Kernel,
    install_path: Callable[[Path], str],
    check: KernelCheck | None = None,
) -> dict[str, Any]:
    """The JSON object for ``run_kernel_test``; ``install_path`` maps a local file to its site path."""
    spec: dict[str, Any] = {
        "name": kernel.name,
        "kind": kernel.kind,
        "path": install_path(kernel.path),
        "entry": kernel.entry,
    }
    if check is not None and check.params is not None:
        spec["params"] = list(check.params)
    t = kernel.tests
    if t is None:
        return spec
    try:
        raw = manifest.document.get((*kernel.json_path, "tests", "scalars"))
    except (KeyError, IndexError, TypeError):
        raw = list(t.scalars)
    scalars = [x for x in raw if isinstance(x, (int, float)) and not isinstance(x, bool)]
    spec["tests"] = {
        "inputs": [install_path(p) for p in t.inputs],
        "expected": [install_path(p) for p in t.expected],
        "rtol": t.rtol,
        "atol": t.atol,
        "grid": list(t.grid),
        "block": list(t.block),
        "shared_mem": t.shared_mem,
        "scalars": scalars,
    }
    return spec
