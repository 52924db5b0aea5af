"""Digests of local files through the stat cache: stat everything, hash only what changed."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from pathlib import Path

from packager.errors import ResolveError
from packager.resolve.statcache import StatCache
from packager.util.hashing import FileDigest, sha256_files


def digest_files(
    paths: Iterable[Path],
    cache: StatCache,
    progress: Callable[[int], None] | None = None,
) -> dict[Path, FileDigest]:
    """sha256 and size of each regular file (symlinks followed), hashing misses in parallel."""
    out: dict[Path, FileDigest] = {}
    todo: dict[Path, os.stat_result] = {}
    for p in dict.fromkeys(paths):
        try:
            st = os.stat(p)
        except FileNotFoundError:
            raise ResolveError(
                f"{p}: no such file", hint="check the path in the manifest"
            ) from None
        except OSError as exc:
            raise ResolveError(f"{p}: cannot stat: {exc.strerror}") from None
        real = Path(os.path.realpath(p))
        cached = cache.lookup(real, st)
        if cached is not None:
            out[p] = FileDigest(cached, st.st_size)
            if progress:
                progress(st.st_size)
        else:
            todo[p] = st
    real_paths = {p: Path(os.path.realpath(p)) for p in todo}
    hashed = sha256_files(real_paths.values(), progress=progress, error=ResolveError)
    for p, st in todo.items():
        d = hashed[real_paths[p]]
        out[p] = d
        if d.size == st.st_size:
            cache.store(real_paths[p], st, d.sha256)
    return out


def total_size(paths: Iterable[Path]) -> int:
    return sum(os.stat(p).st_size for p in paths)
