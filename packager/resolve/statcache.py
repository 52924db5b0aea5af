"""A stat cache: (path, device, inode, size, mtime_ns, ctime_ns) -> sha256.

A second `airgap lock` over unchanged multi-GB weights stats the files instead of reading them.
Entries are only trusted while every stat field matches; a file modified within the last two
seconds is not cached at all (its mtime could still be equal after a quick second write: the
"racy timestamp" problem git also guards against).
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
import time
from pathlib import Path
from types import TracebackType

RACY_SECONDS = 2.0


class StatCache:
    """sqlite-backed; ``StatCache(None)`` is a cache that never hits (``--no-cache``)."""

    def __init__(self, path: Path | None) -> None:
        self._db: sqlite3.Connection | None = None
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0
        self.hit_bytes = 0  # bytes not read again thanks to the cache
        if path is None:
            return
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            db = sqlite3.connect(str(path), timeout=10, check_same_thread=False)
            db.execute(
                "CREATE TABLE IF NOT EXISTS files (path TEXT PRIMARY KEY, dev INTEGER, "
                "ino INTEGER, size INTEGER, mtime_ns INTEGER, ctime_ns INTEGER, sha256 TEXT)"
            )
            db.commit()
            self._db = db
        except (OSError, sqlite3.Error):
            self._db = None  # an unusable cache only costs time

    @staticmethod
    def _key(st: os.stat_result) -> tuple[int, int, int, int, int]:
        return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)

    def lookup(self, path: Path, st: os.stat_result) -> str | None:
        if self._db is None:
            self.misses += 1
            return None
        with self._lock:
            row = self._db.execute(
                "SELECT dev, ino, size, mtime_ns, ctime_ns, sha256 FROM files WHERE path = ?",
                (str(path),),
            ).fetchone()
        if row is not None and tuple(row[:5]) == self._key(st):
            self.hits += 1
            self.hit_bytes += st.st_size
            return str(row[5])
        self.misses += 1
        return None

    def store(self, path: Path, st: os.stat_result, sha256: str) -> None:
        if self._db is None or time.time() - st.st_mtime < RACY_SECONDS:
            return
        with self._lock, contextlib.suppress(sqlite3.Error):
            self._db.execute(
                "INSERT OR REPLACE INTO files VALUES (?, ?, ?, ?, ?, ?, ?)",
                (str(path), *self._key(st), sha256),
            )

    def close(self) -> None:
        if self._db is not None:
            with self._lock:
                try:
                    self._db.commit()
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
