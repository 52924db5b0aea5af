"""The stat cache trusts a digest only while every stat field still matches; it keeps how a
model file runs code beside its digest, so a warm lock opens no model file."""

from __future__ import annotations

import builtins
import hashlib
import os
import pickle
import sqlite3
import time
from pathlib import Path
from typing import Any

import pytest

from packager.compat.load_code import name_class
from packager.manifest.model import Manifest, load_manifest
from packager.resolve import statcache
from packager.resolve.content import digest_files, digest_stated
from packager.resolve.statcache import StatCache
from packager.resolve.weights import code_probes, resolve_weights


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


# ---------------------------------------------------------------- what the cache keeps of content

MODEL_FILES = {  # name -> (content, how loading it runs code)
    "model.bin": (pickle.dumps({"a": 1}, protocol=0), "pickle"),
    "notes.txt": (pickle.dumps({"a": 1}, protocol=0), None),  # the same bytes, read as text
    "modeling_x.py": (b"print('hi')\n", "python"),
    "config.json": (b'{"auto_map": {"AutoModel": "modeling_x.M"}}', "auto_map"),
    "sub/weights.onnx": (os.urandom(3000), None),
}


def model_folder(tmp_path: Path) -> Manifest:
    folder = tmp_path / "weights"
    for name, (data, _) in MODEL_FILES.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(data)
        aged(folder / name)
    (tmp_path / "m.yaml").write_text(
        "apiVersion: airgap/v1\nkind: Bundle\nmetadata: {name: t, version: 1.0.0}\n"
        "model: {name: t/m, source: {path: ./weights}, format: onnx}\n"
        "target: {platform: linux/amd64, accelerator: {vendor: none}}\n"
    )
    loaded = load_manifest(tmp_path / "m.yaml")
    assert loaded.manifest is not None, loaded.findings
    return loaded.manifest


def runs_code_of(manifest: Manifest, cache: StatCache) -> dict[str, str | None]:
    model, _ = resolve_weights(manifest, cache)
    return {f.path: f.runs_code for f in model.files}


def test_a_warm_lock_opens_no_model_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    manifest = model_folder(tmp_path)
    want = {name: kind for name, (_, kind) in MODEL_FILES.items()}
    with StatCache(tmp_path / "c.sqlite") as cache:
        assert runs_code_of(manifest, cache) == want  # cold: each file read once, while hashed
    opened: list[str] = []
    folder = str(tmp_path / "weights")
    real_os_open, real_open = os.open, builtins.open

    def os_open(path: Any, *args: Any, **kwargs: Any) -> Any:
        opened.append(os.fspath(path))
        return real_os_open(path, *args, **kwargs)

    def open_(path: Any, *args: Any, **kwargs: Any) -> Any:
        if isinstance(path, (str, Path)):
            opened.append(os.fspath(path))
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(os, "open", os_open)
    monkeypatch.setattr(builtins, "open", open_)
    with StatCache(tmp_path / "c.sqlite") as cache:
        assert runs_code_of(manifest, cache) == want
        assert (cache.hits, cache.misses) == (len(MODEL_FILES), 0)
    assert [p for p in opened if p.startswith(folder)] == []


def test_a_changed_file_is_read_again_and_its_new_kind_found(tmp_path: Path) -> None:
    manifest = model_folder(tmp_path)
    with StatCache(tmp_path / "c.sqlite") as cache:
        runs_code_of(manifest, cache)
    onnx = tmp_path / "weights" / "sub" / "weights.onnx"
    onnx.write_bytes(pickle.dumps([1, 2, 3], protocol=4))  # now a pickle whatever its name
    aged(onnx)
    with StatCache(tmp_path / "c.sqlite") as cache:
        assert runs_code_of(manifest, cache)["sub/weights.onnx"] == "pickle"
        assert cache.misses == 1


@pytest.mark.parametrize(
    ("first", "then", "want"),
    [
        ("model.bin", "model.txt", None),  # a protocol-0 pickle is one only by a pickle's name
        ("model.txt", "model.bin", "pickle"),
        ("model.bin", "other.pkl", "pickle"),  # one name class: the kept answer is used
    ],
)
def test_the_kept_answer_is_for_the_name_class_it_was_asked_for(
    tmp_path: Path, first: str, then: str, want: str | None
) -> None:
    """One file under two names (a Hugging Face snapshot links names to blobs): the answer the
    cache keeps was given for one class of name, and is not reused for another."""
    blob = tmp_path / "blob"
    blob.write_bytes(pickle.dumps({"a": 1}, protocol=0))
    aged(blob)
    stated = [(str(blob), blob.stat())]
    probes = code_probes()
    with StatCache(tmp_path / "c.sqlite") as cache:
        digest_stated(stated, cache, None, [probes[name_class(first)]])
    with StatCache(tmp_path / "c.sqlite") as cache:
        _, kinds = digest_stated(stated, cache, None, [probes[name_class(then)]])
        assert cache.hits == 1
    assert kinds == [want]


def test_a_cache_of_the_old_table_is_ignored(tmp_path: Path) -> None:
    f = tmp_path / "w.bin"
    f.write_bytes(b"a" * 10)
    aged(f)
    st = f.stat()
    db = sqlite3.connect(str(tmp_path / "c.sqlite"))
    db.execute(
        "CREATE TABLE files (path TEXT PRIMARY KEY, dev INTEGER, ino INTEGER, size INTEGER, "
        "mtime_ns INTEGER, ctime_ns INTEGER, sha256 TEXT)"
    )
    row = (str(f), st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns, "0" * 64)
    db.execute("INSERT INTO files VALUES (?, ?, ?, ?, ?, ?, ?)", row)
    db.commit()
    db.close()
    with StatCache(tmp_path / "c.sqlite") as cache:
        assert digest_files([f], cache)[f].sha256 == hashlib.sha256(b"a" * 10).hexdigest()
        assert cache.hits == 0


def test_what_a_cache_stored_it_finds_before_it_is_closed(tmp_path: Path) -> None:
    """A one-pass build stores the digests it read, then locks through the same cache."""
    files = []
    for name in ("a.bin", "b.bin"):
        f = tmp_path / name
        f.write_bytes(name.encode())
        aged(f)
        files.append(f)
    with StatCache(tmp_path / "c.sqlite") as cache:
        cache.store(files[0], files[0].stat(), "0" * 64)  # its folder not looked at yet
        assert cache.lookup(files[0], files[0].stat()) == "0" * 64
        cache.store(files[1], files[1].stat(), "1" * 64)  # its folder already looked at
        assert cache.lookup(files[1], files[1].stat()) == "1" * 64


@pytest.mark.parametrize(
    "path",
    ["/a/b", "/a/b/c.json", "/b", "/", "b", "a/b", "/a//b", "/a/b/", "//a", "/a/.b", "/ä/ö"],
)
def test_a_path_is_split_as_os_path_split_splits_it(path: str) -> None:
    """The cache's rows are keyed by folder and name: the quick split must give the keys that
    ``os.path.split`` gave when the rows were written."""
    assert statcache._split(path) == os.path.split(path)
