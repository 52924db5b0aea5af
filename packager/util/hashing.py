"""Streaming sha256 of files: large reads, flat memory, several files at once.

hashlib releases the GIL while it hashes a large buffer, so threads hash on both cores.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from packager.errors import InputError
from packager.util.compat import strict_zip

CHUNK = 4 * 1024 * 1024  # 4 MiB reads: the floor in reference/performance.md assumes MiBs


@dataclass(frozen=True)
class FileDigest:
    sha256: str  # hex
    size: int


def sha256_file(
    path: Path,
    progress: Callable[[int], None] | None = None,
    *,
    error: type[InputError] = InputError,
) -> FileDigest:
    """Hash one regular file in CHUNK reads; ``progress`` gets each chunk's byte count."""
    h = hashlib.sha256()
    size = 0
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    except OSError as exc:
        raise error(
            f"{path}: cannot read: {exc.strerror}", hint="check that it exists and is readable"
        ) from None
    try:
        buf = bytearray(CHUNK)
        view = memoryview(buf)
        while True:
            n = os.readv(fd, [buf])
            if not n:
                break
            h.update(view[:n])
            size += n
            if progress:
                progress(n)
    except OSError as exc:
        raise error(f"{path}: read failed: {exc.strerror}") from None
    finally:
        os.close(fd)
    return FileDigest(h.hexdigest(), size)


def sha256_unchanged(fd: int, key: Callable[[os.stat_result], object], want: object) -> str | None:
    """sha256 hex of the open file ``fd`` read to its end, or None when ``key`` of its fstat is
    not ``want`` (the file at that name was replaced since it was looked at). Closes ``fd``."""
    try:
        if key(os.fstat(fd)) != want:
            return None
        h = hashlib.sha256()
        while chunk := os.read(fd, CHUNK):
            h.update(chunk)
        return h.hexdigest()
    finally:
        os.close(fd)


def sha256_files(
    paths: Iterable[Path],
    *,
    workers: int | None = None,
    progress: Callable[[int], None] | None = None,
    error: type[InputError] = InputError,
) -> dict[Path, FileDigest]:
    """Hash many files in parallel threads (one file per thread at a time)."""
    items = list(paths)
    if not items:
        return {}
    n = workers or min(len(items), max(2, (os.cpu_count() or 2)))
    if n == 1 or len(items) == 1:
        return {p: sha256_file(p, progress, error=error) for p in items}
    with ThreadPoolExecutor(max_workers=n, thread_name_prefix="sha256") as pool:
        results = list(pool.map(lambda p: sha256_file(p, progress, error=error), items))
    return dict(strict_zip(items, results))


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
