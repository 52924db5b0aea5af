"""Writing the officer's HTML report (packager.cli.html_report) for `airgap audit --html`."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from packager import __version__
from packager.cli import html_report
from packager.util.fs import atomic_write_text
from packager.util.timefmt import now_utc

if TYPE_CHECKING:
    from packager.commands.audit import AuditReport
    from packager.commands.probe_report import ProbeReport
    from packager.signing.trust import Policy
    from packager.site.integrity import SiteAudit


def probe(path: Path | None) -> ProbeReport | None:
    if path is None:
        return None
    from packager.commands.probe_report import read_probe_report

    return read_probe_report(path)


def _write(path: Path, text: str) -> None:
    from packager.cli import render

    atomic_write_text(path, text)
    render.stderr.print(f"wrote the report {path}")


def bundle_html(path: Path, report: AuditReport, probe: ProbeReport | None) -> None:
    text = html_report.bundle_report(
        report, probe=probe, generated=now_utc(), tool=f"airgap {__version__}"
    )
    _write(path, text)


def site_html(
    path: Path, site: SiteAudit, policy: Policy | None, probe: ProbeReport | None
) -> None:
    from packager.commands.installed_audit import audit_current_versions

    installed = audit_current_versions(site.prefix, site.receipts, policy)
    text = html_report.site_report(
        site, installed, probe=probe, generated=now_utc(), tool=f"airgap {__version__}"
    )
    _write(path, text)
