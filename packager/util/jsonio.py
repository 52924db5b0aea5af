"""JSON as airgap writes and reads it: one canonical form for what it signs or hashes, one readable
form for the files people open, and a bounded reader for small documents.

Canonical: one stable JSON serialization for everything airgap signs or hashes.

Keys sorted, no whitespace, UTF-8 (not ``\\uXXXX`` escapes), NaN and infinities refused. Equal
objects give equal bytes on every machine and Python version, which is what reproducible builds
and signatures over JSON need. It is not RFC 8785 (JCS): floats are written as Python writes them,
so signed documents should hold integers and strings only.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from packager.errors import InputError


def canonical_json(obj: Any) -> bytes:
    """``obj`` as canonical JSON bytes (see the module docstring)."""
    return json.dumps(
        obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode("utf-8")


def pretty_json(obj: Any) -> bytes:
    """Readable, still deterministic JSON for the files people open (bundle.json, the SBOM):
    sorted keys, 2-space indent, UTF-8, a final newline."""
    return (
        json.dumps(obj, sort_keys=True, indent=2, ensure_ascii=False, allow_nan=False) + "\n"
    ).encode("utf-8")


def read_json_bounded(
    path: Path,
    limit: int,
    *,
    what: str,
    missing_hint: str,
    error: type[InputError] = InputError,
) -> Any:
    """Parse a small JSON file (a lock, a trust policy) without reading more than ``limit`` bytes."""
    try:
        with path.open("rb") as fh:
            raw = fh.read(limit + 1)
    except FileNotFoundError:
        raise error(f"{path}: no such {what}", hint=missing_hint) from None
    except OSError as exc:
        raise error(f"{path}: cannot read: {exc.strerror}") from None
    if len(raw) > limit:
        raise error(f"{path}: larger than {limit // 2**20} MiB; not a {what}")
    try:
        return json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise error(f"{path}: not JSON ({exc})", hint=missing_hint) from None
