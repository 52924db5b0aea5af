"""Container images at the site: list them, load them into a Docker engine, push them to a registry.

Everything here reads the bundle as it travels (a layout folder, one ``.airgap.tar``, its parts
index or any part, through :func:`packager.bundle.reader.open_bundle`) and never unpacks it:
manifests are read with bounded sizes and their sha256 checked; configs and layers are streamed
member by member, in chunks of :data:`CHUNK_SIZE`, hashed while they stream.

How an image sits in a bundle (written by :mod:`packager.bundle.images`): ``index.json`` lists it
annotated ``org.opencontainers.image.ref.name`` = its original reference and ``dev.airgap.role`` =
``image``. The entry is either the platform manifest itself (OCI), the image index kept with
``all_platforms`` (OCI), or a generated OCI index annotated ``dev.airgap.image.wraps`` (see
:data:`packager.bundle.layout.IMAGE_WRAPS`) that lists a docker-typed manifest, or the entries of a
docker-typed manifest list whose own bytes are then in ``blobs/`` too. The wrapper is only there for
readers of the layout (skopeo): it is never loaded or pushed; the digest pushed and reported is the
wrapped original's.

Loading (:func:`load_into_docker`)
    A docker-archive is built on the fly for each image (``manifest.json`` = ``[{"Config":
    "blobs/sha256/<config>", "RepoTags": [ref], "Layers": ["blobs/sha256/<layer>", ...]}]``, last)
    and streamed into ``client.images.load``. Config and layers go as they are in the bundle
    (registry gzip layers too). Every blob is hashed while it streams and its last chunk is held
    back until the digest is checked, so a corrupt blob never reaches the engine whole: the stream
    stops, the engine sees a truncated archive and keeps nothing. The loaded image ID must equal the
    config digest; the image is then tagged with its original reference. An image the engine has
    already (same ID) is only tagged. Before loading, the engine's storage is checked for room
    (:func:`check_engine_room`).

Pushing (:func:`push_to_registry`)
    With python-dxf, per image: every config and layer blob (a HEAD first: blobs the registry has
    are not sent again, so a second run resumes an interrupted push), then every manifest by digest
    as its raw bytes (never re-serialized), then the kept index (if any) by digest, then the tag.
    The digest the registry reports for the tag must equal the bundle's. Connection errors and
    HTTP 5xx/408/429 are retried with exponential backoff; a refusal names the registry's own
    error message. The destination is the original repository path on the new host:
    ``docker.io/library/busybox:1.36`` (or ``busybox:1.36``) pushed to ``10.0.0.5:5000`` becomes
    ``10.0.0.5:5000/library/busybox:1.36``; ``ghcr.io/org/app:2`` becomes ``10.0.0.5:5000/org/app:2``.
    A reference with only a digest is pushed by digest, without a tag.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import socket
import tarfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import partial
from typing import Any, TypeVar

from packager.bundle import layout
from packager.bundle.descriptor import ImageRecord
from packager.bundle.reader import Bundle, ConcatFile, FolderBundle, Member, TarBundle
from packager.bundle.store import BlobMismatch
from packager.errors import AirgapError, CheckFailed, InputError, ResolveError
from packager.resolve.images import (
    MAX_DOCUMENT_BYTES,
    MAX_INDEX_DEPTH,
    Platform,
    _docker_host_text,
    _short_reason,
    parse_platform,
    parse_reference,
)
from packager.util.progress import Reporter
from packager.util.units import human_size

__all__ = [
    "CHUNK_SIZE",
    "Blob",
    "BundleImage",
    "EngineError",
    "ImageError",
    "ImageManifest",
    "LoadedImage",
    "PushedImage",
    "RegistryError",
    "RoomCheck",
    "check_engine_room",
    "connect_docker",
    "image_entries",
    "load_into_docker",
    "push_to_registry",
]

#: bytes read from the bundle and sent at a time
CHUNK_SIZE = 1024 * 1024
#: seconds the engine may take to answer a load (it unpacks every layer before it answers)
LOAD_TIMEOUT = 3 * 3600.0
#: room asked for beyond the estimate of what a load writes
ROOM_MARGIN = 1.05
#: how much a zstd (or unknown) compressed layer is assumed to grow when unpacked
UNPACK_RATIO = 3

_DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")
_GZIP_MAGIC = b"\x1f\x8b"
_HOST = re.compile(r"^[A-Za-z0-9.-]+(:[0-9]{1,5})?$|^\[[0-9A-Fa-f:]+\](:[0-9]{1,5})?$")
_MANIFEST_ACCEPT = ", ".join(layout.IMAGE_MANIFEST_TYPES + layout.IMAGE_INDEX_TYPES)

ENGINE_HINT = (
    "start the Docker engine (`sudo systemctl start docker`, or `sudo dockerd &`) and check it "
    "with `docker info`; if it listens elsewhere, point DOCKER_HOST at its socket "
    "(export DOCKER_HOST=unix:///run/docker.sock)"
)

T = TypeVar("T")


class ImageError(InputError):
    """An image in the bundle cannot be used: missing or malformed manifests or blobs."""


class EngineError(InputError):
    """The Docker engine cannot be used: not running, refusing, or without room."""


class RegistryError(InputError):
    """The destination registry refused or could not be reached."""


# ============================================================================ the images of a bundle


@dataclass(frozen=True)
class Blob:
    digest: str
    size: int
    media_type: str

    def to_json(self) -> dict[str, Any]:
        return {"digest": self.digest, "size": self.size, "mediaType": self.media_type}


@dataclass(frozen=True)
class ImageManifest:
    """One image manifest in the bundle: its own descriptor, its config and its layers."""

    blob: Blob
    platform: str | None  # from the index entry that lists it, when there is one
    config: Blob
    layers: tuple[Blob, ...]

    @property
    def digest(self) -> str:
        return self.blob.digest

    @property
    def size(self) -> int:
        """Config and layers, as stored (compressed layers compressed)."""
        return self.config.size + sum(b.size for b in self.layers)


@dataclass(frozen=True)
class BundleImage:
    """An image as the bundle holds it.

    ``manifest`` is the platform manifest (kept byte for byte: its digest is the registry's).
    ``index`` is the image index or manifest list kept in the bundle (``all_platforms`` builds),
    pushed as the tag; None when only the platform manifest was kept, and then ``chosen_from`` (from
    bundle.json) names the index it was chosen from at build time, if there was one. ``listed`` is
    what ``index.json`` lists: the manifest, the index, or a generated wrapper (``wrapped``).
    ``manifests`` are all image manifests kept (the platform one first), ``indexes`` all indexes
    kept, nested ones before the one that lists them (``index`` last): the push order.
    """

    ref: str
    role: str
    platform: str
    manifest: ImageManifest
    index: Blob | None
    chosen_from: str | None
    listed: Blob
    wrapped: bool
    manifests: tuple[ImageManifest, ...]
    indexes: tuple[Blob, ...]

    @property
    def manifest_digest(self) -> str:
        return self.manifest.digest

    @property
    def config_digest(self) -> str:
        return self.manifest.config.digest

    @property
    def layers(self) -> tuple[Blob, ...]:
        return self.manifest.layers

    @property
    def size(self) -> int:
        """The platform image's config and layers, as stored."""
        return self.manifest.size

    @property
    def index_digest(self) -> str | None:
        """The index kept in the bundle, else the one the manifest was chosen from (not kept)."""
        return self.index.digest if self.index is not None else self.chosen_from

    @property
    def top(self) -> Blob:
        """What a registry tag points at after a push: the kept index, else the manifest."""
        return self.index if self.index is not None else self.manifest.blob

    def blobs(self) -> list[Blob]:
        """Every layer and config under every kept manifest, each once, in push order."""
        seen: dict[str, Blob] = {}
        for m in self.manifests:
            for b in (*m.layers, m.config):
                seen.setdefault(b.digest, b)
        return list(seen.values())

    def to_json(self) -> dict[str, Any]:
        return {
            "ref": self.ref,
            "role": self.role,
            "platform": self.platform,
            "size": self.size,
            "manifest_digest": self.manifest_digest,
            "manifest_media_type": self.manifest.blob.media_type,
            "config_digest": self.config_digest,
            "index_digest": self.index_digest,
            "index_kept": self.index is not None,
            "index_media_type": self.index.media_type if self.index is not None else None,
            "platforms": sorted({m.platform for m in self.manifests if m.platform})
            if self.index is not None
            else [self.platform],
            "layers": [b.to_json() for b in self.layers],
            "listed_digest": self.listed.digest,
            "wrapped": self.wrapped,
        }


def image_entries(bundle: Bundle) -> list[BundleImage]:
    """The images ``index.json`` lists, in its order, read from the manifests inside the bundle.

    Each manifest and index is read with a bounded size and its sha256 checked (a mismatch raises
    :class:`BlobMismatch`); configs and layers are not read here. Roles come from the manifest
    recorded in bundle.json (``runtime.images[].role``, default ``serving``); bundle.json's
    ``images`` name the platform manifest chosen at build time, which picks it out of a kept index.
    """
    docs = _Docs(bundle)
    index = docs.json_member(layout.INDEX_JSON)
    _, descriptor = bundle.descriptor()
    target_platform = descriptor.target.platform
    meta = {i.ref: i for i in descriptor.images}
    roles = descriptor.image_roles()
    entries = index.get("manifests")
    if not isinstance(entries, list):
        raise ImageError(f"{bundle.source}: {layout.INDEX_JSON} has no list of manifests")
    out: list[BundleImage] = []
    for entry in entries:
        annotations = entry.get("annotations") if isinstance(entry, dict) else None
        if not isinstance(annotations, dict) or annotations.get(layout.ROLE) != "image":
            continue
        ref = annotations.get(layout.REF_NAME)
        if not isinstance(ref, str) or not ref:
            raise ImageError(
                f"{bundle.source}: an image in {layout.INDEX_JSON} has no {layout.REF_NAME}"
            )
        out.append(
            _image(docs, ref, entry, meta.get(ref), roles.get(ref, "serving"), target_platform)
        )
    missing = sorted(set(meta) - {i.ref for i in out})
    if missing:
        raise ImageError(
            f"{bundle.source}: {layout.BUNDLE_JSON} lists image{'s' if len(missing) > 1 else ''} "
            f"{', '.join(missing)}, which {layout.INDEX_JSON} does not",
            hint="the bundle is damaged or was edited: `airgap verify` checks it",
        )
    return out


class _Docs:
    """Manifests and indexes of the bundle: bounded reads, sha256 checked, parsed once."""

    def __init__(self, bundle: Bundle) -> None:
        self.bundle = bundle
        self.cache: dict[str, tuple[bytes, dict[str, Any]]] = {}

    def json_member(self, name: str) -> dict[str, Any]:
        raw = self.bundle.read(name, MAX_DOCUMENT_BYTES)
        return _parse_object(raw, f"{self.bundle.source}: {name}")

    def member(self, ref: str, what: str, digest: str) -> Member:
        try:
            name = layout.blob_path(digest)
        except ValueError:
            raise ImageError(f"image {ref}: {what} has digest {digest!r}, not sha256") from None
        m = self.bundle.members().get(name)
        if m is None or m.kind != "file":
            raise ImageError(
                f"image {ref}: {what} {digest} is not in the bundle {self.bundle.source}",
                hint="the bundle is incomplete: `airgap verify` names what is missing",
            )
        return m

    def read(
        self, ref: str, what: str, digest: str, size: int | None
    ) -> tuple[bytes, dict[str, Any]]:
        if digest in self.cache:
            return self.cache[digest]
        m = self.member(ref, what, digest)
        if size is not None and m.size != size:
            raise BlobMismatch(
                f"image {ref}: {what} {digest} is {m.size} bytes in {self.bundle.source}, "
                f"its descriptor says {size}",
                hint="the bundle is corrupt: `airgap verify` names the damaged part",
            )
        if m.size > MAX_DOCUMENT_BYTES:
            raise ImageError(
                f"image {ref}: {what} {digest} is {m.size} bytes, more than the "
                f"{MAX_DOCUMENT_BYTES} a manifest may have"
            )
        raw = self.bundle.read(m.name, MAX_DOCUMENT_BYTES)
        got = "sha256:" + hashlib.sha256(raw).hexdigest()
        if got != digest:
            raise BlobMismatch(
                f"image {ref}: {what} {digest} in {self.bundle.source} hashes to {got}",
                hint="the bundle is corrupt: `airgap verify` names the damaged part; copy it again",
            )
        doc = (raw, _parse_object(raw, f"image {ref}: {what} {digest}"))
        self.cache[digest] = doc
        return doc


def _parse_object(raw: bytes, what: str) -> dict[str, Any]:
    try:
        doc = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ImageError(f"{what} is not JSON ({exc})") from None
    if not isinstance(doc, dict):
        raise ImageError(f"{what} is not a JSON object")
    return doc


def _descriptor(ref: str, what: str, d: object, default_type: str | None = None) -> Blob:
    if not isinstance(d, dict):
        raise ImageError(f"image {ref}: {what} is not a descriptor object")
    digest, size, mt = d.get("digest"), d.get("size"), d.get("mediaType", default_type)
    if not isinstance(digest, str) or not _DIGEST.match(digest):
        raise ImageError(f"image {ref}: {what} has digest {digest!r}, not sha256:<64 hex>")
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise ImageError(f"image {ref}: {what} {digest} has no valid size")
    if not isinstance(mt, str) or not mt:
        raise ImageError(f"image {ref}: {what} {digest} has no media type")
    return Blob(digest, size, mt)


def _kind(media_type: str, data: dict[str, Any]) -> str:
    mt = data.get("mediaType") if isinstance(data.get("mediaType"), str) else media_type
    if mt in layout.IMAGE_INDEX_TYPES:
        return "index"
    if mt in layout.IMAGE_MANIFEST_TYPES:
        return "manifest"
    if isinstance(data.get("manifests"), list):
        return "index"
    if isinstance(data.get("config"), dict) and isinstance(data.get("layers"), list):
        return "manifest"
    return f"unsupported ({mt})"


def _own_type(blob: Blob, data: dict[str, Any]) -> Blob:
    """The document's own mediaType decides (what a registry checks a PUT's Content-Type against)."""
    mt = data.get("mediaType")
    return Blob(blob.digest, blob.size, mt) if isinstance(mt, str) and mt else blob


def _parsed_platform(text: str | None) -> Platform | None:
    if text is None:
        return None
    try:
        return parse_platform(text)
    except ResolveError:
        return None


def _platform_text(p: object) -> str | None:
    if not isinstance(p, dict):
        return None
    found = Platform.of(p.get("os"), p.get("architecture"), p.get("variant"))
    return str(found) if found is not None else None


def _image_manifest(
    ref: str, blob: Blob, data: dict[str, Any], platform: str | None
) -> ImageManifest:
    docker = blob.media_type == layout.DOCKER_MANIFEST
    config = _descriptor(
        ref,
        f"the config of manifest {blob.digest}",
        data.get("config"),
        layout.DOCKER_CONFIG if docker else layout.OCI_CONFIG,
    )
    raw_layers = data.get("layers")
    if not isinstance(raw_layers, list):
        raise ImageError(f"image {ref}: manifest {blob.digest} has no list of layers")
    layers = tuple(
        _descriptor(
            ref,
            f"layer {n} of manifest {blob.digest}",
            d,
            layout.DOCKER_LAYER_TAR + ".gzip" if docker else layout.OCI_LAYER_TAR,
        )
        for n, d in enumerate(raw_layers)
    )
    return ImageManifest(blob, platform, config, layers)


def _walk(
    docs: _Docs,
    ref: str,
    index: dict[str, Any],
    where: str,
    depth: int,
    manifests: list[ImageManifest],
    indexes: list[Blob],
) -> None:
    if depth > MAX_INDEX_DEPTH:
        raise ImageError(f"image {ref}: indexes nest deeper than {MAX_INDEX_DEPTH} in the bundle")
    entries = index.get("manifests")
    if not isinstance(entries, list):
        raise ImageError(f"image {ref}: {where} has no list of manifests")
    for n, entry in enumerate(entries):
        what = f"entry {n} of {where}"
        blob = _descriptor(ref, what, entry)
        _, data = docs.read(ref, what, blob.digest, blob.size)
        blob = _own_type(blob, data)
        kind = _kind(blob.media_type, data)
        if kind == "index":
            _walk(docs, ref, data, f"index {blob.digest}", depth + 1, manifests, indexes)
            if blob not in indexes:
                indexes.append(blob)
        elif kind == "manifest":
            if all(m.digest != blob.digest for m in manifests):
                manifests.append(
                    _image_manifest(ref, blob, data, _platform_text(entry.get("platform")))
                )
        else:
            raise ImageError(f"image {ref}: {what} is {kind}, neither an image nor an index")


def _image(
    docs: _Docs,
    ref: str,
    entry: dict[str, Any],
    meta: ImageRecord | None,
    role: str,
    target_platform: str,
) -> BundleImage:
    listed = _descriptor(ref, f"the {layout.INDEX_JSON} entry", entry)
    _, data = docs.read(ref, "manifest", listed.digest, listed.size)
    listed = _own_type(listed, data)
    kind = _kind(listed.media_type, data)
    manifests: list[ImageManifest] = []
    indexes: list[Blob] = []
    index: Blob | None = None
    wrapped = False
    if kind == "manifest":
        manifests.append(_image_manifest(ref, listed, data, _platform_text(entry.get("platform"))))
    elif kind == "index":
        annotations = data.get("annotations")
        wraps = annotations.get(layout.IMAGE_WRAPS) if isinstance(annotations, dict) else None
        if wraps is None:
            _walk(docs, ref, data, f"index {listed.digest}", 1, manifests, indexes)
            index = listed
            indexes.append(listed)
        else:
            wrapped = True
            if not isinstance(wraps, str) or not _DIGEST.match(wraps):
                raise ImageError(f"image {ref}: {layout.IMAGE_WRAPS} {wraps!r} is not a digest")
            listed_digests = [
                e.get("digest") for e in data.get("manifests") or [] if isinstance(e, dict)
            ]
            if wraps in listed_digests:  # one docker manifest, listed through the wrapper
                _walk(docs, ref, data, f"generated index {listed.digest}", 1, manifests, indexes)
            else:  # a docker manifest list: its own bytes are in the bundle
                m = docs.member(ref, "manifest list", wraps)
                _, wrapped_data = docs.read(ref, "manifest list", wraps, m.size)
                index = _own_type(Blob(wraps, m.size, layout.DOCKER_MANIFEST_LIST), wrapped_data)
                if _kind(index.media_type, wrapped_data) != "index":
                    raise ImageError(f"image {ref}: {wraps}, which the wrapper names, is no index")
                _walk(docs, ref, wrapped_data, f"manifest list {wraps}", 1, manifests, indexes)
                indexes.append(index)
    else:
        raise ImageError(f"image {ref}: {listed.digest} in {layout.INDEX_JSON} is {kind}")
    if not manifests:
        raise ImageError(f"image {ref}: no image manifest under {listed.digest}")
    chosen = _choose(ref, manifests, meta, target_platform)
    manifests.remove(chosen)
    manifests.insert(0, chosen)
    said = meta.config_digest if meta is not None else None
    if said is not None and said != chosen.config.digest:
        raise CheckFailed(
            f"image {ref}: {layout.BUNDLE_JSON} names config {said}, its manifest "
            f"{chosen.digest} names {chosen.config.digest}",
            hint="the bundle was edited or damaged: `airgap verify` checks it",
        )
    return BundleImage(
        ref=ref,
        role=role,
        platform=meta.platform if meta is not None else chosen.platform or target_platform,
        manifest=chosen,
        index=index,
        chosen_from=meta.index_digest if meta is not None else None,
        listed=listed,
        wrapped=wrapped,
        manifests=tuple(manifests),
        indexes=tuple(indexes),
    )


def _choose(
    ref: str, manifests: list[ImageManifest], meta: ImageRecord | None, target_platform: str
) -> ImageManifest:
    want = meta.manifest_digest if meta is not None else None
    for m in manifests:
        if m.digest == want:
            return m
    if len(manifests) == 1:
        return manifests[0]
    text = meta.platform if meta is not None else target_platform
    if text:
        try:
            target = parse_platform(text)
        except ResolveError:
            target = None
        found: list[tuple[int, int, ImageManifest]] = []
        for n, m in enumerate(manifests):
            p = _parsed_platform(m.platform)
            if target is not None and p is not None and target.accepts(p):
                found.append((target.preference(p), n, m))
        if found:
            return min(found)[2]
    raise ImageError(
        f"image {ref}: the bundle keeps {len(manifests)} platform manifests and none is "
        f"{text or 'named by bundle.json'}"
    )


# ============================================================================ streaming blobs


def _verified_chunks(bundle: Bundle, ref: str, blob: Blob, what: str, dest: str) -> Iterator[bytes]:
    """The blob's bytes from the bundle, hashed as they pass; the last chunk is held back until
    the digest is checked, so that bad content never reaches ``dest`` whole."""
    name = layout.blob_path(blob.digest)
    m = bundle.members().get(name)
    if m is None or m.kind != "file":
        raise ImageError(
            f"image {ref}: {what} {blob.digest} is not in the bundle {bundle.source}",
            hint="the bundle is incomplete: `airgap verify` names what is missing",
        )
    if m.size != blob.size:
        raise BlobMismatch(
            f"image {ref}: {what} {blob.digest} is {m.size} bytes in {bundle.source}, its "
            f"manifest says {blob.size}; nothing of it was sent to {dest}",
            hint="the bundle is corrupt: `airgap verify` names the damaged part",
        )
    h = hashlib.sha256()
    total = 0
    pending: bytes | None = None
    try:
        with bundle.open_member(name) as fh:
            while chunk := fh.read(CHUNK_SIZE):
                total += len(chunk)
                if total > blob.size:
                    break
                h.update(chunk)
                if pending is not None:
                    yield pending
                pending = chunk
    except OSError as exc:
        raise ImageError(
            f"image {ref}: cannot read {what} {blob.digest} from {bundle.source}: "
            f"{exc.strerror or exc}"
        ) from None
    got = "sha256:" + h.hexdigest()
    if total != blob.size or got != blob.digest:
        raise BlobMismatch(
            f"image {ref}: {what} {blob.digest} in {bundle.source} does not match its digest "
            f"(read {total} bytes hashing to {got}); the stream to {dest} was stopped before "
            "its end",
            hint="the bundle is corrupt: `airgap verify` names the damaged part; copy it again",
        )
    if pending is not None:
        yield pending


def _tar_header(name: str, size: int, *, directory: bool = False) -> bytes:
    info = tarfile.TarInfo(name)
    info.size = 0 if directory else size
    info.type = tarfile.DIRTYPE if directory else tarfile.REGTYPE
    info.mode = 0o755 if directory else 0o644
    info.mtime = 0
    return info.tobuf(format=tarfile.USTAR_FORMAT)


def _padding(size: int) -> bytes:
    return b"\0" * (-size % tarfile.BLOCKSIZE)


def _archive_layout(image: BundleImage, tag: str | None) -> tuple[list[Blob], bytes]:
    """The blobs a docker-archive of the platform image holds (config first) and its
    manifest.json."""
    m = image.manifest
    blobs = [m.config]
    for b in m.layers:
        if b not in blobs:
            blobs.append(b)
    doc = [
        {
            "Config": layout.blob_path(m.config.digest),
            "RepoTags": [tag] if tag else [],
            "Layers": [layout.blob_path(b.digest) for b in m.layers],
        }
    ]
    return blobs, json.dumps(doc, separators=(",", ":")).encode()


def _archive_size(blobs: list[Blob], manifest: bytes) -> int:
    dirs = 2 * tarfile.BLOCKSIZE
    members = sum(tarfile.BLOCKSIZE + b.size + len(_padding(b.size)) for b in blobs)
    tail = tarfile.BLOCKSIZE + len(manifest) + len(_padding(len(manifest)))
    return dirs + members + tail + 2 * tarfile.BLOCKSIZE


def _docker_archive(
    bundle: Bundle, image: BundleImage, tag: str | None, sent: Callable[[int], None], dest: str
) -> Iterator[bytes]:
    """A docker-archive of ``image`` built while it streams: config and layers as stored."""
    blobs, manifest = _archive_layout(image, tag)
    yield _tar_header("blobs/", 0, directory=True)
    yield _tar_header(layout.BLOBS_DIR + "/", 0, directory=True)
    for blob in blobs:
        what = "image config" if blob == image.manifest.config else "layer"
        yield _tar_header(layout.blob_path(blob.digest), blob.size)
        for chunk in _verified_chunks(bundle, image.ref, blob, what, dest):
            sent(len(chunk))
            yield chunk
        yield _padding(blob.size)
    yield _tar_header("manifest.json", len(manifest))  # last: nothing is loadable before it
    yield manifest + _padding(len(manifest))
    yield b"\0" * (2 * tarfile.BLOCKSIZE)


def _tag_of(ref: str) -> tuple[str, str] | None:
    """(repository as written, tag) for `docker tag`; None for a reference with only a digest."""
    name = ref.split("@", 1)[0]
    slash, colon = name.rfind("/"), name.rfind(":")
    if colon > slash:
        return name[:colon], name[colon + 1 :]
    if "@" in ref:
        return None
    return name, "latest"


# ============================================================================ Docker engine


@dataclass(frozen=True)
class LoadedImage:
    """An image in the engine: ``status`` is ``loaded`` (streamed now) or ``present`` (the engine
    had this image ID already: only tagged)."""

    ref: str
    image_id: str
    config_digest: str
    tag: str | None  # what it is tagged as; None for a digest-only reference
    status: str
    bytes_sent: int

    def to_json(self) -> dict[str, Any]:
        return {
            "ref": self.ref,
            "image_id": self.image_id,
            "config_digest": self.config_digest,
            "tag": self.tag,
            "status": self.status,
            "bytes_sent": self.bytes_sent,
        }


@dataclass(frozen=True)
class RoomCheck:
    """Free space of the engine's storage against what a load writes (an estimate)."""

    checked: bool
    needed: int
    free: int | None
    root: str | None
    driver: str | None
    reason: str  # one line: what was compared, or why it could not be

    def to_json(self) -> dict[str, Any]:
        return {
            "checked": self.checked,
            "needed": self.needed,
            "free": self.free,
            "root": self.root,
            "driver": self.driver,
            "reason": self.reason,
        }


def connect_docker(timeout: float = 60.0) -> Any:
    """A docker SDK client for $DOCKER_HOST that has answered; an :class:`EngineError` naming
    DOCKER_HOST and how to start an engine when there is none."""
    import docker
    import docker.errors
    import requests

    try:
        return docker.from_env(timeout=max(1, math.ceil(timeout)))
    except (docker.errors.DockerException, requests.exceptions.RequestException, OSError) as exc:
        raise _engine_down(exc) from None


def _engine_down(exc: BaseException) -> EngineError:
    return EngineError(
        f"cannot reach the Docker engine at {_docker_host_text()}: {_short_reason(exc)}",
        hint=ENGINE_HINT,
    )


def _engine_info(client: Any) -> dict[str, Any]:
    import docker.errors
    import requests

    try:
        info = client.info()
    except (docker.errors.DockerException, requests.exceptions.RequestException, OSError) as exc:
        raise _engine_down(exc) from None
    if not isinstance(info, dict):
        raise EngineError(f"the Docker engine at {_docker_host_text()} gave no `docker info`")
    return info


def _peek(bundle: Bundle, member: Member, offset: int, n: int) -> bytes | None:
    """``n`` bytes of a member at ``offset`` (negative: from its end), without a big buffer."""
    start = offset if offset >= 0 else member.size + offset
    if start < 0 or start + n > member.size:
        return None
    try:
        if isinstance(bundle, FolderBundle):
            with (bundle.source / member.name).open("rb") as fh:
                fh.seek(start)
                return fh.read(n)
        if isinstance(bundle, TarBundle):
            with ConcatFile(bundle.parts) as raw:
                raw.seek(member.offset + start)
                return raw.read(n)
    except OSError:
        return None
    return None


def _unpacked(bundle: Bundle, blob: Blob) -> int:
    """What a layer takes unpacked: a plain tar its size; gzip its trailer's ISIZE (modulo 4 GiB,
    lifted to at least the compressed size); another compression UNPACK_RATIO times its size."""
    member = bundle.members().get(layout.blob_path(blob.digest))
    head = _peek(bundle, member, 0, 2) if member is not None else None
    if member is not None and head == _GZIP_MAGIC:
        tail = _peek(bundle, member, -4, 4)
        if tail is not None and len(tail) == 4:
            size = int.from_bytes(tail, "little")
            while size < blob.size - blob.size // 64:
                size += 1 << 32
            return size
    if blob.media_type.endswith("tar") and head != _GZIP_MAGIC:
        return blob.size
    return blob.size * UNPACK_RATIO


def _needed(bundle: Bundle, images: list[BundleImage], driver: str | None) -> int:
    """The archive copy a legacy engine untars into DockerRootDir/tmp, plus the unpacked layers
    (vfs stores each layer as a full copy of the tree below it)."""
    total = 0
    for image in images:
        blobs, manifest = _archive_layout(image, image.ref)
        total += _archive_size(blobs, manifest)
        running = 0
        for layer in image.layers:
            u = _unpacked(bundle, layer)
            running += u
            total += running if driver == "vfs" else u
    return math.ceil(total * ROOM_MARGIN)


def _is_local(client: Any, info: dict[str, Any]) -> tuple[bool, str]:
    api = getattr(client, "api", None)
    base = getattr(api, "base_url", None)
    if isinstance(base, str):
        if base != "http+docker://localhost":  # what the SDK calls a unix socket
            return False, f"the engine ({_docker_host_text()}) is not on a local unix socket"
    else:
        host = os.environ.get("DOCKER_HOST", "")
        if host and not host.startswith("unix://"):
            return False, f"the engine ({_docker_host_text()}) is not on a local unix socket"
    name = info.get("Name")
    if isinstance(name, str) and name and name != socket.gethostname():
        return False, f"the engine runs on host {name!r}, not here ({socket.gethostname()!r})"
    return True, ""


def check_engine_room(
    bundle: Bundle, client: Any, images: list[BundleImage] | None = None
) -> RoomCheck:
    """Compare the free space of the engine's DockerRootDir with what loading ``images`` (default:
    all of the bundle's) writes there. Raises :class:`EngineError` when it does not fit; returns
    ``checked=False`` with the reason when the engine's storage is not visible from here (a
    remote engine, a VM, another host name)."""
    info = _engine_info(client)
    images = image_entries(bundle) if images is None else images
    root = info.get("DockerRootDir") if isinstance(info.get("DockerRootDir"), str) else None
    driver = info.get("Driver") if isinstance(info.get("Driver"), str) else None
    needed = _needed(bundle, images, driver)
    if not images:
        return RoomCheck(True, 0, None, root, driver, "nothing to load")
    local, why = _is_local(client, info)
    if local and root is None:
        local, why = False, "the engine does not say where its storage is (no DockerRootDir)"
    if local and root is not None and not os.path.isdir(root):
        local, why = False, f"its storage {root} is not visible from here"
    if not local or root is None:
        return RoomCheck(
            False,
            needed,
            None,
            root,
            driver,
            f"cannot check the room in the engine's storage: {why}; the load needs about "
            f"{human_size(needed)} there",
        )
    try:
        st = os.statvfs(root)
    except OSError as exc:
        return RoomCheck(
            False,
            needed,
            None,
            root,
            driver,
            f"cannot check the room in the engine's storage {root}: {exc.strerror or exc}; "
            f"the load needs about {human_size(needed)} there",
        )
    free = st.f_bavail * st.f_frsize
    text = (
        f"the engine's storage {root} (driver {driver or '?'}) has {human_size(free)} free; "
        f"loading {len(images)} image{'s' if len(images) != 1 else ''} needs about "
        f"{human_size(needed)}"
    )
    if free < needed:
        raise EngineError(
            f"not enough room: {text}",
            hint="free space there (`docker system prune`, remove unused images) or move the "
            "engine's data-root to a larger disk; then run the load again",
        )
    return RoomCheck(True, needed, free, root, driver, text)


def _check_platform(image: BundleImage, info: dict[str, Any]) -> None:
    engine = Platform.of(info.get("OSType"), info.get("Architecture"))
    try:
        wanted = parse_platform(image.platform)
    except ResolveError:
        return
    if engine is None or (wanted.os, wanted.architecture) == (engine.os, engine.architecture):
        return
    raise EngineError(
        f"image {image.ref} is for {image.platform}; the Docker engine at {_docker_host_text()} "
        f"runs {engine}: it could not run it",
        hint="use the bundle built for this machine's platform, or push the image to a registry "
        "instead (airgap install --registry); pass any_platform to load it anyway",
    )


def load_into_docker(
    bundle: Bundle,
    client: Any,
    *,
    progress: Reporter | None = None,
    any_platform: bool = False,
) -> list[LoadedImage]:
    """Load every image of ``bundle`` into the engine of ``client`` (a docker SDK client, e.g.
    :func:`connect_docker`), tagged with its original reference.

    Checks first that each image's platform is the engine's (unless ``any_platform``) and that the
    engine's storage has room (:func:`check_engine_room`; when it cannot tell, ``progress`` gets a
    note saying so). A blob that does not match its digest raises :class:`BlobMismatch` and the
    engine keeps nothing of that image; an engine that is not running raises
    :class:`EngineError` naming DOCKER_HOST.
    """
    reporter = progress or Reporter()
    images = image_entries(bundle)
    if not images:
        return []
    info = _engine_info(client)
    if not any_platform:
        for image in images:
            _check_platform(image, info)
    have = {i.config_digest for i in images if _engine_has(client, i.config_digest)}
    todo: list[BundleImage] = []
    for i in images:  # one load per image ID (two references may name one image)
        if i.config_digest not in have and all(t.config_digest != i.config_digest for t in todo):
            todo.append(i)
    room = check_engine_room(bundle, client, todo)
    if not room.checked:
        reporter.note(room.reason)
    out: list[LoadedImage] = []
    for image in images:
        if image.config_digest in have:
            tag = _tag(client, image)
            out.append(
                LoadedImage(image.ref, image.config_digest, image.config_digest, tag, "present", 0)
            )
        else:
            out.append(_load_one(bundle, client, image, info, reporter))
            have.add(image.config_digest)
    return out


def _engine_has(client: Any, image_id: str) -> bool:
    import docker.errors
    import requests

    try:
        found = client.images.get(image_id)
    except docker.errors.ImageNotFound:
        return False
    except (docker.errors.DockerException, requests.exceptions.RequestException, OSError) as exc:
        raise _engine_down(exc) from None
    return bool(found.id == image_id)


def _engine_failed(image: BundleImage, what: str, exc: BaseException) -> EngineError:
    import docker.errors

    if isinstance(exc, docker.errors.APIError):
        reason = str(exc.explanation or exc)
    else:
        reason = _short_reason(exc)
    return EngineError(
        f"image {image.ref}: the Docker engine at {_docker_host_text()} failed while {what}: "
        f"{reason}",
        hint="check the engine's log (`journalctl -u docker`) and `docker info`; " + ENGINE_HINT,
    )


def _load_one(
    bundle: Bundle, client: Any, image: BundleImage, info: dict[str, Any], reporter: Reporter
) -> LoadedImage:
    import docker.errors
    import requests

    tag_parts = _tag_of(image.ref)
    tag = f"{tag_parts[0]}:{tag_parts[1]}" if tag_parts else None
    blobs, manifest = _archive_layout(image, tag)
    reporter.phase(f"load {image.ref}", _archive_size(blobs, manifest))
    sent = 0

    def count(n: int) -> None:
        nonlocal sent
        sent += n
        reporter.advance(n)

    dest = f"the Docker engine ({_docker_host_text()})"
    api = getattr(client, "api", None)
    old_timeout = getattr(api, "timeout", None)
    if api is not None:
        api.timeout = max(LOAD_TIMEOUT, old_timeout or 0)  # it answers once every layer is in
    try:
        client.images.load(_docker_archive(bundle, image, tag, count, dest))
    except AirgapError:
        raise
    except docker.errors.ImageLoadError as exc:
        raise EngineError(
            f"image {image.ref}: the Docker engine at {_docker_host_text()} refused the image: "
            f"{exc}",
            hint="the engine's log (`journalctl -u docker`) says more",
        ) from None
    except (docker.errors.DockerException, requests.exceptions.RequestException, OSError) as exc:
        raise _engine_failed(image, "loading the image", exc) from None
    finally:
        if api is not None:
            api.timeout = old_timeout
    image_id = _loaded_id(client, image, info)
    _tag(client, image)
    return LoadedImage(image.ref, image_id, image.config_digest, tag, "loaded", sent)


def _loaded_id(client: Any, image: BundleImage, info: dict[str, Any]) -> str:
    """The loaded image's ID, which must be its config digest (the legacy image store's rule)."""
    import docker.errors
    import requests

    try:
        found = client.images.get(image.config_digest)
    except docker.errors.ImageNotFound:
        raise EngineError(
            f"image {image.ref}: the engine accepted the archive but has no image "
            f"{image.config_digest}",
            hint="an engine with the containerd image store names images by manifest digest: "
            "check `docker images --digests`",
        ) from None
    except (docker.errors.DockerException, requests.exceptions.RequestException, OSError) as exc:
        raise _engine_failed(image, "looking up the loaded image", exc) from None
    if found.id != image.config_digest:
        raise CheckFailed(
            f"image {image.ref}: the engine's image ID is {found.id}, the bundle's config digest "
            f"is {image.config_digest}",
            hint="the engine changed the image while loading it; report this with `docker info`",
        )
    return str(found.id)


def _tag(client: Any, image: BundleImage) -> str | None:
    """Tag the image ID with the original reference (moving the tag if it pointed elsewhere)."""
    import docker.errors
    import requests

    parts = _tag_of(image.ref)
    if parts is None:
        return None
    repo, tag = parts
    try:
        client.api.tag(image.config_digest, repo, tag, force=True)
        found = client.images.get(f"{repo}:{tag}")
    except (docker.errors.DockerException, requests.exceptions.RequestException, OSError) as exc:
        raise _engine_failed(image, f"tagging it {repo}:{tag}", exc) from None
    if found.id != image.config_digest:
        raise EngineError(
            f"image {image.ref}: after tagging, {repo}:{tag} names {found.id}, not "
            f"{image.config_digest}"
        )
    return f"{repo}:{tag}"


# ============================================================================ registry


@dataclass(frozen=True)
class PushedImage:
    """An image in the destination registry: ``destination`` is where (HOST/REPO:TAG, or
    HOST/REPO@DIGEST for a digest-only reference), ``digest`` what the tag points at (the kept
    index, else the platform manifest) as the registry reported it after the push."""

    ref: str
    destination: str
    digest: str
    manifest_digest: str
    index_digest: str | None
    uploaded: tuple[str, ...]  # blobs sent now
    mounted: tuple[str, ...]  # blobs mounted from another repository of the push (not sent)
    present: tuple[str, ...]  # blobs the repository had already (not sent)
    bytes_uploaded: int
    retries: int

    def to_json(self) -> dict[str, Any]:
        return {
            "ref": self.ref,
            "destination": self.destination,
            "digest": self.digest,
            "manifest_digest": self.manifest_digest,
            "index_digest": self.index_digest,
            "uploaded": list(self.uploaded),
            "mounted": list(self.mounted),
            "present": list(self.present),
            "bytes_uploaded": self.bytes_uploaded,
            "retries": self.retries,
        }


def _registry_host(registry: str) -> str:
    text = registry.strip()
    if "://" in text:
        raise InputError(
            f"registry {registry!r}: give HOST[:PORT] without a scheme",
            hint="e.g. --registry 10.0.0.5:5000 (add --insecure for plain HTTP)",
        )
    if "/" in text or not _HOST.match(text):
        raise InputError(
            f"registry {registry!r} is not HOST[:PORT]",
            hint="images keep their repository path: give only the registry's address, "
            "e.g. 10.0.0.5:5000",
        )
    return text


def _registry_message(response: Any) -> str:
    """The registry's own words from an error answer: ``CODE: message`` of its JSON errors."""
    if response is None:
        return ""
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict) and isinstance(body.get("errors"), list):
        parts = []
        for e in body["errors"][:3]:
            if isinstance(e, dict):
                code, msg = e.get("code"), e.get("message")
                parts.append(": ".join(str(x) for x in (code, msg) if x))
        text = "; ".join(p for p in parts if p)
        if text:
            return text if len(text) <= 300 else text[:300] + "..."
    raw = getattr(response, "text", "") or ""
    raw = " ".join(raw.split())
    return raw if len(raw) <= 200 else raw[:200] + "..."


_STATUS_HINT = {
    401: "the registry wants credentials: give them for an HTTPS registry (airgap never sends "
    "credentials over plain HTTP)",
    403: "the account may not push to this repository: check its permissions on the registry",
    404: "check the registry address; some registries (Harbor) need the project to exist first",
    413: "the registry (or a proxy in front of it) limits upload sizes: raise the limit",
}


@dataclass
class _Remote:
    """One repository on the destination registry, through python-dxf."""

    host: str
    repository: str
    insecure: bool
    timeout: float
    retries: int
    backoff: float
    credentials: tuple[str, str] | None
    ref: str
    retried: int = 0
    denied: Any = None  # the last 401 answer (dxf drops it): the registry's words are in it
    client: Any = field(init=False, default=None)

    def __post_init__(self) -> None:
        import dxf

        self.client = dxf.DXF(
            self.host,
            self.repository,
            auth=self._auth,
            insecure=self.insecure,
            timeout=self.timeout,
        )

    def _auth(self, client: Any, response: Any) -> None:
        self.denied = response
        if self.insecure:  # no credentials over plain HTTP; dxf raises DXFUnauthorizedError
            return
        import requests

        user, password = self.credentials or (None, None)
        try:
            client.authenticate(user, password, actions=["pull", "push"], response=response)
        except (requests.exceptions.RequestException, KeyError, ValueError):
            return  # the request is answered 401 again: reported with the registry's words

    @property
    def scheme(self) -> str:
        return "http" if self.insecure else "https"

    def retry(self, what: str, fn: Callable[[], T]) -> T:
        attempt = 0
        while True:
            try:
                return fn()
            except AirgapError:
                raise
            except Exception as exc:
                translated = self._translate(exc, what, attempt + 1)
                if translated is None:
                    raise
                error, transient = translated
                if not transient or attempt >= self.retries:
                    raise error from None
            time.sleep(self.backoff * 2**attempt)
            attempt += 1
            self.retried += 1

    def _translate(
        self, exc: Exception, what: str, attempts: int
    ) -> tuple[RegistryError, bool] | None:
        import dxf.exceptions
        import requests

        where = f"registry {self.host} ({self.scheme})"
        tries = f" (after {attempts} attempts)" if attempts > 1 else ""
        head = f"image {self.ref}: {where} "
        if isinstance(exc, requests.exceptions.SSLError):
            return RegistryError(
                f"{head}TLS failed while {what}: {_short_reason(exc)}",
                hint="for a plain-HTTP registry pass --insecure; otherwise install its CA "
                "certificate",
            ), False
        if isinstance(exc, (requests.exceptions.ConnectionError, requests.exceptions.Timeout)):
            return RegistryError(
                f"{head}cannot be reached while {what}{tries}: {_short_reason(exc)}",
                hint="check the address and port and that the registry runs; a plain-HTTP "
                "registry needs --insecure",
            ), True
        if isinstance(exc, requests.exceptions.ChunkedEncodingError):
            return RegistryError(f"{head}broke the connection while {what}{tries}"), True
        status: int | None = None
        response: Any = None
        if isinstance(exc, dxf.exceptions.DXFUnauthorizedError):
            status, response = 401, self.denied
        elif isinstance(exc, requests.exceptions.HTTPError):
            response = exc.response
            status = getattr(response, "status_code", None)
        elif isinstance(exc, dxf.exceptions.DXFError):
            return RegistryError(f"{head}failed while {what}: {exc}"), False
        elif isinstance(exc, requests.exceptions.RequestException):
            return RegistryError(f"{head}failed while {what}: {_short_reason(exc)}"), True
        else:
            return None
        said = _registry_message(response)
        transient = status is not None and (status >= 500 or status in (408, 429))
        hint = _STATUS_HINT.get(status or 0) or (
            "the registry failed: check its log and its storage, then run the push again "
            "(blobs already there are not sent again)"
            if transient
            else None
        )
        return RegistryError(
            f"{head}refused {what} in {self.repository}: HTTP {status}"
            + (f": {said}" if said else "")
            + tries,
            hint=hint,
        ), transient

    # ---------------------------------------------------------------- operations

    def has_blob(self, digest: str) -> bool | None:
        """True / False; None when the registry's HEAD answer says neither (the upload tells)."""
        import dxf.exceptions
        import requests

        try:
            self.client.blob_size(digest)
        except requests.exceptions.HTTPError as exc:
            status = getattr(exc.response, "status_code", None)
            return False if status == 404 else None
        except dxf.exceptions.DXFUnauthorizedError:
            return None
        return True

    def has_manifest(self, digest: str) -> bool:
        import dxf.exceptions
        import requests

        try:
            got, _ = self.client.head_manifest_and_response(digest)
        except (requests.exceptions.HTTPError, dxf.exceptions.DXFUnauthorizedError):
            return False
        return bool(got == digest)

    def mount(self, source: str, digest: str) -> bool:
        """Mount a blob from another repository of the registry; False when it will not."""
        import dxf.exceptions
        import requests

        try:
            self.client.mount_blob(source, digest)
        except (dxf.exceptions.DXFMountFailed, requests.exceptions.HTTPError):
            return False
        return True

    def put_manifest(self, reference: str, raw: bytes, media_type: str) -> str | None:
        """PUT the manifest's bytes as they are (dxf's set_manifest takes text and reads the media
        type from the JSON); the digest the registry reports."""
        r = self.client._request(
            "put", "manifests/" + reference, data=raw, headers={"Content-Type": media_type}
        )
        got = r.headers.get("Docker-Content-Digest")
        return got if isinstance(got, str) else None

    def digest_of(self, reference: str) -> str | None:
        r = self.client._request(
            "head", "manifests/" + reference, headers={"Accept": _MANIFEST_ACCEPT}
        )
        got = r.headers.get("Docker-Content-Digest")
        return got if isinstance(got, str) else None


class _Upload:
    """A blob's verified chunks with a length: requests sends Content-Length, not chunked."""

    def __init__(self, chunks: Iterator[bytes], size: int) -> None:
        self.chunks = chunks
        self.size = size

    def __len__(self) -> int:
        return self.size

    def __iter__(self) -> Iterator[bytes]:
        return self.chunks


def push_to_registry(
    bundle: Bundle,
    registry: str,
    *,
    insecure: bool,
    retries: int = 3,
    progress: Reporter | None = None,
    timeout: float = 60.0,
    backoff: float = 0.5,
    credentials: tuple[str, str] | None = None,
) -> list[PushedImage]:
    """Push every image of ``bundle`` to ``registry`` (HOST[:PORT]) with its digests unchanged.

    ``insecure``: plain HTTP. ``retries``: how many times a transient failure (connection error,
    timeout, HTTP 5xx/408/429) is retried, waiting ``backoff`` seconds doubled each time.
    ``credentials`` (user, password) are used when the registry asks (HTTPS only). Raises
    :class:`RegistryError` with the registry's own error message when it refuses,
    :class:`BlobMismatch` for a corrupt blob (sent no further), :class:`CheckFailed` when the
    registry reports another digest than the bundle's.
    """
    host = _registry_host(registry)
    reporter = progress or Reporter()
    known: dict[str, str] = {}  # blob -> a repository of this push that holds it
    return [
        _push_image(
            bundle, image, host, insecure, retries, reporter, timeout, backoff, credentials, known
        )
        for image in image_entries(bundle)
    ]


def _push_image(
    bundle: Bundle,
    image: BundleImage,
    host: str,
    insecure: bool,
    retries: int,
    reporter: Reporter,
    timeout: float,
    backoff: float,
    credentials: tuple[str, str] | None,
    known: dict[str, str],
) -> PushedImage:
    """Push one image; ``known`` maps blobs already on the registry in this push to their
    repository (a blob shared by two images is mounted across, not sent twice)."""
    try:
        ref = parse_reference(image.ref)
    except ResolveError as exc:
        raise ImageError(exc.message, hint=exc.hint) from None
    remote = _Remote(
        host, ref.repository, insecure, timeout, max(0, retries), backoff, credentials, image.ref
    )
    dest = f"{host}/{ref.repository}"
    blobs = image.blobs()
    reporter.phase(f"push {image.ref}", sum(b.size for b in blobs))
    uploaded: list[str] = []
    mounted: list[str] = []
    present: list[str] = []
    sent = 0

    def count(n: int) -> None:
        nonlocal sent
        sent += n
        reporter.advance(n)

    def push_blob(blob: Blob) -> str:
        if remote.has_blob(blob.digest):
            return "present"
        source = known.get(blob.digest)
        if source is not None and source != ref.repository and remote.mount(source, blob.digest):
            return "mounted"
        what = "image config" if any(blob == m.config for m in image.manifests) else "layer"
        chunks = _verified_chunks(bundle, image.ref, blob, what, f"registry {host}")

        def counted() -> Iterator[bytes]:
            for chunk in chunks:
                count(len(chunk))
                yield chunk

        remote.client.push_blob(
            data=_Upload(counted(), blob.size), digest=blob.digest, check_exists=False
        )
        return "uploaded"

    def push_manifest(blob: Blob, reference: str) -> None:
        raw = bundle.read(layout.blob_path(blob.digest), MAX_DOCUMENT_BYTES)
        got = "sha256:" + hashlib.sha256(raw).hexdigest()
        if got != blob.digest:
            raise BlobMismatch(
                f"image {image.ref}: manifest {blob.digest} in {bundle.source} hashes to {got}",
                hint="the bundle is corrupt: `airgap verify` names the damaged part",
            )
        said = remote.put_manifest(reference, raw, blob.media_type)
        if said is not None and said != blob.digest:
            raise CheckFailed(
                f"image {image.ref}: registry {host} stored manifest {blob.digest} as {said}",
                hint="the registry rewrote the manifest; use a registry that stores manifests as "
                "they are (distribution, Harbor, Zot)",
            )

    top = image.top
    reference = ref.tag or top.digest
    with remote.client:  # one HTTP session
        for blob in blobs:
            how = remote.retry(f"uploading blob {blob.digest}", partial(push_blob, blob))
            {"uploaded": uploaded, "mounted": mounted, "present": present}[how].append(blob.digest)
            if how != "uploaded":
                reporter.advance(blob.size)
            known[blob.digest] = ref.repository
        for doc in [m.blob for m in image.manifests] + list(image.indexes):
            if not remote.retry(
                f"checking manifest {doc.digest}", partial(remote.has_manifest, doc.digest)
            ):
                remote.retry(
                    f"pushing manifest {doc.digest}", partial(push_manifest, doc, doc.digest)
                )
        if ref.tag:
            remote.retry(f"tagging {ref.tag}", partial(push_manifest, top, ref.tag))
        reported = remote.retry(f"reading back {reference}", partial(remote.digest_of, reference))
    if reported != top.digest:
        raise CheckFailed(
            f"image {image.ref}: after the push, registry {host} reports {dest}"
            f"{':' if ref.tag else '@'}{reference} as {reported}, the bundle's digest is "
            f"{top.digest}",
            hint="the tag was moved by someone else meanwhile, or the registry rewrote the "
            "manifest; push again and compare with `skopeo inspect`",
        )
    return PushedImage(
        ref=image.ref,
        destination=f"{dest}:{ref.tag}" if ref.tag else f"{dest}@{top.digest}",
        digest=reported,
        manifest_digest=image.manifest_digest,
        index_digest=image.index.digest if image.index is not None else None,
        uploaded=tuple(uploaded),
        mounted=tuple(mounted),
        present=tuple(present),
        bytes_uploaded=sent,
        retries=remote.retried,
    )
