"""Verifying a bundle as it travels (tar, parts or folder): the I/O around packager.bundle.checks.

Cheap before expensive, so a wrong key or a broken copy fails in seconds, not after hashing
hundreds of GB:

1. :meth:`Verifier.preflight` (reads headers and a few KB): every part present at its size, the
   archive readable with nothing after its end, the signatures over ``bundle.json`` against the
   policy, the descriptor parsed into typed data, its validity and age. Callers that have cheap
   checks of their own (install: version rules, free space, the engine) run them after it.
2. :meth:`Verifier.complete`: nothing missing, extra or of the wrong size, then every blob and
   listed file re-hashed in parallel (only those of the right size: a sparse giant is never read),
   index.json and the OCI manifests consistent with the descriptor, the attestation. When content
   does not match, the parts are hashed too, to name the damaged one.

Every small file a verdict rests on (bundle.json, the counted signatures and their time records,
the attestation, the covered airgap/ files) is kept in :attr:`VerifyReport.verified` exactly as it
was checked, so install writes those bytes rather than reading the bundle again.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import os
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

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
from packager.bundle.combined import select as select_target
from packager.bundle.descriptor import CoveredFile, Descriptor, content_bytes, parse_descriptor
from packager.bundle.errors import BundleFormatError, DescriptorError
from packager.bundle.parts import PartsIndex
from packager.bundle.reader import Bundle, Member, open_bundle, parts_of
from packager.signing.trust import Policy
from packager.util.forked import Forked, worth_forking
from packager.util.hashing import sha256_file
from packager.util.progress import Reporter

if TYPE_CHECKING:  # imported where used: a bundle without a model signature never needs x509
    from packager.bundle.base import BlobSource
    from packager.bundle.model_signature import ModelSignatureStatus
    from packager.signing.intoto import Provenance

MAX_SIGNATURE_BYTES = 4096
MAX_MANIFEST_BYTES = 16 * 1024 * 1024
#: covered files up to this size are read once and kept (the probe, the SBOM, index.json)
MAX_KEPT_FILE_BYTES = 64 * 1024 * 1024


@dataclass
class VerifyReport:
    bundle: Path | str  # a path, or the oci:// address it was pulled from
    digest: str | None = None
    descriptor: Descriptor | None = None
    #: the build provenance, when the attestation is signed by a trusted key and its subjects
    #: are the bundle's blobs; else None (never shown)
    provenance: Provenance | None = None
    signers: list[tuple[str, str]] = field(default_factory=list)  # (keyid, name)
    #: keyid -> when it signed, for the counted signatures with a signing-time record
    signed_at: dict[str, _dt.datetime] = field(default_factory=dict)
    failures: list[Failure] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    #: blobs (blobs/sha256/...) whose digest was checked: the count inspect shows too
    blobs_checked: int = 0
    #: the bundle's other listed files checked (airgap/, index.json, oci-layout)
    files_checked: int = 0
    bytes_hashed: int = 0
    seconds: float = 0.0
    #: member name -> the bytes that were checked (see the module docstring)
    verified: dict[str, bytes] = field(default_factory=dict, repr=False)
    #: airgap/model.sig: signed by a trusted key, absent, invalid (packager.bundle.model_signature)
    model_signature: ModelSignatureStatus | None = None
    #: the targets of a combined bundle (packager.bundle.combined), all verified; [] otherwise
    targets: list[str] = field(default_factory=list)
    #: a delta: the blobs it leaves out, their bytes, and where they were checked (None: nowhere)
    not_carried: int = 0
    not_carried_bytes: int = 0
    #: and the site-kit wheels it leaves out (each read from the base into :attr:`verified`)
    not_carried_files: int = 0
    not_carried_files_bytes: int = 0
    base_checked_in: str | None = None

    @property
    def ok(self) -> bool:
        return not self.failures

    def to_json(self) -> dict[str, Any]:
        b = self.descriptor.bundle if self.descriptor is not None else None
        return {
            "bundle": str(self.bundle),
            "ok": self.ok,
            "verified": self.ok,
            "digest": self.digest,
            "name": b.name if b else None,
            "version": b.version if b else None,
            "target": b.target if b and not self.targets else None,
            **({"targets": self.targets} if self.targets else {}),
            "signers": [
                {
                    "keyid": k,
                    "name": n,
                    "signed": _iso(self.signed_at.get(k)),
                }
                for k, n in self.signers
            ],
            "model_signature": self.model_signature.to_json()
            if self.model_signature is not None
            else None,
            "delta": {
                "base": self.descriptor.delta.base.to_json(),
                "not_carried": self.not_carried,
                "not_carried_bytes": self.not_carried_bytes,
                "not_carried_files": self.not_carried_files,
                "not_carried_files_bytes": self.not_carried_files_bytes,
                "checked_in": self.base_checked_in,
            }
            if self.descriptor is not None and self.descriptor.delta is not None
            else None,
            "failures": [f.to_json() for f in self.failures],
            "notes": self.notes,
            "blobs_checked": self.blobs_checked,
            "files_checked": self.files_checked,
            "bytes_hashed": self.bytes_hashed,
            "seconds": round(self.seconds, 3),
        }


def failures_text(report: VerifyReport, shown: int = 12) -> str:
    """``N failure(s)`` and the first ``shown`` of them, one per indented line."""
    lines = [str(f) for f in report.failures[:shown]]
    more = len(report.failures) - len(lines)
    return (
        f"{len(report.failures)} failure(s)\n  "
        + "\n  ".join(lines)
        + (f"\n  ... and {more} more" if more > 0 else "")
    )


def _iso(when: _dt.datetime | None) -> str | None:
    return when.strftime("%Y-%m-%dT%H:%M:%SZ") if when is not None else None


class MemberCopier(Protocol):
    """Copies a blob member while it is hashed, where the caller keeps the copy (install:
    packager.site.prestore): the verification reads that member once, for both."""

    def wants(self, member: str, size: int) -> bool:
        """Whether this member is to be copied (asked before any byte of it is read)."""
        ...

    def copy(
        self, bundle: Bundle, member: str, size: int, progress: Callable[[int], None] | None
    ) -> str | None:
        """Its sha256 (hex), of the bytes copied; None when it could not be copied (then it
        is hashed as any other member)."""
        ...


def _workers() -> int:
    return min(8, max(2, os.cpu_count() or 2))


class _Stopped(Exception):
    """An early hash that is no longer wanted."""


class _EarlyHashes:
    """Every blob member hashed in the background from the moment the archive is scanned, while
    the signatures and the descriptor are checked: on a large bundle that hides the start-up
    work (imports, the schema, the signatures) behind the hashing, which is the floor.

    Hashing is not trusting: nothing read here is used except as a digest that
    :meth:`Verifier.complete` compares with what the verified descriptor says. When the cheap
    checks fail, :meth:`stop` ends every hash at its next chunk (a wrong key still fails in
    seconds); a member the descriptor lists at another size, or not at all, is dropped as soon as
    that is known."""

    def __init__(self) -> None:
        self._pool: ThreadPoolExecutor | None = None
        self._futures: dict[str, Future[tuple[str, int]]] = {}
        #: small members hashed in batches: member -> the batch's future
        self._batched: dict[str, Future[dict[str, tuple[str, int]]]] = {}
        self._stopped = threading.Event()
        self._wanted: set[str] | None = None
        self._lock = threading.Lock()
        self._pending = 0  # bytes hashed before the progress phase began
        self._advance: Any = None

    def start(self, bundle: Bundle, copier: MemberCopier | None = None) -> None:
        """Hash every blob member in the background; those ``copier`` wants are left to
        :meth:`Verifier.complete` (copied only once the signatures held)."""
        members = bundle.members()
        names = sorted(
            (
                n
                for n, m in members.items()
                if m.kind == "file"
                and n.startswith(layout.BLOBS_DIR + "/")
                and not (copier is not None and copier.wants(n, m.size))
            ),
            key=lambda n: -members[n].size,
        )
        if not names:
            return
        self._pool = ThreadPoolExecutor(_workers(), thread_name_prefix="verify-early")
        for batch in _batches(names, members):
            if len(batch) == 1:
                self._futures[batch[0]] = self._pool.submit(self._hash, bundle, batch[0])
                continue
            shared = self._pool.submit(self._hash_batch, bundle, batch)
            for n in batch:
                self._batched[n] = shared

    def _hash(self, bundle: Bundle, name: str) -> tuple[str, int]:
        def tick(n: int) -> None:
            if self._stopped.is_set() or (self._wanted is not None and name not in self._wanted):
                raise _Stopped
            self._progress(n)

        tick(0)
        return bundle.hash_member(name, tick)

    def _hash_batch(self, bundle: Bundle, names: list[str]) -> dict[str, tuple[str, int]]:
        """Small members one after the other in one task (a future per member would cost more
        than its hashing); a member no longer wanted is skipped, and :meth:`stop` ends the batch
        at its next member."""
        out: dict[str, tuple[str, int]] = {}
        done = 0
        wanted = self._wanted
        try:
            for name, hexd, size in bundle.hash_members(
                names if wanted is None else [n for n in names if n in wanted]
            ):
                if self._stopped.is_set():
                    raise _Stopped
                if self._wanted is not None and name not in self._wanted:
                    continue  # no longer wanted since the batch began
                out[name] = (hexd, size)
                done += size
        finally:
            self._progress(done)
        return out

    def _progress(self, n: int) -> None:
        with self._lock:
            advance = self._advance
            if advance is None:
                self._pending += n
        if advance is not None:
            advance(n)

    def keep_only(self, wanted: set[str]) -> None:
        self._wanted = wanted
        for n, f in self._futures.items():
            if n not in wanted:
                f.cancel()
        batches = {id(b): b for b in self._batched.values()}
        keep = {id(self._batched[n]) for n in wanted if n in self._batched}
        for key, batch in batches.items():
            if key not in keep:  # none of its members is wanted
                batch.cancel()

    def report_to(self, advance: Any) -> None:
        """From now on, progress goes to ``advance`` (with what was hashed so far)."""
        with self._lock:
            self._advance = advance
            pending, self._pending = self._pending, 0
        if pending:
            advance(pending)

    def result(self, name: str) -> tuple[str, int] | None:
        """The member's hash, or None when it was not hashed early (then hash it now)."""
        batch = self._batched.get(name)
        if batch is not None:
            if batch.cancelled():
                return None
            try:
                return batch.result().get(name)
            except _Stopped:
                return None
        f = self._futures.get(name)
        if f is None or f.cancelled():
            return None
        try:
            return f.result()
        except _Stopped:
            return None

    def stop(self) -> None:
        self._stopped.set()
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None


#: members up to this size are hashed in batches of up to BATCH_MEMBERS members or BATCH_BYTES
BATCH_MAX_MEMBER = 256 * 1024
BATCH_MEMBERS = 256
BATCH_BYTES = 16 * 1024 * 1024


def _batches(names: list[str], members: dict[str, Member]) -> list[list[str]]:
    """``names`` in the order given, the small ones grouped (a large member is a batch alone)."""
    out: list[list[str]] = []
    current: list[str] = []
    size = 0
    for n in names:
        s = members[n].size
        if s > BATCH_MAX_MEMBER:
            out.append([n])
            continue
        if current and (len(current) >= BATCH_MEMBERS or size + s > BATCH_BYTES):
            out.append(current)
            current, size = [], 0
        current.append(n)
        size += s
    if current:
        out.append(current)
    return out


def _hash_all(
    b: Bundle, names: list[str], advance: Any, copier: MemberCopier | None = None
) -> dict[str, str]:
    """sha256 hex of each member in ``names``, in parallel (small ones in batches); a member
    ``copier`` wants is hashed while it copies it."""
    if not names:
        return {}
    members = b.members()

    def batch(group: list[str]) -> list[tuple[str, str]]:
        if len(group) == 1:
            name, size = group[0], members[group[0]].size
            if copier is not None and copier.wants(name, size):
                copied = copier.copy(b, name, size, advance)
                if copied is not None:
                    return [(name, copied)]
            return [(name, b.hash_member(name, advance)[0])]
        got = list(b.hash_members(group))
        advance(sum(size for _, _, size in got))
        return [(n, h) for n, h, _ in got]

    with ThreadPoolExecutor(_workers(), thread_name_prefix="verify") as pool:
        return {n: h for done in pool.map(batch, _batches(names, members)) for n, h in done}


@dataclass(frozen=True)
class _Judged:
    """The documents' verdicts (:meth:`Verifier._documents`): computed on another core, so
    plain data only."""

    consistency: list[Failure]  # check_consistency (see _consistency)
    envelope: bytes | None  # the attestation's bytes as read
    attestation: tuple[Provenance | None, str | None, str | None]  # attestation_verdict
    signature: bytes | None  # model.sig's bytes as read
    model_signature: tuple[ModelSignatureStatus, list[Failure]] | None  # model_signature.check
    signature_unreadable: str | None  # why model.sig could not be read


def _consistency(
    doc: Descriptor,
    index: tuple[str, bytes | None] | None,
    manifests: Sequence[tuple[str, bytes | None]],
) -> list[Failure]:
    """:func:`check_consistency` over index.json and the OCI manifests read as the descriptor
    lists them (``index``: its listed sha256 and its bytes; ``manifests``: each manifest blob's
    digest and bytes, None where the archive lacks it at its size): only bytes whose sha256 is
    the listed one are judged (the others are named by the content checks, as damaged)."""
    if index is None or index[1] is None or hashlib.sha256(index[1]).hexdigest() != index[0]:
        return []  # already named: missing, or not what bundle.json says
    good = {
        digest: raw
        for digest, raw in manifests
        if raw is not None and "sha256:" + hashlib.sha256(raw).hexdigest() == digest
    }
    return check_consistency(doc, index[1], good)


class Verifier:
    """One verification of one bundle; a context manager that holds the bundle open."""

    def __init__(
        self,
        path: Path,
        policy: Policy,
        *,
        now: _dt.datetime | None = None,
        reporter: Reporter | None = None,
        target: str | None = None,
        hash_cache: dict[str, tuple[str, int]] | None = None,
        base: BlobSource | None = None,
        hash_early: bool = True,
        choose_target: Callable[[Bundle], str | None] | None = None,
        opened: Bundle | None = None,
        copier: MemberCopier | None = None,
    ) -> None:
        """``hash_early``: hash the blobs in the background during :meth:`preflight` (False for
        callers that stop after it). ``choose_target``: with no ``target``, asked once the
        bundle is open which target of a combined bundle to verify (install: the one this host
        fits), so that the bundle's members are read once. ``opened``: ``path`` already opened
        by the caller (the Verifier closes it). ``copier``: blob members it wants are copied
        while :meth:`complete` hashes them (install), never before the signatures held."""
        self.path = path
        self.policy = policy
        #: which target of a combined bundle (packager.bundle.combined); for a single-target
        #: bundle, the target it must be for (None: any)
        self.target = target
        self._hash_cache = hash_cache
        #: where a delta's left-out blobs are read (a base bundle, a site's store)
        self.base = base
        self.now = now or _dt.datetime.now(_dt.timezone.utc)
        self.rep = reporter or Reporter()
        self.report = VerifyReport(path)
        self.bundle: Bundle | None = None
        self._parts: list[Path] = []
        self._index: PartsIndex | None = None
        self._t0 = time.perf_counter()
        self._early = _EarlyHashes()
        self._hash_early = hash_early
        self._choose_target = choose_target
        self._opened = opened
        self.copier = copier
        #: the documents' judgement, started when preflight held (see _judge)
        self._judging: Forked[_Judged] | None = None

    def __enter__(self) -> Verifier:
        return self

    def __exit__(self, *exc: object) -> None:
        self._early.stop()
        if self._judging is not None:  # complete() was not called after all
            self._judging.close()
            self._judging = None
        if self.bundle is not None:
            self.bundle.close()
        elif self._opened is not None:
            self._opened.close()
        self.report.seconds = time.perf_counter() - self._t0

    def _fail(self, check: str, subject: str, message: str) -> None:
        self.report.failures.append(Failure(check, subject, message))

    # ------------------------------------------------------------------ 1. cheap checks

    def preflight(self) -> bool:
        """Parts, archive, signatures, descriptor, validity: True when all hold so far."""
        try:
            if not self._parts_present():
                return False
            self.bundle = self._opened or open_bundle(self.path)
            self._opened = None  # the Verifier's own now: closed as self.bundle
            self.bundle.members()
        except BundleFormatError as exc:
            self._fail("layout", str(self.path), exc.message)
            self._name_damaged_parts()
            return False
        if self.target is None and self._choose_target is not None:
            self.target = self._choose_target(self.bundle)
        self.bundle = select_target(self.bundle, self.target, self.path, self._hash_cache)
        for problem in self.bundle.problems:
            self._fail("layout", str(self.path), problem)
        if not self.bundle.problems and self._hash_early:
            self._early.start(self.bundle, self.copier)
        if self._signatures() and self.report.ok:
            if self._hash_early:  # complete() follows: its documents judged from now on
                self._judging = self._judge()
            return True
        self._early.stop()  # nothing is trusted: read no more
        return False

    def _judge(self) -> Forked[_Judged]:
        """:meth:`_documents`'s judgement, on another core for an archive of many members."""
        assert self.bundle is not None and self.report.descriptor is not None
        many = worth_forking(len(self.bundle.observed))
        return Forked(self._documents(self.report.descriptor), fork=many)

    def _parts_present(self) -> bool:
        """Every part the index lists, at its size (sizes only: hashing comes later if needed)."""
        self._parts, self._index = parts_of(self.path)
        if self._index is None:
            return True
        seen = [
            PartSeen(p.name, p.stat().st_size if p.is_file() else None, want.sha256)
            for p, want in zip(self._parts, self._index.parts)
        ]
        stem = self._index.stem
        names = {p.name for p in self._parts}
        others = [
            PartSeen(p.name, p.stat().st_size, None)
            for p in sorted(self.path.parent.glob(f"{layout.tar_name(stem)}.[0-9][0-9][0-9]"))
            if p.name not in names
        ]
        self.report.failures += check_parts(self._index, seen, others)
        listed = sum(p.size for p in self._index.parts)
        if self._index.total_size != listed:
            self._fail(
                "parts",
                self.path.name,
                f"total_size {self._index.total_size} is not the sum of its parts' sizes ({listed})",
            )
        return self.report.ok

    def _signatures(self) -> bool:
        b = self.bundle
        assert b is not None
        members = b.members()
        try:
            whole = b.descriptor_bytes()
            raw = content_bytes(whole)  # a delta's: without its delta record (what was signed)
        except (BundleFormatError, DescriptorError) as exc:
            self._fail("signatures", layout.BUNDLE_JSON, exc.message)
            return False
        self.report.digest = "sha256:" + hashlib.sha256(raw).hexdigest()
        if self._index is not None and self._index.digest != self.report.digest:
            self._fail(
                "parts",
                self.path.name,
                f"the parts index is for content {self._index.digest}, the parts hold "
                f"{self.report.digest} (an index of another build, or a part of one)",
            )
            self._name_damaged_parts()  # which part, when a part was swapped in
        files = {
            name: b.read(name, MAX_SIGNATURE_BYTES)
            if m.size <= MAX_SIGNATURE_BYTES
            else b"\0" * (MAX_SIGNATURE_BYTES + 1)
            for name, m in members.items()
            if name.startswith(layout.SIGNATURES_DIR + "/") and m.kind == "file"
        }
        verdict = check_signatures(raw, files, self.policy)
        self.report.failures += verdict.failures
        self.report.notes += verdict.notes
        self.report.signers = [(k, self.policy.name_of(k)) for k in verdict.valid]
        self.report.signed_at = dict(verdict.signed_at)
        if verdict.failures:  # fail fast: nothing is trusted, so nothing more is read
            return False
        self.report.verified[layout.BUNDLE_JSON] = raw
        for kid in verdict.valid:
            for name in (layout.signature_path(kid), layout.signing_time_path(kid)):
                if name in files:
                    self.report.verified[name] = files[name]
        try:
            doc = parse_descriptor(whole)
        except DescriptorError as exc:
            self._fail("layout", layout.BUNDLE_JSON, exc.message)
            return False
        self.report.descriptor = doc
        if self.target is not None and doc.bundle.target != self.target:
            self._fail(
                "target",
                layout.BUNDLE_JSON,
                f"the bundle is for target {doc.bundle.target or '(none)'}, not {self.target}",
            )
            return False
        self.report.failures += check_expiry(doc, self.policy, self.now, verdict.signed_at)
        return True

    # ------------------------------------------------------------------ 2. the content

    def complete(self) -> VerifyReport:
        """Everything else (see the module docstring); call after :meth:`preflight` held."""
        b, doc = self.bundle, self.report.descriptor
        assert b is not None and doc is not None
        members = b.members()
        judged, self._judging = self._judging or self._judge(), None  # (once per call)
        with judged:
            return self._complete(b, doc, members, judged)

    def _complete(
        self, b: Bundle, doc: Descriptor, members: dict[str, Member], judged: Forked[_Judged]
    ) -> VerifyReport:
        """:meth:`complete`'s work, while ``judged`` (index.json and the OCI manifests, the
        attestation and model.sig) is computed on another core."""
        self.report.failures += check_members(
            doc, [Observed(name, kind, size) for name, kind, size in b.observed]
        )
        wanted = {x.member: x.size for x in doc.blobs} | {f.path: f.size for f in doc.files}
        present = [
            name
            for name, size in wanted.items()
            if name in members and members[name].kind == "file" and members[name].size == size
        ]
        small = [n for n in present if not n.startswith(layout.BLOBS_DIR + "/")]
        large = [n for n in present if n.startswith(layout.BLOBS_DIR + "/")]
        self._early.keep_only(set(present))  # a member of another size is never read on
        self.rep.phase("hashing blobs", sum(members[n].size for n in present))
        self._early.report_to(self.rep.advance)
        hashes: dict[str, str] = {}
        for name in small:  # covered files: read once, hashed, kept for install
            data = (
                b.read(name, MAX_KEPT_FILE_BYTES)
                if members[name].size <= MAX_KEPT_FILE_BYTES
                else None
            )
            if data is None:
                hashes[name], _ = b.hash_member(name, self.rep.advance)
                continue
            hashes[name] = hashlib.sha256(data).hexdigest()
            self.rep.advance(len(data))
            self.report.verified[name] = data
        early = {n: self._early.result(n) for n in large}
        hashes.update({n: got[0] for n, got in early.items() if got is not None})
        hashes.update(
            _hash_all(
                b, [n for n, got in early.items() if got is None], self.rep.advance, self.copier
            )
        )
        self.report.blobs_checked = sum(1 for n in present if layout.digest_of_blob_path(n))
        self.report.files_checked = len(present) - self.report.blobs_checked
        self.report.bytes_hashed += sum(members[n].size for n in present)
        mismatched = check_hashes(doc, hashes)
        self.report.failures += mismatched
        for f in doc.files:  # keep only what matched
            if hashes.get(f.path) != f.sha256:
                self.report.verified.pop(f.path, None)
        self._judged(judged.result())
        if doc.delta is not None:
            self._base_blobs(doc)
        if mismatched:
            self._name_damaged_parts()
        return self.report

    def _base_blobs(self, doc: Descriptor) -> list[Failure]:
        """A delta's left-out blobs, hashed where the base is (:attr:`base`): each must be there
        with the content the signed blob list gives it; without a base the delta is not
        verified, and the failure names the base it needs. Returns the content mismatches."""
        from packager.bundle.delta import missing, needs_base, not_carried, not_carried_files

        left_out, kit = not_carried(doc), not_carried_files(doc)
        self.report.not_carried = len(left_out)
        self.report.not_carried_bytes = sum(x.size for x in left_out)
        self.report.not_carried_files = len(kit)
        self.report.not_carried_files_bytes = sum(f.size for f in kit)
        assert doc.delta is not None
        subject = f"delta from {doc.delta.base.version}"
        if self.base is None:
            self._fail(
                "delta",
                subject,
                needs_base(doc, left_out, "this bundle", kit)
                + "; it is verified only with its base: --base OLD or --prefix DIR",
            )
            return []
        base = self.base
        self.report.base_checked_in = base.where
        kit_absent = self._base_kit(base, kit)
        absent = missing(doc, base.has)
        if absent or kit_absent:
            self._fail("delta", subject, needs_base(doc, absent, base.where, kit_absent))
        lacking = {x.digest for x in absent}
        there = [x for x in left_out if x.digest not in lacking]
        self.rep.phase(f"hashing base blobs in {base.where}", sum(x.size for x in there))
        with ThreadPoolExecutor(_workers(), thread_name_prefix="verify-base") as pool:
            got = list(pool.map(lambda x: base.hash(x.hex, self.rep.advance), there))
        self.report.blobs_checked += len(there)
        self.report.bytes_hashed += sum(x.size for x in there) - base.unchanged_bytes
        bad = [
            Failure(
                "blobs",
                f"{base.where}: {x.hex}",
                f"{x.role} blob ({', '.join(x.paths[:2])}) the base supplies: content is "
                f"sha256:{h}, not its digest (damaged or tampered)",
            )
            for x, h in zip(there, got)
            if h != x.hex
        ]
        self.report.failures += bad
        note = base.summary()
        if note is not None:
            self.report.notes.append(note)
        return bad

    def _base_kit(self, base: BlobSource, kit: list[CoveredFile]) -> list[CoveredFile]:
        """The site-kit wheels a delta leaves out, read from ``base`` and hashed: each that
        matches its signed sha256 is kept for install (:attr:`VerifyReport.verified`), each
        that does not is a failure; returns those the base does not hold."""
        absent = []
        for f in kit:
            found = base.kit_file(f.sha256, f.size)
            if found is None:
                absent.append(f)
                continue
            data, where = found
            got = hashlib.sha256(data).hexdigest()
            if got != f.sha256 or len(data) != f.size:
                self._fail(
                    "layout",
                    f"{where} ({f.path})",
                    f"the site-kit wheel the base supplies has sha256 {got} ({len(data)} bytes), "
                    f"not {f.sha256} ({f.size}): damaged or tampered",
                )
                continue
            self.report.verified[f.path] = data
            self.report.files_checked += 1
            self.report.bytes_hashed += f.size
        return absent

    def _documents(self, doc: Descriptor) -> Callable[[], _Judged]:
        """The pure judgement of index.json and the OCI manifests, the attestation and model.sig
        against the verified descriptor (:class:`_Judged`), their bytes read now: the per-entry
        documents of a bundle of many files, judged on another core while this one hashes."""
        from packager.bundle import model_signature
        from packager.signing import dsse, oms

        b = self.bundle
        assert b is not None
        envelope, attestation_unreadable = self._read(layout.ATTESTATION, dsse.MAX_ENVELOPE_BYTES)
        signature, signature_unreadable = (
            self._read(layout.MODEL_SIGNATURE, oms.MAX_SIGNATURE_BYTES)
            if doc.model_signature is not None
            else (None, None)
        )
        policy = self.policy
        members = b.members()

        def listed(name: str, size: int, limit: int) -> bytes | None:
            """A member as the descriptor lists it (its hash is checked where it is used)."""
            m = members.get(name)
            if m is None or m.kind != "file" or m.size != size or size > limit:
                return None
            try:
                return b.read(name, limit)
            except BundleFormatError:  # named by the content checks
                return None

        index_record = next((f for f in doc.files if f.path == layout.INDEX_JSON), None)
        index = (
            (index_record.sha256, listed(index_record.path, index_record.size, MAX_KEPT_FILE_BYTES))
            if index_record is not None
            else None
        )
        manifest_types = set(layout.IMAGE_MANIFEST_TYPES) | set(layout.IMAGE_INDEX_TYPES)
        manifests = [
            (x.digest, listed(x.member, x.size, MAX_MANIFEST_BYTES))
            for x in doc.blobs
            if x.media_type in manifest_types
        ]

        def judge() -> _Judged:
            return _Judged(
                consistency=_consistency(doc, index, manifests),
                envelope=envelope,
                attestation=(
                    attestation_verdict(envelope, doc, policy)
                    if attestation_unreadable is None
                    else (None, f"unreadable: {attestation_unreadable}", None)
                ),
                signature=signature,
                model_signature=(
                    model_signature.check(doc, signature, policy)
                    if signature_unreadable is None
                    else None
                ),
                signature_unreadable=signature_unreadable,
            )

        return judge

    def _read(self, name: str, limit: int) -> tuple[bytes | None, str | None]:
        """A member's bytes (None: not in the archive as a file), or why it cannot be read."""
        b = self.bundle
        assert b is not None
        m = b.members().get(name)
        if m is None or m.kind != "file":
            return None, None
        try:
            return b.read(name, limit), None
        except BundleFormatError as exc:
            return None, exc.message

    def _judged(self, judged: _Judged) -> None:
        """What :meth:`_documents` found, into the report (each of the attestation and model.sig
        kept for install only when it held)."""
        provenance, failure, note = judged.attestation
        if failure is not None:
            self._fail("consistency", layout.ATTESTATION, failure)
        if note is not None:
            self.report.notes.append(note)
        if provenance is not None and judged.envelope is not None:
            self.report.verified[layout.ATTESTATION] = judged.envelope
            self.report.provenance = provenance
        self.report.failures += judged.consistency
        if judged.signature_unreadable is not None:
            self._fail("signatures", layout.MODEL_SIGNATURE, judged.signature_unreadable)
        if judged.model_signature is not None:
            status, failures = judged.model_signature
            self.report.model_signature = status
            self.report.failures += failures
            if status.state == "signed" and judged.signature is not None:
                self.report.verified[layout.MODEL_SIGNATURE] = judged.signature

    def _name_damaged_parts(self) -> None:
        """Hash the parts against the index, to say which copy is damaged (only when needed)."""
        if self._index is None:
            return
        self.rep.phase("checking parts", sum(p.size for p in self._index.parts))

        def seen(p: Path) -> PartSeen:
            if not p.is_file():
                return PartSeen(p.name, None, None)
            d = sha256_file(p, self.rep.advance)
            return PartSeen(p.name, d.size, d.sha256)

        with ThreadPoolExecutor(_workers()) as pool:
            got = list(pool.map(seen, self._parts))
        self.report.bytes_hashed += sum(g.size or 0 for g in got)
        known = {(f.check, f.subject) for f in self.report.failures}
        for f in check_parts(self._index, got, []):
            if (f.check, f.subject) not in known:
                self.report.failures.append(f)


def _open_once(path: Path) -> tuple[Bundle | None, list[str]]:
    """``path`` opened and its members read once: a single-target bundle is returned open, for
    the Verifier to go on with; a combined one is closed (each target gets a Verifier of its
    own) and its targets returned; one that cannot be read is closed (the Verifier names what
    is wrong from an open of its own)."""
    from packager.bundle.combined import targets_of

    if not path.exists():
        return None, []
    try:
        b = open_bundle(path)
    except BundleFormatError:
        return None, []
    try:
        targets = targets_of(b.members())
    except BundleFormatError:
        b.close()
        return None, []
    if targets:
        b.close()
        return None, targets
    return b, []


def verify_bundle(
    path: Path,
    policy: Policy,
    *,
    now: _dt.datetime | None = None,
    reporter: Reporter | None = None,
    target: str | None = None,
    base: BlobSource | None = None,
) -> VerifyReport:
    """The whole verification: :meth:`Verifier.preflight`, then :meth:`Verifier.complete`;
    for a combined bundle, of every target (``target``: of that one only), each against its
    own signatures, and nothing in it that no target claims."""
    from packager.bundle.combined import unclaimed

    opened, targets = (None, []) if target is not None else _open_once(path)
    if not targets:
        with Verifier(
            path, policy, now=now, reporter=reporter, target=target, base=base, opened=opened
        ) as v:
            if v.preflight():
                v.complete()
        return v.report
    cache: dict[str, tuple[str, int]] = {}
    reports = []
    for t in targets:
        with Verifier(path, policy, now=now, reporter=reporter, target=t, hash_cache=cache) as v:
            if v.preflight():
                v.complete()
        reports.append(v.report)
    for r, t in zip(reports, targets):
        r.failures = [Failure(f.check, f"{t}: {f.subject}", f.message) for f in r.failures]
    out = reports[0]
    out.targets = targets
    for r in reports[1:]:
        out.failures += r.failures
        out.notes += r.notes
        out.blobs_checked += r.blobs_checked
        out.seconds += r.seconds
    out.signers = [s for s in out.signers if all(s in r.signers for r in reports)]
    out.bytes_hashed = sum(size for _, size in cache.values())
    with open_bundle(path) as b:
        out.failures += [
            Failure("layout", n, "an extra file that no target's bundle.json lists")
            for n in unclaimed(b, targets)
        ]
    out.notes.append(
        f"a combined bundle of {len(targets)} targets ({', '.join(targets)}): each verified "
        "against its own signed bundle.json; blobs they share were read once"
    )
    return out


def attestation_verdict(
    raw: bytes | None, doc: Descriptor, policy: Policy
) -> tuple[Provenance | None, str | None, str | None]:
    """An attestation's bytes (None: the bundle has none) judged against the descriptor: (the
    provenance to show, a failure, a note). Its payload (the in-toto statement) is covered by
    bundle.json (``attestation``: its sha256): another payload fails, and the provenance shown
    is what the bundle's signers signed. A bundle from before that keeps its provenance unshown
    unless a trusted key signed the envelope itself. Pure: `audit --site` judges an installed
    copy with it too."""
    from packager.signing import dsse, intoto
    from packager.signing.errors import StatementError

    ref = doc.attestation
    if raw is None:
        return None, ("missing (bundle.json lists its payload)" if ref is not None else None), None
    keys = {k: v.public_key for k, v in policy.keys.items() if k not in policy.revoked}
    try:
        check = dsse.check_envelope(dsse.read_envelope(raw, source=layout.ATTESTATION), keys)
    except Exception as exc:  # a damaged envelope is a finding, not a crash
        return None, f"unreadable: {getattr(exc, 'message', exc)}", None
    if ref is not None:
        got = hashlib.sha256(check.payload).hexdigest()
        if (check.payload_type, got, len(check.payload)) != (
            ref.payload_type,
            ref.payload_sha256,
            ref.payload_size,
        ):
            return (
                None,
                f"its statement (sha256 {got}) is not the one bundle.json lists "
                f"({ref.payload_sha256}): a replaced or altered attestation",
                None,
            )
    elif not check.valid_keyids:
        return (
            None,
            None,
            "the attestation is neither listed in bundle.json nor signed by a trusted key "
            "(a bundle from an older airgap): its provenance is ignored",
        )
    try:
        statement = intoto.parse_statement(check.payload)
        provenance = intoto.read_provenance(statement, check.valid_keyids)
    except StatementError as exc:
        return None, exc.message, None
    if {s["digest"]["sha256"] for s in statement["subject"]} != {x.hex for x in doc.blobs}:
        return None, "its subjects are not the blobs bundle.json lists", None
    return provenance, None, None
