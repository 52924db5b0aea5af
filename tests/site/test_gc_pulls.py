"""`airgap gc` removes what a killed `install oci://...` left in PREFIX/.pull, never a pull that
runs now (it holds the folder's lock)."""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from packager.bundle import layout
from packager.site.manage import gc
from tests.support.cli import airgap
from tests.support.golden import build_golden, write_public_key


def _pull_folder(prefix: Path, name: str, data: bytes) -> Path:
    folder = prefix / layout.SITE_PULL_DIR / name
    (folder / "blobs" / "sha256").mkdir(parents=True)
    (folder / "blobs" / "sha256" / ("a" * 64)).write_bytes(data)
    return folder


def test_gc_removes_interrupted_pulls_and_keeps_running_ones(tmp_path: Path) -> None:
    (tar,) = build_golden(tmp_path / "out")
    prefix = tmp_path / "site"
    r = airgap("install", str(tar), "--prefix", str(prefix), "--key",
               str(write_public_key(tmp_path)), "--no-probe")  # fmt: skip
    assert r.returncode == 0, r.stderr
    stale = _pull_folder(prefix, "1" * 64, b"x" * 1000)
    running = _pull_folder(prefix, "2" * 64, b"y" * 10)
    fd = os.open(str(running) + ".lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        result = gc(prefix)
    finally:
        os.close(fd)
    assert not stale.exists() and not Path(str(stale) + ".lock").exists()
    assert running.exists()
    assert any("interrupted pull" in n and "1000 bytes" in n for n in result.notes)
