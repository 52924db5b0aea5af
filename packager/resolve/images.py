"""Resolve a container image to content for one target platform (``airgap lock``).

Four sources, one result (:class:`packager.resolve.lockfile.LockedImage`):

``registry``
    The OCI distribution API through python-dxf. The reference is parsed here
    (:func:`parse_reference`); both OCI and docker schema2 media types are asked for. An index
    (manifest list) is narrowed to the manifest of the target platform and both digests are
    recorded; a single manifest has its config read to check the platform. Every manifest's bytes
    are hashed here and compared with the digest the registry claims and the digest that led to it.
``docker``
    The local engine through the docker SDK (``DOCKER_HOST``). An engine image has no manifest of
    its own: the image ID (config digest) identifies it, and a ``RepoDigests`` entry of the same
    repository, when there is one, gives the manifest digest.
``oci-layout``
    An OCI image layout folder: ``index.json`` entries chosen by their
    ``org.opencontainers.image.ref.name`` annotation, nested indexes descended, every manifest and
    config read checked against its digest, blob paths kept inside the layout.
``docker-archive``
    A ``docker save`` tar, read in place (no extraction): ``manifest.json`` and the image config,
    bounded reads. Layers are recorded as the ``blobs/sha256/<hex>`` names of a Docker 25+ archive,
    else as the config's ``rootfs.diff_ids`` (for the legacy layout, ``<id>/layer.tar`` is the
    uncompressed layer, whose sha256 is its diff id), so the lock never hashes gigabytes.

Every failure is a :mod:`packager.errors` exception naming the image reference, what was expected
and what was found, with a hint: :class:`ResolveError` (exit 2) for input that cannot be read or
reached, :class:`CheckFailed` / :class:`PinMismatch` (exit 1) for a wrong platform, a pin that does
not match, or content that does not hash to its digest.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import posixpath
import re
import tarfile
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, cast

from packager.errors import CheckFailed, PinMismatch, ResolveError
from packager.manifest.model import Image
from packager.resolve.lockfile import LockedImage

__all__ = [
    "DOCKER_HUB_HOST",
    "MAX_DOCUMENT_BYTES",
    "ImageReference",
    "Platform",
    "parse_platform",
    "parse_reference",
    "resolve_image",
]

#: the largest manifest, index, config, index.json or manifest.json read into memory
MAX_DOCUMENT_BYTES = 16 * 1024 * 1024
#: nested indexes followed at most (an index of indexes of ... manifests)
MAX_INDEX_DEPTH = 4
#: members of a docker-archive tar looked at, at most (a save has a few per layer)
MAX_TAR_MEMBERS = 100_000

DOCKER_HUB_HOST = "registry-1.docker.io"
_DOCKER_HUB_ALIASES = frozenset({"docker.io", "index.docker.io", "registry-1.docker.io"})

OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
_SCHEMA1 = frozenset(
    {
        "application/vnd.docker.distribution.manifest.v1+json",
        "application/vnd.docker.distribution.manifest.v1+prettyjws",
    }
)
_INDEX_TYPES = frozenset({OCI_INDEX, DOCKER_LIST})
_MANIFEST_TYPES = frozenset({OCI_MANIFEST, DOCKER_MANIFEST})
REF_NAME_ANNOTATION = "org.opencontainers.image.ref.name"

_DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")
_ANY_DIGEST = re.compile(r"^[a-z0-9]+(?:[+._-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$")
_HOST = re.compile(
    r"^(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*"
    r"|\[[0-9A-Fa-f:.]+\])(?::[0-9]+)?$"
)
_PATH_COMPONENT = re.compile(r"^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$")
_TAG = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")
_BLOB_MEMBER = re.compile(r"^blobs/sha256/([0-9a-f]{64})$")
_LEGACY_CONFIG_MEMBER = re.compile(r"^([0-9a-f]{64})\.json$")

_ARCH_ALIASES = {"x86_64": "amd64", "x86-64": "amd64", "aarch64": "arm64"}
_DEFAULT_VARIANT = {"arm64": "v8"}


# ============================================================================ references


@dataclass(frozen=True)
class ImageReference:
    """A parsed image reference, normalized as Docker does.

    ``host`` is the registry to talk to (``registry-1.docker.io`` for Docker Hub), ``repository``
    the path in it (``library/busybox`` for a Docker Hub official image). ``tag`` is ``latest``
    when the reference names neither a tag nor a digest, and ``None`` when it names only a digest.
    """

    host: str
    repository: str
    tag: str | None
    digest: str | None = None

    @property
    def reference(self) -> str:
        """What to ask the registry for: the digest when there is one, else the tag."""
        return self.digest or self.tag or "latest"

    def __str__(self) -> str:
        s = f"{self.host}/{self.repository}"
        if self.tag:
            s += f":{self.tag}"
        if self.digest:
            s += f"@{self.digest}"
        return s


def parse_reference(ref: str) -> ImageReference:
    """Parse ``[HOST[:PORT]/]PATH[:TAG][@sha256:HEX]`` as Docker does.

    The first path component is a registry host when it holds a ``.`` or a ``:`` or is
    ``localhost``; otherwise the image is on Docker Hub, where a one-component name gets the
    ``library/`` prefix. Raises :class:`ResolveError` for a reference that is not one.
    """

    def bad(why: str) -> ResolveError:
        return ResolveError(
            f"image {ref!r}: not an image reference: {why}",
            hint="write it as [HOST[:PORT]/]NAME[:TAG][@sha256:DIGEST], "
            "e.g. registry.example.com/team/server:1.2 or busybox@sha256:<64 hex digits>",
        )

    if not ref or any(c.isspace() for c in ref):
        raise bad("empty or contains whitespace")
    text = ref
    digest: str | None = None
    if "@" in text:
        text, digest = text.split("@", 1)
        if not _DIGEST.match(digest):
            raise bad(f"digest {digest!r} is not sha256: followed by 64 lowercase hex digits")
    tag: str | None = None
    slash = text.rfind("/")
    colon = text.rfind(":")
    if colon > slash:
        text, tag = text[:colon], text[colon + 1 :]
        if not _TAG.match(tag):
            raise bad(f"tag {tag!r} is not valid (letters, digits, _ . -; at most 128)")
    parts = text.split("/")
    host = "docker.io"
    if len(parts) > 1 and ("." in parts[0] or ":" in parts[0] or parts[0] == "localhost"):
        host, parts = parts[0], parts[1:]
        if not _HOST.match(host):
            raise bad(f"registry host {host!r} is not a host name or host:port")
    if not parts or any(not p for p in parts):
        raise bad("the repository name is empty or has an empty component")
    for p in parts:
        if not _PATH_COMPONENT.match(p):
            raise bad(
                f"repository component {p!r} must be lowercase letters and digits, with . _ - inside"
            )
    if host in _DOCKER_HUB_ALIASES:
        host = DOCKER_HUB_HOST
        if len(parts) == 1:
            parts = ["library", *parts]
    repository = "/".join(parts)
    if len(repository) > 255:
        raise bad("the repository name is longer than 255 characters")
    if tag is None and digest is None:
        tag = "latest"
    return ImageReference(host, repository, tag, digest)


def _has_explicit_tag(ref: str) -> bool:
    name = ref.split("@", 1)[0]
    return name.rfind(":") > name.rfind("/")


# ============================================================================ platforms


@dataclass(frozen=True)
class Platform:
    """``os/architecture[/variant]``, architecture aliases (x86_64, aarch64) normalized."""

    os: str
    architecture: str
    variant: str | None = None

    def __str__(self) -> str:
        base = f"{self.os}/{self.architecture}"
        return f"{base}/{self.variant}" if self.variant else base

    @classmethod
    def of(cls, os_: object, architecture: object, variant: object = None) -> Platform | None:
        """From the fields of an index entry or an image config; None when they are missing."""
        if (
            not isinstance(os_, str)
            or not isinstance(architecture, str)
            or not os_
            or not architecture
        ):
            return None
        arch = _ARCH_ALIASES.get(architecture, architecture)
        return cls(os_, arch, variant if isinstance(variant, str) and variant else None)

    def _variant(self) -> str | None:
        return self.variant or _DEFAULT_VARIANT.get(self.architecture)

    def accepts(self, candidate: Platform) -> bool:
        """True when an image for ``candidate`` runs on this (target) platform.

        The variant counts only when the target names one; arm64 without a variant is v8.
        """
        if (candidate.os, candidate.architecture) != (self.os, self.architecture):
            return False
        return self.variant is None or candidate._variant() == self._variant()

    def preference(self, candidate: Platform) -> int:
        """Lower is better among accepted candidates: the exact or default variant first."""
        return 0 if candidate._variant() == self._variant() else 1


def parse_platform(text: str) -> Platform:
    """Parse ``os/arch[/variant]`` (e.g. ``linux/arm64``, ``linux/arm64/v8``)."""
    parts = text.split("/")
    platform = Platform.of(*parts) if 2 <= len(parts) <= 3 and all(parts) else None
    if platform is None:
        raise ResolveError(
            f"platform {text!r} is not os/arch[/variant]",
            hint="write the target platform as linux/amd64 or linux/arm64",
        )
    return platform


# ============================================================================ entry point


def resolve_image(image: Image, platform: str, *, timeout: float = 30.0) -> LockedImage:
    """Resolve ``image`` to content for the target ``platform`` (``linux/amd64``, ``linux/arm64``).

    ``timeout`` bounds each network operation (connect, and each read) against a registry or a
    Docker engine, in seconds. Raises :class:`ResolveError` when the image cannot be read or
    reached, :class:`CheckFailed` when it has no manifest for ``platform`` or content that does not
    match its digest, and :class:`PinMismatch` when ``image.digest`` pins something else.
    """
    target = parse_platform(platform)
    if image.source == "registry":
        return _resolve_registry(image, target, timeout)
    if image.source == "docker":
        return _resolve_docker(image, target, timeout)
    if image.source == "oci-layout":
        return _resolve_oci_layout(image, target)
    if image.source == "docker-archive":
        return _resolve_docker_archive(image, target)
    raise ResolveError(
        f"image {image.ref}: unknown source {image.source!r}",
        hint="from: registry | docker | oci-layout | docker-archive",
    )


# ============================================================================ shared: manifests


@dataclass(frozen=True)
class _Doc:
    """A manifest or index read and verified: its bytes (``raw``) hash to ``digest``."""

    digest: str
    media_type: str | None
    data: dict[str, Any]
    size: int
    raw: bytes = field(default=b"", repr=False, compare=False)

    @property
    def is_index(self) -> bool:
        return _kind(self.media_type, self.data) == "index"


def _kind(media_type: str | None, data: dict[str, Any]) -> str:
    mt = data.get("mediaType") if isinstance(data.get("mediaType"), str) else media_type
    if mt in _INDEX_TYPES:
        return "index"
    if mt in _MANIFEST_TYPES:
        return "manifest"
    if mt in _SCHEMA1 or data.get("schemaVersion") == 1:
        return "schema1"
    if mt is None or mt in ("application/json", "application/octet-stream"):
        if isinstance(data.get("manifests"), list):
            return "index"
        if isinstance(data.get("config"), dict) and isinstance(data.get("layers"), list):
            return "manifest"
    return f"unsupported ({mt})"


@dataclass(frozen=True)
class _Ctx:
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


def _sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _parse_json_object(ctx: _Ctx, what: str, data: bytes) -> dict[str, Any]:
    try:
        doc = json.loads(data)
    except (UnicodeDecodeError, ValueError) as exc:
        raise ctx.error(f"{what} in {ctx.where} is not JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise ctx.error(f"{what} in {ctx.where} is not a JSON object")
    return doc


def _descriptor(ctx: _Ctx, what: str, d: object) -> tuple[str, int | None, str | None]:
    """(digest, size, mediaType) of a descriptor, the digest checked to be sha256:<64 hex>."""
    if not isinstance(d, dict):
        raise ctx.error(f"{what} in {ctx.where} is not a descriptor object")
    digest = d.get("digest")
    if not isinstance(digest, str) or not _DIGEST.match(digest):
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


def _verify_bytes(
    ctx: _Ctx, what: str, data: bytes, expected: str | None, claimed: str | None = None
) -> str:
    """Hash ``data``; it must equal ``expected`` (what led here) and ``claimed`` (a header)."""
    actual = _sha256(data)
    for want, by in ((expected, "it was asked for by"), (claimed, "the registry claims")):
        if want is not None and want != actual:
            raise ctx.mismatched(
                f"{what} from {ctx.where} does not match its digest: {by} {want}, "
                f"its bytes hash to {actual}",
                hint="the source is corrupt or was tampered with; fetch the image again "
                "from a trusted source",
            )
    return actual


def _index_entries(ctx: _Ctx, index: _Doc) -> list[tuple[Platform | None, dict[str, Any]]]:
    entries = index.data.get("manifests")
    if not isinstance(entries, list):
        raise ctx.error(f"index {index.digest} in {ctx.where} has no 'manifests' list")
    out: list[tuple[Platform | None, dict[str, Any]]] = []
    for n, e in enumerate(entries):
        _descriptor(ctx, f"entry {n} of index {index.digest}", e)
        p = e.get("platform")
        out.append(
            (
                Platform.of(p.get("os"), p.get("architecture"), p.get("variant"))
                if isinstance(p, dict)
                else None,
                e,
            )
        )
    return out


def _choose_platform(
    ctx: _Ctx, entries: list[tuple[Platform | None, dict[str, Any]]], what: str
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


def _check_pin(ctx: _Ctx, pin: str | None, manifest: str | None, index: str | None) -> None:
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


def _config_platform(ctx: _Ctx, config: dict[str, Any], digest: str) -> Platform:
    p = Platform.of(config.get("os"), config.get("architecture"), config.get("variant"))
    if p is None:
        raise ctx.error(f"image config {digest} in {ctx.where} names no os/architecture")
    return p


def _check_platform(ctx: _Ctx, found: Platform, what: str) -> None:
    if not ctx.target.accepts(found):
        raise ctx.failed(
            f"{what} is for {found}, but the target platform is {ctx.target}",
            hint=f"use an image built for {ctx.target} (a multi-arch tag that includes it), "
            "or change target.platform",
        )


def _image_manifest_parts(
    ctx: _Ctx, manifest: _Doc
) -> tuple[tuple[str, int, str | None], list[tuple[str, int, str | None]]]:
    """((config digest, size, media type), [(layer digest, size, media type)]) of a manifest."""
    kind = _kind(manifest.media_type, manifest.data)
    if kind != "manifest":
        raise _unsupported(ctx, manifest.digest, kind)
    cdigest, csize, cmt = _descriptor(
        ctx, f"config of manifest {manifest.digest}", manifest.data.get("config")
    )
    layers_raw = manifest.data.get("layers")
    if not isinstance(layers_raw, list):
        raise ctx.error(f"manifest {manifest.digest} in {ctx.where} has no 'layers' list")
    layers: list[tuple[str, int, str | None]] = []
    for n, layer in enumerate(layers_raw):
        ldigest, lsize, lmt = _descriptor(ctx, f"layer {n} of manifest {manifest.digest}", layer)
        if lsize is None:
            raise ctx.error(f"layer {ldigest} of manifest {manifest.digest} has no size")
        layers.append((ldigest, lsize, lmt))
    if csize is None:
        raise ctx.error(f"config {cdigest} of manifest {manifest.digest} has no size")
    return (cdigest, csize, cmt), layers


def _unsupported(ctx: _Ctx, digest: str, kind: str) -> ResolveError:
    if kind == "schema1":
        return ctx.error(
            f"manifest {digest} in {ctx.where} is a docker schema 1 manifest, which is not supported",
            hint="push the image again with a current Docker or skopeo (schema 2 / OCI)",
        )
    return ctx.error(
        f"{digest} in {ctx.where} is not an image manifest or index: {kind}",
        hint="name a container image (OCI or docker schema 2)",
    )


_IMAGE_CONFIG_TYPES = frozenset(
    {"application/vnd.oci.image.config.v1+json", "application/vnd.docker.container.image.v1+json"}
)
#: index entries without a platform field opened to learn their platform, at most
MAX_UNLABELLED_ENTRIES = 8


def _resolve_tree(
    ctx: _Ctx,
    top: _Doc,
    fetch_manifest: Callable[[str, int | None, str | None], _Doc],
    read_config: Callable[[str, int], bytes],
) -> tuple[_Doc, _Doc | None, Platform]:
    """From ``top`` (an index or a manifest) to (platform manifest, outermost index, platform).

    An index is narrowed to the target platform by its entries' platform fields. Entries without
    one are opened: a nested index contributes its entries, an image manifest the platform of its
    config. A manifest reached without an index has its config read to check its platform.
    """
    fetched: dict[str, _Doc] = {}
    unlabelled = 0

    def fetch(entry: dict[str, Any]) -> _Doc:
        digest, size, mt = _descriptor(ctx, "index entry", entry)
        if digest not in fetched:
            fetched[digest] = fetch_manifest(digest, size, mt)
        return fetched[digest]

    def candidates(index: _Doc, depth: int) -> list[tuple[Platform | None, dict[str, Any]]]:
        nonlocal unlabelled
        out: list[tuple[Platform | None, dict[str, Any]]] = []
        for platform, entry in _index_entries(ctx, index):
            if platform is not None or unlabelled >= MAX_UNLABELLED_ENTRIES:
                out.append((platform, entry))
                continue
            unlabelled += 1
            child = fetch(entry)
            if child.is_index:
                if depth >= MAX_INDEX_DEPTH:
                    raise ctx.error(f"indexes in {ctx.where} nest deeper than {MAX_INDEX_DEPTH}")
                out.extend(candidates(child, depth + 1))
            elif _kind(child.media_type, child.data) == "manifest":
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
        chosen, entry = _choose_platform(ctx, candidates(doc, depth), f"index {doc.digest}")
        doc = fetch(entry)
    kind = _kind(doc.media_type, doc.data)
    if kind != "manifest":
        raise _unsupported(ctx, doc.digest, kind)
    if chosen is None:
        chosen = _manifest_platform(ctx, doc, read_config, artifacts=False)
        if chosen is None:
            raise ctx.error(
                f"the image config of manifest {doc.digest} in {ctx.where} names no "
                "os/architecture",
                hint="this is not a container image for a platform",
            )
        _check_platform(ctx, chosen, f"the image (manifest {doc.digest})")
    return doc, index, chosen


def _manifest_platform(
    ctx: _Ctx, manifest: _Doc, read_config: Callable[[str, int], bytes], *, artifacts: bool
) -> Platform | None:
    """The platform an image manifest's config names, if it names one.

    With ``artifacts``, a manifest whose config is not an image config (a signature, an SBOM)
    is skipped without reading its config.
    """
    (cdigest, csize, cmt), _layers = _image_manifest_parts(ctx, manifest)
    if artifacts and cmt is not None and cmt not in _IMAGE_CONFIG_TYPES:
        return None
    config = _parse_json_object(ctx, f"image config {cdigest}", read_config(cdigest, csize))
    return Platform.of(config.get("os"), config.get("architecture"), config.get("variant"))


def _locked_from_manifest(
    image: Image, ctx: _Ctx, manifest: _Doc, index: _Doc | None, platform: Platform
) -> LockedImage:
    (cdigest, csize, _), layers = _image_manifest_parts(ctx, manifest)
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
        media_type=_media_type(manifest),
        layers=tuple(d for d, _, _ in layers),
    )


def _media_type(doc: _Doc) -> str | None:
    mt = doc.data.get("mediaType")
    return mt if isinstance(mt, str) else doc.media_type


# ============================================================================ registry


def _anonymous_auth(client: Any, response: Any) -> None:
    """dxf auth hook: an anonymous bearer token (Docker Hub, ghcr.io) for public images."""
    client.authenticate(response=response)


_TAGS_SHOWN = 10
_REASONS = (
    re.compile(r"\[Errno -?\d+\] ([^'\")\]]+)"),  # [Errno 111] Connection refused
    re.compile(r"(\[SSL: [A-Z0-9_]+\] [^'\"(]+)"),  # [SSL: WRONG_VERSION_NUMBER] wrong version
    re.compile(r"[A-Za-z]+Error\(-?\d+, '([^']+)'\)"),  # FileNotFoundError(2, 'No such file ...')
)


def _short_reason(exc: BaseException) -> str:
    """The operating system's words from a requests/urllib3 exception, else its text, shortened."""
    text = str(exc)
    for pattern in _REASONS:
        m = pattern.search(text)
        if m:
            return m.group(1).strip()
    return text if len(text) <= 200 else text[:200] + "..."


class _Registry:
    """One repository on one registry, every failure turned into a packager error."""

    def __init__(self, ctx: _Ctx, ref: ImageReference, insecure: bool, timeout: float) -> None:
        import dxf

        self.ctx = ctx
        self.ref = ref
        self.timeout = timeout
        self.insecure = insecure
        self.client = dxf.DXF(
            ref.host,
            ref.repository,
            auth=None if insecure else _anonymous_auth,
            insecure=insecure,
            timeout=timeout,
        )

    @contextmanager
    def _translated(self, what: str, reference: str | None = None) -> Iterator[None]:
        import dxf.exceptions
        import requests

        host, repo, ctx = self.ref.host, self.ref.repository, self.ctx
        scheme = "http" if self.insecure else "https"
        try:
            yield
        except requests.exceptions.SSLError as exc:
            raise ctx.error(
                f"TLS with registry {host} failed while {what}: {_short_reason(exc)}",
                hint="for a plain-HTTP registry (a local mirror) set insecure: true on the image; "
                "otherwise install the registry's CA certificate",
            ) from None
        except (requests.exceptions.Timeout, requests.exceptions.ConnectionError) as exc:
            text = str(exc)
            if isinstance(exc, requests.exceptions.Timeout) or "timed out" in text.lower():
                raise ctx.error(
                    f"registry {host} did not answer within the timeout of {self.timeout:g}s "
                    f"({scheme}, while {what})",
                    hint="check the registry address and that this host can reach it; "
                    "on a slow link raise the timeout",
                ) from None
            raise ctx.error(
                f"cannot connect to registry {host} ({scheme}, timeout {self.timeout:g}s, while "
                f"{what}): {_short_reason(exc)}",
                hint="check the registry address and port and that it is running; "
                "for a plain-HTTP registry set insecure: true",
            ) from None
        except requests.exceptions.HTTPError as exc:
            raise self._http_error(exc, what, reference) from None
        except dxf.exceptions.DXFUnauthorizedError:
            raise ctx.error(
                f"registry {host} refused access to {repo} (HTTP 401 unauthorized) while {what}",
                hint="check the repository name (Docker Hub answers 401 for names that do not "
                "exist); private repositories need credentials, which airgap does not read yet: "
                "pull the image with docker and use from: docker",
            ) from None
        except dxf.exceptions.DXFAuthInsecureError:
            raise ctx.error(
                f"registry {host} asks for authentication over plain HTTP while {what}",
                hint="use HTTPS for a registry that needs credentials (drop insecure: true)",
            ) from None
        except dxf.exceptions.DXFDigestMismatchError as exc:
            raise ctx.mismatched(
                f"{what} from {ctx.where}: the content does not match its digest: "
                f"expected {exc.expected}, got {exc.got}",
                hint="the registry served corrupt content; fetch the image again",
            ) from None
        except dxf.exceptions.DXFError as exc:
            raise ctx.error(f"registry {host} failed while {what}: {exc}") from None
        except requests.exceptions.RequestException as exc:
            raise ctx.error(
                f"request to registry {host} failed while {what}: {_short_reason(exc)}"
            ) from None
        except (KeyError, ValueError) as exc:  # malformed auth challenge or token answer
            raise ctx.error(
                f"registry {host} gave an answer that cannot be used while {what}: {exc!r}"
            ) from None

    def _http_error(self, exc: Any, what: str, reference: str | None) -> ResolveError:
        host, repo, ctx = self.ref.host, self.ref.repository, self.ctx
        response = getattr(exc, "response", None)
        status = getattr(response, "status_code", None)
        codes: list[str] = []
        try:
            body = response.json() if response is not None else None
            if isinstance(body, dict) and isinstance(body.get("errors"), list):
                codes = [str(e.get("code")) for e in body["errors"] if isinstance(e, dict)]
        except ValueError:
            pass
        if status != 404:
            detail = f" ({', '.join(codes)})" if codes else ""
            return ctx.error(
                f"registry {host} answered HTTP {status}{detail} while {what}",
                hint="check the reference; retry later if the registry is overloaded",
            )
        top = reference is not None and reference == self.ref.reference
        if top and "MANIFEST_UNKNOWN" in codes:
            # distribution answers MANIFEST_UNKNOWN for an unknown repository too: ask its tags
            exists, tags = self._tags()
            if exists is False:
                codes = ["NAME_UNKNOWN"]
            elif exists:
                shown = ", ".join(tags[:_TAGS_SHOWN]) + (", ..." if len(tags) > _TAGS_SHOWN else "")
                return ctx.error(
                    f"{self._name(reference)} is not on registry {host} (HTTP 404 "
                    f"MANIFEST_UNKNOWN: unknown tag or digest); {repo} has "
                    f"{len(tags)} tag{'s' if len(tags) != 1 else ''}: {shown or '(none)'}",
                    hint="check the tag or digest; push the image there first",
                )
        if "NAME_UNKNOWN" in codes:
            return ctx.error(
                f"repository {repo} is not on registry {host} (HTTP 404 NAME_UNKNOWN)",
                hint="check the image name; push the image there first",
            )
        if "MANIFEST_UNKNOWN" in codes:
            return ctx.error(
                f"{self._name(reference)} is not on registry {host} (HTTP 404 MANIFEST_UNKNOWN "
                f"while {what})",
                hint="check the tag or digest (list the tags with `skopeo list-tags "
                f"docker://{host}/{repo}`); an index whose entries are missing was pushed "
                "incompletely",
            )
        if "BLOB_UNKNOWN" in codes:
            return ctx.error(
                f"the blob is missing from {host}/{repo} (HTTP 404 BLOB_UNKNOWN while {what})",
                hint="the image on the registry is incomplete; push it again",
            )
        return ctx.error(
            f"not found on registry {host} (HTTP 404 while {what})",
            hint="check the registry address, the repository name and the tag",
        )

    def _name(self, reference: str | None) -> str:
        ref = reference or self.ref.reference
        return f"{self.ref.repository}{'@' if ref.startswith('sha256:') else ':'}{ref}"

    def _tags(self) -> tuple[bool | None, list[str]]:
        """(repository exists, some of its tags); (None, []) when the registry does not say."""
        import requests

        tags: list[str] = []
        try:
            for tag in self.client.list_aliases(batch_size=100, iterate=True):
                tags.append(str(tag))
                if len(tags) >= 1000:
                    break
        except requests.exceptions.HTTPError as exc:
            response = getattr(exc, "response", None)
            if getattr(response, "status_code", None) == 404:
                return False, []
            return None, []
        except Exception:  # only a better message is at stake: never mask the first error
            return None, []
        return True, sorted(tags)

    def manifest(self, reference: str, expected: str | None, size: int | None = None) -> _Doc:
        what = f"fetching manifest {reference}"
        with self._translated(what, reference):
            _text, response = self.client.get_manifest_and_response(reference)
            content: bytes = response.content
            claimed = response.headers.get("Docker-Content-Digest")
            content_type = response.headers.get("Content-Type")
        if len(content) > MAX_DOCUMENT_BYTES:
            raise self.ctx.error(f"manifest {reference} is larger than {MAX_DOCUMENT_BYTES} bytes")
        if size is not None and len(content) != size:
            raise self.ctx.mismatched(
                f"manifest {reference} from {self.ctx.where} is {len(content)} bytes, "
                f"its descriptor says {size}",
                hint="the registry served corrupt content; fetch the image again",
            )
        if claimed is not None and not claimed.startswith("sha256:"):
            claimed = None  # another algorithm: the sha256 computed here still decides
        digest = _verify_bytes(self.ctx, f"manifest {reference}", content, expected, claimed)
        data = _parse_json_object(self.ctx, f"manifest {reference}", content)
        mt = content_type.split(";", 1)[0].strip() if content_type else None
        return _Doc(digest, mt, data, len(content), content)

    def blob(self, digest: str, size: int) -> bytes:
        if size > MAX_DOCUMENT_BYTES:
            raise self.ctx.error(
                f"image config {digest} is {size} bytes, more than {MAX_DOCUMENT_BYTES}"
            )
        what = f"fetching image config {digest}"
        chunks: list[bytes] = []
        total = 0
        with self._translated(what):
            stream = cast("Iterable[bytes]", self.client.pull_blob(digest))  # checked at its end
            for chunk in stream:
                total += len(chunk)
                if total > MAX_DOCUMENT_BYTES:
                    raise self.ctx.error(
                        f"image config {digest} is larger than {MAX_DOCUMENT_BYTES} bytes"
                    )
                chunks.append(chunk)
        data = b"".join(chunks)
        _verify_bytes(self.ctx, f"image config {digest}", data, digest)
        if len(data) != size:
            raise self.ctx.mismatched(
                f"image config {digest} from {self.ctx.where} is {len(data)} bytes, "
                f"the manifest says {size}",
                hint="the manifest is inconsistent; push the image again",
            )
        return data


def _resolve_registry(image: Image, target: Platform, timeout: float) -> LockedImage:
    ref = parse_reference(image.ref)
    ctx = _Ctx(image.ref, image.source, target, f"registry {ref.host}")
    registry = _Registry(ctx, ref, image.insecure, timeout)
    with registry.client:  # one HTTP session (connection reuse); no I/O of its own
        top = registry.manifest(ref.reference, ref.digest)
        manifest, index, platform = _resolve_tree(
            ctx,
            top,
            lambda digest, size, _mt: registry.manifest(digest, digest, size),
            registry.blob,
        )
    return _locked_from_manifest(image, ctx, manifest, index, platform)


# ============================================================================ docker engine


def _docker_host_text() -> str:
    host = os.environ.get("DOCKER_HOST")
    return (
        f"DOCKER_HOST={host}" if host else "DOCKER_HOST unset (default unix:///var/run/docker.sock)"
    )


def _docker_ctx(ref: str, source: str, target: Platform, **kw: Any) -> _Ctx:
    return _Ctx(ref, source, target, f"the Docker engine ({_docker_host_text()})", **kw)


def _docker_client(ctx: _Ctx, timeout: float) -> Any:
    """A docker SDK client for $DOCKER_HOST, ``timeout`` bounding each read; a ResolveError
    naming DOCKER_HOST and how to start an engine when there is none."""
    import docker
    import docker.errors
    import requests

    where = _docker_host_text()
    try:
        return docker.from_env(timeout=max(1, math.ceil(timeout)))
    except (docker.errors.DockerException, requests.exceptions.RequestException, OSError) as exc:
        raise ctx.error(
            f"cannot reach the Docker engine at {where}: {_short_reason(exc)}",
            hint="start a Docker engine (`sudo systemctl start docker`, or `bash scripts/services.sh "
            "start` and source the env it prints) and point DOCKER_HOST at its socket; or take the "
            "image from: registry, oci-layout or docker-archive instead",
        ) from None


def _resolve_docker(image: Image, target: Platform, timeout: float) -> LockedImage:
    import docker
    import docker.errors
    import requests

    where = _docker_host_text()
    ctx = _docker_ctx(image.ref, image.source, target)
    client = _docker_client(ctx, timeout)
    try:
        try:
            attrs: dict[str, Any] = client.images.get(image.ref).attrs
        except docker.errors.ImageNotFound:
            raise ctx.error(
                f"no such image in the Docker engine at {where}",
                hint=f"pull or build it first (`docker pull {image.ref}`), and check the name "
                "and tag with `docker images`",
            ) from None
        except docker.errors.APIError as exc:
            raise ctx.error(
                f"the Docker engine at {where} refused to inspect it: {exc.explanation or exc}",
                hint="check the image reference",
            ) from None
        except (docker.errors.DockerException, requests.exceptions.RequestException) as exc:
            raise ctx.error(
                f"the Docker engine at {where} did not answer within {timeout:g}s or failed: "
                f"{_short_reason(exc)}",
                hint="check that the engine is running and responsive",
            ) from None
    finally:
        client.close()

    image_id = attrs.get("Id")
    if not isinstance(image_id, str) or not _DIGEST.match(image_id):
        raise ctx.error(f"the engine reports an image ID that is not a sha256 digest: {image_id!r}")
    found = Platform.of(attrs.get("Os"), attrs.get("Architecture"), attrs.get("Variant"))
    if found is None:
        raise ctx.error(f"the engine does not report the image's os/architecture ({image_id})")
    _check_platform(ctx, found, f"the engine's image {image_id}")
    rootfs = attrs.get("RootFS") or {}
    layers = rootfs.get("Layers") if isinstance(rootfs, dict) else None
    if not isinstance(layers, list) or not all(isinstance(x, str) for x in layers):
        layers = []
    size = attrs.get("Size")
    repo_digests = _same_repository_digests(image.ref, attrs.get("RepoDigests"))
    pin = image.digest
    manifest_digest: str | None
    if pin is not None and pin in repo_digests:
        manifest_digest = pin
    else:
        ref_digest = image.ref.split("@", 1)[1] if "@" in image.ref else None
        if ref_digest is not None and ref_digest in repo_digests:
            manifest_digest = ref_digest
        else:
            manifest_digest = repo_digests[0] if repo_digests else None
    if pin is not None and pin != image_id and pin not in repo_digests:
        raise PinMismatch(
            f"image {image.ref}: digest pin does not match: expected {pin}, the engine's image has "
            f"ID {image_id} and manifest digests {', '.join(repo_digests) or '(none for this repository)'}",
            hint="if the image changed on purpose, update digest:; otherwise pull the pinned "
            f"image (`docker pull NAME@{pin}`)",
        )
    return LockedImage(
        ref=image.ref,
        source=image.source,
        platform=str(found),
        config_digest=image_id,
        size=size if isinstance(size, int) else 0,
        manifest_digest=manifest_digest,
        index_digest=None,
        media_type=None,
        layers=tuple(layers),
    )


def _same_repository_digests(ref: str, repo_digests: object) -> list[str]:
    """Digests of ``RepoDigests`` entries (``NAME@sha256:...``) of the same repository as ``ref``."""
    try:
        want = parse_reference(ref)
    except ResolveError:
        return []  # an image ID or a local name: no repository to match
    out: list[str] = []
    for rd in repo_digests if isinstance(repo_digests, list) else ():
        if not isinstance(rd, str):
            continue
        try:
            got = parse_reference(rd)
        except ResolveError:
            continue
        if (got.host, got.repository) == (want.host, want.repository) and got.digest:
            out.append(got.digest)
    return out


# ============================================================================ OCI layout


class _Layout:
    """Reads blobs of an OCI image layout, bounded, verified, never outside its folder."""

    def __init__(self, ctx: _Ctx, root: Path) -> None:
        self.ctx = ctx
        self.root = root.resolve()

    def _path(self, digest: str) -> Path:
        if not _DIGEST.match(digest):  # checked by _descriptor already; the path depends on it
            raise self.ctx.error(f"digest {digest!r} is not sha256:<64 hex>")
        path = self.root / "blobs" / "sha256" / digest.split(":", 1)[1]
        try:
            real = path.resolve(strict=True)
        except FileNotFoundError:
            raise self.ctx.error(
                f"blob {digest} is missing from {self.ctx.where}",
                hint="the layout is incomplete; write it again (e.g. `skopeo copy ... oci:DIR:TAG`)",
            ) from None
        except (OSError, RuntimeError) as exc:
            raise self.ctx.error(
                f"blob {digest} in {self.ctx.where} cannot be read: {exc}"
            ) from None
        if not real.is_relative_to(self.root):
            raise self.ctx.error(
                f"blob {digest} in {self.ctx.where} is a link to {real}, outside the layout",
                hint="an OCI layout must hold its blobs itself; copy them in",
            )
        return real

    def read(self, digest: str, size: int | None, what: str) -> bytes:
        path = self._path(digest)
        if size is not None and size > MAX_DOCUMENT_BYTES:
            raise self.ctx.error(f"{what} {digest} is {size} bytes, more than {MAX_DOCUMENT_BYTES}")
        data = _read_bounded_file(self.ctx, path, f"{what} {digest}")
        if size is not None and len(data) != size:
            raise self.ctx.mismatched(
                f"{what} {digest} in {self.ctx.where} is {len(data)} bytes, its descriptor says {size}",
                hint="the layout is corrupt; write it again",
            )
        _verify_bytes(self.ctx, f"{what} {digest}", data, digest)
        return data

    def manifest(self, digest: str, size: int | None, media_type: str | None) -> _Doc:
        data = self.read(digest, size, "manifest")
        return _Doc(
            digest,
            media_type,
            _parse_json_object(self.ctx, f"manifest {digest}", data),
            len(data),
            data,
        )

    def check_blob(self, digest: str, size: int, what: str) -> None:
        """A layer is present, inside the layout, with its size (it is hashed when collected)."""
        path = self._path(digest)
        actual = path.stat().st_size
        if actual != size:
            raise self.ctx.mismatched(
                f"{what} {digest} in {self.ctx.where} is {actual} bytes, the manifest says {size}",
                hint="the layout is corrupt; write it again",
            )


def _read_bounded_file(ctx: _Ctx, path: Path, what: str) -> bytes:
    try:
        with path.open("rb") as fh:
            data = fh.read(MAX_DOCUMENT_BYTES + 1)
    except OSError as exc:
        raise ctx.error(f"{what}: cannot read {path}: {exc.strerror}") from None
    if len(data) > MAX_DOCUMENT_BYTES:
        raise ctx.error(f"{what} ({path}) is larger than {MAX_DOCUMENT_BYTES} bytes")
    return data


def _ref_names(ref: str) -> tuple[set[str], ImageReference | None]:
    """Annotation values that name ``ref``: the ref itself and its tag; and the parsed ref."""
    names = {ref}
    try:
        parsed = parse_reference(ref)
    except ResolveError:
        return names, None
    if parsed.tag:
        names.add(parsed.tag)
    return names, parsed


def _name_matches(name: str, names: set[str], parsed: ImageReference | None) -> bool:
    if name in names:
        return True
    if parsed is None or ("/" not in name and ":" not in name):
        return False
    try:
        other = parse_reference(name)
    except ResolveError:
        return False
    return (other.host, other.repository, other.tag) == (parsed.host, parsed.repository, parsed.tag)


def _resolve_oci_layout(image: Image, target: Platform) -> LockedImage:
    root = image.path
    ctx = _Ctx(image.ref, image.source, target, f"OCI layout {root}")
    hint = "write one with `skopeo copy docker://REF oci:DIR:TAG` and set path: to DIR"
    if root is None:
        raise ctx.error("from: oci-layout needs a path: to the layout folder", hint=hint)
    if not root.exists():
        raise ctx.error(f"OCI layout folder {root} does not exist", hint=hint)
    if not root.is_dir():
        raise ctx.error(f"{root} is not a folder (an OCI layout is a folder)", hint=hint)
    layout_file, index_file = root / "oci-layout", root / "index.json"
    for f in (layout_file, index_file):
        if not f.is_file():
            raise ctx.error(f"{root} is not an OCI image layout: {f.name} is missing", hint=hint)
    marker = _parse_json_object(
        ctx, "oci-layout", _read_bounded_file(ctx, layout_file, "oci-layout")
    )
    if not isinstance(marker.get("imageLayoutVersion"), str):
        raise ctx.error(f"{layout_file} has no imageLayoutVersion", hint=hint)
    top_index = _parse_json_object(
        ctx, "index.json", _read_bounded_file(ctx, index_file, "index.json")
    )
    entries_raw = top_index.get("manifests")
    if not isinstance(entries_raw, list):
        raise ctx.error(f"{index_file} has no 'manifests' list", hint=hint)
    entries: list[tuple[str | None, dict[str, Any]]] = []
    for n, e in enumerate(entries_raw):
        _descriptor(ctx, f"entry {n} of index.json", e)
        ann = e.get("annotations")
        name = ann.get(REF_NAME_ANNOTATION) if isinstance(ann, dict) else None
        entries.append((name if isinstance(name, str) else None, e))

    names, parsed = _ref_names(image.ref)
    chosen = [e for name, e in entries if name is not None and _name_matches(name, names, parsed)]
    if (
        not chosen
        and len(entries) == 1
        and (entries[0][0] is None or not _has_explicit_tag(image.ref))
    ):
        chosen = [entries[0][1]]
    if not chosen:
        listed = sorted({name for name, _ in entries if name is not None})
        has = ", ".join(listed) if listed else "no named images"
        raise ctx.error(
            f"no image named {sorted(names)} ({REF_NAME_ANNOTATION}) in {ctx.where}; "
            f"it has {has} ({len(entries)} entries)",
            hint="set ref: to one of the names in the layout (its tag), or write the image into "
            "the layout under that name",
        )
    layout = _Layout(ctx, root)
    if len(chosen) > 1:  # one name, several platform entries: choose as from an index
        platforms: list[tuple[Platform | None, dict[str, Any]]] = []
        for e in chosen:
            p = e.get("platform")
            platforms.append(
                (
                    Platform.of(p.get("os"), p.get("architecture"), p.get("variant"))
                    if isinstance(p, dict)
                    else None,
                    e,
                )
            )
        _, entry = _choose_platform(ctx, platforms, f"the {len(chosen)} entries named {image.ref}")
    else:
        entry = chosen[0]
    digest, size, mt = _descriptor(ctx, "index.json entry", entry)
    top = layout.manifest(digest, size, mt)
    manifest, index, platform = _resolve_tree(
        ctx,
        top,
        layout.manifest,
        lambda d, s: layout.read(d, s, "image config"),
    )
    (cdigest, csize, _), layers = _image_manifest_parts(ctx, manifest)
    layout.check_blob(cdigest, csize, "config")
    for ldigest, lsize, _ in layers:
        layout.check_blob(ldigest, lsize, "layer")
    return _locked_from_manifest(image, ctx, manifest, index, platform)


# ============================================================================ docker-archive


class _Archive:
    """The members of a tar, read in place: names normalized, links followed, reads bounded."""

    def __init__(self, ctx: _Ctx, tf: tarfile.TarFile) -> None:
        self.ctx = ctx
        self.tf = tf
        self.members: dict[str, tarfile.TarInfo] = {}
        for n, m in enumerate(_iter_members(ctx, tf)):
            if n >= MAX_TAR_MEMBERS:
                raise ctx.error(
                    f"{ctx.where} has more than {MAX_TAR_MEMBERS} members: not a docker save"
                )
            self.members[_norm(m.name)] = m

    def member(self, name: str, what: str) -> tarfile.TarInfo:
        seen: set[str] = set()
        key = _norm(name)
        while True:
            m = self.members.get(key)
            if m is None:
                raise self.ctx.error(
                    f"{what} {name!r} is missing from {self.ctx.where}",
                    hint="the archive is incomplete or not written by `docker save`; save it again",
                )
            if not (m.issym() or m.islnk()) or key in seen:
                return m
            seen.add(key)
            target = m.linkname if m.islnk() else posixpath.join(posixpath.dirname(key), m.linkname)
            key = _norm(target)

    def read(self, name: str, what: str) -> bytes:
        m = self.member(name, what)
        if not m.isfile():
            raise self.ctx.error(f"{what} {name!r} in {self.ctx.where} is not a regular file")
        if m.size > MAX_DOCUMENT_BYTES:
            raise self.ctx.error(
                f"{what} {name!r} in {self.ctx.where} is {m.size} bytes, more than "
                f"{MAX_DOCUMENT_BYTES}: refusing to read it",
                hint="this is not a docker save archive",
            )
        try:
            fh = self.tf.extractfile(m)
            if fh is None:
                raise self.ctx.error(f"{what} {name!r} in {self.ctx.where} cannot be read")
            with fh:
                data = _read_at_most(fh, MAX_DOCUMENT_BYTES + 1)
        except (tarfile.TarError, OSError, EOFError) as exc:
            raise self.ctx.error(
                f"{what} {name!r} in {self.ctx.where} cannot be read: {exc}"
            ) from None
        if len(data) != m.size:
            raise self.ctx.error(f"{what} {name!r} in {self.ctx.where} is truncated")
        return data


def _norm(name: str) -> str:
    n = posixpath.normpath(name.lstrip("/"))
    return "" if n == "." else n


def _iter_members(ctx: _Ctx, tf: tarfile.TarFile) -> Iterable[tarfile.TarInfo]:
    try:
        while True:
            m = tf.next()
            if m is None:
                return
            yield m
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise ctx.error(
            f"{ctx.where} is not a readable tar archive: {exc}",
            hint="write it with `docker save -o FILE REF` (an interrupted copy is truncated)",
        ) from None


def _read_at_most(fh: IO[bytes], limit: int) -> bytes:
    chunks: list[bytes] = []
    total = 0
    while total < limit:
        chunk = fh.read(min(1024 * 1024, limit - total))
        if not chunk:
            break
        chunks.append(chunk)
        total += len(chunk)
    return b"".join(chunks)


def _archive_entry(ctx: _Ctx, ref: str, manifest: list[Any]) -> dict[str, Any]:
    entries = [e for e in manifest if isinstance(e, dict)]
    if len(entries) != len(manifest) or not entries:
        raise ctx.error(f"manifest.json in {ctx.where} is not a list of image entries")
    names, parsed = _ref_names(ref)
    if parsed is not None and parsed.tag:
        names.add(f"{parsed.host}/{parsed.repository}:{parsed.tag}")

    def tags(e: dict[str, Any]) -> list[str]:
        t = e.get("RepoTags")
        return [x for x in t if isinstance(x, str)] if isinstance(t, list) else []

    for e in entries:
        for tag in tags(e):
            if tag in names or (":" in tag and _name_matches(tag, {ref}, parsed)):
                return e
    if len(entries) == 1 and not tags(entries[0]):
        return entries[0]
    listed = sorted({t for e in entries for t in tags(e)})
    raise ctx.error(
        f"{ref} is not among the RepoTags of {ctx.where}; it has "
        f"{', '.join(listed) if listed else 'untagged images only'} ({len(entries)} images)",
        hint="set ref: to one of those tags, or save the image you mean (`docker save -o FILE REF`)",
    )


def _resolve_docker_archive(image: Image, target: Platform) -> LockedImage:
    path = image.path
    ctx = _Ctx(image.ref, image.source, target, f"docker-archive {path}")
    hint = "write one with `docker save -o FILE REF` and set path: to FILE"
    if path is None:
        raise ctx.error("from: docker-archive needs a path: to the tar file", hint=hint)
    if not path.exists():
        raise ctx.error(f"docker-archive {path} does not exist", hint=hint)
    if not path.is_file():
        raise ctx.error(f"docker-archive {path} is not a regular file", hint=hint)
    with _open_tar(ctx, path, hint) as tf:
        archive = _Archive(ctx, tf)
        if "manifest.json" not in archive.members:
            oci = (
                " (it holds an OCI layout: use from: oci-layout on the unpacked folder)"
                if "index.json" in archive.members
                else ""
            )
            raise ctx.error(
                f"{path} has no manifest.json: it is not a `docker save` archive{oci}", hint=hint
            )
        manifest = _parse_json_list(ctx, archive.read("manifest.json", "manifest.json"))
        entry = _archive_entry(ctx, image.ref, manifest)
        config_name = entry.get("Config")
        layer_names = entry.get("Layers")
        if (
            not isinstance(config_name, str)
            or not isinstance(layer_names, list)
            or not all(isinstance(n, str) for n in layer_names)
        ):
            raise ctx.error(f"manifest.json in {path}: the entry has no Config name or Layers list")
        config_bytes = archive.read(config_name, "image config")
        config_digest = _sha256(config_bytes)
        named = _BLOB_MEMBER.match(_norm(config_name)) or _LEGACY_CONFIG_MEMBER.match(
            _norm(config_name)
        )
        _verify_bytes(
            ctx,
            f"image config {config_name!r}",
            config_bytes,
            f"sha256:{named.group(1)}" if named else None,
        )
        config = _parse_json_object(ctx, f"image config {config_name!r}", config_bytes)
        layer_members = [archive.member(n, "layer") for n in layer_names]
    found = _config_platform(ctx, config, config_digest)
    _check_platform(ctx, found, f"the image {config_digest} in {path}")
    blob_names = [_BLOB_MEMBER.match(_norm(n)) for n in layer_names]
    if all(blob_names):
        layers = tuple(f"sha256:{m.group(1)}" for m in blob_names if m)
    else:
        rootfs = config.get("rootfs")
        diff_ids = rootfs.get("diff_ids") if isinstance(rootfs, dict) else None
        if (
            not isinstance(diff_ids, list)
            or len(diff_ids) != len(layer_names)
            or not all(isinstance(d, str) and _DIGEST.match(d) for d in diff_ids)
        ):
            raise ctx.error(
                f"image config {config_digest} in {path}: rootfs.diff_ids does not list one "
                f"sha256 digest per layer ({len(layer_names)} layers)"
            )
        layers = tuple(diff_ids)
    pin = image.digest
    if pin is not None and pin != config_digest:
        raise PinMismatch(
            f"image {image.ref}: digest pin does not match: expected {pin}, {ctx.where} holds image "
            f"{config_digest} (a docker-archive has no registry manifest digest; pin its image ID)",
            hint=f"if the image changed on purpose, update digest: to {config_digest}",
        )
    return LockedImage(
        ref=image.ref,
        source=image.source,
        platform=str(found),
        config_digest=config_digest,
        size=len(config_bytes) + sum(m.size for m in layer_members),
        manifest_digest=None,
        index_digest=None,
        media_type=None,
        layers=layers,
    )


def _open_tar(ctx: _Ctx, path: Path, hint: str) -> tarfile.TarFile:
    try:
        return tarfile.open(path, "r:*")
    except (tarfile.TarError, EOFError):
        raise ctx.error(f"{path} is not a tar archive (plain or compressed)", hint=hint) from None
    except OSError as exc:
        raise ctx.error(f"cannot read {path}: {exc.strerror or exc}", hint=hint) from None


def _parse_json_list(ctx: _Ctx, data: bytes) -> list[Any]:
    try:
        doc = json.loads(data)
    except (UnicodeDecodeError, ValueError) as exc:
        raise ctx.error(f"manifest.json in {ctx.where} is not JSON: {exc}") from None
    if not isinstance(doc, list):
        raise ctx.error(f"manifest.json in {ctx.where} is not a JSON list")
    return doc
