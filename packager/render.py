"""Rendering results for people (rich) and machines (JSON). The CLI picks one."""

from __future__ import annotations

import json
import sys
from typing import Any

from rich.console import Console
from rich.markup import escape

from packager.errors import AirgapError
from packager.findings import Finding, Severity
from packager.validate import ValidationReport

_STYLE = {Severity.ERROR: "bold red", Severity.WARNING: "yellow", Severity.INFO: "cyan"}

stdout = Console(highlight=False, soft_wrap=True)
stderr = Console(stderr=True, highlight=False, soft_wrap=True)


def emit_json(doc: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(doc, indent=2, sort_keys=False) + "\n")
    sys.stdout.flush()


def finding_line(f: Finding) -> str:
    style = _STYLE[f.severity]
    text = (
        f"{escape(str(f.location))}: [{style}]{f.severity.value} {f.code}[/{style}]: "
        f"{escape(f.message)} [dim]({escape(f.json_path)})[/dim]"
    )
    if f.hint:
        text += f"\n    [dim]hint:[/dim] {escape(f.hint)}"
    return text


def validation(report: ValidationReport) -> None:
    for f in report.findings:
        stdout.print(finding_line(f))
    errors, warnings = report.count(Severity.ERROR), report.count(Severity.WARNING)
    m = report.manifest
    if report.valid and m is not None:
        targets = ", ".join(
            f"{m.bundle_name(t)} ({t.accelerator.vendor} "
            f"{'/'.join(t.accelerator.chips) or 'cpu'}, {t.platform})"
            for t in m.targets
        )
        stdout.print(
            f"[green]valid[/green]: {escape(str(report.path))}: {escape(targets)}"
            + (f"; {warnings} warning(s)" if warnings else "")
        )
    else:
        stdout.print(
            f"[bold red]invalid[/bold red]: {escape(str(report.path))}: "
            f"{errors} error(s), {warnings} warning(s)"
        )


def error(exc: AirgapError, *, as_json: bool) -> None:
    stderr.print(f"[bold red]error:[/bold red] {escape(str(exc))}")
    if exc.hint:
        stderr.print(f"  [dim]hint:[/dim] {escape(exc.hint)}")
    if as_json:
        loc = exc.location
        emit_json(
            {
                "ok": False,
                "error": {
                    "type": type(exc).__name__,
                    "message": exc.message,
                    "hint": exc.hint,
                    "file": loc.file if loc else None,
                    "line": loc.line if loc else None,
                    "column": loc.column if loc else None,
                },
            }
        )
