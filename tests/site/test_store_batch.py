"""packager.site.store.BlobStore.put_batches: small blobs stored with one file-system sync per
batch; a blob's name appears only after the sync, a bad blob or a failed sync leaves no name of
the batch in the store, and without syncfs each file is fsynced instead."""

from __future__ import annotations

import ctypes
import errno
import hashlib
import os
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from packager.site import store as store_mod
from packager.site.safefs import Dir, SiteError
from packager.site.store import BlobStore, ContentMismatch

BLOBS = [os.urandom(100 + i) for i in range(6)]


@pytest.fixture
def site(tmp_path: Path) -> Iterator[tuple[BlobStore, Dir, Path]]:
    prefix = Dir.open_prefix(str(tmp_path / "p"), create=True)
    staging = prefix.sub("staging", create=True)
    store = BlobStore(prefix, create=True)
    yield store, staging, tmp_path / "p"
    store.close()
    staging.close()
    prefix.close()


def _items(blobs: list[bytes]) -> list[tuple[str, int, str]]:
    return [(hashlib.sha256(b).hexdigest(), len(b), f"blob {i}") for i, b in enumerate(blobs)]


def _reader(
    blobs: list[bytes], damaged: int | None = None, short: int | None = None
) -> Callable[[str, int, str], bytes]:
    by_hex = {hashlib.sha256(b).hexdigest(): (i, b) for i, b in enumerate(blobs)}

    def read(hexd: str, size: int, what: str) -> bytes:
        i, b = by_hex[hexd]
        if i == damaged:
            return b[:-1] + bytes([b[-1] ^ 1])
        return b[:-1] if i == short else b

    return read


def _stored(root: Path) -> set[str]:
    return {p.name for p in (root / "blobs" / "sha256").iterdir()}


def test_every_name_appears_after_the_one_sync(
    site: tuple[BlobStore, Dir, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    store, staging, root = site
    seen: list[set[str]] = []
    real = store_mod.sync_files

    def watching(d: Dir, names: list[str]) -> None:
        seen.append(_stored(root))
        real(d, names)

    monkeypatch.setattr(store_mod, "sync_files", watching)
    store.put_batches([_items(BLOBS)], _reader(BLOBS), staging)
    assert seen == [set()]  # one sync, before any blob had its name
    assert _stored(root) == {h for h, _, _ in _items(BLOBS)}
    for h, _, _ in _items(BLOBS):
        path = root / "blobs" / "sha256" / h
        assert hashlib.sha256(path.read_bytes()).hexdigest() == h
        assert path.stat().st_mode & 0o777 == 0o444
    assert os.listdir(root / "staging") == []


@pytest.mark.parametrize(
    ("damaged", "short", "words"),
    [(3, None, "content is sha256:"), (None, 5, "ends after 104 bytes, signed size is 105")],
)
def test_a_bad_blob_leaves_no_name_of_its_batch(
    site: tuple[BlobStore, Dir, Path], damaged: int | None, short: int | None, words: str
) -> None:
    store, staging, root = site
    with pytest.raises(ContentMismatch) as info:
        store.put_batches([_items(BLOBS)], _reader(BLOBS, damaged, short), staging)
    assert words in info.value.message
    assert _stored(root) == set()


def test_a_failed_sync_is_an_error_and_nothing_is_renamed(
    site: tuple[BlobStore, Dir, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    store, staging, root = site

    def failing(fd: int) -> int:
        ctypes.set_errno(errno.EIO)
        return -1

    monkeypatch.setattr(store_mod, "_syncfs", lambda: failing)
    with pytest.raises(SiteError) as info:
        store.put_batches([_items(BLOBS)], _reader(BLOBS), staging)
    assert "staging" in info.value.message
    assert _stored(root) == set()


@pytest.mark.parametrize("syncfs", ["missing", "refused"])
def test_without_syncfs_each_file_is_fsynced_before_its_rename(
    site: tuple[BlobStore, Dir, Path], monkeypatch: pytest.MonkeyPatch, syncfs: str
) -> None:
    store, staging, root = site

    def refused(fd: int) -> int:
        ctypes.set_errno(errno.ENOSYS)
        return -1

    monkeypatch.setattr(store_mod, "_syncfs", lambda: None if syncfs == "missing" else refused)
    synced: list[int] = []
    real = os.fsync

    def fsync(fd: int) -> None:
        assert _stored(root) == set()
        synced.append(fd)
        real(fd)

    monkeypatch.setattr(store_mod.os, "fsync", fsync)
    store.put_batches([_items(BLOBS)], _reader(BLOBS), staging)
    assert len(synced) == len(BLOBS)
    assert len(_stored(root)) == len(BLOBS)


def test_syncfs_is_found_on_linux() -> None:
    if os.uname().sysname != "Linux":
        pytest.skip("syncfs is Linux's")
    assert store_mod._syncfs() is not None


def test_batches_are_written_by_one_thread_and_each_named_only_after_its_own_sync(
    site: tuple[BlobStore, Dir, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    store, staging, root = site
    batches = [_items(BLOBS[:2]), _items(BLOBS[2:5]), _items(BLOBS[5:])]
    early: list[str] = []
    real = store_mod.sync_files

    def watching(d: Dir, names: list[str]) -> None:
        k = next(i for i, b in enumerate(batches) if f"blob-{b[0][0]}" in names)
        later = {h for b in batches[k:] for h, _, _ in b}
        early.extend(_stored(root) & later)  # a blob of this batch or a later one, named
        real(d, names)

    monkeypatch.setattr(store_mod, "sync_files", watching)
    writers: set[str] = set()
    read = _reader(BLOBS)

    def reading(hexd: str, size: int, what: str) -> bytes:
        writers.add(threading.current_thread().name)
        return read(hexd, size, what)

    store.put_batches(batches, reading, staging)
    assert early == []
    assert writers == {threading.current_thread().name}  # one thread makes every file
    assert _stored(root) == {h for h, _, _ in _items(BLOBS)}
    assert os.listdir(root / "staging") == []


def test_a_bad_blob_in_a_later_batch_leaves_no_name_of_it_or_after(
    site: tuple[BlobStore, Dir, Path],
) -> None:
    store, staging, root = site
    batches = [_items(BLOBS[:2]), _items(BLOBS[2:5]), _items(BLOBS[5:])]
    with pytest.raises(ContentMismatch):
        store.put_batches(batches, _reader(BLOBS, damaged=3), staging)
    assert not _stored(root) & {h for b in batches[1:] for h, _, _ in b}


def test_an_empty_batch_syncs_nothing(
    site: tuple[BlobStore, Dir, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    store, staging, root = site
    synced: list[list[str]] = []
    monkeypatch.setattr(store_mod, "sync_files", lambda d, names: synced.append(names))
    store.put_batches([[], _items(BLOBS[:1]), []], _reader(BLOBS), staging)
    assert synced == [[f"blob-{_items(BLOBS[:1])[0][0]}"]]  # one sync, for the one blob
    assert len(_stored(root)) == 1
