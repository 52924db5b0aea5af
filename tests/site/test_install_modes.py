"""The install plan's modes and owner (pure), and the copies they make: the default, a declared serve.install, which files
may be hard links into the store, and declared layouts that cannot be installed."""

from __future__ import annotations

import dataclasses
import hashlib
import os
import stat
from pathlib import Path

import pytest

from packager.bundle.descriptor import (
    Descriptor,
    InstallSize,
    ServeModes,
    descriptor_bytes,
    parse_descriptor,
)
from packager.site.placing import copy_blob
from packager.site.rules import InstallModes, UnsafeBundle, plan_install
from packager.site.safefs import Dir
from packager.site.store import BlobStore, ContentMismatch
from tests.support.descriptors import blob, make_descriptor


def desc(**install: object) -> Descriptor:
    d = make_descriptor(blobs=[blob(1, "model/w.bin"), blob(2, "files/ops/bin/run")])
    return dataclasses.replace(d, install=InstallSize(10, 5, **install))  # type: ignore[arg-type]


MODES = [
    # (id, declared, path, mode, linkable, owner)
    ("default file", None, "model/w.bin", 0o444, True, None),
    ("default executable", None, "files/ops/bin/run", 0o555, False, None),
    ("MindIE file", ServeModes(0o640, 0o750, 1000, 1000), "model/w.bin", 0o640, False, (1000, 1000)),
    ("MindIE executable", ServeModes(0o640, 0o750, 1000, 1000), "files/ops/bin/run", 0o750, False,
     (1000, 1000)),
    ("owner only", ServeModes(0o444, 0o555, 1000, None), "model/w.bin", 0o444, False, (1000, -1)),
    ("group-only read", ServeModes(0o440, 0o550), "files/ops/bin/run", 0o550, False, None),
]  # fmt: skip


@pytest.mark.parametrize(
    ("declared", "path", "mode", "linkable", "owner"),
    [m[1:] for m in MODES],
    ids=[m[0] for m in MODES],
)
def test_modes_of_each_file(
    declared: ServeModes | None, path: str, mode: int, linkable: bool, owner: tuple[int, int] | None
) -> None:
    d = desc(executables=("files/ops/bin/run",), modes=declared)
    plan = plan_install(parse_descriptor(descriptor_bytes(d)))  # through the bytes, as signed
    assert plan.modes.file_mode(path) == mode
    assert plan.modes.linkable(path) is linkable
    assert plan.modes.owner == owner
    assert plan.modes.dir == (declared.dir_mode if declared else 0o555)


def test_empty_folders_are_planned_with_their_parents() -> None:
    plan = plan_install(desc(dirs=("files/ops/var/empty",)))
    assert {"files/ops/var", "files/ops/var/empty"} <= set(plan.dirs)
    assert plan.dirs.index("files/ops/var") < plan.dirs.index("files/ops/var/empty")


BAD = [
    ("executable of no blob", {"executables": ("files/other",)}, "no blob installs"),
    ("owner locked out", {"modes": ServeModes(0o040, 0o750)}, "owner could not read"),
    ("folders closed", {"modes": ServeModes(0o640, 0o640)}, "enter the folders"),
    ("empty folder escapes", {"dirs": ("../../etc",)}, ". or .. segment"),
    ("empty folder in .airgap", {"dirs": (".airgap/x",)}, "airgap writes itself"),
]


@pytest.mark.parametrize(("install", "words"), [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_declared_layouts_that_cannot_be_installed_are_refused(
    install: dict[str, object], words: str
) -> None:
    with pytest.raises(UnsafeBundle) as exc:
        plan_install(desc(**install))
    assert any(words in p for p in exc.value.problems), exc.value.problems


def test_the_default_descriptor_bytes_carry_no_new_keys() -> None:
    raw = descriptor_bytes(desc())
    assert b'"executables"' not in raw and b'"modes"' not in raw and b'"dirs"' not in raw
    assert InstallModes() == plan_install(parse_descriptor(raw)).modes


def _store_with(tmp_path: Path, data: bytes, name: str) -> tuple[Dir, BlobStore]:
    prefix = Dir.open_prefix(str(tmp_path / "p"), create=True)
    store = BlobStore(prefix, create=True)
    fd = store.dir.create(name, 0o444)
    os.write(fd, data)
    os.close(fd)
    return prefix, store


def test_a_copy_gets_its_own_inode_and_mode_and_the_blob_keeps_its_own(tmp_path: Path) -> None:
    data = b"weights" * 1000
    hexd = hashlib.sha256(data).hexdigest()
    prefix, store = _store_with(tmp_path, data, hexd)
    with prefix, store.dir, prefix.sub("out", create=True) as out:
        copy_blob(out, "w.bin", store, hexd, len(data), 0o640)
        st, blob = os.stat(tmp_path / "p/out/w.bin"), os.stat(store.dir.path_of(hexd))
    assert (tmp_path / "p/out/w.bin").read_bytes() == data
    assert stat.S_IMODE(st.st_mode) == 0o640 and st.st_ino != blob.st_ino
    assert stat.S_IMODE(blob.st_mode) == 0o444 and blob.st_nlink == 1


def test_a_damaged_blob_is_not_copied_silently(tmp_path: Path) -> None:
    data = b"weights" * 1000
    hexd = hashlib.sha256(data).hexdigest()
    prefix, store = _store_with(tmp_path, b"W" + data[1:], hexd)  # same size, other bytes
    with prefix, store.dir, prefix.sub("out", create=True) as out:
        with pytest.raises(ContentMismatch, match="damaged"):
            copy_blob(out, "w.bin", store, hexd, len(data), 0o640)
        with pytest.raises(ContentMismatch, match="bytes, not"):
            copy_blob(out, "x.bin", store, hexd, len(data) + 1, 0o640)


@pytest.mark.parametrize("mode", [0o640, 0o440, 0o555, 0o600])
@pytest.mark.parametrize("reflink", [False, True], ids=["copy", "reflink-or-copy"])
def test_copy_to_gives_the_new_file_its_mode_and_the_digest_of_what_it_read(
    tmp_path: Path, mode: int, reflink: bool
) -> None:
    """A read-only mode too: the file is created with it and still written through its open
    descriptor. Where no reflink is made (this file system), the bytes are read and hashed."""
    data = b"weights" * 1000
    hexd = hashlib.sha256(data).hexdigest()
    prefix, store = _store_with(tmp_path, data, hexd)
    with prefix, store.dir, prefix.sub("out", create=True) as out:
        got = store.copy_to(hexd, len(data), out, "w.bin", mode, reflink=reflink)
    assert got in ((hexd,) if not reflink else (hexd, None))
    st = os.stat(tmp_path / "p/out/w.bin")
    assert stat.S_IMODE(st.st_mode) == mode
    assert (tmp_path / "p/out/w.bin").read_bytes() == data


def test_copy_to_refuses_a_blob_of_another_size_before_making_a_file(tmp_path: Path) -> None:
    data = b"weights" * 1000
    hexd = hashlib.sha256(data).hexdigest()
    prefix, store = _store_with(tmp_path, data, hexd)
    with prefix, store.dir, prefix.sub("out", create=True) as out:
        for size in (len(data) - 1, len(data) + 1):
            with pytest.raises(ContentMismatch, match=f"has {len(data)} bytes, not {size}"):
                store.copy_to(hexd, size, out, "w.bin", 0o640)
    assert not (tmp_path / "p/out/w.bin").exists()


def test_the_space_check_counts_the_copies() -> None:
    plain = plan_install(desc())
    assert plain.copy_bytes == 0
    executable = plan_install(desc(executables=("files/ops/bin/run",)))
    assert executable.copy_bytes == next(f.size for f in executable.files if "run" in f.path)
    served = plan_install(desc(modes=ServeModes(0o640, 0o750, 1000, 1000)))
    assert served.copy_bytes == served.install_bytes > 0
