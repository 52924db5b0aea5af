"""A command's ``--json`` document on stdout (no rich: the short verify path prints with it)."""

from __future__ import annotations

import sys
from typing import Any

from packager.util.jsonio import indented_json


def emit_json(doc: dict[str, Any], *, ok: bool = True) -> None:
    """One JSON document on stdout. Every command's document says ``ok`` (true exactly when the
    command exits 0), first, whatever else it says (``valid``, ``verified``, ``verdict``...)."""
    if "ok" not in doc:
        doc = {"ok": bool(ok), **doc}
    emit_document(doc)


def emit_document(doc: dict[str, Any]) -> None:
    """A document for a file (a have-list), on stdout as it is: no ``ok`` added."""
    # json.dumps(doc, indent=2), in a walk twice as fast (a have-list of 50,000 blobs)
    sys.stdout.write(indented_json(doc, sort_keys=False, ensure_ascii=True, allow_nan=True) + "\n")
    sys.stdout.flush()
