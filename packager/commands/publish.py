"""`airgap publish BUNDLE oci://HOST[:PORT]/REPO[:TAG]`: a verified bundle into a site registry.

1. The bundle's signatures against the policy (:class:`packager.bundle.verifier.Verifier`), then
   the registry and its login (``/v2/``), then every blob re-hashed: a wrong key or an unreachable
   registry fails in seconds, a damaged bundle before anything is sent.
2. Every blob bundle.json lists, HEAD first: blobs the repository has are not sent again (a second
   publish, or one after an interrupted one, sends only what is missing); the rest streamed from
   the bundle (tar, parts or folder) in parallel, the registry checking each digest.
3. The layout's own files as blobs, every manifest-typed blob as a manifest by digest (children
   first), the files manifest, and the bundle index under the tag (:mod:`packager.bundle.published`).
"""

from __future__ import annotations

import hashlib
import re
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from packager.bundle import layout
from packager.bundle.published import (
    MAX_FILE_BYTES,
    LayoutFile,
    bundle_index,
    files_manifest,
    layout_file,
    push_order,
)
from packager.bundle.pull import MANIFEST_TYPES
from packager.bundle.reader import Bundle
from packager.bundle.store import BlobMismatch
from packager.bundle.verifier import MAX_MANIFEST_BYTES, Verifier, VerifyReport, failures_text
from packager.errors import CheckFailed, InputError
from packager.oci.registry import OciLocation, RegistryClient, RegistryOptions
from packager.signing.trust import Policy
from packager.util.progress import Reporter

_TAG = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]{0,127}")
UPLOAD_WORKERS = 4


class PublishRefused(CheckFailed):
    """The bundle did not verify, or the registry stored something else: nothing is tagged."""


@dataclass
class PublishResult:
    bundle: Path
    destination: str  # oci://HOST/REPO:TAG
    index_digest: str  # what the tag points at
    bundle_digest: str  # sha256 of bundle.json
    name: str
    version: str
    signers: list[tuple[str, str]]
    blobs: int = 0
    blobs_uploaded: int = 0
    blobs_present: int = 0
    bytes_uploaded: int = 0
    manifests_pushed: int = 0
    manifests_present: int = 0
    files: int = 0
    verify_seconds: float = 0.0
    seconds: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": True,
            "bundle": str(self.bundle),
            "destination": self.destination,
            "index_digest": self.index_digest,
            "digest": self.bundle_digest,
            "name": self.name,
            "version": self.version,
            "signers": [{"keyid": k, "name": n} for k, n in self.signers],
            "blobs": self.blobs,
            "blobs_uploaded": self.blobs_uploaded,
            "blobs_present": self.blobs_present,
            "bytes_uploaded": self.bytes_uploaded,
            "manifests_pushed": self.manifests_pushed,
            "manifests_present": self.manifests_present,
            "files": self.files,
            "verify_seconds": round(self.verify_seconds, 3),
            "seconds": round(self.seconds, 3),
        }


def not_verified(source: object, report: VerifyReport, what: str) -> PublishRefused:
    return PublishRefused(
        f"{source} did not verify, {what}: {failures_text(report)}",
        hint="`airgap verify` lists every failure; get an intact copy of the bundle",
    )


def _chunks(b: Bundle, member: str, digest: str) -> Iterator[bytes]:
    """The member's bytes, hashed as they go: a changed blob raises before its last byte."""
    h = hashlib.sha256()
    with b.open_fresh(member) as fh:
        pending = fh.read(1024 * 1024)
        while pending:
            h.update(pending)
            nxt = fh.read(1024 * 1024)
            if not nxt and "sha256:" + h.hexdigest() != digest:
                raise BlobMismatch(
                    f"{b.source}: {member} changed since it was verified; nothing was tagged",
                    hint="publish again from an intact copy",
                )
            yield pending
            pending = nxt


def layout_files(b: Bundle, report: VerifyReport) -> dict[str, bytes]:
    """The layout's own files (everything that is not a blob), as verified where they were."""
    out: dict[str, bytes] = {}
    for name, m in b.members().items():
        if m.kind != "file" or layout.digest_of_blob_path(name) is not None:
            continue
        if not layout.LAYOUT_FILE.fullmatch(name):
            raise PublishRefused(f"{b.source}: {name} is not a file a bundle may hold")
        data = report.verified.get(name)
        out[name] = data if data is not None else b.read(name, MAX_FILE_BYTES)
    return out


def publish(
    path: Path,
    dest: OciLocation,
    policy: Policy,
    options: RegistryOptions,
    *,
    reporter: Reporter | None = None,
) -> PublishResult:
    rep = reporter or Reporter()
    t0 = time.perf_counter()
    if dest.digest is not None:
        raise InputError(
            f"{dest}: publish tags the bundle; give oci://HOST/REPO[:TAG], not a digest"
        )
    with Verifier(path, policy, reporter=rep) as v:
        report = v.report
        if not v.preflight() or report.descriptor is None or report.digest is None:
            raise not_verified(path, report, "nothing was published")
        doc = report.descriptor
        tag = dest.tag or doc.bundle.version
        if not _TAG.fullmatch(tag):
            raise InputError(
                f"{tag!r} is not a valid tag (letters, digits, _ . -; at most 128)",
                hint="give the tag: oci://HOST/REPO:TAG",
            )
        with RegistryClient(dest.host, dest.repository, options, push=True) as client:
            rep.phase(f"checking {dest.host}")
            client.check()
            v.complete()
            if not report.ok:
                raise not_verified(path, report, "nothing was published")
            b = v.bundle
            assert b is not None
            result = PublishResult(
                path, str(dest.with_tag(tag)), "", report.digest, doc.bundle.name,
                doc.bundle.version, report.signers, verify_seconds=report.seconds,
            )  # fmt: skip
            _push(client, b, report, result, rep)
            files = layout_files(b, report)
            entries = [layout_file(p, data) for p, data in files.items()]
            _push_files(client, files, entries, result)
            manifests = {
                x.digest: (b.read(x.member, MAX_MANIFEST_BYTES), x.media_type)
                for x in doc.blobs
                if x.media_type in MANIFEST_TYPES
            }
            accept = ", ".join(sorted(MANIFEST_TYPES))
            for d in push_order({k: raw for k, (raw, _) in manifests.items()}):
                raw, media_type = manifests[d]
                if client.manifest_digest(d, accept) is not None:
                    result.manifests_present += 1
                    continue
                client.put_manifest(d, raw, media_type)
                result.manifests_pushed += 1
            files_raw = files_manifest(entries)
            files_digest = "sha256:" + hashlib.sha256(files_raw).hexdigest()
            client.put_manifest(files_digest, files_raw, layout.OCI_MANIFEST)
            index_raw = bundle_index(
                files[layout.INDEX_JSON], files_raw, report.digest, doc.bundle.name,
                doc.bundle.version, doc.bundle.target,
            )  # fmt: skip
            index_digest = "sha256:" + hashlib.sha256(index_raw).hexdigest()
            said = client.put_manifest(tag, index_raw, layout.OCI_INDEX)
            if said is not None and said != index_digest:
                raise PublishRefused(
                    f"registry {dest.host} stored the bundle index as {said}, not {index_digest}",
                    hint="the registry rewrote the index; use one that stores manifests as they "
                    "are (distribution, Harbor, Zot)",
                )
            result.index_digest = index_digest
    result.seconds = time.perf_counter() - t0
    return result


def _push(
    client: RegistryClient, b: Bundle, report: VerifyReport, result: PublishResult, rep: Reporter
) -> None:
    doc = report.descriptor
    assert doc is not None
    # manifests go up as manifests (by digest, after their blobs), never as blobs
    blobs = {x.digest: x for x in doc.blobs if x.media_type not in MANIFEST_TYPES}
    result.blobs = len(blobs)
    rep.phase(f"publishing to {client.host}", sum(x.size for x in blobs.values()))

    def one(digest: str) -> tuple[bool, int]:
        x = blobs[digest]
        if client.blob_size(digest) == x.size:
            rep.advance(x.size)
            return False, 0

        def counted() -> Iterator[bytes]:
            for chunk in _chunks(b, x.member, digest):
                rep.advance(len(chunk))
                yield chunk

        client.upload_blob(digest, x.size, counted())
        return True, x.size

    with ThreadPoolExecutor(UPLOAD_WORKERS, thread_name_prefix="publish") as pool:
        for sent, size in pool.map(one, sorted(blobs, key=lambda d: -blobs[d].size)):
            if sent:
                result.blobs_uploaded += 1
                result.bytes_uploaded += size
            else:
                result.blobs_present += 1


def _push_files(
    client: RegistryClient,
    files: dict[str, bytes],
    entries: list[LayoutFile],
    result: PublishResult,
) -> None:
    """The layout files and the empty config as blobs (HEAD first)."""
    blobs: dict[str, bytes] = {e.digest: files[e.path] for e in entries}
    empty = layout.OCI_EMPTY_CONTENT
    blobs["sha256:" + hashlib.sha256(empty).hexdigest()] = empty
    result.files = len(entries)
    for digest, data in sorted(blobs.items()):
        if client.blob_size(digest) == len(data):
            continue
        client.upload_blob(digest, len(data), [data])
        result.bytes_uploaded += len(data)
