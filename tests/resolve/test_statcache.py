"""The stat cache trusts a digest only while every stat field still matches."""

from __future__ import annotations

import os
import time
from pathlib import Path

from packager.resolve.content import digest_files
from packager.resolve.statcache import StatCache


def aged(path: Path, seconds: float = 60) -> None:
    """Pretend the file was written a while ago (the cache refuses fresh, racy timestamps)."""
    t = time.time() - seconds
    os.utime(path, (t, t))


def test_an_unchanged_file_is_not_read_again(tmp_path: Path) -> None:
    f = tmp_path / "w.bin"
    f.write_bytes(b"a" * 1000)
    aged(f)
    with StatCache(tmp_path / "c.sqlite") as cache:
        first = digest_files([f], cache)
    with StatCache(tmp_path / "c.sqlite") as cache:
        second = digest_files([f], cache)
        assert (cache.hits, cache.misses, cache.hit_bytes) == (1, 0, 1000)
    assert first == second


def test_a_changed_file_is_hashed_again_even_with_the_same_size_and_mtime(tmp_path: Path) -> None:
    f = tmp_path / "w.bin"
    f.write_bytes(b"a" * 1000)
    aged(f)
    before = f.stat()
    with StatCache(tmp_path / "c.sqlite") as cache:
        old = digest_files([f], cache)[f]
    f.write_bytes(b"b" * 1000)
    os.utime(f, ns=(before.st_atime_ns, before.st_mtime_ns))  # same size, same mtime
    with StatCache(tmp_path / "c.sqlite") as cache:
        new = digest_files([f], cache)[f]
        assert cache.hits == 0  # ctime (and the inode for a replaced file) give it away
    assert new.sha256 != old.sha256


def test_a_replaced_file_is_hashed_again(tmp_path: Path) -> None:
    f = tmp_path / "w.bin"
    f.write_bytes(b"a" * 10)
    aged(f)
    with StatCache(tmp_path / "c.sqlite") as cache:
        digest_files([f], cache)
    tmp = tmp_path / "new.bin"
    tmp.write_bytes(b"c" * 10)
    aged(tmp)
    os.replace(tmp, f)
    with StatCache(tmp_path / "c.sqlite") as cache:
        digest_files([f], cache)
        assert cache.hits == 0


def test_a_freshly_written_file_is_not_cached(tmp_path: Path) -> None:
    f = tmp_path / "w.bin"
    f.write_bytes(b"a")
    with StatCache(tmp_path / "c.sqlite") as cache:
        digest_files([f], cache)
    with StatCache(tmp_path / "c.sqlite") as cache:
        digest_files([f], cache)
        assert cache.hits == 0


def test_a_disabled_or_unusable_cache_only_costs_time(tmp_path: Path) -> None:
    f = tmp_path / "w.bin"
    f.write_bytes(b"a")
    blocker = tmp_path / "file-not-folder"
    blocker.write_text("x")
    for cache in (StatCache(None), StatCache(blocker / "c.sqlite")):
        with cache:
            assert digest_files([f], cache)[f].size == 1
