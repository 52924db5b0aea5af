"""The real OpenSSF model-signing tool (PyPI ``model-signing``: the ``model_signing`` CLI) as an
independent reader and writer of model signatures, run with no network (``unshare -n``)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from tests.support.services import ServiceUnavailable, require


def _tool() -> list[str]:
    exe = Path(sys.executable).parent / "model_signing"
    if not exe.is_file():
        found = shutil.which("model_signing")
        if found is None:
            raise ServiceUnavailable(
                "model_signing is not installed (pip install model-signing pyopenssl)"
            )
        exe = Path(found)
    if shutil.which("unshare") is None:
        raise ServiceUnavailable("unshare (util-linux) is not installed")
    if subprocess.run(["unshare", "-n", "true"], capture_output=True).returncode != 0:
        raise ServiceUnavailable("unshare -n cannot make a network namespace here (needs root)")
    return ["unshare", "-n", str(exe)]


def model_signing(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """``model_signing ARGS`` in a new network namespace with no interface up: offline."""
    tool = require(_tool)
    return subprocess.run([*tool, *args], capture_output=True, text=True, cwd=cwd, timeout=300)


def offline_airgap(
    *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """``airgap ARGS`` in a new network namespace (nothing but a loopback that is down)."""
    import os

    tool = require(_tool)
    return subprocess.run(
        [*tool[:2], sys.executable, "-m", "packager", *args],
        capture_output=True, text=True, timeout=300,
        env={**os.environ, "COLUMNS": "200", "NO_COLOR": "1", **(env or {})},
    )  # fmt: skip


def verify_key(signature: Path, public_key: Path, model: Path) -> subprocess.CompletedProcess[str]:
    return model_signing(
        "verify", "key", "--signature", str(signature), "--public_key", str(public_key), str(model)
    )
