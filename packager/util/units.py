"""Sizes and durations as people write and read them."""

from __future__ import annotations

import datetime as _dt
import re

_DURATION = re.compile(r"([1-9][0-9]*)(h|d|w|y)")
_SIZE = re.compile(r"([0-9]+(?:\.[0-9]+)?)\s*(MB|MiB|GB|GiB|TB|TiB)")
_SIZE_UNITS = {
    "MB": 10**6, "MiB": 2**20, "GB": 10**9, "GiB": 2**30, "TB": 10**12, "TiB": 2**40,
}  # fmt: skip


def human_size(n: float) -> str:
    """``1234567`` -> ``1.2 MB`` (decimal units, as disks and tools print them)."""
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if abs(n) < 1000 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} TB"


def parse_duration(text: str) -> _dt.timedelta:
    """``12h``, ``90d``, ``52w``, ``1y`` -> a timedelta; ValueError for anything else."""
    m = _DURATION.fullmatch(text)
    if not m:
        raise ValueError(f"not a duration: {text!r}")
    n, unit = int(m.group(1)), m.group(2)
    days = {"h": n / 24, "d": n, "w": 7 * n, "y": 365 * n}[unit]
    return _dt.timedelta(days=days)


def parse_size(text: str) -> int:
    """``80GB``, ``64 GiB``, ``1.5TB`` -> bytes; ValueError for anything else."""
    m = _SIZE.fullmatch(text.strip())
    if not m:
        raise ValueError(f"not a size: {text!r}")
    return int(float(m.group(1)) * _SIZE_UNITS[m.group(2)])
