"""Where `airgap serve` takes its content from, verified before a byte is served.

A bundle (tar, parts or layout folder): the files it lies in are pinned (identity before
verification), then the whole verification of `airgap verify` runs (signatures against the
policy, every blob re-hashed, index.json and the manifests consistent with bundle.json); one
failure and nothing is served. After it the files must still be the ones pinned (else the bundle
changed while it was read, and nothing is served either). Manifests are read again into memory
and their sha256 checked; blobs are served from where they lie in the pinned files.

Repositories: every image the bundle lists under its reference's repository path without the
registry host (as `install --registry` pushes it: ``10.0.0.5:5000/team/app:2`` is ``team/app:2``),
the tag pointing at what a registry push would (the kept index, else the platform manifest), and
the bundle itself as repository NAME with tag VERSION (``VERSION-TARGET`` for a target's bundle;
``+`` written ``_``) pointing at its index.json, from which every artifact (the ModelPack model,
kernels, wheels, files, the probe) and image is reachable.
"""

from __future__ import annotations

import hashlib
import os
import re
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from packager.bundle import layout
from packager.bundle.descriptor import Descriptor
from packager.bundle.reader import Bundle, FolderBundle, TarBundle, parts_of
from packager.bundle.verifier import MAX_MANIFEST_BYTES, Verifier, VerifyReport
from packager.errors import CheckFailed, InputError
from packager.oci.reference import parse_reference
from packager.serve.catalog import BlobSource, Catalog, FileIdentity, Segment, ServedManifest
from packager.serve.routes import is_name, is_tag
from packager.signing.trust import Policy
from packager.site.images.listing import image_entries
from packager.util.jsonio import DocumentError, parse_document
from packager.util.progress import Reporter

MANIFEST_TYPES = frozenset(layout.IMAGE_MANIFEST_TYPES) | frozenset(layout.IMAGE_INDEX_TYPES)


class NotServable(CheckFailed):
    """The bundle did not verify (or changed while it was verified): nothing is served."""


@dataclass
class Served:
    """The catalog and what it came from, for the start line and ``--json``."""

    source: Path
    kind: str  # bundle
    catalog: Catalog
    bundles: list[dict[str, Any]] = field(default_factory=list)  # name, version, digest, signers
    notes: list[str] = field(default_factory=list)
    verify_seconds: float = 0.0
    bytes_verified: int = 0

    def to_json(self) -> dict[str, Any]:
        return {
            "source": str(self.source),
            "kind": self.kind,
            "bundles": self.bundles,
            "repositories": self.catalog.to_json(),
            "manifests": len(self.catalog.manifests),
            "blobs": len(self.catalog.blobs),
            "bytes": sum(b.size for b in self.catalog.blobs.values()),
            "bytes_verified": self.bytes_verified,
            "verify_seconds": round(self.verify_seconds, 3),
            "notes": self.notes,
        }


def bundle_tag(doc: Descriptor) -> str | None:
    """The tag the bundle's own index is served under: VERSION[-TARGET], ``+`` as ``_``."""
    b = doc.bundle
    text = (f"{b.version}-{b.target}" if b.target else b.version).replace("+", "_")
    return text if is_tag(text) else None


def _pin(path: Path) -> dict[str, FileIdentity]:
    """The identity of every file whose bytes may be served: the parts of a tar (the paths the
    user named, links followed as verify follows them), or a layout folder's blob files (links
    not followed: verify refuses them, and the server opens them with O_NOFOLLOW)."""
    if path.is_dir():
        folder = path / layout.BLOBS_DIR
        try:
            names = sorted(os.listdir(folder))
        except OSError:
            return {}
        files = [folder / n for n in names if re.fullmatch(r"[0-9a-f]{64}", n)]
        follow = False
    else:
        files, _ = parts_of(path)
        follow = True
    out: dict[str, FileIdentity] = {}
    for p in files:
        try:
            st = os.stat(p) if follow else os.lstat(p)
        except OSError:
            continue  # missing: verification names it
        if stat.S_ISREG(st.st_mode):
            out[str(p)] = FileIdentity.of(str(p), st)
    return out


def from_bundle(path: Path, policy: Policy, *, reporter: Reporter | None = None) -> Served:
    """Verify the bundle at ``path`` whole and build the catalog of what it holds."""
    rep = reporter or Reporter()
    before = _pin(path)
    with Verifier(path, policy, reporter=rep) as v:
        if v.preflight():
            v.complete()
        report = v.report
        if not report.ok or report.descriptor is None or v.bundle is None:
            raise _not_verified(path, report)
        catalog = Catalog()
        index_digest = _content(v.bundle, report, before, catalog)
        _repositories(v.bundle, report.descriptor, index_digest, catalog)
    after = _pin(path)
    changed = sorted(n for n in before if before[n] != after.get(n))
    if changed:
        raise NotServable(
            f"{changed[0]} changed while the bundle was verified: nothing is served",
            hint="serve a bundle nothing writes to; copy it first if it is being copied",
        )
    doc = report.descriptor
    return Served(
        source=path,
        kind="bundle",
        catalog=catalog,
        bundles=[
            {
                "name": doc.name,
                "version": doc.version,
                "target": doc.bundle.target,
                "digest": report.digest,
                "signers": [{"keyid": k, "name": n} for k, n in report.signers],
            }
        ],
        verify_seconds=report.seconds,
        bytes_verified=report.bytes_hashed,
    )


def _not_verified(path: Path, report: VerifyReport) -> NotServable:
    lines = [f"{f.check}: {f.subject}: {f.message}" for f in report.failures[:20]]
    more = len(report.failures) - len(lines)
    return NotServable(
        f"{path} did not verify; nothing is served:\n  "
        + "\n  ".join(lines + ([f"... and {more} more"] if more > 0 else [])),
        hint="`airgap verify BUNDLE` shows every failure",
    )


def _segments(b: Bundle, member: str, pinned: dict[str, FileIdentity]) -> tuple[Segment, ...]:
    m = b.members()[member]
    if isinstance(b, FolderBundle):
        ident = pinned.get(str(b.source / member))
        if ident is None or ident.size != m.size:
            raise NotServable(f"{b.source / member}: not the file that was verified")
        return (Segment(ident, 0, m.size),)
    assert isinstance(b, TarBundle)
    out: list[Segment] = []
    start = 0
    for part in b.parts:
        ident = pinned.get(str(part))
        if ident is None:
            raise NotServable(f"{part}: not the file that was verified")
        lo, hi = max(m.offset, start), min(m.offset + m.size, start + ident.size)
        if lo < hi:
            out.append(Segment(ident, lo - start, hi - lo))
        start += ident.size
    if sum(s.length for s in out) != m.size:
        raise NotServable(f"{b.source}: {member} does not lie whole in the parts")
    return tuple(out)


def _content(
    b: Bundle, report: VerifyReport, pinned: dict[str, FileIdentity], catalog: Catalog
) -> str:
    """Every blob bundle.json lists (verified), and every manifest among them read into memory;
    returns the digest of index.json (held as a manifest too)."""
    doc = report.descriptor
    assert doc is not None
    for blob in doc.blobs:
        catalog.blobs[blob.digest] = BlobSource(
            blob.digest, blob.size, _segments(b, blob.member, pinned)
        )
        if blob.media_type in MANIFEST_TYPES and blob.size <= MAX_MANIFEST_BYTES:
            data = b.read(blob.member, MAX_MANIFEST_BYTES)
            add_manifest(catalog, blob.digest, blob.media_type, data)
    index = report.verified.get(layout.INDEX_JSON)  # the bytes verify checked against bundle.json
    if index is None:
        raise NotServable(f"{b.source}: {layout.INDEX_JSON} was not verified")
    digest = "sha256:" + hashlib.sha256(index).hexdigest()
    add_manifest(catalog, digest, layout.OCI_INDEX, index)
    return digest


def add_manifest(catalog: Catalog, digest: str, media_type: str, data: bytes) -> None:
    got = "sha256:" + hashlib.sha256(data).hexdigest()
    if got != digest:
        raise NotServable(f"manifest {digest} reads as {got} now: the bundle changed")
    try:
        doc = parse_document(data)
    except DocumentError as exc:
        raise NotServable(f"manifest {digest} is not a JSON document: {exc}") from None
    own = doc.get("mediaType") if isinstance(doc, dict) else None
    catalog.manifests[digest] = ServedManifest(
        digest, own if isinstance(own, str) and own else media_type, data
    )


def _repositories(b: Bundle, doc: Descriptor, index_digest: str, catalog: Catalog) -> None:
    for image in image_entries(b):
        ref = parse_reference(image.ref)
        if not is_name(ref.repository):
            raise InputError(f"image {image.ref}: {ref.repository!r} cannot be served as a name")
        manifests = {m.digest for m in image.manifests} | {i.digest for i in image.indexes}
        blobs = {x.digest for x in image.blobs()}
        catalog.add(
            ref.repository, ref.tag, image.top.digest, manifests, blobs, f"image {image.ref}"
        )
    name = doc.name
    if not is_name(name):
        raise InputError(f"the bundle's name {name!r} cannot be served as a repository name")
    every = {x.digest for x in doc.blobs}
    catalog.add(
        name,
        bundle_tag(doc),
        index_digest,
        {d for d in every if d in catalog.manifests},
        every,
        f"bundle {doc.name} {doc.version}",
    )


def reachable(catalog: Catalog, top: str) -> tuple[set[str], set[str], set[str]]:
    """(manifests, blobs, missing): what a pull of ``top`` fetches (index entries, configs,
    layers), from the catalog's manifests; ``missing`` what the catalog does not hold."""
    manifests: set[str] = set()
    blobs: set[str] = set()
    missing: set[str] = set()
    todo = [top]
    while todo:
        digest = todo.pop()
        if digest in manifests:
            continue
        m = catalog.manifests.get(digest)
        if m is None:
            missing.add(digest)
            continue
        manifests.add(digest)
        doc = parse_document(m.data)
        for entry in doc.get("manifests") or [] if isinstance(doc, dict) else []:
            if isinstance(entry, dict) and isinstance(entry.get("digest"), str):
                todo.append(entry["digest"])
        refs = [doc.get("config"), *(doc.get("layers") or [])] if isinstance(doc, dict) else []
        for d in refs:
            if isinstance(d, dict) and isinstance(d.get("digest"), str):
                (blobs if d["digest"] in catalog.blobs else missing).add(d["digest"])
    return manifests, blobs, missing
