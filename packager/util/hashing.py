"""Streaming sha256 of files: large reads, flat memory, several files at once.

hashlib releases the GIL while it hashes a large buffer, so threads hash on both cores.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar, Union

from packager.errors import InputError
from packager.util.compat import strict_zip

CHUNK = 4 * 1024 * 1024  # 4 MiB reads: the floor in reference/performance.md assumes MiBs
#: files up to this size are read without a CHUNK buffer (a model of 50,000 small files would
#: otherwise allocate and zero 4 MiB for each)
SMALL = 1024 * 1024
#: small files go to the threads in batches of this many (one task each costs more than hashing)
BATCH = 64
#: files up to this size are hashed in the calling thread, one after another: their work is
#: Python and short system calls, which hold the GIL (hashlib lets it go only for 2 KiB and
#: more), so threads only take turns; 50,000 files of 2 KiB hash in 0.34 s on one thread and
#: 0.43-0.64 s on two
SERIAL_MAX = 64 * 1024


def read_size(size: int) -> int:
    """How much to ask of ``os.read`` for a file of ``size`` bytes: its size and one byte more
    (one read reaches its end, the next says EOF; a file that grew is read on), at most CHUNK.
    os.read allocates all it is asked for before it reads: 1 MiB asked of a 2 KiB file costs
    14 microseconds (an mmap and its unmapping), more than opening, reading and hashing it,
    so 50,000 small files spent 0.7 s there."""
    return max(1, min(CHUNK, size + 1))


StrPath = Union[str, Path]
P = TypeVar("P", str, Path)


@dataclass(frozen=True)
class FileDigest:
    sha256: str  # hex
    size: int


def sha256_file(
    path: StrPath,
    progress: Callable[[int], None] | None = None,
    *,
    error: type[InputError] = InputError,
) -> FileDigest:
    """Hash one regular file in CHUNK reads; ``progress`` gets each chunk's byte count."""
    return sha256_file_head(path, 0, progress, error=error)[0]


def sha256_file_head(
    path: StrPath,
    head: int,
    progress: Callable[[int], None] | None = None,
    *,
    error: type[InputError] = InputError,
    size: int | None = None,
) -> tuple[FileDigest, bytes]:
    """:func:`sha256_file`, and the file's first ``head`` bytes (all of it when shorter), taken
    from the same reads: a caller that looks at a file's start reads it once. ``size``: the
    file's size as the caller stat'ed it (no fstat then); the digest's size is what was read."""
    h = hashlib.sha256()
    got = 0
    first: list[bytes] = []
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    except OSError as exc:
        raise error(
            f"{path}: cannot read: {exc.strerror}", hint="check that it exists and is readable"
        ) from None
    try:
        stated = os.fstat(fd).st_size if size is None else size
        if stated <= SMALL:  # one read or a few: no 4 MiB buffer to allocate
            ask = read_size(stated)
            while True:
                data = os.read(fd, ask)
                if not data:
                    break
                h.update(data)
                if got < head:
                    first.append(data[: head - got])
                got += len(data)
                if progress:
                    progress(len(data))
                if got == stated and len(data) < ask:
                    break  # all it has, and short of the byte more: at its end, no read to say so
            return FileDigest(h.hexdigest(), got), b"".join(first)
        buf = bytearray(CHUNK)
        view = memoryview(buf)
        while True:
            n = os.readv(fd, [buf])
            if not n:
                break
            h.update(view[:n])
            if got < head:
                first.append(bytes(view[: min(n, head - got)]))
            got += n
            if progress:
                progress(n)
    except OSError as exc:
        raise error(f"{path}: read failed: {exc.strerror}") from None
    finally:
        os.close(fd)
    return FileDigest(h.hexdigest(), got), b"".join(first)


def sha256_unchanged(fd: int, key: Callable[[os.stat_result], object], want: object) -> str | None:
    """sha256 hex of the open file ``fd`` read to its end, or None when ``key`` of its fstat is
    not ``want`` (the file at that name was replaced since it was looked at). Closes ``fd``."""
    try:
        st = os.fstat(fd)
        if key(st) != want:
            return None
        h = hashlib.sha256()
        ask = read_size(st.st_size)
        while chunk := os.read(fd, ask):
            h.update(chunk)
        return h.hexdigest()
    finally:
        os.close(fd)


def sha256_files(
    paths: Iterable[P],
    *,
    workers: int | None = None,
    progress: Callable[[int], None] | None = None,
    error: type[InputError] = InputError,
    heads: Mapping[P, int] | None = None,
    on_head: Callable[[P, bytes], None] | None = None,
    sizes: Mapping[P, int] | None = None,
) -> dict[P, FileDigest]:
    """Hash many files in parallel threads (one file per thread at a time).

    ``heads``: for a path listed there, n: ``on_head`` gets the path and the file's first n
    bytes (n may be 0: the call still comes), in the hashing thread, from the same reads
    (nothing is kept). ``sizes``: the files' sizes where the caller knows them (as it stat'ed
    them): those of at most SERIAL_MAX bytes are hashed in this thread while the threads hash
    the others."""
    items = list(paths)
    if not items:
        return {}
    look = heads or {}
    known = sizes or {}

    def one(p: P) -> FileDigest:
        n = look.get(p)
        d, first = sha256_file_head(p, n or 0, progress, error=error, size=known.get(p))
        if n is not None and on_head is not None:
            on_head(p, first)
        return d

    def small(ps: list[P]) -> dict[P, FileDigest]:
        """Files of a known small size, one after another in this thread: an open, one read of
        the size and a byte more, a close. A file that does not read as its stated size (it
        changed since it was stat'ed) or cannot be read at all goes the general way, ``one``,
        which reads it to its end or names the problem."""
        out: dict[P, FileDigest] = {}
        flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0)
        for p in ps:
            size = known[p]
            try:
                fd = os.open(p, flags)
                try:
                    data = os.read(fd, size + 1)
                finally:
                    os.close(fd)
            except OSError:
                out[p] = one(p)
                continue
            if len(data) != size:
                out[p] = one(p)
                continue
            out[p] = FileDigest(hashlib.sha256(data).hexdigest(), size)
            n = look.get(p)
            if n is not None and on_head is not None:
                on_head(p, data[:n])
            if progress:
                progress(size)
        return out

    here = [p for p in items if known.get(p, SERIAL_MAX + 1) <= SERIAL_MAX]  # this thread's
    if len(here) == len(items):
        return small(here)
    if workers == 1 or len(items) == 1:
        return {p: one(p) for p in items}
    taken = set(here)
    pooled = [p for p in items if p not in taken]
    n = workers or min(len(pooled), max(2, (os.cpu_count() or 2)))
    batches = [pooled[i : i + BATCH] for i in range(0, len(pooled), BATCH)]
    if len(batches) < n:  # few files (large ones, likely): one task per file
        batches = [[p] for p in pooled]

    def run(batch: list[P]) -> list[FileDigest]:
        return [one(p) for p in batch]

    with ThreadPoolExecutor(max_workers=n, thread_name_prefix="sha256") as pool:
        results = pool.map(run, batches)  # every batch is submitted now
        done = small(here)  # while the threads hash the others
        for batch, digests in strict_zip(batches, list(results)):
            done.update(strict_zip(batch, digests))
    return {p: done[p] for p in items}


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
