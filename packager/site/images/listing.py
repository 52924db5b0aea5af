"""The images of a bundle, read from its manifests: :func:`image_entries`.

How an image sits in a bundle (written by :mod:`packager.bundle.images`): ``index.json`` lists it
annotated ``org.opencontainers.image.ref.name`` = its original reference and ``dev.airgap.role`` =
``image``. The entry is either the platform manifest itself (OCI), the image index kept with
``all_platforms`` (OCI), or a generated OCI index annotated ``dev.airgap.image.wraps`` (see
:data:`packager.bundle.layout.IMAGE_WRAPS`) that lists a docker-typed manifest, or the entries of a
docker-typed manifest list whose own bytes are then in ``blobs/`` too. The wrapper is only there for
readers of the layout (skopeo): it is never loaded or pushed; the digest pushed and reported is the
wrapped original's.

Manifests are read with bounded sizes and their sha256 checked; configs and layers are streamed
member by member by :func:`verified_chunks`, in chunks of :data:`CHUNK_SIZE`, hashed while they
stream, for the load (:mod:`.docker`) and the push (:mod:`.registry`).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from packager.bundle import layout
from packager.bundle.descriptor import ImageRecord
from packager.bundle.reader import Bundle, Member
from packager.bundle.store import BlobMismatch
from packager.errors import CheckFailed, InputError
from packager.oci.reference import SHA256_DIGEST, Platform, try_parse_platform
from packager.resolve.images.common import MAX_DOCUMENT_BYTES, MAX_INDEX_DEPTH

#: bytes read from the bundle and sent at a time
CHUNK_SIZE = 1024 * 1024


class ImageError(InputError):
    """An image in the bundle cannot be used: missing or malformed manifests or blobs."""


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
    if not isinstance(digest, str) or not SHA256_DIGEST.match(digest):
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


def _platform_text(p: object) -> str | None:
    found = Platform.from_json(p)
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
            if not isinstance(wraps, str) or not SHA256_DIGEST.match(wraps):
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
        target = try_parse_platform(text)
        found: list[tuple[int, int, ImageManifest]] = []
        for n, m in enumerate(manifests):
            p = try_parse_platform(m.platform)
            if target is not None and p is not None and target.accepts(p):
                found.append((target.preference(p), n, m))
        if found:
            return min(found)[2]
    raise ImageError(
        f"image {ref}: the bundle keeps {len(manifests)} platform manifests and none is "
        f"{text or 'named by bundle.json'}"
    )


# ============================================================================ streaming blobs


def verified_read(bundle: Bundle, ref: str, blob: Blob, what: str) -> bytes:
    """A small blob (a manifest, a config) whole, read bounded, its sha256 checked."""
    raw = bundle.read(layout.blob_path(blob.digest), MAX_DOCUMENT_BYTES)
    got = "sha256:" + hashlib.sha256(raw).hexdigest()
    if got != blob.digest:
        raise BlobMismatch(
            f"image {ref}: {what} {blob.digest} in {bundle.source} hashes to {got}",
            hint="the bundle is corrupt: `airgap verify` names the damaged part; copy it again",
        )
    return raw


def verified_chunks(bundle: Bundle, ref: str, blob: Blob, what: str, dest: str) -> Iterator[bytes]:
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
