"""`airgap verify`: parts -> signatures -> every blob re-hashed (in parallel) -> layout -> consistency.

The I/O lives here; every judgement is a pure function of packager.bundle.checks.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import os
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from packager.bundle import layout
from packager.bundle.checks import (
    Failure,
    Observed,
    PartSeen,
    check_consistency,
    check_expiry,
    check_hashes,
    check_members,
    check_parts,
    check_signatures,
)
from packager.bundle.descriptor import Descriptor, parse_descriptor
from packager.bundle.errors import BundleFormatError, DescriptorError
from packager.bundle.reader import Bundle, open_bundle, parts_of
from packager.signing.intoto import Provenance
from packager.signing.trust import Policy
from packager.util.compat import strict_zip
from packager.util.hashing import sha256_file
from packager.util.progress import Reporter

MAX_SIGNATURE_BYTES = 4096
MAX_MANIFEST_BYTES = 16 * 1024 * 1024


@dataclass
class VerifyReport:
    bundle: Path
    digest: str | None = None
    descriptor: Descriptor | None = None
    #: the build provenance, when the attestation is signed by a trusted key and its subjects
    #: are the bundle's blobs; else None (never shown)
    provenance: Provenance | None = None
    signers: list[tuple[str, str]] = field(default_factory=list)  # (keyid, name)
    failures: list[Failure] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    blobs_checked: int = 0
    bytes_hashed: int = 0
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.failures

    def to_json(self) -> dict[str, Any]:
        b = self.descriptor.bundle if self.descriptor is not None else None
        return {
            "bundle": str(self.bundle),
            "verified": self.ok,
            "digest": self.digest,
            "name": b.name if b else None,
            "version": b.version if b else None,
            "target": b.target if b else None,
            "signers": [{"keyid": k, "name": n} for k, n in self.signers],
            "failures": [f.to_json() for f in self.failures],
            "notes": self.notes,
            "blobs_checked": self.blobs_checked,
            "bytes_hashed": self.bytes_hashed,
            "seconds": round(self.seconds, 3),
        }


def _workers() -> int:
    return min(8, max(2, os.cpu_count() or 2))


def _check_parts(path: Path, report: VerifyReport, reporter: Reporter) -> bool:
    """Step 1. False when the parts cannot make a bundle (missing), so later steps cannot run."""
    parts, index = parts_of(path)
    if index is None:
        return True
    reporter.phase("checking parts", sum(p.size for p in index.parts))

    def seen(p: Path) -> PartSeen:
        if not p.is_file():
            return PartSeen(p.name, None, None)
        d = sha256_file(p, reporter.advance)
        return PartSeen(p.name, d.size, d.sha256)

    with ThreadPoolExecutor(_workers()) as pool:
        got = list(pool.map(seen, parts))
    stem = path.name.removesuffix(".airgap.parts.json")
    names = {p.name for p in parts}
    others = [
        PartSeen(p.name, p.stat().st_size, None)
        for p in sorted(path.parent.glob(f"{stem}.airgap.tar.[0-9][0-9][0-9]"))
        if p.name not in names
    ]
    failures = check_parts(index, got, others)
    report.failures += failures
    report.bytes_hashed += sum(g.size or 0 for g in got)
    return not any(g.size is None for g in got)


def _observed(b: Bundle) -> list[Observed]:
    return [Observed(name, kind, size) for name, kind, size in b.observed]


def verify_bundle(
    path: Path, policy: Policy, *, now: _dt.datetime | None = None, reporter: Reporter | None = None
) -> VerifyReport:
    rep = reporter or Reporter()
    t0 = time.perf_counter()
    report = VerifyReport(path)
    moment = now or _dt.datetime.now(_dt.timezone.utc)
    try:
        if not _check_parts(path, report, rep):
            return report
        with open_bundle(path) as b:
            _verify_open(b, policy, moment, report, rep)
    except BundleFormatError as exc:
        report.failures.append(Failure("layout", str(path), exc.message))
    finally:
        report.seconds = time.perf_counter() - t0
    return report


def _verify_open(
    b: Bundle, policy: Policy, now: _dt.datetime, report: VerifyReport, rep: Reporter
) -> None:
    members = b.members()
    # 2. the descriptor and its signatures, before any other byte is trusted
    try:
        raw = b.descriptor_bytes()
    except BundleFormatError as exc:
        report.failures.append(Failure("signatures", layout.BUNDLE_JSON, exc.message))
        return
    report.digest = "sha256:" + hashlib.sha256(raw).hexdigest()
    sigs = {
        name: b.read(name, MAX_SIGNATURE_BYTES)
        if m.size <= MAX_SIGNATURE_BYTES
        else b"\0" * (MAX_SIGNATURE_BYTES + 1)
        for name, m in members.items()
        if name.startswith(layout.SIGNATURES_DIR + "/") and m.kind == "file"
    }
    verdict = check_signatures(raw, sigs, policy)
    report.failures += verdict.failures
    report.notes += verdict.notes
    report.signers = [(k, policy.name_of(k)) for k in verdict.valid]
    try:
        doc = parse_descriptor(raw)
    except DescriptorError as exc:
        report.failures.append(Failure("layout", layout.BUNDLE_JSON, exc.message))
        return
    report.descriptor = doc
    report.failures += check_expiry(doc, policy, now)
    # 3. the layout: nothing extra, nothing missing, no links, no path outside
    report.failures += check_members(doc, _observed(b))
    # 3. every listed blob and file re-hashed, in parallel
    targets = [x.member for x in doc.blobs] + [f.path for f in doc.files]
    present = [t for t in targets if t in members and members[t].kind == "file"]
    rep.phase("hashing blobs", sum(members[t].size for t in present))
    with ThreadPoolExecutor(_workers(), thread_name_prefix="verify") as pool:
        results = list(pool.map(lambda t: b.hash_member(t, rep.advance), present))
    hashes = {t: h for t, (h, _) in strict_zip(present, results)}
    report.blobs_checked = len(present)
    report.bytes_hashed += sum(n for _, n in results)
    report.failures += check_hashes(doc, hashes)
    # 4. consistency of index.json and the OCI manifests with bundle.json
    manifest_types = set(layout.IMAGE_MANIFEST_TYPES) | set(layout.IMAGE_INDEX_TYPES)
    manifests = {
        x.digest: b.read(x.member, MAX_MANIFEST_BYTES)
        for x in doc.blobs
        if x.media_type in manifest_types
        and hashes.get(x.member) == x.hex
        and x.size <= MAX_MANIFEST_BYTES
    }
    index_ok = hashes.get(layout.INDEX_JSON) is not None
    index_bytes = b.read(layout.INDEX_JSON, MAX_MANIFEST_BYTES) if index_ok else None
    report.failures += check_consistency(doc, index_bytes, manifests)
    _check_attestation(b, doc, policy, report)


def _check_attestation(b: Bundle, doc: Descriptor, policy: Policy, report: VerifyReport) -> None:
    """The DSSE envelope, when there is one: its signatures by trusted keys and its subjects."""
    from packager.signing import dsse, intoto
    from packager.signing.errors import StatementError

    if layout.ATTESTATION not in b.members():
        report.notes.append("no attestation in the bundle")
        return
    try:
        env = dsse.envelope_from_json(
            b.read(layout.ATTESTATION, 64 * 1024 * 1024), source=layout.ATTESTATION
        )
        check = dsse.check_envelope(
            env, {k: v.public_key for k, v in policy.keys.items() if k not in policy.revoked}
        )
    except Exception as exc:  # a damaged envelope is a finding, not a crash
        report.failures.append(
            Failure(
                "consistency", layout.ATTESTATION, f"unreadable: {getattr(exc, 'message', exc)}"
            )
        )
        return
    if not check.valid_keyids:
        report.notes.append(
            "the attestation carries no signature by a trusted key: its provenance is ignored"
        )
        return
    try:
        statement = intoto.parse_statement(check.payload)
        provenance = intoto.read_provenance(statement, check.valid_keyids)
    except StatementError as exc:
        report.failures.append(Failure("consistency", layout.ATTESTATION, exc.message))
        return
    subjects = {s["digest"]["sha256"] for s in statement["subject"]}
    if subjects != {x.hex for x in doc.blobs}:
        report.failures.append(
            Failure(
                "consistency",
                layout.ATTESTATION,
                "its subjects are not the blobs bundle.json lists",
            )
        )
        return
    report.provenance = provenance
