"""What the four image sources share: verified documents, the index walk, platform choice.

A source hands :func:`resolve_tree` its top document (a :class:`ImageDocument`: bytes hashed to their
digest) and two readers, one for manifests and one for image configs; the walk narrows indexes to
the target platform (:func:`choose_platform`), opens entries without a platform field, and checks
the manifest it ends at. :class:`ResolveContext` carries what every message names (the image as the manifest
wrote it, the source, the target) and makes the errors. JSON documents are read bounded
(:data:`MAX_DOCUMENT_BYTES`) and parsed as objects; descriptors are checked to hold a sha256 digest.

:mod:`packager.bundle.images` walks the same trees at build time with these helpers.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from packager.errors import CheckFailed, PinMismatch, ResolveError
from packager.manifest.model import Image
from packager.oci.mediatypes import (
    IMAGE_CONFIG_TYPES,
    IMAGE_INDEX_TYPES,
    IMAGE_MANIFEST_TYPES,
    SCHEMA1_TYPES,
)
from packager.oci.reference import SHA256_DIGEST, ImageReference, Platform, parse_reference
from packager.resolve.lockfile import LockedImage

#: the largest manifest, index, config, index.json or manifest.json read into memory
MAX_DOCUMENT_BYTES = 16 * 1024 * 1024
#: nested indexes followed at most (an index of indexes of ... manifests)
MAX_INDEX_DEPTH = 4
#: index entries without a platform field opened to learn their platform, at most
MAX_UNLABELLED_ENTRIES = 8

_ANY_DIGEST = re.compile(r"^[a-z0-9]+(?:[+._-][a-z0-9]+)*:[a-zA-Z0-9=_-]+\Z")

# ============================================================================ documents


@dataclass(frozen=True)
class ImageDocument:
    """A manifest or index read and verified: its bytes (``raw``) hash to ``digest``."""

    digest: str
    media_type: str | None
    data: dict[str, Any]
    size: int
    raw: bytes = field(default=b"", repr=False, compare=False)

    @property
    def is_index(self) -> bool:
        return document_kind(self.media_type, self.data) == "index"


def document_kind(media_type: str | None, data: dict[str, Any]) -> str:
    mt = data.get("mediaType") if isinstance(data.get("mediaType"), str) else media_type
    if mt in IMAGE_INDEX_TYPES:
        return "index"
    if mt in IMAGE_MANIFEST_TYPES:
        return "manifest"
    if mt in SCHEMA1_TYPES or data.get("schemaVersion") == 1:
        return "schema1"
    if mt is None or mt in ("application/json", "application/octet-stream"):
        if isinstance(data.get("manifests"), list):
            return "index"
        if isinstance(data.get("config"), dict) and isinstance(data.get("layers"), list):
            return "manifest"
    return f"unsupported ({mt})"


@dataclass(frozen=True)
class ResolveContext:
    """What every message names: the image as the manifest wrote it, its source, the target.

    ``mismatch`` is the error raised for content that does not match its digest or size
    (:class:`CheckFailed` when locking; the collection at build time uses the blob store's
    ``BlobMismatch``).
    """

    ref: str
    source: str
    target: Platform
    where: str  # "registry 127.0.0.1:5000", "OCI layout /x", ...
    mismatch: type[CheckFailed] = CheckFailed

    def error(self, message: str, hint: str | None = None) -> ResolveError:
        return ResolveError(f"image {self.ref}: {message}", hint=hint)

    def failed(self, message: str, hint: str | None = None) -> CheckFailed:
        return CheckFailed(f"image {self.ref}: {message}", hint=hint)

    def mismatched(self, message: str, hint: str | None = None) -> CheckFailed:
        """Content that does not hash to (or is not the size of) what its digest promises."""
        return self.mismatch(f"image {self.ref}: {message}", hint=hint)


def sha256_of(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def parse_json_object(ctx: ResolveContext, what: str, data: bytes) -> dict[str, Any]:
    try:
        doc = json.loads(data)
    except (UnicodeDecodeError, ValueError) as exc:
        raise ctx.error(f"{what} in {ctx.where} is not JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise ctx.error(f"{what} in {ctx.where} is not a JSON object")
    return doc


def read_descriptor(
    ctx: ResolveContext, what: str, d: object
) -> tuple[str, int | None, str | None]:
    """(digest, size, mediaType) of a descriptor, the digest checked to be sha256:<64 hex>."""
    if not isinstance(d, dict):
        raise ctx.error(f"{what} in {ctx.where} is not a descriptor object")
    digest = d.get("digest")
    if not isinstance(digest, str) or not SHA256_DIGEST.match(digest):
        if isinstance(digest, str) and _ANY_DIGEST.match(digest):
            raise ctx.error(
                f"{what} in {ctx.where} has digest {digest}: only sha256 digests are supported"
            )
        raise ctx.error(f"{what} in {ctx.where} has no valid digest (found {digest!r})")
    size = d.get("size")
    if size is not None and (not isinstance(size, int) or isinstance(size, bool) or size < 0):
        raise ctx.error(f"{what} {digest} in {ctx.where} has an invalid size {size!r}")
    mt = d.get("mediaType")
    return digest, size, mt if isinstance(mt, str) else None


def verify_bytes(
    ctx: ResolveContext, what: str, data: bytes, expected: str | None, claimed: str | None = None
) -> str:
    """Hash ``data``; it must equal ``expected`` (what led here) and ``claimed`` (a header)."""
    actual = sha256_of(data)
    for want, by in ((expected, "it was asked for by"), (claimed, "the registry claims")):
        if want is not None and want != actual:
            raise ctx.mismatched(
                f"{what} from {ctx.where} does not match its digest: {by} {want}, "
                f"its bytes hash to {actual}",
                hint="the source is corrupt or was tampered with; fetch the image again "
                "from a trusted source",
            )
    return actual


def index_entries(
    ctx: ResolveContext, index: ImageDocument
) -> list[tuple[Platform | None, dict[str, Any]]]:
    entries = index.data.get("manifests")
    if not isinstance(entries, list):
        raise ctx.error(f"index {index.digest} in {ctx.where} has no 'manifests' list")
    out: list[tuple[Platform | None, dict[str, Any]]] = []
    for n, e in enumerate(entries):
        read_descriptor(ctx, f"entry {n} of index {index.digest}", e)
        out.append((Platform.from_json(e.get("platform")), e))
    return out


def choose_platform(
    ctx: ResolveContext, entries: list[tuple[Platform | None, dict[str, Any]]], what: str
) -> tuple[Platform, dict[str, Any]]:
    """The entry whose platform the target accepts (exact or default variant first)."""
    matches = [(p, e) for p, e in entries if p is not None and ctx.target.accepts(p)]
    if not matches:
        available = sorted({str(p) for p, _ in entries if p is not None and p.os != "unknown"})
        has = ", ".join(available) if available else "no platforms"
        raise ctx.failed(
            f"platform {ctx.target} is not in {what}; it has {has}",
            hint=f"use an image built for {ctx.target} (a multi-arch tag that includes it), "
            "or change target.platform",
        )
    matches.sort(key=lambda pe: ctx.target.preference(pe[0]))  # stable: first listed wins ties
    return matches[0]


def _check_pin(
    ctx: ResolveContext, pin: str | None, manifest: str | None, index: str | None
) -> None:
    if pin is None or pin in (manifest, index):
        return
    found = f"found manifest {manifest} for {ctx.target} in {ctx.where}"
    if index:
        found += f", chosen from index {index}"
    raise PinMismatch(
        f"image {ctx.ref}: digest pin does not match: expected {pin}, {found}",
        hint=f"if the image changed on purpose, update digest: to {manifest}; otherwise point the "
        f"reference at the pinned image (NAME@{pin})",
    )


def config_platform(ctx: ResolveContext, config: dict[str, Any], digest: str) -> Platform:
    p = Platform.of(config.get("os"), config.get("architecture"), config.get("variant"))
    if p is None:
        raise ctx.error(f"image config {digest} in {ctx.where} names no os/architecture")
    return p


def check_platform(ctx: ResolveContext, found: Platform, what: str) -> None:
    if not ctx.target.accepts(found):
        raise ctx.failed(
            f"{what} is for {found}, but the target platform is {ctx.target}",
            hint=f"use an image built for {ctx.target} (a multi-arch tag that includes it), "
            "or change target.platform",
        )


def image_manifest_parts(
    ctx: ResolveContext, manifest: ImageDocument
) -> tuple[tuple[str, int, str | None], list[tuple[str, int, str | None]]]:
    """((config digest, size, media type), [(layer digest, size, media type)]) of a manifest."""
    kind = document_kind(manifest.media_type, manifest.data)
    if kind != "manifest":
        raise unsupported(ctx, manifest.digest, kind)
    cdigest, csize, cmt = read_descriptor(
        ctx, f"config of manifest {manifest.digest}", manifest.data.get("config")
    )
    layers_raw = manifest.data.get("layers")
    if not isinstance(layers_raw, list):
        raise ctx.error(f"manifest {manifest.digest} in {ctx.where} has no 'layers' list")
    layers: list[tuple[str, int, str | None]] = []
    for n, layer in enumerate(layers_raw):
        ldigest, lsize, lmt = read_descriptor(
            ctx, f"layer {n} of manifest {manifest.digest}", layer
        )
        if lsize is None:
            raise ctx.error(f"layer {ldigest} of manifest {manifest.digest} has no size")
        layers.append((ldigest, lsize, lmt))
    if csize is None:
        raise ctx.error(f"config {cdigest} of manifest {manifest.digest} has no size")
    return (cdigest, csize, cmt), layers


def unsupported(ctx: ResolveContext, digest: str, kind: str) -> ResolveError:
    if kind == "schema1":
        return ctx.error(
            f"manifest {digest} in {ctx.where} is a docker schema 1 manifest, which is not supported",
            hint="push the image again with a current Docker or skopeo (schema 2 / OCI)",
        )
    return ctx.error(
        f"{digest} in {ctx.where} is not an image manifest or index: {kind}",
        hint="name a container image (OCI or docker schema 2)",
    )


def resolve_tree(
    ctx: ResolveContext,
    top: ImageDocument,
    fetch_manifest: Callable[[str, int | None, str | None], ImageDocument],
    read_config: Callable[[str, int], bytes],
) -> tuple[ImageDocument, ImageDocument | None, Platform]:
    """From ``top`` (an index or a manifest) to (platform manifest, outermost index, platform).

    An index is narrowed to the target platform by its entries' platform fields. Entries without
    one are opened: a nested index contributes its entries, an image manifest the platform of its
    config. A manifest reached without an index has its config read to check its platform.
    """
    fetched: dict[str, ImageDocument] = {}
    unlabelled = 0

    def fetch(entry: dict[str, Any]) -> ImageDocument:
        digest, size, mt = read_descriptor(ctx, "index entry", entry)
        if digest not in fetched:
            fetched[digest] = fetch_manifest(digest, size, mt)
        return fetched[digest]

    def candidates(
        index: ImageDocument, depth: int
    ) -> list[tuple[Platform | None, dict[str, Any]]]:
        nonlocal unlabelled
        out: list[tuple[Platform | None, dict[str, Any]]] = []
        for platform, entry in index_entries(ctx, index):
            if platform is not None or unlabelled >= MAX_UNLABELLED_ENTRIES:
                out.append((platform, entry))
                continue
            unlabelled += 1
            child = fetch(entry)
            if child.is_index:
                if depth >= MAX_INDEX_DEPTH:
                    raise ctx.error(f"indexes in {ctx.where} nest deeper than {MAX_INDEX_DEPTH}")
                out.extend(candidates(child, depth + 1))
            elif document_kind(child.media_type, child.data) == "manifest":
                out.append((_manifest_platform(ctx, child, read_config, artifacts=True), entry))
        return out

    index = top if top.is_index else None
    doc = top
    chosen: Platform | None = None
    depth = 0
    while doc.is_index:
        depth += 1
        if depth > MAX_INDEX_DEPTH:
            raise ctx.error(f"indexes in {ctx.where} nest deeper than {MAX_INDEX_DEPTH}")
        chosen, entry = choose_platform(ctx, candidates(doc, depth), f"index {doc.digest}")
        doc = fetch(entry)
    kind = document_kind(doc.media_type, doc.data)
    if kind != "manifest":
        raise unsupported(ctx, doc.digest, kind)
    if chosen is None:
        chosen = _manifest_platform(ctx, doc, read_config, artifacts=False)
        if chosen is None:
            raise ctx.error(
                f"the image config of manifest {doc.digest} in {ctx.where} names no "
                "os/architecture",
                hint="this is not a container image for a platform",
            )
        check_platform(ctx, chosen, f"the image (manifest {doc.digest})")
    return doc, index, chosen


def _manifest_platform(
    ctx: ResolveContext,
    manifest: ImageDocument,
    read_config: Callable[[str, int], bytes],
    *,
    artifacts: bool,
) -> Platform | None:
    """The platform an image manifest's config names, if it names one.

    With ``artifacts``, a manifest whose config is not an image config (a signature, an SBOM)
    is skipped without reading its config.
    """
    (cdigest, csize, cmt), _layers = image_manifest_parts(ctx, manifest)
    if artifacts and cmt is not None and cmt not in IMAGE_CONFIG_TYPES:
        return None
    config = parse_json_object(ctx, f"image config {cdigest}", read_config(cdigest, csize))
    return Platform.of(config.get("os"), config.get("architecture"), config.get("variant"))


def locked_from_manifest(
    image: Image,
    ctx: ResolveContext,
    manifest: ImageDocument,
    index: ImageDocument | None,
    platform: Platform,
) -> LockedImage:
    (cdigest, csize, _), layers = image_manifest_parts(ctx, manifest)
    index_digest = index.digest if index else None
    _check_pin(ctx, image.digest, manifest.digest, index_digest)
    return LockedImage(
        ref=image.ref,
        source=image.source,
        platform=str(platform),
        config_digest=cdigest,
        size=csize + sum(size for _, size, _ in layers),
        manifest_digest=manifest.digest,
        index_digest=index_digest,
        media_type=media_type_of(manifest),
        layers=tuple(d for d, _, _ in layers),
    )


def media_type_of(doc: ImageDocument) -> str | None:
    mt = doc.data.get("mediaType")
    return mt if isinstance(mt, str) else doc.media_type


# ============================================================================ errors, files, names


_REASONS = (
    re.compile(r"\[Errno -?\d+\] ([^'\")\]]+)"),  # [Errno 111] Connection refused
    re.compile(r"(\[SSL: [A-Z0-9_]+\] [^'\"(]+)"),  # [SSL: WRONG_VERSION_NUMBER] wrong version
    re.compile(r"[A-Za-z]+Error\(-?\d+, '([^']+)'\)"),  # FileNotFoundError(2, 'No such file ...')
)


def short_reason(exc: BaseException) -> str:
    """The operating system's words from a requests/urllib3 exception, else its text, shortened."""
    text = str(exc)
    for pattern in _REASONS:
        m = pattern.search(text)
        if m:
            return m.group(1).strip()
    return text if len(text) <= 200 else text[:200] + "..."


def read_bounded_file(ctx: ResolveContext, path: Path, what: str) -> bytes:
    try:
        with path.open("rb") as fh:
            data = fh.read(MAX_DOCUMENT_BYTES + 1)
    except OSError as exc:
        raise ctx.error(f"{what}: cannot read {path}: {exc.strerror}") from None
    if len(data) > MAX_DOCUMENT_BYTES:
        raise ctx.error(f"{what} ({path}) is larger than {MAX_DOCUMENT_BYTES} bytes")
    return data


def ref_names(ref: str) -> tuple[set[str], ImageReference | None]:
    """Annotation values that name ``ref``: the ref itself and its tag; and the parsed ref."""
    names = {ref}
    try:
        parsed = parse_reference(ref)
    except ResolveError:
        return names, None
    if parsed.tag:
        names.add(parsed.tag)
    return names, parsed


def name_matches(name: str, names: set[str], parsed: ImageReference | None) -> bool:
    if name in names:
        return True
    if parsed is None or ("/" not in name and ":" not in name):
        return False
    try:
        other = parse_reference(name)
    except ResolveError:
        return False
    return (other.host, other.repository, other.tag) == (parsed.host, parsed.repository, parsed.tag)
