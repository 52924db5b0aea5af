"""Hostile bundles and hostile prefixes: nothing is ever written outside the staging folder and
the prefix's own folders, never through a link, never past a signed size.

End to end, verify refuses the tar-level attacks first (traversal, absolute names, links,
devices, a sparse member that expands far past its signed size): the install must write nothing.
The extraction layer's own checks are tested directly with hand-made descriptors and sources,
since a signed descriptor with such paths does not pass the schema.
"""

from __future__ import annotations

import hashlib
import io
import os
import shutil
import tarfile
import unicodedata
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from packager.bundle import layout
from packager.bundle.descriptor import Descriptor
from packager.signing.trust import policy_from_keys
from packager.site.install import InstallOptions, install_bundle
from packager.site.integrity import audit_site
from packager.site.rules import (
    Action,
    UnsafeBundle,
    compare_versions,
    decide,
    install_path_problems,
    plan_install,
)
from packager.site.safefs import Dir, SiteError
from packager.site.store import OVERLAP_MIN, BlobStore, ContentMismatch, Span, capped_copy
from tests.site.install_support import (
    Bundles,
    built_bundles,
    copy_prefix,
    current,
    descriptor_of,
    install,
    outside_is_empty,
    store_is_sound,
    tree_files,
)
from tests.support.descriptors import blob, make_descriptor

GB = 1024**3

# ============================================================================ hostile tars, end to end


@pytest.fixture(scope="session")
def bundles(tmp_path_factory: pytest.TempPathFactory) -> Bundles:
    return built_bundles(tmp_path_factory)


def _rewrite(src: Path, dest: Path, extra: Callable[[tarfile.TarFile, Path], None]) -> None:
    """A copy of the bundle tar ``src`` with hostile entries added by ``extra``."""
    with tarfile.open(src) as tin, tarfile.open(dest, "w", format=tarfile.GNU_FORMAT) as tout:
        for m in tin.getmembers():
            tout.addfile(m, tin.extractfile(m) if m.isreg() else None)
        extra(tout, dest.parent / "outside")


def _file(tout: tarfile.TarFile, name: str, data: bytes = b"pwned\n") -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    tout.addfile(info, io.BytesIO(data))


def _traversal(tout: tarfile.TarFile, outside: Path) -> None:
    _file(tout, "blobs/../../outside/evil")
    _file(tout, "../outside/evil2")


def _absolute(tout: tarfile.TarFile, outside: Path) -> None:
    _file(tout, str(outside / "evil"))


def _symlink_then_write(tout: tarfile.TarFile, outside: Path) -> None:
    link = tarfile.TarInfo("blobs/sha256/lnk")
    link.type, link.linkname = tarfile.SYMTYPE, str(outside)
    tout.addfile(link)
    _file(tout, "blobs/sha256/lnk/evil")


def _hardlink(tout: tarfile.TarFile, outside: Path) -> None:
    link = tarfile.TarInfo("blobs/sha256/passwd")
    link.type, link.linkname = tarfile.LNKTYPE, "/etc/passwd"
    tout.addfile(link)


def _device(tout: tarfile.TarFile, outside: Path) -> None:
    dev = tarfile.TarInfo("blobs/sha256/null")
    dev.type, dev.devmajor, dev.devminor = tarfile.CHRTYPE, 1, 3
    tout.addfile(dev)


def sparse_header(name: str, stored: int, realsize: int) -> bytes:
    """A GNU (old) sparse header: ``stored`` bytes in the archive that expand to ``realsize``."""
    info = tarfile.TarInfo(name)
    info.type, info.size = tarfile.GNUTYPE_SPARSE, stored
    buf = bytearray(info.tobuf(format=tarfile.GNU_FORMAT))
    buf[386:398] = b"%012o" % (realsize - stored)  # one region: the last ``stored`` bytes
    buf[398:410] = b"%012o" % stored
    buf[482] = 0  # no extension headers
    buf[483:495] = b"%012o" % realsize
    buf[148:156] = b" " * 8
    buf[148:156] = b"%06o\0 " % sum(buf)
    return bytes(buf)


def _sparse_10gb(src: Path, dest: Path) -> None:
    """The bundle with one ~1 KB blob replaced by a sparse member that expands to 10 GB."""
    doc = descriptor_of(src)
    small = next(b for b in doc["blobs"] if 1000 <= b["size"] <= 4500)
    target = layout.blob_path(small["digest"])
    with tarfile.open(src) as tin, dest.open("wb") as out:
        for m in tin.getmembers():
            if m.name == target:
                data = b"\0" * 1024
                out.write(sparse_header(m.name, len(data), 10 * GB) + data)
                continue
            out.write(m.tobuf(format=tarfile.GNU_FORMAT))
            if m.isreg():
                data = tin.extractfile(m).read()  # type: ignore[union-attr]
                out.write(data + b"\0" * (-len(data) % 512))
        out.write(b"\0" * 1024)
    with tarfile.open(dest) as t:
        got = {m.name: m for m in t}
    assert got[target].issparse() and got[target].size == 10 * GB  # what a naive extractor writes


HOSTILE = [
    ("path-traversal", _traversal, ".. in it"),
    ("absolute-path", _absolute, "an absolute path"),
    ("symlink-then-write", _symlink_then_write, "a symlink"),
    ("hardlink-to-etc-passwd", _hardlink, "a hardlink"),
    ("device-node", _device, "a device or special file"),
    ("sparse-10gb-claimed-1kb", None, "a GNU sparse file: only regular files"),
]


@pytest.mark.parametrize(("make", "words"), [h[1:] for h in HOSTILE], ids=[h[0] for h in HOSTILE])
def test_a_hostile_tar_is_refused_and_writes_nothing(
    tmp_path: Path,
    bundles: Bundles,
    make: Any,
    words: str,
) -> None:
    hostile = tmp_path / "work" / "hostile.airgap.tar"
    hostile.parent.mkdir()
    if make is None:
        _sparse_10gb(bundles.many1, hostile)
    else:
        _rewrite(bundles.many1, hostile, make)
    prefix = tmp_path / "work" / "site"
    r = install(hostile, prefix, bundles.pub, "--no-probe")
    assert r.returncode == 1, r.stdout + r.stderr
    assert "did not verify" in r.stderr and words in r.stderr, r.stderr
    assert not prefix.exists()  # not even created
    outside_is_empty(tmp_path / "work" / "outside")
    assert sorted(p.name for p in (tmp_path / "work").iterdir()) == ["hostile.airgap.tar"]
    assert not Path("/etc/passwd").is_symlink()


# ============================================================================ the plan's own checks


def _desc(paths: list[str], name: str = "b", version: str = "1.0.0") -> Descriptor:
    return make_descriptor(
        name=name, version=version, blobs=[blob(i, p) for i, p in enumerate(paths, 1)]
    )


NFC, NFD = unicodedata.normalize("NFC", "caf\u00e9"), unicodedata.normalize("NFD", "caf\u00e9")

BAD_PLANS = [
    # (id, paths, name, version, words in the problems)
    ("dotdot", ["model/../../../etc/cron.d/x"], "b", "1.0.0", ". or .. segment"),
    ("dotdot-leading", ["../x"], "b", "1.0.0", ". or .. segment"),
    ("absolute", ["/etc/passwd"], "b", "1.0.0", "absolute path"),
    ("empty-segment", ["a//b"], "b", "1.0.0", "empty, . or .. segment"),
    ("dot-segment", ["./a"], "b", "1.0.0", "empty, . or .. segment"),
    ("backslash", ["a\\..\\b"], "b", "1.0.0", "backslash"),
    ("nul", ["a\x00b"], "b", "1.0.0", "backslash or NUL"),
    ("control", ["a\nb"], "b", "1.0.0", "control character"),
    ("reserved-meta", [".airgap/bundle.json"], "b", "1.0.0", "airgap writes itself"),
    ("case", ["model/Weights.bin", "model/weights.bin"], "b", "1.0.0", "collide by case"),
    ("case-folder", ["Model/a", "model/b"], "b", "1.0.0", "collide by case"),
    ("nfc-nfd", [f"model/{NFC}.txt", f"model/{NFD}.txt"], "b", "1.0.0", "Unicode normalization"),
    ("file-and-folder", ["model/x", "model/x/y"], "b", "1.0.0", "is a file and also the folder"),
    ("twice", ["model/x", "model/x"], "b", "1.0.0", "appears twice"),
    ("long-name", ["a/" + "x" * 256], "b", "1.0.0", "longer than 255"),
    ("name-traversal", ["a"], "../evil", "1.0.0", "the bundle name"),
    ("name-slash", ["a"], "a/b", "1.0.0", "holds a slash"),
    ("version-dotdot", ["a"], "b", "..", "the bundle version"),
    ("version-current", ["a"], "b", "current", "reserved"),
    ("version-hidden", ["a"], "b", ".staging", "starts with a dot"),
]


@pytest.mark.parametrize(
    ("paths", "name", "version", "words"), [b[1:] for b in BAD_PLANS], ids=[b[0] for b in BAD_PLANS]
)
def test_the_plan_refuses_unsafe_paths(
    paths: list[str], name: str, version: str, words: str
) -> None:
    with pytest.raises(UnsafeBundle) as exc:
        plan_install(_desc(paths, name, version))
    assert any(words in p for p in exc.value.problems), exc.value.problems


def test_every_problem_is_listed_and_a_good_plan_has_parents_first() -> None:
    assert len(install_path_problems(["../a", "/b", "c//d", "E", "e"])) == 4
    plan = plan_install(_desc(["model/a/b.bin", "model/c.bin", "wheels/w.whl"]))
    assert plan.dirs[:2] == [".airgap", "model"] and "model/a" in plan.dirs
    assert [f.path for f in plan.files] == ["model/a/b.bin", "model/c.bin", "wheels/w.whl"]


def test_versions_order_and_the_anti_rollback_decisions() -> None:
    ordered = [
        "0.9.0",
        "1.0.0-alpha",
        "1.0.0-alpha.1",
        "1.0.0-beta.2",
        "1.0.0-beta.11",
        "1.0.0",
        "1.0.1",
        "1.10.0",
        "2.0.0",
    ]
    for a, b in zip(ordered, ordered[1:]):  # itertools.pairwise: 3.10
        assert compare_versions(a, b) < 0 < compare_versions(b, a), (a, b)
    assert compare_versions("1.0.0+build.1", "1.0.0") == 0
    d = "sha256:" + "1" * 64
    e = "sha256:" + "2" * 64
    assert decide("1.0.0", d, {}, None).action is Action.INSTALL
    assert decide("1.0.0", d, {"1.0.0": d}, "1.0.0").action is Action.NOOP
    assert decide("1.0.0", d, {"1.0.0": d, "2.0.0": e}, "2.0.0").action is Action.REFUSE
    assert (
        decide("1.0.0", d, {"1.0.0": d, "2.0.0": e}, "2.0.0", allow_downgrade=True).action
        is Action.ACTIVATE
    )
    assert decide("1.0.0", e, {"1.0.0": d}, None, allow_downgrade=True).action is Action.REFUSE
    assert decide("1.0.0+b", e, {"1.0.0+a": d}, None).action is Action.REFUSE  # same precedence
    assert decide("2.0.0", e, {"1.0.0": d}, "1.0.0").action is Action.INSTALL


# ============================================================================ the writing layer


class Endless(io.RawIOBase):
    """A source that never ends (a member that claims far more than its signed size)."""

    def __init__(self) -> None:
        self.read_bytes = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buf: Any) -> int:
        n = len(memoryview(buf))
        memoryview(buf)[:n] = b"A" * n
        self.read_bytes += n
        return n


def test_a_copy_stops_one_byte_past_the_signed_size(tmp_path: Path) -> None:
    src = Endless()
    fd = os.open(tmp_path / "out", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    try:
        with pytest.raises(ContentMismatch, match="longer than its signed size 1024"):
            capped_copy(src, fd, 1024, what="blob")  # type: ignore[arg-type]
    finally:
        os.close(fd)
    assert src.read_bytes == 1025 and (tmp_path / "out").stat().st_size == 1024
    fd = os.open(tmp_path / "short", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    try:
        with pytest.raises(ContentMismatch, match="ends after 3 bytes"):
            capped_copy(io.BytesIO(b"abc"), fd, 10, what="blob")
    finally:
        os.close(fd)


@pytest.mark.parametrize("size", [1024, OVERLAP_MIN + 5])  # hashed in this thread; by a second
def test_the_cap_holds_whichever_thread_hashes(tmp_path: Path, size: int) -> None:
    src = Endless()
    fd = os.open(tmp_path / "long", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    try:
        with pytest.raises(ContentMismatch, match=f"longer than its signed size {size}"):
            capped_copy(src, fd, size, what="blob")  # type: ignore[arg-type]
    finally:
        os.close(fd)
    assert src.read_bytes == size + 1 and (tmp_path / "long").stat().st_size == size
    data = os.urandom(size)
    fd = os.open(tmp_path / "short", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    try:
        with pytest.raises(ContentMismatch, match=f"ends after {size - 1} bytes"):
            capped_copy(io.BytesIO(data[:-1]), fd, size, what="blob")
        os.lseek(fd, 0, os.SEEK_SET)
        got = capped_copy(io.BytesIO(data), fd, size, what="blob")
    finally:
        os.close(fd)
    assert got == hashlib.sha256(data).hexdigest()  # the digest of the bytes written, in order
    assert (tmp_path / "short").read_bytes() == data


def test_a_span_of_another_length_is_refused_before_reading(tmp_path: Path) -> None:
    (tmp_path / "src").write_bytes(b"x" * 100)
    src = os.open(tmp_path / "src", os.O_RDONLY)
    out = os.open(tmp_path / "out", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    try:
        with pytest.raises(ContentMismatch, match="holds 10 bytes, signed size is 5"):
            capped_copy(Span(src, 0, 10), out, 5, what="blob")
        assert (
            capped_copy(Span(src, 90, 10), out, 10, what="blob")
            == hashlib.sha256(b"x" * 10).hexdigest()
        )
    finally:
        os.close(src)
        os.close(out)
    assert (tmp_path / "out").read_bytes() == b"x" * 10


@pytest.mark.parametrize("as_span", [True, False])
def test_a_large_blob_is_written_direct_with_its_odd_tail(tmp_path: Path, as_span: bool) -> None:
    data = os.urandom(9 * 1024 * 1024 + 1234)  # over DIRECT_MIN, not a whole number of blocks
    hexd = hashlib.sha256(data).hexdigest()
    (tmp_path / "src").write_bytes(b"header" + data)
    (tmp_path / "p").mkdir()
    root = Dir.open_prefix(str(tmp_path / "p"), create=False)
    staging, store = root.walk("stage", create=True), BlobStore(root, create=True)
    src = os.open(tmp_path / "src", os.O_RDONLY)
    try:
        source: Any = Span(src, 6, len(data)) if as_span else io.BytesIO(data)
        store.put(hexd, len(data), source, staging, what="blob")
    finally:
        os.close(src)
        for d in (store.dir, staging, root):
            d.close()
    assert (tmp_path / "p" / "blobs" / "sha256" / hexd).read_bytes() == data


def test_a_blob_that_does_not_hash_never_gets_its_final_name(tmp_path: Path) -> None:
    (tmp_path / "p").mkdir()
    root = Dir.open_prefix(str(tmp_path / "p"), create=False)
    staging = root.walk("stage", create=True)
    store = BlobStore(root, create=True)
    hexd = "ab" * 32
    with pytest.raises(ContentMismatch, match="not sha256:abab"):
        store.put(hexd, 5, io.BytesIO(b"hello"), staging, what="blob")
    assert not store.has(hexd, 5) and staging.names() == [] and store.names() == []
    good = "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"  # sha256("hello")
    store.put(good, 5, io.BytesIO(b"hello"), staging, what="blob")
    assert (
        store.has(good, 5)
        and (tmp_path / "p" / "blobs" / "sha256" / good).stat().st_mode & 0o7777 == 0o444
    )
    for d in (store.dir, staging, root):
        d.close()


def test_files_are_created_exclusively_and_never_through_a_link(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (tmp_path / "p").mkdir()
    root = Dir.open_prefix(str(tmp_path / "p"), create=False)
    (tmp_path / "p" / "f").symlink_to(outside / "target")
    with pytest.raises(SiteError):
        root.create("f")  # O_EXCL|O_NOFOLLOW: the link is not followed, the target not made
    (tmp_path / "p" / "d").symlink_to(outside)
    with pytest.raises(SiteError, match="symbolic link, not a folder"):
        root.walk("d/x", create=True)
    fd = root.create("g", 0o4755)  # whatever is asked, the mode is exactly that: callers pass 0644
    os.close(fd)
    root.close()
    outside_is_empty(outside)


# ============================================================================ planted links in a prefix


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory, bundles: Bundles) -> Path:
    prefix = tmp_path_factory.mktemp("planted") / "site"
    install_bundle(
        bundles.many1, prefix, policy_from_keys([bundles.pub]), InstallOptions(probe=False)
    )
    return prefix


def _many2_only_blob(bundles: Bundles) -> str:
    def blobs(t: Path) -> set[str]:
        doc = descriptor_of(t)
        return {b["digest"].split(":")[1] for b in doc["blobs"] if b["paths"]}

    return sorted(blobs(bundles.many2) - blobs(bundles.many1))[0]


PLANTED = [
    # (id, path in the prefix replaced by a link to the outside folder (or a file in it))
    ("blobs", "blobs"),
    ("blobs-sha256", "blobs/sha256"),
    ("a-blob", "blobs/sha256/{blob}"),
    ("bundles", "bundles"),
    ("bundles-name", "bundles/many"),
    ("the-new-version", "bundles/many/2.0.0"),
    ("current-absolute", "bundles/many/current"),
    ("receipts", "receipts"),
    ("receipts-name", "receipts/many"),
    ("staging", ".staging"),
    ("audit-log", "audit.log"),
    ("lock", ".airgap.lock"),
]


@pytest.mark.parametrize("planted", [p[1] for p in PLANTED], ids=[p[0] for p in PLANTED])
def test_a_link_planted_in_the_prefix_is_never_written_through(
    tmp_path: Path,
    installed: Path,
    bundles: Bundles,
    planted: str,
) -> None:
    prefix = tmp_path / "site"
    copy_prefix(installed, prefix)
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "keep").write_text("untouched\n")
    before = tree_files(outside)
    where = prefix / planted.format(blob=_many2_only_blob(bundles))
    if where.is_dir() and not where.is_symlink():
        shutil.rmtree(where)
    elif where.exists() or where.is_symlink():
        where.unlink()
    where.symlink_to(
        outside / "keep"
        if planted in ("audit.log", ".airgap.lock") or "{blob}" in planted
        else outside
    )
    with pytest.raises(SiteError) as exc:
        install_bundle(
            bundles.many2, prefix, policy_from_keys([bundles.pub]), InstallOptions(probe=False)
        )
    assert any(
        w in exc.value.message
        for w in ("link", "not a folder", "no receipt", "slash", "Too many levels")
    ), exc.value.message
    assert tree_files(outside) == before and sorted(os.listdir(outside)) == ["keep"]
    assert current(prefix, "many") != "2.0.0"
    if not planted.startswith("blobs"):
        store_is_sound(prefix)
    assert not audit_site(prefix).ok  # the audit names the planted link (and does not follow it)


def test_a_planted_link_is_an_exit_2_with_one_clear_line(
    tmp_path: Path, installed: Path, bundles: Bundles
) -> None:
    prefix = tmp_path / "site"
    copy_prefix(installed, prefix)
    shutil.rmtree(prefix / "bundles")
    (prefix / "bundles").symlink_to(tmp_path)
    r = install(bundles.many2, prefix, bundles.pub, "--no-probe")
    assert (
        r.returncode == 2
        and "refusing to go through it" in r.stderr
        and "Traceback" not in r.stderr
    )
    assert audit_site(prefix).ok is False


@pytest.mark.parametrize(
    ("in_store", "free_mib", "refused"),
    [
        ((), 100, True),  # 3 blobs of 40 MiB to write: 120 MiB (and the margin) > 100 MiB
        (("a", "b"), 100, False),  # 2 already there: only 40 MiB is written
        (("a", "b", "c"), 1, False),  # all there: nothing to write but the margin
        (("a", "b", "c"), 0, True),  # not even the margin
    ],
)
def test_room_before_counts_only_the_blobs_not_in_the_store(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    in_store: tuple[str, ...],
    free_mib: int,
    refused: bool,
) -> None:
    from packager.site import install as install_mod
    from packager.site.rules import InstallPlan

    monkeypatch.setattr(install_mod, "SPACE_MARGIN", 1 << 20)
    size = 40 << 20
    plan = InstallPlan("n", "1.0.0", None, blobs={h * 64: size for h in "abc"})
    store = tmp_path / "site" / layout.SITE_BLOBS_DIR
    store.mkdir(parents=True)
    for h in in_store:
        with (store / (h * 64)).open("wb") as fh:
            fh.truncate(size)  # sparse: its size is what counts

    class Room:
        f_frsize = 1 << 20
        f_bavail = free_mib

    monkeypatch.setattr(install_mod.os, "statvfs", lambda p: Room)
    if refused:
        with pytest.raises(SiteError, match="not enough free space"):
            install_mod._check_room_before(tmp_path / "site", plan)
    else:
        install_mod._check_room_before(tmp_path / "site", plan)
