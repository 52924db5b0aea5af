"""A probe report (``airgap probe --report FILE``, schemas/probe-report.schema.json) read back as
typed data, for the officer's report (`airgap audit --html --probe-report FILE`)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from packager.errors import InputError
from packager.util.jsonio import read_json_bounded
from packager.util.schemas import first_error

MAX_REPORT_BYTES = 16 * 1024 * 1024


@dataclass(frozen=True)
class ProbeCheck:
    id: str
    title: str
    status: str  # PASS | WARN | FAIL | NOT RUN
    reason: str
    remedy: str | None


@dataclass(frozen=True)
class ProbeReport:
    path: Path
    created: str
    host: str  # hostname, OS, arch as one line
    status: str
    counts: dict[str, int]
    checks: tuple[ProbeCheck, ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "path": str(self.path),
            "created": self.created,
            "host": self.host,
            "status": self.status,
            "counts": self.counts,
            "checks": [c.__dict__ for c in self.checks],
        }


def read_probe_report(path: Path) -> ProbeReport:
    """The report at ``path``, schema-checked; InputError naming what is wrong."""
    doc = read_json_bounded(
        path, MAX_REPORT_BYTES, what="probe report",
        missing_hint="write one with `airgap probe ... --report FILE`",
    )  # fmt: skip
    problem = first_error("probe-report", doc)
    if problem is not None:
        raise InputError(
            f"{path}: not a probe report {problem}",
            hint="write one with `airgap probe ... --report FILE`",
        )
    h = doc["host"]
    os_name = h["os"].get("name") or h["os"].get("id") or "?"
    host = f"{h.get('hostname') or '?'}: {os_name}, {h.get('arch') or '?'}"
    return ProbeReport(
        path,
        doc["created"],
        host,
        doc["summary"]["status"],
        dict(doc["summary"]["counts"]),
        tuple(
            ProbeCheck(c["id"], c["title"], c["status"], c["reason"], c["remedy"])
            for c in doc["checks"]
        ),
    )
