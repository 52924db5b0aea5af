"""A command's ``--json`` document on stdout (no rich: the short verify path prints with it)."""

from __future__ import annotations

import json
import sys
from typing import Any


def emit_json(doc: dict[str, Any], *, ok: bool = True) -> None:
    """One JSON document on stdout. Every command's document says ``ok`` (true exactly when the
    command exits 0), first, whatever else it says (``valid``, ``verified``, ``verdict``...)."""
    if "ok" not in doc:
        doc = {"ok": bool(ok), **doc}
    emit_document(doc)


def emit_document(doc: dict[str, Any]) -> None:
    """A document for a file (a have-list), on stdout as it is: no ``ok`` added."""
    sys.stdout.write(json.dumps(doc, indent=2, sort_keys=False) + "\n")
    sys.stdout.flush()
