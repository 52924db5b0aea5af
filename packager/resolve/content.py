"""Digests of local files through the stat cache: stat everything, hash only what changed.

A caller may also ask one question of each file's first bytes (a :class:`Probe`): it is answered
from the reads that hash the file, and kept in the stat cache beside the digest, so a file the
cache knows is neither read nor opened again.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import NamedTuple

from packager.errors import ResolveError
from packager.resolve.statcache import Fact, StatCache
from packager.util.hashing import FileDigest, sha256_files


class Probe(NamedTuple):
    """A question about a file's first ``head`` bytes: ``of`` names it (two probes with one
    ``of`` must give one answer for one content), ``answer`` answers it from the bytes."""

    of: str
    head: int
    answer: Callable[[bytes], str | None]


#: a regular file already looked at: its real path (links resolved) and its stat
Stated = tuple[str, os.stat_result]


def digest_stated(
    files: Sequence[Stated],
    cache: StatCache,
    progress: Callable[[int], None] | None = None,
    probes: Sequence[Probe | None] | None = None,
) -> tuple[list[FileDigest], list[str | None]]:
    """sha256 and size of each file, hashing cache misses in parallel; and for each file with a
    probe (``probes[i]``), its answer (None where there is no probe).

    Its loops run once per file of a model that may have 50,000: each is one pass with no call
    per file that it can spare (the cache is asked and told in batches)."""
    asks: Sequence[Probe | None] = probes if probes is not None else [None] * len(files)
    digests: list[FileDigest | None] = [None] * len(files)
    answers: list[str | None] = [None] * len(files)
    todo: dict[str, list[int]] = {}  # real path -> the files it is (links may share one)
    unanswered: list[int] = []
    for i, e in enumerate(cache.entries(files)):
        real, st = files[i]
        if e is None:
            same = todo.get(real)
            if same is None:
                todo[real] = [i]
            else:
                same.append(i)
            continue
        digests[i] = FileDigest(e.sha256, st.st_size)
        if progress:
            progress(st.st_size)
        ask = asks[i]
        if ask is not None:
            if e.fact is not None and e.fact.of == ask.of:
                answers[i] = e.fact.value
            else:
                unanswered.append(i)
    heads: dict[str, int] = {}  # real path -> the most bytes of its start a probe asks
    sizes: dict[str, int] = {}
    for real, idx in todo.items():
        first = idx[0]
        sizes[real] = files[first][1].st_size
        if len(idx) == 1:  # most files: no other name links to them
            ask = asks[first]
            n = -1 if ask is None else ask.head
        else:
            n = max((a.head for a in (asks[i] for i in idx) if a is not None), default=-1)
        if n >= 0:  # a probe asks (of no bytes, maybe: a .py file runs code whatever it holds)
            heads[real] = n

    def answer(real: str, first: bytes) -> None:  # in the thread that read it: nothing is kept
        for i in todo[real]:
            ask = asks[i]
            if ask is not None:
                answers[i] = ask.answer(first[: ask.head])

    hashed = sha256_files(
        list(todo), progress=progress, error=ResolveError, heads=heads, on_head=answer, sizes=sizes
    )
    found: list[tuple[str, os.stat_result, str, Fact | None]] = []
    for real, idx in todo.items():
        d = hashed[real]
        for i in idx:
            digests[i] = d
        i = idx[0]
        st, ask = files[i][1], asks[i]
        if d.size == st.st_size:
            found.append(
                (real, st, d.sha256, Fact(ask.of, answers[i]) if ask is not None else None)
            )
    for i in unanswered:  # known to the cache, asked a question it has no answer to
        ask = asks[i]
        assert ask is not None
        real, st = files[i]
        answers[i] = ask.answer(read_head(real, ask.head))
        found.append((real, st, str(digests[i].sha256), Fact(ask.of, answers[i])))  # type: ignore[union-attr]
    cache.store_many(found)
    return [d for d in digests if d is not None], answers


def read_head(path: str | Path, n: int) -> bytes:
    """The first ``n`` bytes of a file (all of it when shorter)."""
    if n <= 0:
        return b""
    try:
        with open(path, "rb") as f:
            return f.read(n)
    except OSError as exc:
        raise ResolveError(f"{path}: cannot read: {exc.strerror}") from None


def stat_file(p: Path) -> os.stat_result:
    try:
        return os.stat(p)
    except FileNotFoundError:
        raise ResolveError(f"{p}: no such file", hint="check the path in the manifest") from None
    except OSError as exc:
        raise ResolveError(f"{p}: cannot stat: {exc.strerror}") from None


def digest_files(
    paths: Iterable[Path],
    cache: StatCache,
    progress: Callable[[int], None] | None = None,
) -> dict[Path, FileDigest]:
    """sha256 and size of each regular file (symlinks followed), hashing misses in parallel."""
    unique = list(dict.fromkeys(paths))
    real_dirs: dict[str, str] = {}  # folder -> its realpath: one walk per folder, not per file
    stated = [(str(_realpath(p, real_dirs)), stat_file(p)) for p in unique]
    digests, _ = digest_stated(stated, cache, progress)
    return dict(zip(unique, digests))


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
