"""File-system helpers for tests: hard-linked copies of trees, small tmpfs mounts."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path


def link_tree(src: Path, dest: Path) -> None:
    def link_or_copy(s: str, d: str) -> None:
        try:
            os.link(s, d)
        except OSError:
            shutil.copy2(s, d)

    shutil.copytree(src, dest, copy_function=link_or_copy)


def mounted_tmpfs(where: Path, size: str, *, ro: bool = False) -> bool:
    where.mkdir(parents=True, exist_ok=True)
    opts = f"size={size}" + (",ro" if ro else "")
    r = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", opts, "tmpfs", str(where)], capture_output=True
    )
    return r.returncode == 0
