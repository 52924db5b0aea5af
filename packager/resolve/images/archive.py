"""``from: docker-archive``: a ``docker save`` tar, read in place (no extraction).

``manifest.json`` and the image config are read bounded; the entry is chosen by its ``RepoTags``.
Layers are recorded as the ``blobs/sha256/<hex>`` names of a Docker 25+ archive, else as the
config's ``rootfs.diff_ids`` (for the legacy layout, ``<id>/layer.tar`` is the uncompressed layer,
whose sha256 is its diff id), so the lock never hashes gigabytes. There is no registry manifest: a
pin names the image ID.
"""

from __future__ import annotations

import json
import posixpath
import re
import tarfile
from collections.abc import Iterable
from pathlib import Path
from typing import IO, Any

from packager.errors import PinMismatch
from packager.manifest.model import Image
from packager.oci.reference import SHA256_DIGEST, Platform
from packager.resolve.images.common import (
    MAX_DOCUMENT_BYTES,
    ResolveContext,
    check_platform,
    config_platform,
    name_matches,
    parse_json_object,
    ref_names,
    sha256_of,
    verify_bytes,
)
from packager.resolve.lockfile import LockedImage

#: members of a docker-archive tar looked at, at most (a save has a few per layer)
MAX_TAR_MEMBERS = 100_000

BLOB_MEMBER = re.compile(r"^blobs/sha256/([0-9a-f]{64})\Z")
LEGACY_CONFIG_MEMBER = re.compile(r"^([0-9a-f]{64})\.json\Z")


class _Archive:
    """The members of a tar, read in place: names normalized, links followed, reads bounded."""

    def __init__(self, ctx: ResolveContext, tf: tarfile.TarFile) -> None:
        self.ctx = ctx
        self.tf = tf
        self.members: dict[str, tarfile.TarInfo] = {}
        for n, m in enumerate(_iter_members(ctx, tf)):
            if n >= MAX_TAR_MEMBERS:
                raise ctx.error(
                    f"{ctx.where} has more than {MAX_TAR_MEMBERS} members: not a docker save"
                )
            self.members[normalize_member(m.name)] = m

    def member(self, name: str, what: str) -> tarfile.TarInfo:
        seen: set[str] = set()
        key = normalize_member(name)
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
            key = normalize_member(target)

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


def normalize_member(name: str) -> str:
    n = posixpath.normpath(name.lstrip("/"))
    return "" if n == "." else n


def _iter_members(ctx: ResolveContext, tf: tarfile.TarFile) -> Iterable[tarfile.TarInfo]:
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


def _archive_entry(ctx: ResolveContext, ref: str, manifest: list[Any]) -> dict[str, Any]:
    entries = [e for e in manifest if isinstance(e, dict)]
    if len(entries) != len(manifest) or not entries:
        raise ctx.error(f"manifest.json in {ctx.where} is not a list of image entries")
    names, parsed = ref_names(ref)
    if parsed is not None and parsed.tag:
        names.add(f"{parsed.host}/{parsed.repository}:{parsed.tag}")

    def tags(e: dict[str, Any]) -> list[str]:
        t = e.get("RepoTags")
        return [x for x in t if isinstance(x, str)] if isinstance(t, list) else []

    for e in entries:
        for tag in tags(e):
            if tag in names or (":" in tag and name_matches(tag, {ref}, parsed)):
                return e
    if len(entries) == 1 and not tags(entries[0]):
        return entries[0]
    listed = sorted({t for e in entries for t in tags(e)})
    raise ctx.error(
        f"{ref} is not among the RepoTags of {ctx.where}; it has "
        f"{', '.join(listed) if listed else 'untagged images only'} ({len(entries)} images)",
        hint="set ref: to one of those tags, or save the image you mean (`docker save -o FILE REF`)",
    )


def resolve_docker_archive(image: Image, target: Platform) -> LockedImage:
    path = image.path
    ctx = ResolveContext(image.ref, image.source, target, f"docker-archive {path}")
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
        config_digest = sha256_of(config_bytes)
        named = BLOB_MEMBER.match(normalize_member(config_name)) or LEGACY_CONFIG_MEMBER.match(
            normalize_member(config_name)
        )
        verify_bytes(
            ctx,
            f"image config {config_name!r}",
            config_bytes,
            f"sha256:{named.group(1)}" if named else None,
        )
        config = parse_json_object(ctx, f"image config {config_name!r}", config_bytes)
        layer_members = [archive.member(n, "layer") for n in layer_names]
    found = config_platform(ctx, config, config_digest)
    check_platform(ctx, found, f"the image {config_digest} in {path}")
    blob_names = [BLOB_MEMBER.match(normalize_member(n)) for n in layer_names]
    if all(blob_names):
        layers = tuple(f"sha256:{m.group(1)}" for m in blob_names if m)
    else:
        rootfs = config.get("rootfs")
        diff_ids = rootfs.get("diff_ids") if isinstance(rootfs, dict) else None
        if (
            not isinstance(diff_ids, list)
            or len(diff_ids) != len(layer_names)
            or not all(isinstance(d, str) and SHA256_DIGEST.match(d) for d in diff_ids)
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


def _open_tar(ctx: ResolveContext, path: Path, hint: str) -> tarfile.TarFile:
    try:
        return tarfile.open(path, "r:*")
    except (tarfile.TarError, EOFError):
        raise ctx.error(f"{path} is not a tar archive (plain or compressed)", hint=hint) from None
    except OSError as exc:
        raise ctx.error(f"cannot read {path}: {exc.strerror or exc}", hint=hint) from None


def _parse_json_list(ctx: ResolveContext, data: bytes) -> list[Any]:
    try:
        doc = json.loads(data)
    except (UnicodeDecodeError, ValueError) as exc:
        raise ctx.error(f"manifest.json in {ctx.where} is not JSON: {exc}") from None
    if not isinstance(doc, list):
        raise ctx.error(f"manifest.json in {ctx.where} is not a JSON list")
    return doc
