"""A command's ``--json`` document on stdout (no rich: the short verify path prints with it)."""

from __future__ import annotations

import json
import sys
from typing import Any


def emit_json(doc: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(doc, indent=2, sort_keys=False) + "\n")
    sys.stdout.flush()
