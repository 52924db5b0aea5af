"""Tar archives built while they stream (ustar headers, padding, the end), for the image loads.

The loads never write an archive: :mod:`.docker` streams a docker-archive into the engine,
:mod:`.containerd` an OCI archive into ``ctr images import``; both are made of these pieces
around the verified chunks of each blob (:func:`packager.site.images.listing.verified_chunks`).
"""

from __future__ import annotations

import tarfile

#: the two zero blocks that end a tar archive
END = b"\0" * (2 * tarfile.BLOCKSIZE)


def header(name: str, size: int, *, directory: bool = False) -> bytes:
    """The ustar header of a regular file (mode 0644) or a folder (0755), mtime 0."""
    info = tarfile.TarInfo(name)
    info.size = 0 if directory else size
    info.type = tarfile.DIRTYPE if directory else tarfile.REGTYPE
    info.mode = 0o755 if directory else 0o644
    info.mtime = 0
    return info.tobuf(format=tarfile.USTAR_FORMAT)


def padding(size: int) -> bytes:
    """The zeros after a member of ``size`` bytes, up to the next block."""
    return b"\0" * (-size % tarfile.BLOCKSIZE)


def member(name: str, data: bytes) -> bytes:
    """A small regular file whole: header, data, padding."""
    return header(name, len(data)) + data + padding(len(data))


def member_size(size: int) -> int:
    """What a regular file of ``size`` bytes takes in the archive."""
    return tarfile.BLOCKSIZE + size + len(padding(size))
