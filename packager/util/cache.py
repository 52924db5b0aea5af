"""Where airgap keeps what it may fetch again: downloaded wheels, the stat cache."""

from __future__ import annotations

import os
from pathlib import Path


def cache_dir() -> Path:
    """``$AIRGAP_CACHE_DIR``, else ``$XDG_CACHE_HOME/airgap``, else ``~/.cache/airgap``."""
    env = os.environ.get("AIRGAP_CACHE_DIR")
    if env:
        return Path(env)
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "airgap"
