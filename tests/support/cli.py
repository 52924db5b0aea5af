"""Running `airgap` as a user does: in a new process (``airgap``) or in this one (``cli``)."""

from __future__ import annotations

import contextlib
import io
import os
import subprocess
import sys
from pathlib import Path

from tests.support.reports import checked

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "manifests" / "examples"


def airgap(
    *args: str, cwd: Path | None = None, env: dict[str, str] | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """``python -m packager ARGS`` in a new process, wide output, no colours; a ``--json``
    report is checked against its schema (tests.support.reports)."""
    r = subprocess.run(
        [sys.executable, "-m", "packager", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env={**os.environ, "COLUMNS": "200", "NO_COLOR": "1", **(env or {})},
        timeout=timeout,
    )
    return checked(args, r)


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    """`airgap ARGS` in this process (packager.cli.app.main, exit status and both streams captured):
    the same code path as the console script, without a Python start per call."""
    from packager.cli.app import main

    out, err = io.StringIO(), io.StringIO()
    code = 0
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            main(list(args))
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 0 if exc.code is None else 1
    return checked(
        args, subprocess.CompletedProcess(list(args), code, out.getvalue(), err.getvalue())
    )
