"""Collect a locked container image into the build's blob store (``airgap build``).

:func:`collect_image` takes what :func:`packager.resolve.images.resolve_image` pinned (a
:class:`packager.resolve.lockfile.LockedImage`) and puts every blob an OCI image layout needs for it into a
:class:`packager.bundle.store.BlobStore`, returning the descriptor that ``index.json`` lists.

``registry``
    Blob for blob, digests preserved: the platform manifest is fetched BY DIGEST (the lock's
    ``manifest_digest``, never the tag) and kept byte for byte as served (its sha256 checked), then
    its config and layers are streamed (packager.oci.registry) into the store. With ``all_platforms`` the
    lock's index is kept instead, with every manifest, config and layer under it (nested indexes
    and attestation manifests included, so that ``skopeo copy --all`` finds everything).
``oci-layout``
    The same walk over the layout folder's ``blobs/sha256``: each blob copied and verified.
``docker`` and ``docker-archive``
    There is no registry manifest. ``docker save`` of the locked image ID (or the archive file) is
    read as a tar stream, sequentially (``tarfile`` mode ``r|``): the image config and each layer are
    stored as they pass (an uncompressed layer under its diff id, media type
    ``application/vnd.oci.image.layer.v1.tar``); nothing is extracted to a temporary folder and no
    layer is held in memory. An OCI image manifest is then synthesized (canonical JSON, so the same
    image always gives the same manifest digest) and stored. A legacy ``docker save`` names a layer
    ``<v1 id>/layer.tar``, so its digest is only known once it has been read: such a layer is
    hashed while it is written under a temporary name in the store and renamed to its digest only
    when the image config lists that digest.

Blobs already in the store (a previous build) are not fetched again; manifests found there are read
from it, so a fully cached registry image needs no network. Content that does not match its digest
raises :class:`packager.bundle.store.BlobMismatch` naming the image and the blob, and nothing is kept
under the blob's name; a source that cannot be read or reached raises
:class:`packager.errors.ResolveError` with a hint; a lock that does not belong to the image raises
:class:`packager.errors.LockMismatch`.
"""

from __future__ import annotations

import hashlib
import io
import os
import posixpath
import tarfile
import uuid
from collections.abc import Callable, Iterable, Iterator
from contextlib import suppress
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import IO, Any, Protocol

from packager.bundle import layout
from packager.bundle.store import BlobMismatch, BlobStore
from packager.errors import AirgapError, InputError, LockMismatch, ResolveError
from packager.manifest.model import Image
from packager.oci.reference import SHA256_DIGEST, Platform, parse_platform, parse_reference
from packager.resolve.images.archive import (
    BLOB_MEMBER,
    LEGACY_CONFIG_MEMBER,
    MAX_TAR_MEMBERS,
    normalize_member,
)
from packager.resolve.images.common import (
    MAX_DOCUMENT_BYTES,
    MAX_INDEX_DEPTH,
    ImageDocument,
    ResolveContext,
    document_kind,
    image_manifest_parts,
    index_entries,
    media_type_of,
    parse_json_object,
    read_descriptor,
    sha256_of,
    short_reason,
    unsupported,
    verify_bytes,
)
from packager.resolve.images.engine import docker_client, docker_context, docker_host_text
from packager.resolve.images.layout import LayoutReader
from packager.resolve.images.registry import RegistryReader
from packager.resolve.lockfile import LockedImage
from packager.util.jsonio import canonical_json

__all__ = ["CHUNK_SIZE", "CollectedImage", "collect_image"]

#: bytes read from a source and written to the store at a time
CHUNK_SIZE = 1024 * 1024
#: seconds the engine may take before the first byte of `docker save` (a legacy engine exports
#: the whole image to a temporary folder of its own before it answers)
SAVE_START_TIMEOUT = 1800.0

Blob = tuple[str, int, str]
Progress = Callable[[int], None]

_GZIP_MAGIC = b"\x1f\x8b"
_ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"


#: annotation of a generated OCI index that wraps a docker-typed manifest or list: its digest
WRAPS_ANNOTATION = layout.IMAGE_WRAPS


@dataclass(frozen=True)
class CollectedImage:
    """An image whose blobs are all in the store.

    ``descriptor`` is what ``index.json`` lists for the image (annotated with the reference):
    ``mediaType``, ``digest``, ``size``, and ``platform`` for a platform manifest. It is the top
    manifest kept (the platform manifest, or with ``all_platforms`` the index), digest preserved,
    when that has an OCI media type. skopeo and the rest of containers/image only look at
    ``index.json`` entries of OCI media types, so a docker schema 2 manifest or manifest list is
    listed through a generated OCI index (annotated ``dev.airgap.image.wraps`` = its digest) that
    lists the platform manifest(s) with their own digests; then ``wrapped`` is the descriptor of
    the original (the digest the registry has, which a push of its stored bytes keeps).

    ``blobs`` are (digest, size, media type) of every blob the layout needs for the image, each
    once, ``descriptor``'s first: the wrapper (if any), the index (if kept), then per manifest the
    manifest, its config and its layers.
    """

    ref: str
    platform: str
    descriptor: dict[str, Any]
    blobs: tuple[Blob, ...]
    wrapped: dict[str, Any] | None = None


def collect_image(
    image: Image,
    locked: LockedImage,
    store: BlobStore,
    *,
    timeout: float = 60.0,
    all_platforms: bool = False,
    progress: Progress | None = None,
) -> CollectedImage:
    """Put every blob of ``locked`` (what the lock pinned for ``image``) into ``store``.

    ``timeout`` bounds each network read (registry, engine), in seconds. ``progress`` is called
    with the number of bytes of each chunk stored, and with the whole size of a blob found in the
    store already. ``all_platforms`` keeps the image's index and every platform under it (registry
    and OCI layout sources; an engine or archive image has one platform only).
    """
    if locked.ref != image.ref or locked.source != image.source:
        raise LockMismatch(
            f"image {image.ref} (from: {image.source}): the lock's entry is for {locked.ref} "
            f"(from: {locked.source})",
            hint="run `airgap lock` again so that the lock matches the manifest",
        )
    target = parse_platform(locked.platform)
    if image.source in ("registry", "oci-layout"):
        return _collect_tree(image, locked, store, target, timeout, all_platforms, progress)
    if image.source == "docker":
        return _collect_engine(image, locked, store, target, timeout, progress)
    if image.source == "docker-archive":
        return _collect_archive(image, locked, store, target, progress)
    raise ResolveError(
        f"image {image.ref}: unknown source {image.source!r}",
        hint="from: registry | docker | oci-layout | docker-archive",
    )


# ============================================================================ shared


class _Blobs:
    """The blobs of one image, in order, each once; stores them, reports progress."""

    def __init__(self, ctx: ResolveContext, store: BlobStore, progress: Progress | None) -> None:
        self.ctx = ctx
        self.store = store
        self.progress = progress
        self.listed: dict[str, Blob] = {}

    def add(self, digest: str, size: int, media_type: str) -> None:
        self.listed.setdefault(digest, (digest, size, media_type))

    def advance(self, n: int) -> None:
        if self.progress is not None and n:
            self.progress(n)

    def counted(self, chunks: Iterable[bytes]) -> Iterator[bytes]:
        for chunk in chunks:
            self.advance(len(chunk))
            yield chunk

    def what(self, kind: str, digest: str) -> str:
        return f"image {self.ctx.ref}: {kind} {digest} from {self.ctx.where}"

    def put_bytes(self, data: bytes, digest: str, media_type: str, kind: str) -> None:
        self.store.put_stream([data], digest, len(data), what=self.what(kind, digest))
        self.advance(len(data))
        self.add(digest, len(data), media_type)

    def put_stream(
        self,
        open_chunks: Callable[[], Iterable[bytes]],
        digest: str,
        size: int,
        media_type: str,
        kind: str,
    ) -> None:
        """Store a blob unless the store has it; ``open_chunks`` is called only when needed."""
        if self.store.has(digest, size):
            self.advance(size)
        else:
            self.store.put_stream(
                self.counted(open_chunks()), digest, size, what=self.what(kind, digest)
            )
        self.add(digest, size, media_type)

    def cached(self, digest: str, size: int | None) -> bytes | None:
        """A small blob's bytes from the store, when it holds them (and they hash right)."""
        if size is not None and size > MAX_DOCUMENT_BYTES:
            return None
        if not self.store.has(digest, size):
            return None
        try:
            with self.store.path(digest).open("rb") as fh:
                data = fh.read(MAX_DOCUMENT_BYTES + 1)
        except OSError:
            return None
        if len(data) > MAX_DOCUMENT_BYTES or sha256_of(data) != digest:
            return None
        return data

    def result(self, descriptor: dict[str, Any], platform: str) -> CollectedImage:
        return CollectedImage(self.ctx.ref, platform, descriptor, tuple(self.listed.values()))

    def wrapped_result(
        self, top: dict[str, Any], entries: list[dict[str, Any]], platform: str
    ) -> CollectedImage:
        """``top`` (docker-typed) listed through a generated OCI index of ``entries``."""
        wrapper = canonical_json(
            {
                "schemaVersion": 2,
                "mediaType": layout.OCI_INDEX,
                "manifests": entries,
                "annotations": {WRAPS_ANNOTATION: top["digest"]},
            }
        )
        digest = sha256_of(wrapper)
        listed = dict(self.listed)
        self.listed.clear()
        self.put_bytes(wrapper, digest, layout.OCI_INDEX, "generated index")
        self.listed.update(listed)
        descriptor = {"mediaType": layout.OCI_INDEX, "digest": digest, "size": len(wrapper)}
        blobs = tuple(self.listed.values())
        return CollectedImage(self.ctx.ref, platform, descriptor, blobs, wrapped=top)


# ============================================================================ registry, OCI layout


class _Source(Protocol):
    """Where manifests and blobs of a registry image or an OCI layout come from."""

    def manifest(self, digest: str, size: int | None, media_type: str | None) -> ImageDocument: ...

    def chunks(self, digest: str, size: int, kind: str) -> Iterator[bytes]: ...


class _RegistrySource:
    def __init__(self, registry: RegistryReader) -> None:
        self.registry = registry

    def manifest(self, digest: str, size: int | None, media_type: str | None) -> ImageDocument:
        return self.registry.manifest(digest, digest, size)

    def chunks(self, digest: str, size: int, kind: str) -> Iterator[bytes]:
        """The blob, streamed (the store hashes it and refuses another digest)."""
        registry, ctx = self.registry, self.registry.ctx
        with registry._translated(f"fetching {kind} {digest}"):
            r = registry.client.open_blob(digest)
            try:
                length = r.headers.get("Content-Length")
                if length is not None and length.isdigit() and int(length) != size:
                    raise ctx.mismatched(
                        f"{kind} {digest} from {ctx.where} is {length} bytes, the manifest says "
                        f"{size}",
                        hint="the registry served other content than the manifest names; push "
                        "the image again",
                    )
                yield from r.iter_content(CHUNK_SIZE)
            finally:
                r.close()


class _LayoutSource:
    def __init__(self, reader: LayoutReader) -> None:
        self.reader = reader

    def manifest(self, digest: str, size: int | None, media_type: str | None) -> ImageDocument:
        return self.reader.manifest(digest, size, media_type)

    def chunks(self, digest: str, size: int, kind: str) -> Iterator[bytes]:
        ctx = self.reader.ctx
        path = self.reader._path(digest)  # inside the layout, or a ResolveError
        try:
            with path.open("rb") as fh:
                while chunk := fh.read(CHUNK_SIZE):
                    yield chunk
        except OSError as exc:
            raise ctx.error(f"{kind} {digest}: cannot read {path}: {exc.strerror or exc}") from None


def _collect_tree(
    image: Image,
    locked: LockedImage,
    store: BlobStore,
    target: Platform,
    timeout: float,
    all_platforms: bool,
    progress: Progress | None,
) -> CollectedImage:
    manifest_digest = locked.manifest_digest
    if manifest_digest is None or not SHA256_DIGEST.match(manifest_digest):
        raise LockMismatch(
            f"image {image.ref} (from: {image.source}): the lock has no manifest digest for it",
            hint="run `airgap lock` again",
        )
    if image.source == "registry":
        ref = parse_reference(image.ref)
        ctx = ResolveContext(
            image.ref, image.source, target, f"registry {ref.host}", mismatch=BlobMismatch
        )
        registry = RegistryReader(ctx, ref, image.insecure, timeout)
        with registry.client:  # one HTTP session for every request
            return _walk(ctx, _RegistrySource(registry), store, locked, all_platforms, progress)
    root = image.path
    ctx = ResolveContext(
        image.ref, image.source, target, f"OCI layout {root}", mismatch=BlobMismatch
    )
    if root is None or not root.is_dir():
        raise ctx.error(
            f"the OCI layout folder {root} is missing"
            if root is not None
            else "from: oci-layout needs a path: to the layout folder",
            hint="the layout the lock was made from must still be there at build time",
        )
    return _walk(
        ctx, _LayoutSource(LayoutReader(ctx, root)), store, locked, all_platforms, progress
    )


def _walk(
    ctx: ResolveContext,
    source: _Source,
    store: BlobStore,
    locked: LockedImage,
    all_platforms: bool,
    progress: Progress | None,
) -> CollectedImage:
    blobs = _Blobs(ctx, store, progress)

    def doc(digest: str, size: int | None, media_type: str | None) -> ImageDocument:
        cached = blobs.cached(digest, size)
        if cached is not None:
            data = parse_json_object(ctx, f"manifest {digest}", cached)
            return ImageDocument(digest, media_type, data, len(cached), cached)
        return source.manifest(digest, size, media_type)

    def keep_manifest(d: ImageDocument) -> str:
        (cdigest, csize, cmt), layers = image_manifest_parts(ctx, d)
        mt = media_type_of(d) or layout.OCI_MANIFEST
        blobs.put_bytes(d.raw, d.digest, mt, "manifest")
        docker = mt == layout.DOCKER_MANIFEST
        blobs.put_stream(
            partial(source.chunks, cdigest, csize, "image config"),
            cdigest,
            csize,
            cmt or (layout.DOCKER_CONFIG if docker else layout.OCI_CONFIG),
            "image config",
        )
        for ldigest, lsize, lmt in layers:
            blobs.put_stream(
                partial(source.chunks, ldigest, lsize, "layer"),
                ldigest,
                lsize,
                lmt or (layout.DOCKER_LAYER_TAR + ".gzip" if docker else layout.OCI_LAYER_TAR),
                "layer",
            )
        return mt

    def keep_index(d: ImageDocument, depth: int) -> str:
        if depth > MAX_INDEX_DEPTH:
            raise ctx.error(f"indexes in {ctx.where} nest deeper than {MAX_INDEX_DEPTH}")
        mt = media_type_of(d) or layout.OCI_INDEX
        blobs.put_bytes(d.raw, d.digest, mt, "index")
        for _platform, entry in index_entries(ctx, d):
            edigest, esize, emt = read_descriptor(ctx, f"entry of index {d.digest}", entry)
            child = doc(edigest, esize, emt)
            kind = document_kind(child.media_type, child.data)
            if kind == "index":
                keep_index(child, depth + 1)
            elif kind == "manifest":
                keep_manifest(child)
            else:
                raise unsupported(ctx, child.digest, kind)
        return mt

    index_digest = locked.index_digest
    if all_platforms and index_digest is not None:
        top = doc(index_digest, None, None)
        if not top.is_index:
            raise LockMismatch(
                f"image {ctx.ref}: {index_digest}, the index the lock names, is not an index "
                f"in {ctx.where}",
                hint="run `airgap lock` again",
            )
        mt = keep_index(top, 1)
        descriptor: dict[str, Any] = {"mediaType": mt, "digest": top.digest, "size": top.size}
        if locked.manifest_digest not in blobs.listed:
            raise LockMismatch(
                f"image {ctx.ref}: index {index_digest} does not list manifest "
                f"{locked.manifest_digest}, which the lock chose for {locked.platform}",
                hint="run `airgap lock` again",
            )
        if mt == layout.OCI_INDEX:
            return blobs.result(descriptor, locked.platform)
        entries = [e for _, e in index_entries(ctx, top)]  # as they are: digests kept
        return blobs.wrapped_result(descriptor, entries, locked.platform)

    assert locked.manifest_digest is not None  # checked by the caller
    top = doc(locked.manifest_digest, None, None)
    kind = document_kind(top.media_type, top.data)
    if kind != "manifest":
        raise unsupported(ctx, top.digest, kind)
    (cdigest, _, _), _ = image_manifest_parts(ctx, top)
    if cdigest != locked.config_digest:
        raise LockMismatch(
            f"image {ctx.ref}: manifest {top.digest} names config {cdigest}, the lock says "
            f"{locked.config_digest}",
            hint="the lock was edited by hand or is damaged; run `airgap lock` again",
        )
    mt = keep_manifest(top)
    descriptor = {
        "mediaType": mt,
        "digest": top.digest,
        "size": top.size,
        "platform": parse_platform(locked.platform).to_json(),
    }
    if mt == layout.OCI_MANIFEST:
        return blobs.result(descriptor, locked.platform)
    return blobs.wrapped_result(descriptor, [descriptor], locked.platform)


# ============================================================================ docker save streams


class _ChunkReader(io.RawIOBase):
    """A readable file over an iterator of bytes (the engine's `docker save` stream)."""

    def __init__(self, chunks: Iterator[bytes], on_error: Callable[[Exception], AirgapError]):
        super().__init__()
        self._chunks = chunks
        self._on_error = on_error
        self._buf = memoryview(b"")

    def readable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        while not self._buf:
            try:
                chunk = next(self._chunks, None)
            except AirgapError:
                raise
            except Exception as exc:  # the SDK's and requests' errors, named once by on_error
                raise self._on_error(exc) from None
            if chunk is None:
                return 0
            self._buf = memoryview(chunk)
        n = min(len(b), len(self._buf))
        b[:n] = self._buf[:n]
        self._buf = self._buf[n:]
        return n


def _config_diff_ids(ctx: ResolveContext, config: bytes, digest: str) -> list[str]:
    doc = parse_json_object(ctx, f"image config {digest}", config)
    rootfs = doc.get("rootfs")
    diff_ids = rootfs.get("diff_ids") if isinstance(rootfs, dict) else None
    if not isinstance(diff_ids, list) or not all(
        isinstance(d, str) and SHA256_DIGEST.match(d) for d in diff_ids
    ):
        raise ctx.error(f"image config {digest} in {ctx.where} has no list of sha256 diff_ids")
    return diff_ids


def _layer_media_type(path: Path) -> str:
    with path.open("rb") as fh:
        head = fh.read(4)
    if head.startswith(_GZIP_MAGIC):
        return layout.OCI_LAYER_TAR + "+gzip"
    if head.startswith(_ZSTD_MAGIC):
        return layout.OCI_LAYER_TAR + "+zstd"
    return layout.OCI_LAYER_TAR


def _store_size(store: BlobStore, digest: str) -> int | None:
    try:
        return store.path(digest).stat().st_size
    except OSError:
        return None


class _SaveReader:
    """Reads a `docker save` tar stream once, storing the image's config and layers."""

    def __init__(self, ctx: ResolveContext, locked: LockedImage, blobs: _Blobs) -> None:
        self.ctx = ctx
        self.locked = locked
        self.blobs = blobs
        self.store = blobs.store
        self.wanted = set(locked.layers)
        self.found: dict[str, int] = {}  # layer digest -> size, stored or already there
        self.unexpected: list[tuple[str, str]] = []  # (member, digest) of layer.tar not wanted
        self.config: bytes | None = None

    def tar_error(self, exc: BaseException) -> ResolveError:
        return self.ctx.error(
            f"{self.ctx.where}: the `docker save` stream is not a readable tar archive: "
            f"{short_reason(exc)}",
            hint="an interrupted copy is truncated: save the image again (`docker save -o FILE "
            "REF`)",
        )

    def member_chunks(self, tf: tarfile.TarFile, member: tarfile.TarInfo) -> Iterator[bytes]:
        total = 0
        try:
            fh = tf.extractfile(member)
            if fh is None:
                raise self.ctx.error(f"member {member.name!r} of {self.ctx.where} cannot be read")
            while chunk := fh.read(CHUNK_SIZE):
                total += len(chunk)
                yield chunk
        except (tarfile.TarError, EOFError, OSError) as exc:
            raise self.tar_error(exc) from None
        if total != member.size:
            raise self.tar_error(EOFError(f"member {member.name!r} is truncated"))

    def read(self, fileobj: IO[bytes]) -> None:
        try:
            tf = tarfile.open(fileobj=fileobj, mode="r|*", bufsize=CHUNK_SIZE)  # noqa: SIM115
        except (tarfile.TarError, EOFError, OSError) as exc:
            raise self.tar_error(exc) from None
        with tf:
            for n, member in enumerate(self._members(tf)):
                if n >= MAX_TAR_MEMBERS:
                    raise self.ctx.error(
                        f"{self.ctx.where} has more than {MAX_TAR_MEMBERS} members: "
                        "not a docker save"
                    )
                if member.isfile():
                    self._member(tf, member)

    def _members(self, tf: tarfile.TarFile) -> Iterator[tarfile.TarInfo]:
        while True:
            try:
                member = tf.next()
            except (tarfile.TarError, EOFError, OSError) as exc:
                raise self.tar_error(exc) from None
            if member is None:
                return
            yield member

    def _member(self, tf: tarfile.TarFile, member: tarfile.TarInfo) -> None:
        name = normalize_member(member.name)
        named = BLOB_MEMBER.match(name) or LEGACY_CONFIG_MEMBER.match(name)
        digest = f"sha256:{named.group(1)}" if named else None
        if digest is not None and digest == self.locked.config_digest:
            if self.config is None:
                self._config(tf, member, digest)
            return
        if BLOB_MEMBER.match(name):  # Docker 25+: named by digest; verified while stored
            assert digest is not None
            if digest in self.wanted and digest not in self.found:
                self.blobs.put_stream(
                    partial(self.member_chunks, tf, member),
                    digest,
                    member.size,
                    layout.OCI_LAYER_TAR,  # listed by _saved_result, with the right media type
                    "layer",
                )
                self.found[digest] = member.size
            return
        if posixpath.basename(name) == "layer.tar":  # legacy: its digest is known once read
            self._legacy_layer(tf, member)

    def _config(self, tf: tarfile.TarFile, member: tarfile.TarInfo, d: str) -> None:
        if member.size > MAX_DOCUMENT_BYTES:
            raise self.ctx.error(f"image config {d} in {self.ctx.where} is larger than allowed")
        data = b"".join(self.member_chunks(tf, member))  # counted when stored
        verify_bytes(self.ctx, f"image config {d}", data, d)
        self.config = data
        self.wanted.update(_config_diff_ids(self.ctx, data, d))

    def _legacy_layer(self, tf: tarfile.TarFile, member: tarfile.TarInfo) -> None:
        folder = self.store.path(self.locked.config_digest).parent
        tmp = folder / f".layer.{os.getpid()}.{uuid.uuid4().hex}.partial"
        h = hashlib.sha256()
        n = 0
        try:
            folder.mkdir(parents=True, exist_ok=True)
            with tmp.open("wb") as fh:
                for chunk in self.member_chunks(tf, member):
                    h.update(chunk)
                    fh.write(chunk)
                    n += len(chunk)
                    self.blobs.advance(len(chunk))
                fh.flush()
                os.fsync(fh.fileno())
            digest = "sha256:" + h.hexdigest()
            if digest not in self.wanted:
                self.unexpected.append((member.name, digest))
            elif digest not in self.found:
                if not self.store.has(digest, n):
                    os.replace(tmp, self.store.path(digest))  # complete, and named by its hash
                self.found[digest] = n
        except OSError as exc:
            raise InputError(f"{folder}: cannot write the build cache: {exc.strerror}") from None
        finally:
            with suppress(OSError):
                tmp.unlink(missing_ok=True)


def _saved_result(
    ctx: ResolveContext,
    locked: LockedImage,
    blobs: _Blobs,
    config: bytes,
    found: dict[str, int],
    unexpected: list[tuple[str, str]],
) -> CollectedImage:
    """Store the config, synthesize, store and describe the OCI manifest of a saved image.

    The layers are in the store already (``found``: read from the source now).
    """
    store = blobs.store
    diff_ids = _config_diff_ids(ctx, config, locked.config_digest)

    def size_of(d: str) -> int | None:
        return found.get(d) if d in found else _store_size(store, d)

    layers: list[Blob] = []
    if all(size_of(d) is not None for d in diff_ids):  # uncompressed: blob digest = diff id
        layers = [(d, size_of(d) or 0, layout.OCI_LAYER_TAR) for d in diff_ids]
    elif (
        locked.layers
        and len(locked.layers) == len(diff_ids)
        and all(size_of(d) is not None for d in locked.layers)
    ):  # a containerd-store save: the registry's compressed blobs, as the lock named them
        layers = [(d, size_of(d) or 0, _layer_media_type(store.path(d))) for d in locked.layers]
    else:
        missing = [d for d in diff_ids if size_of(d) is None]
        if unexpected:
            member, got = unexpected[0]
            raise BlobMismatch(
                f"image {ctx.ref}: layer {member!r} in {ctx.where} hashes to {got}, which is not "
                f"a layer of image {locked.config_digest}; missing: {', '.join(missing)}",
                hint="the saved image is corrupt; save it again (nothing was kept)",
            )
        raise ctx.error(
            f"{ctx.where} lacks the layer{'s' if len(missing) > 1 else ''} "
            f"{', '.join(missing)} of image {locked.config_digest}",
            hint="save the image again; an engine with the containerd image store saves "
            "compressed layers: take the image from: registry instead",
        )
    config_desc = {
        "mediaType": layout.OCI_CONFIG,
        "digest": locked.config_digest,
        "size": len(config),
    }
    manifest = canonical_json(
        {
            "schemaVersion": 2,
            "mediaType": layout.OCI_MANIFEST,
            "config": config_desc,
            "layers": [{"mediaType": mt, "digest": d, "size": s} for d, s, mt in layers],
        }
    )
    mdigest = sha256_of(manifest)
    blobs.listed.clear()  # listed in layout order: manifest, config, layers
    blobs.put_bytes(manifest, mdigest, layout.OCI_MANIFEST, "synthesized manifest")
    blobs.put_bytes(config, locked.config_digest, layout.OCI_CONFIG, "image config")
    for d, s, mt in layers:
        blobs.add(d, s, mt)
    descriptor = {
        "mediaType": layout.OCI_MANIFEST,
        "digest": mdigest,
        "size": len(manifest),
        "platform": parse_platform(locked.platform).to_json(),
    }
    return blobs.result(descriptor, locked.platform)


def _from_store(ctx: ResolveContext, locked: LockedImage, blobs: _Blobs) -> CollectedImage | None:
    """The image without reading its source, when the store holds its config and every layer."""
    config = blobs.cached(locked.config_digest, None)
    if config is None:
        return None
    diff_ids = _config_diff_ids(ctx, config, locked.config_digest)
    if not all(blobs.store.has(d) for d in diff_ids):
        return None
    for d in diff_ids:
        blobs.advance(_store_size(blobs.store, d) or 0)
    return _saved_result(ctx, locked, blobs, config, {}, [])


def _collect_saved(
    ctx: ResolveContext,
    locked: LockedImage,
    store: BlobStore,
    progress: Progress | None,
    open_stream: Callable[[], IO[bytes]],
) -> CollectedImage:
    blobs = _Blobs(ctx, store, progress)
    done = _from_store(ctx, locked, blobs)
    if done is not None:
        return done
    reader = _SaveReader(ctx, locked, blobs)
    with open_stream() as stream:
        reader.read(stream)
    if reader.config is None:
        raise ctx.error(
            f"{ctx.where} does not hold image {locked.config_digest}, which the lock pinned",
            hint="the image changed since `airgap lock`: run it again, or save the locked image",
        )
    return _saved_result(ctx, locked, blobs, reader.config, reader.found, reader.unexpected)


def _collect_archive(
    image: Image,
    locked: LockedImage,
    store: BlobStore,
    target: Platform,
    progress: Progress | None,
) -> CollectedImage:
    path = image.path
    ctx = ResolveContext(
        image.ref, image.source, target, f"docker-archive {path}", mismatch=BlobMismatch
    )
    if path is None or not path.is_file():
        raise ctx.error(
            f"docker-archive {path} is missing or not a file"
            if path is not None
            else "from: docker-archive needs a path: to the tar file",
            hint="the archive the lock was made from must still be there at build time",
        )

    def open_stream() -> IO[bytes]:
        try:
            return path.open("rb")
        except OSError as exc:
            raise ctx.error(f"cannot read {path}: {exc.strerror or exc}") from None

    return _collect_saved(ctx, locked, store, progress, open_stream)


def _collect_engine(
    image: Image,
    locked: LockedImage,
    store: BlobStore,
    target: Platform,
    timeout: float,
    progress: Progress | None,
) -> CollectedImage:
    import docker.errors
    import requests

    ctx = docker_context(image.ref, image.source, target, mismatch=BlobMismatch)
    where = docker_host_text()
    blobs = _Blobs(ctx, store, progress)
    done = _from_store(ctx, locked, blobs)
    if done is not None:
        return done
    client = docker_client(ctx, timeout)

    def failed(exc: BaseException) -> ResolveError:
        if isinstance(exc, docker.errors.ImageNotFound):
            return ctx.error(
                f"the engine at {where} no longer has image {locked.config_digest}, which the "
                "lock pinned",
                hint=f"pull or build it again, or run `airgap lock` again if {image.ref} "
                "changed on purpose",
            )
        if isinstance(exc, docker.errors.APIError):
            return ctx.error(
                f"the Docker engine at {where} refused to save image {locked.config_digest}: "
                f"{exc.explanation or exc}"
            )
        return ctx.error(
            f"the Docker engine at {where} failed while saving image {locked.config_digest}: "
            f"{short_reason(exc)}",
            hint="check that the engine is running and responsive",
        )

    try:
        try:
            client.images.get(locked.config_digest)  # a clear message if it is gone
        except (docker.errors.DockerException, requests.exceptions.RequestException) as exc:
            raise failed(exc) from None
        client.api.timeout = max(timeout, SAVE_START_TIMEOUT)  # until the first byte of the save

        def open_stream() -> IO[bytes]:
            try:
                chunks = client.api.get_image(locked.config_digest, chunk_size=CHUNK_SIZE)
            except (docker.errors.DockerException, requests.exceptions.RequestException) as exc:
                raise failed(exc) from None
            return io.BufferedReader(_ChunkReader(iter(chunks), failed), CHUNK_SIZE)

        return _collect_saved(ctx, locked, store, progress, open_stream)
    finally:
        client.close()
