"""Findings: what a check says about an input, with a stable code, a place and a hint."""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from packager.errors import SourceLocation
from packager.util.compat import StrEnum


class Severity(StrEnum):
    ERROR = "error"
    WARNING = "warning"
    INFO = "info"


_RANK = {Severity.ERROR: 0, Severity.WARNING: 1, Severity.INFO: 2}


@dataclass(frozen=True)
class Finding:
    """One result of a check.

    ``code`` is stable across releases (AG1xx schema, AG2xx chip stack, AG3xx platform and
    resources, AG4xx kernels) so that fleets can filter on it.
    """

    severity: Severity
    code: str
    message: str
    location: SourceLocation
    json_path: str
    hint: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "severity": self.severity.value,
            "code": self.code,
            "message": self.message,
            "file": self.location.file,
            "line": self.location.line,
            "column": self.location.column,
            "path": self.json_path,
            "hint": self.hint,
        }

    def sort_key(self) -> tuple[int, int, int, str]:
        return (
            self.location.line or 0,
            self.location.column or 0,
            _RANK[self.severity],
            self.code,
        )


def has_errors(findings: Iterable[Finding]) -> bool:
    return any(f.severity is Severity.ERROR for f in findings)


def did_you_mean(word: str, choices: Sequence[str]) -> str | None:
    """A hint naming the closest known spelling, or None when nothing is close."""
    lowered = {c.lower(): c for c in choices}
    match = difflib.get_close_matches(word.lower(), list(lowered), n=1, cutoff=0.6)
    return f"did you mean {lowered[match[0]]!r}?" if match else None
