"""Delta bundles: what a bundle must carry when the site already holds a base (pure logic).

A delta is the full version's descriptor plus a ``delta`` record (packager.bundle.descriptor):
its base (name, version, content digest) and the blobs its archive leaves out. Only blobs with
install paths are ever left out: those are what a site's store keeps (``DIR/blobs/sha256``);
image layers, OCI manifests and the probe live only in bundles, so a delta always carries them.
Of the airgap files, only the site kit's wheels may be left out (``not_carried_files``): every
installed version keeps them in its ``.airgap/site/wheels/``, and they are most of a delta
whose model changed little (about 20 MB); the launcher, the kit index and every other file are
always carried.

The I/O around it: reading what a base holds (packager.bundle.base), writing the archive
(packager.commands.build), checking the blobs a site must supply (packager.bundle.verifier,
packager.site.install).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

from packager.bundle import layout
from packager.bundle.descriptor import BaseRef, BlobRecord, CoveredFile, DeltaRecord, Descriptor
from packager.errors import InputError
from packager.util.units import human_size

#: a base version as it may appear in a file name (``...delta-from-OLDVERSION.airgap.tar``)
_VERSION = re.compile(r"[0-9A-Za-z][0-9A-Za-z.+_-]{0,99}")


@dataclass(frozen=True)
class BaseContent:
    """What the build side knows a site holds: the base version and the blobs (hex -> size) its
    store has (every blob with an install path of the base, or a site's have-list)."""

    ref: BaseRef
    blobs: Mapping[str, int]
    source: str  # for messages: the file it was read from
    #: the site-kit wheels it has installed (sha256 hex -> size)
    files: Mapping[str, int] = field(default_factory=dict)


def check_base(base: BaseContent, name: str, version: str) -> None:
    """A base must be a usable file name part and, when it names this bundle, an older
    version (a delta from itself or from a newer version is a mistake, not an update)."""
    if not _VERSION.fullmatch(base.ref.version):
        raise InputError(
            f"{base.source}: base version {base.ref.version!r} cannot be part of a file name",
            hint="give a bundle made by airgap build, or a have-list from `airgap list --have`",
        )
    if base.ref.name == name and base.ref.version == version:
        raise InputError(
            f"{base.source} is {name} {version} itself: a delta from it would carry nothing new",
            hint="--base names the version the site has now, an older one",
        )


def held_blobs(descriptor: Descriptor) -> dict[str, int]:
    """What a site that installed ``descriptor``'s version holds in its store (hex -> size):
    its blobs with install paths (image layers, OCI manifests and the probe are not kept)."""
    return {b.hex: b.size for b in descriptor.blobs if b.paths}


def held_files(descriptor: Descriptor) -> dict[str, int]:
    """The site-kit wheels a site that installed ``descriptor``'s version holds (sha256 hex ->
    size): its ``.airgap/site/wheels/``."""
    return {f.sha256: f.size for f in descriptor.files if layout.is_kit_wheel(f.path)}


def plan_delta(
    blobs: Iterable[BlobRecord], base: BaseContent, files: Iterable[CoveredFile] = ()
) -> DeltaRecord:
    """The delta record: every blob with install paths that the base holds at the same size is
    left out, and every site-kit wheel it holds (same sha256 and size); everything else is
    carried."""
    left_out = sorted(b.digest for b in blobs if b.paths and base.blobs.get(b.hex, -1) == b.size)
    kit = sorted(
        f.path
        for f in files
        if layout.is_kit_wheel(f.path) and base.files.get(f.sha256, -1) == f.size
    )
    return DeltaRecord(base.ref, tuple(left_out), tuple(kit))


def not_carried(descriptor: Descriptor) -> list[BlobRecord]:
    """The blobs a delta's site must supply (none for a full bundle)."""
    return [b for b in descriptor.blobs if not descriptor.carried(b)]


def not_carried_files(descriptor: Descriptor) -> list[CoveredFile]:
    """The site-kit wheels a delta's site must supply (none for a full bundle)."""
    return [f for f in descriptor.files if not descriptor.file_carried(f.path)]


def missing(descriptor: Descriptor, has: Callable[[str, int], bool]) -> list[BlobRecord]:
    """The blobs that are neither carried nor held (``has(hex, size)``)."""
    return [b for b in not_carried(descriptor) if not has(b.hex, b.size)]


def missing_files(descriptor: Descriptor, has: Callable[[str, int], bool]) -> list[CoveredFile]:
    """The site-kit wheels that are neither carried nor held (``has(sha256 hex, size)``)."""
    return [f for f in not_carried_files(descriptor) if not has(f.sha256, f.size)]


def needs_base(
    descriptor: Descriptor,
    blobs: list[BlobRecord],
    where: str,
    files: list[CoveredFile] | None = None,
) -> str:
    """What a delta lacks, in one line: the base version it needs and how much is missing."""
    assert descriptor.delta is not None
    base = descriptor.delta.base
    kit = files or []
    size = sum(b.size for b in blobs) + sum(f.size for f in kit)
    what = f"{len(blobs)} blob(s)" + (f" and {len(kit)} site-kit wheel(s)" if kit else "")
    return (
        f"a delta from {base.name} {base.version} (content {base.digest}): "
        f"{what}, {human_size(size)}, are not in {where}"
    )


def carried_bytes(descriptor: Descriptor) -> int:
    """The bytes of the blobs the archive carries."""
    return sum(b.size for b in descriptor.blobs if descriptor.carried(b))


def not_carried_file_bytes(descriptor: Descriptor) -> int:
    """The bytes of the site-kit wheels the archive leaves out."""
    return sum(f.size for f in not_carried_files(descriptor))
