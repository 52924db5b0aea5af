"""`airgap audit BUNDLE`: who signed, how it was built, what it holds, and the verdict.

(`airgap audit --site DIR` is packager.site.integrity.)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from packager.bundle import layout
from packager.bundle.combined import open_target
from packager.bundle.descriptor import BundleMeta, Descriptor, ImageRecord, KernelRecord
from packager.bundle.model_signature import ModelSignatureStatus
from packager.bundle.reader import Bundle
from packager.bundle.sbom import SbomSummary, summarize_sbom
from packager.bundle.verifier import verify_bundle
from packager.commands.inspect_bundle import signature_keyids
from packager.commands.verify import delta_base
from packager.compat.load_code import HEAD_BYTES, MAX_CONFIG_BYTES, CodeFile, code_files, runs_code
from packager.resolve.lockfile import PublisherSignatureRecord
from packager.signing.intoto import Provenance
from packager.signing.trust import Policy

MAX_SBOM_BYTES = 64 * 2**20

#: audit verdicts and their exit codes (CLI contract: 0 ok, 1 a check failed; 3 not checked)
EXIT_CODES = {"PASS": 0, "FAIL": 1, "NOT VERIFIED": 3}


@dataclass(frozen=True)
class Signer:
    keyid: str
    name: str | None  # the policy's name for the key
    algorithm: str | None
    trusted: bool
    revoked: bool
    valid: bool | None  # None: not checked (no policy)

    def to_json(self) -> dict[str, Any]:
        return {
            "keyid": self.keyid,
            "name": self.name,
            "algorithm": self.algorithm,
            "trusted": self.trusted,
            "revoked": self.revoked,
            "valid": self.valid,
        }


@dataclass(frozen=True)
class AuditReport:
    bundle: Path
    meta: BundleMeta
    signers: list[Signer]
    provenance: Provenance | None
    sbom: SbomSummary | None
    sbom_error: str | None
    verdict: str  # PASS | FAIL | NOT VERIFIED
    reasons: list[str] = field(default_factory=list)
    digest: str | None = None
    #: airgap/model.sig as verify found it; None when not verified
    model_signature: ModelSignatureStatus | None = None
    #: the publisher's model signature that `airgap lock` verified (from the signed lock)
    publisher_signature: PublisherSignatureRecord | None = None
    #: what the officer's report shows besides: the policy used, the images and kernels
    policy: Policy | None = None
    images: tuple[ImageRecord, ...] = ()
    kernels: tuple[KernelRecord, ...] = ()
    #: model files that run code at load time, judged against the signed lock's allow_code
    load_code: tuple[CodeFile, ...] = ()
    #: the manifest's model.allow_code as the signed lock recorded it
    allow_code: tuple[str, ...] = ()

    @property
    def allowed_by(self) -> list[str]:
        """Who allowed the code: the keys that signed the bundle (verified ones when checked)."""
        checked = [s for s in self.signers if s.valid]
        return [
            f"{s.name or 'unknown key'} ({s.keyid})"
            for s in (checked or ([] if self.verdict == "PASS" else self.signers))
        ]

    @property
    def exit_code(self) -> int:
        return EXIT_CODES[self.verdict]

    @property
    def ok(self) -> bool:
        return self.exit_code == 0

    def to_json(self) -> dict[str, Any]:
        return {
            "bundle": str(self.bundle),
            "name": self.meta.name,
            "version": self.meta.version,
            "target": self.meta.target,
            "created": self.meta.created,
            "expires": self.meta.expires,
            "signed_at": self.meta.created,
            "signers": [s.to_json() for s in self.signers],
            "provenance": self.provenance.to_json() if self.provenance is not None else None,
            "sbom": self.sbom.to_json()
            if self.sbom is not None
            else ({"error": self.sbom_error} if self.sbom_error else None),
            "verdict": self.verdict,
            "reasons": self.reasons,
            "digest": self.digest,
            "model_signature": self.model_signature.to_json()
            if self.model_signature is not None
            else None,
            "publisher_signature": self.publisher_signature.to_json()
            if self.publisher_signature is not None
            else None,
            "policy": policy_json(self.policy),
            "images": [i.to_json() for i in self.images],
            "kernels": [
                {
                    "name": k.name,
                    "kind": k.kind,
                    "targets": list(k.targets),
                    "coverage": list(k.check.get("coverage", [])),
                    "ok": k.check.get("ok"),
                }
                for k in self.kernels
            ],
            "load_code": {
                "files": [f.to_json() for f in self.load_code],
                "allow_code": list(self.allow_code),
                "allowed_by": self.allowed_by if self.load_code else [],
                "signatures_checked": self.verdict != "NOT VERIFIED",
            },
        }


def policy_json(policy: Policy | None) -> dict[str, Any] | None:
    """The policy an audit used, as the report shows it."""
    if policy is None:
        return None
    return {
        "version": policy.version,
        "threshold": policy.threshold,
        "max_age": policy.max_age_text,
        "keys": [
            {
                "name": k.name,
                "keyid": k.keyid,
                "algorithm": k.algorithm,
                "revoked": k.keyid in policy.revoked,
            }
            for k in policy.keys.values()
        ],
    }


def audit_bundle(
    path: Path,
    policy: Policy | None,
    target: str | None = None,
    *,
    base: Path | None = None,
    prefix: Path | None = None,
) -> AuditReport:
    """The officer's view of ``path``; a delta is verified whole with its ``base`` bundle or
    the store of ``prefix`` (packager.commands.verify.delta_base), else it is not verified."""
    with open_target(path, target) as b:
        _, doc = b.descriptor()
        sig_ids = signature_keyids(b)
        sbom: SbomSummary | None = None
        sbom_error = None
        if layout.SBOM in b.members():
            try:
                sbom = summarize_sbom(b.read(layout.SBOM, MAX_SBOM_BYTES))
            except ValueError:
                sbom_error = "the SBOM is unreadable"
        load_code = _load_code(b, doc)
    report = None
    if policy is not None:
        with delta_base(base, prefix) as source:
            report = verify_bundle(path, policy, target=target, base=source)
    valid = {k for k, _ in report.signers} if report else set()
    signers = []
    for kid in sig_ids:
        key = policy.keys.get(kid) if policy else None
        signers.append(
            Signer(
                kid,
                key.name if key else None,
                key.algorithm if key else None,
                key is not None,
                bool(policy and kid in policy.revoked),
                kid in valid if report else None,
            )
        )
    if report is None:
        verdict = "NOT VERIFIED"
        reasons = ["no trust policy or key given: signatures were not checked"]
    elif report.ok:
        verdict = "PASS"
        reasons = [
            f"signed by {', '.join(n for _, n in report.signers)}; {report.blobs_checked} blobs match"
        ]
    else:
        verdict, reasons = "FAIL", [str(f) for f in report.failures]
    provenance = report.provenance if report is not None else None
    if provenance is None:
        reasons.append(
            "provenance not shown: the attestation is not signed by a trusted key (ignored)"
            if report is not None
            else "provenance not shown: the bundle was not verified"
        )
    if not sig_ids:
        reasons.append("the bundle is UNSIGNED")
    blocked = [f for f in load_code if not f.allowed]
    if blocked:
        verdict = "FAIL"
        reasons += [
            f"{f.path} runs code at load time ({f.kind}, sha256 {f.sha256}) and model.allow_code "
            "does not list it (AG701)"
            for f in blocked
        ]
    return AuditReport(
        path,
        doc.bundle,
        signers,
        provenance,
        sbom,
        sbom_error,
        verdict,
        reasons,
        report.digest if report else None,
        report.model_signature if report else None,
        doc.lock.model.signature,
        policy,
        doc.images,
        doc.kernels,
        tuple(load_code),
        doc.lock.model.allow_code,
    )


def _load_code(b: Bundle, doc: Descriptor) -> list[CodeFile]:
    """The model files that run code at load time: what the signed lock says, and what their
    first bytes in the bundle say (packager.compat.load_code; a bundle made by an airgap that
    did not look is judged by its content), never unpickled."""
    members = b.members()
    files = []
    for f in doc.lock.model.files:
        kind = f.runs_code
        member = layout.blob_path("sha256:" + f.sha256)
        m = members.get(member)
        if kind is None and m is not None and m.kind == "file":
            is_config = f.path.rsplit("/", 1)[-1].lower() == "config.json"
            limit = MAX_CONFIG_BYTES if is_config else HEAD_BYTES
            with b.open_fresh(member) as src:
                head = src.read(min(limit, m.size))
            kind = runs_code(f.path, head, head if is_config else None)
        files.append((f.path, f.sha256, f.size, kind))
    return code_files(files, doc.lock.model.allow_code)
