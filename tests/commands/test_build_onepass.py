"""A cold build (no lock yet) reads each model file once, into the tar as it hashes it, and
writes the same bytes as a build from the lock it leaves behind."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import pytest

from packager.bundle.archive import TarWriter
from packager.commands.build import build
from packager.errors import LockMismatch
from packager.manifest.model import Manifest, load_manifest
from tests.support.golden import signing_key
from tests.support.projects import tiny_safetensors

MANIFEST = """\
apiVersion: airgap/v1
kind: Bundle
metadata: {name: onepass, version: 1.0.0}
model: {name: org/onepass, source: {path: ./weights}, format: safetensors, precision: bf16}
target: {platform: linux/amd64, accelerator: {vendor: none}}
"""


@pytest.fixture
def manifest(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Manifest:
    w = tmp_path / "weights"
    (w / "sub").mkdir(parents=True)
    (w / "model.safetensors").write_bytes(tiny_safetensors())
    (w / "config.json").write_text('{"architectures": ["Tiny"]}\n')
    (w / "a-copy.json").write_text('{"architectures": ["Tiny"]}\n')  # one content, two files
    (w / "sub" / "notes.txt").write_text("notes\n")
    old = time.time() - 3600  # older than the stat cache's racy window
    for p in w.rglob("*"):
        os.utime(p, (old, old))
    (tmp_path / "m.yaml").write_text(MANIFEST)
    monkeypatch.setenv("AIRGAP_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")
    loaded = load_manifest(tmp_path / "m.yaml")
    assert loaded.manifest is not None, loaded.findings
    return loaded.manifest


def _build(manifest: Manifest, out: Path) -> bytes:
    (built,) = build(manifest, out=out, key=signing_key()).bundles
    (tar,) = built.files
    return tar.read_bytes()


def _model_files(manifest: Manifest) -> set[Path]:
    return {p.resolve() for p in (manifest.base_dir / "weights").rglob("*") if p.is_file()}


def test_a_cold_build_reads_each_model_file_once_and_equals_a_build_from_its_lock(
    manifest: Manifest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from packager.resolve import content

    hashed: list[Path] = []
    real = content.sha256_files

    def counting(paths: Any, **kw: Any) -> Any:
        items = list(paths)
        hashed.extend(Path(p).resolve() for p in items)
        return real(items, **kw)

    monkeypatch.setattr(content, "sha256_files", counting)
    heads: list[Path] = []
    real_head = content.read_head

    def counting_heads(path: Any, n: int) -> bytes:
        heads.append(Path(path).resolve())
        return real_head(path, n)

    monkeypatch.setattr(content, "read_head", counting_heads)
    lock = tmp_path / "m.lock.json"
    assert not lock.exists()
    cold = _build(manifest, tmp_path / "cold")
    assert lock.exists()  # the cold build locked
    assert not set(hashed) & _model_files(manifest)  # the lock read none of them again
    assert not set(heads) & _model_files(manifest)  # nor opened one to see if it runs code
    warm = _build(manifest, tmp_path / "warm")  # from the lock it wrote
    assert cold == warm


def test_a_model_file_changed_while_it_is_read_stops_the_build_and_leaves_nothing(
    manifest: Manifest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = TarWriter.add_hashed_file

    def then_append(self: TarWriter, source: Path, **kw: Any) -> tuple[str, bool]:
        out = real(self, source, **kw)
        with open(source, "ab") as fh:  # another writer, just after the copy
            fh.write(b"more")
        return out

    monkeypatch.setattr(TarWriter, "add_hashed_file", then_append)
    with pytest.raises(LockMismatch, match="changed while the build read it"):
        _build(manifest, tmp_path / "out")
    assert list((tmp_path / "out").iterdir()) == []  # no tar, no partial file
    assert not (tmp_path / "m.lock.json").exists()


def test_when_the_lock_lists_other_files_the_tar_is_written_again_the_usual_way(
    manifest: Manifest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from packager.resolve import weights

    real = weights.model_files

    calls: list[int] = []

    def one_less(m: Manifest) -> weights.ModelFiles:  # the one-pass listing (the first) misses
        snap, every, chosen = real(m)  # a file: as if it came in between the two listings
        calls.append(1)
        return weights.ModelFiles(snap, every, chosen[:-1] if len(calls) == 1 else chosen)

    monkeypatch.setattr(weights, "model_files", one_less)
    cold = _build(manifest, tmp_path / "cold")
    monkeypatch.setattr(weights, "model_files", real)
    assert len(calls) == 2  # the one-pass read, then the lock
    assert cold == _build(manifest, tmp_path / "warm")
    assert [p.name for p in (tmp_path / "cold").iterdir()] == ["onepass-1.0.0.airgap.tar"]


def test_a_cold_build_of_two_targets_reads_into_the_first_and_equals_builds_from_the_lock(
    manifest: Manifest, tmp_path: Path
) -> None:
    m = tmp_path / "m.yaml"
    m.write_text(
        MANIFEST.replace(
            "target: {platform: linux/amd64, accelerator: {vendor: none}}",
            "targets:\n  a: {platform: linux/amd64, accelerator: {vendor: none}}\n"
            "  b: {platform: linux/arm64, accelerator: {vendor: none}}",
        )
    )
    loaded = load_manifest(m)
    assert loaded.manifest is not None, loaded.findings
    two = loaded.manifest

    def tars(out: Path) -> dict[str, bytes]:
        built = build(two, out=out, key=signing_key()).bundles
        return {f.name: f.read_bytes() for b in built for f in b.files}

    cold = tars(tmp_path / "cold")
    assert sorted(cold) == ["onepass-1.0.0-a.airgap.tar", "onepass-1.0.0-b.airgap.tar"]
    assert cold == tars(tmp_path / "warm")


# ----------------------------------------------------------------------------- from the lock, two cores


@pytest.fixture
def on_two_cores(monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """Every build from a lock writes its model files from another process (a model of any
    size counts as many files); the list gets, per model write joined, whether a child wrote
    them (False: written here, where fork is not to be had)."""
    from packager.bundle import onepass
    from tests.support.forks import on_two_cores as recorded

    return recorded(monkeypatch, onepass)


def test_a_build_from_its_lock_with_the_model_written_by_another_process_is_the_same_bytes(
    manifest: Manifest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, on_two_cores: list[bool]
) -> None:
    from packager.util import forked

    if not forked.can_fork():
        pytest.skip("no fork or one CPU here: a build writes its model files itself")
    cold = _build(manifest, tmp_path / "cold")  # locks (the one-pass read: no model write)
    assert on_two_cores == []
    two = _build(manifest, tmp_path / "two")
    assert on_two_cores == [True]
    monkeypatch.setenv(forked.NO_FORK_ENV, "1")
    one = _build(manifest, tmp_path / "one")  # one process: the usual write
    assert on_two_cores == [True]
    assert cold == two == one
    assert [p.name for p in (tmp_path / "two").iterdir()] == ["onepass-1.0.0.airgap.tar"]


@pytest.mark.parametrize(
    ("content", "words"),
    [
        ("NOTES\n", r"model sub/notes\.txt .* changed since the lock: sha256"),
        ("notes, and more\n", r"model sub/notes\.txt .* changed size since the lock"),
        ("", r"model sub/notes\.txt .* changed size since the lock: locked 6 bytes, now 0"),
    ],
    ids=["same-size", "grown", "emptied"],
)
def test_a_model_file_unlike_its_lock_stops_the_build_and_leaves_nothing(
    manifest: Manifest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, on_two_cores: list[bool],
    content: str, words: str,
) -> None:  # fmt: skip
    """A file the input check took as unchanged (a stat cache fooled by a same-size rewrite)
    but whose bytes are not the locked ones: the model write's own hash stops the build."""
    from packager.commands import build as build_module
    from packager.util import forked

    if not forked.can_fork():
        pytest.skip("no fork or one CPU here: a build writes its model files itself")
    _build(manifest, tmp_path / "cold")
    notes = manifest.base_dir / "weights" / "sub" / "notes.txt"
    notes.write_text(content)
    monkeypatch.setattr(build_module, "find_drift", lambda *a, **kw: [])
    with pytest.raises(LockMismatch, match=words):
        _build(manifest, tmp_path / "out")
    assert on_two_cores == [True]  # the child found it (and this process, to raise it)
    assert list((tmp_path / "out").iterdir()) == []  # no tar, no partial file


@pytest.mark.parametrize(
    "options",
    [{"split": 4096}, {"layout_only": True}],
    ids=["split", "layout-only"],
)
def test_a_build_into_parts_or_a_folder_writes_the_model_files_itself(
    manifest: Manifest, tmp_path: Path, on_two_cores: list[bool], options: dict[str, Any]
) -> None:
    _build(manifest, tmp_path / "cold")
    build(manifest, out=tmp_path / "out", key=signing_key(), **options)
    assert on_two_cores == []
