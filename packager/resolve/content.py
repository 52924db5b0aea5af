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
    real_paths: dict[Path, Path] = {}
    real_dirs: dict[str, str] = {}  # folder -> its realpath: one walk per folder, not per file
    for p in dict.fromkeys(paths):
        try:
            st = os.stat(p)
        except FileNotFoundError:
            raise ResolveError(
                f"{p}: no such file", hint="check the path in the manifest"
            ) from None
        except OSError as exc:
            raise ResolveError(f"{p}: cannot stat: {exc.strerror}") from None
        real = _realpath(p, real_dirs)
        real_paths[p] = real
        cached = cache.lookup(real, st)
        if cached is not None:
            out[p] = FileDigest(cached, st.st_size)
            if progress:
                progress(st.st_size)
        else:
            todo[p] = st
    hashed = sha256_files([real_paths[p] for p in todo], progress=progress, error=ResolveError)
    for p, st in todo.items():
        d = hashed[real_paths[p]]
        out[p] = d
        if d.size == st.st_size:
            cache.store(real_paths[p], st, d.sha256)
    return out


def _realpath(p: Path, real_dirs: dict[str, str]) -> Path:
    """``os.path.realpath(p)``, the folder's part looked up once per folder: a file that is no
    symbolic link resolves to its resolved folder joined with its name."""
    head, name = os.path.split(os.path.abspath(p))
    try:
        is_link = os.path.islink(p)
    except OSError:
        is_link = True
    if is_link or not name:
        return Path(os.path.realpath(p))
    real_head = real_dirs.get(head)
    if real_head is None:
        real_head = real_dirs[head] = os.path.realpath(head)
    return Path(os.path.join(real_head, name))


def total_size(paths: Iterable[Path]) -> int:
    return sum(os.stat(p).st_size for p in paths)
