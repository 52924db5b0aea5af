"""A stat cache: (path, device, inode, size, mtime_ns, ctime_ns) -> sha256, and one fact about
the file's first bytes (how it runs code at load time, packager.compat.load_code).

A second `airgap lock` over unchanged multi-GB weights stats the files instead of reading them.
Entries are only trusted while every stat field matches; a file modified within the last two
seconds is not cached at all (its mtime could still be equal after a quick second write: the
"racy timestamp" problem git also guards against).

A folder's rows are read with one query when the first of its files is looked up (a model of
50,000 small files costs a query per folder, not per file), and new rows are written in one
batch when the cache closes.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, NamedTuple

RACY_SECONDS = 2.0
#: the table (a new name when its columns change: an old cache is ignored, never misread)
TABLE = "stat_v2"
#: rows written in one executemany
_FLUSH_ROWS = 10_000

_Key = tuple[int, int, int, int, int]


def _split(path: str) -> tuple[str, str]:
    """``os.path.split`` of a real path (no doubled or trailing slash), without its cost per
    file where the folder is not the root."""
    folder, _, name = path.rpartition("/")
    if not folder or not name or folder[-1] == "/":
        return os.path.split(path)
    return folder, name


def stat_key(st: os.stat_result) -> _Key:
    """The stat fields a cached digest is trusted by: equal fields, the same file content."""
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


class Fact(NamedTuple):
    """A fact about a file's content kept beside its digest: the answer (None is an answer)
    to the question named ``of`` (e.g. the class of name it was asked for)."""

    of: str
    value: str | None


class Entry(NamedTuple):
    """What the cache knows of one file whose stat fields still match."""

    sha256: str
    fact: Fact | None  # None: no fact kept


class StatCache:
    """sqlite-backed; ``StatCache(None)`` is a cache that never hits (``--no-cache``)."""

    def __init__(self, path: Path | None) -> None:
        self._db: sqlite3.Connection | None = None
        self._lock = threading.Lock()
        self._folders: dict[str, dict[str, tuple[Any, ...]]] = {}
        self._pending: list[tuple[object, ...]] = []
        self.hits = 0
        self.misses = 0
        self.hit_bytes = 0  # bytes not read again thanks to the cache
        if path is None:
            return
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            db = sqlite3.connect(str(path), timeout=10, check_same_thread=False)
            db.execute(
                f"CREATE TABLE IF NOT EXISTS {TABLE} (dir TEXT, name TEXT, dev INTEGER, "
                "ino INTEGER, size INTEGER, mtime_ns INTEGER, ctime_ns INTEGER, sha256 TEXT, "
                "fact_class TEXT, fact TEXT, PRIMARY KEY (dir, name)) WITHOUT ROWID"
            )
            db.commit()
            self._db = db
        except (OSError, sqlite3.Error):
            self._db = None  # an unusable cache only costs time

    def _folder(self, folder: str) -> dict[str, tuple[Any, ...]]:
        rows = self._folders.get(folder)
        if rows is not None:
            return rows
        assert self._db is not None
        self._flush()  # rows stored by this cache are found by it too
        try:  # raw rows: a folder may hold 50,000 files, most of them never looked up
            rows = {
                r[0]: r
                for r in self._db.execute(
                    f"SELECT name, dev, ino, size, mtime_ns, ctime_ns, sha256, fact_class, fact "
                    f"FROM {TABLE} WHERE dir = ?",
                    (folder,),
                )
            }
        except sqlite3.Error:
            rows = {}
        self._folders[folder] = rows
        return rows

    def entry(self, path: str | Path, st: os.stat_result) -> Entry | None:
        """The cached digest (and fact) of the file at ``path`` (its real path) whose stat is
        ``st``; None (a miss) unless every stat field matches."""
        return self.entries([(str(path), st)])[0]

    def entries(self, files: Sequence[tuple[str, os.stat_result]]) -> list[Entry | None]:
        """:meth:`entry` of each (real path, stat), in order: one pass, one lock, a folder's
        rows looked up once per run of its files (a model of 50,000 files spent 0.2 s in
        per-file calls)."""
        if self._db is None:
            self.misses += len(files)
            return [None] * len(files)
        out: list[Entry | None] = []
        hits = hit_bytes = 0
        last: str | None = None
        rows: dict[str, tuple[Any, ...]] = {}
        with self._lock:
            for path, st in files:
                folder, name = _split(path)
                if folder != last:
                    rows, last = self._folder(folder), folder
                row = rows.get(name)
                if row is not None and row[1:6] == stat_key(st):
                    hits += 1
                    hit_bytes += st.st_size
                    out.append(Entry(row[6], Fact(row[7], row[8]) if row[7] is not None else None))
                else:
                    out.append(None)
            self.hits += hits
            self.hit_bytes += hit_bytes
            self.misses += len(files) - hits
        return out

    def lookup(self, path: str | Path, st: os.stat_result) -> str | None:
        e = self.entry(path, st)
        return e.sha256 if e is not None else None

    def store(
        self,
        path: str | Path,
        st: os.stat_result,
        sha256: str,
        fact: Fact | None = None,
    ) -> None:
        self.store_many([(str(path), st, sha256, fact)])

    def store_many(self, found: Iterable[tuple[str, os.stat_result, str, Fact | None]]) -> None:
        """Keep the digest (and fact) of each (real path, stat, sha256, fact), except for a
        file modified within RACY_SECONDS of now."""
        if self._db is None:
            return
        settled = time.time() - RACY_SECONDS
        with self._lock:
            for path, st, sha256, fact in found:
                if st.st_mtime > settled:
                    continue
                folder, name = _split(path)
                row = (folder, name, *stat_key(st), sha256, *(fact or (None, None)))
                self._pending.append(row)
                known = self._folders.get(folder)
                if known is not None:
                    known[name] = row[1:]
                if len(self._pending) >= _FLUSH_ROWS:
                    self._flush()

    def _flush(self) -> None:
        if self._db is None or not self._pending:
            return
        rows, self._pending = self._pending, []
        with contextlib.suppress(sqlite3.Error):
            self._db.executemany(
                f"INSERT OR REPLACE INTO {TABLE} VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows
            )

    def close(self) -> None:
        if self._db is not None:
            with self._lock:
                try:
                    self._flush()
                    self._db.commit()
                except sqlite3.Error:
                    pass  # an unusable cache only costs time
                finally:
                    self._db.close()
                    self._db = None

    def __enter__(self) -> StatCache:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
