"""One stable JSON serialization for everything airgap signs or hashes.

Keys sorted, no whitespace, UTF-8 (not ``\\uXXXX`` escapes), NaN and infinities refused. Equal
objects give equal bytes on every machine and Python version, which is what reproducible builds
and signatures over JSON need. It is not RFC 8785 (JCS): floats are written as Python writes them,
so signed documents should hold integers and strings only.
"""

from __future__ import annotations

import json
from typing import Any


def canonical_json(obj: Any) -> bytes:
    """``obj`` as canonical JSON bytes (see the module docstring)."""
    return json.dumps(
        obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode("utf-8")
