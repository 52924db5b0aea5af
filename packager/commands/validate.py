"""`airgap validate`: the schema and the chip stack, before anything is fetched."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from packager.compat import check_manifest
from packager.findings import Finding, Severity, has_errors
from packager.kernels.checks import SUPERSEDED, validate_kernels
from packager.manifest.model import Manifest, load_manifest
from packager.resolve.weights import scan_code


@dataclass(frozen=True)
class ValidationReport:
    path: Path
    manifest: Manifest | None
    findings: tuple[Finding, ...]

    @property
    def valid(self) -> bool:
        return self.manifest is not None and not has_errors(self.findings)

    @property
    def ok(self) -> bool:
        return self.valid

    def count(self, severity: Severity) -> int:
        return sum(1 for f in self.findings if f.severity is severity)

    def to_json(self) -> dict[str, Any]:
        m = self.manifest
        targets = m.targets if m else ()
        return {
            "manifest": str(self.path),
            "valid": self.valid,
            "name": m.name if m else None,
            "version": m.version if m else None,
            "targets": [
                {
                    "id": t.id,
                    "bundle": m.bundle_name(t) if m else "",
                    "platform": t.platform,
                    "vendor": t.accelerator.vendor,
                    "chips": list(t.accelerator.chips),
                    "count": t.accelerator.count,
                }
                for t in targets
            ],
            "summary": {s.value: self.count(s) for s in Severity},
            "findings": [f.to_json() for f in self.findings],
        }


def validate(path: Path, *, scan_model: bool = True) -> ValidationReport:
    """Schema findings first; the stack rules run only on a manifest the schema accepts.

    Then every kernel file that exists is read (packager.kernels.checks, codes AG405..AG419):
    coverage per chip from the binary itself, the entry symbol, declared targets and kind against
    the file, Ascend kernel metadata, test vectors. Where the binary was read, it replaces the
    declared-``targets`` coverage findings (AG401/AG402) of that kernel: the binary is what runs,
    and a declaration that disagrees with it gets AG409.

    With ``scan_model`` the selected model files are read for code that runs at load time
    (AG700-AG702); lock and build leave it to the lock, which reads each file once anyway.
    """
    loaded = load_manifest(path)
    findings = list(loaded.findings)
    if loaded.manifest is not None:
        compat = check_manifest(loaded.manifest)
        kernels = validate_kernels(loaded.manifest)
        findings.extend(
            f for f in compat if not (f.code in SUPERSEDED and f.json_path in kernels.superseded)
        )
        findings.extend(kernels.findings)
        if scan_model:
            findings.extend(scan_code(loaded.manifest))
    return ValidationReport(path, loaded.manifest, tuple(sorted(findings, key=Finding.sort_key)))
