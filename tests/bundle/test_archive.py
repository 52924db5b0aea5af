"""The deterministic tar: fixed metadata, parts with their digests, reading back without extracting."""

from __future__ import annotations

import hashlib
import os
import tarfile
from pathlib import Path

import pytest

from packager.bundle.archive import (
    FileContent,
    FileSink,
    OutputError,
    PartsSink,
    TarWriter,
    write_entries,
)
from packager.bundle.errors import BundleFormatError
from packager.bundle.reader import ConcatFile, open_bundle, parts_of
from packager.errors import LockMismatch


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def write_tree(sink: FileSink | PartsSink, src: Path, mtime: int = 1_700_000_000) -> int:
    with TarWriter(sink, mtime) as w:
        w.add_dir("airgap")
        w.add_bytes("airgap/bundle.json", b'{"a": 1}\n')
        w.add_dir("blobs")
        data = src.read_bytes()
        w.add_file("blobs/x", src, size=len(data), sha256=sha(data), what="weights")
        w.add_bytes("oci-layout", b"{}")
        w.close()
        size = w.size
    sink.commit()
    return size


@pytest.fixture
def payload(tmp_path: Path) -> Path:
    p = tmp_path / "payload.bin"
    p.write_bytes(os.urandom(3 * 1024 * 1024 + 123))
    return p


def test_the_tar_is_standard_and_fixed(tmp_path: Path, payload: Path) -> None:
    out = tmp_path / "b.airgap.tar"
    size = write_tree(FileSink(out), payload)
    assert out.stat().st_size == size and size % tarfile.RECORDSIZE == 0
    with tarfile.open(out) as tf:
        infos = tf.getmembers()
        assert [i.name for i in infos] == [
            "airgap",
            "airgap/bundle.json",
            "blobs",
            "blobs/x",
            "oci-layout",
        ]
        for i in infos:
            assert (i.mtime, i.uid, i.gid, i.uname, i.gname) == (1_700_000_000, 0, 0, "", "")
            assert i.pax_headers == {}
        x = tf.extractfile("blobs/x")
        assert x is not None and x.read() == payload.read_bytes()


def test_the_progress_of_a_write_counts_every_blob_it_writes(tmp_path: Path, payload: Path) -> None:
    """The build announces a write of the blobs' bytes: those read from files and those made in
    memory (manifests, the SBOM; all a delta may carry) count alike, other members do not."""
    data = payload.read_bytes()
    manifest = b'{"schemaVersion": 2}'
    entries = {
        "airgap/bundle.json": b'{"a": 1}\n',  # not a blob
        f"blobs/sha256/{sha(data)}": FileContent(payload, len(data), sha(data), "weights"),
        f"blobs/sha256/{sha(manifest)}": manifest,
        "index.json": b"{}",
    }
    done: list[int] = []
    with TarWriter(FileSink(tmp_path / "b.tar"), 1_700_000_000) as w:
        write_entries(w, entries, done.append)
        w.close()
    assert sum(done) == len(data) + len(manifest)


def test_the_same_input_gives_the_same_bytes(tmp_path: Path, payload: Path) -> None:
    write_tree(FileSink(tmp_path / "a.tar"), payload)
    write_tree(FileSink(tmp_path / "b.tar"), payload)
    assert (tmp_path / "a.tar").read_bytes() == (tmp_path / "b.tar").read_bytes()


def test_parts_concatenate_to_the_whole(tmp_path: Path, payload: Path) -> None:
    write_tree(FileSink(tmp_path / "whole.tar"), payload)
    sink = PartsSink(tmp_path, lambda i: f"b.airgap.tar.{i:03d}", 1024 * 1024)
    write_tree(sink, payload)
    parts = sorted(tmp_path.glob("b.airgap.tar.*"))
    assert [p.name for p in parts] == [f"b.airgap.tar.{i:03d}" for i in range(len(parts))]
    assert all(p.stat().st_size <= 1024 * 1024 for p in parts)
    assert b"".join(p.read_bytes() for p in parts) == (tmp_path / "whole.tar").read_bytes()
    assert [x.sha256 for x in sink.parts] == [sha(p.read_bytes()) for p in parts]
    assert not list(tmp_path.glob(".*partial"))


def test_an_input_that_changed_since_the_lock_aborts_and_leaves_nothing(
    tmp_path: Path, payload: Path
) -> None:
    sink = FileSink(tmp_path / "b.tar")
    with pytest.raises(LockMismatch, match="changed since the lock"), TarWriter(sink, 0) as w:
        try:
            w.add_file(
                "blobs/x", payload, size=payload.stat().st_size, sha256="0" * 64, what="weights"
            )
        except BaseException:
            sink.abort()
            raise
    assert list(tmp_path.iterdir()) == [payload]


def test_an_input_that_grew_is_caught(tmp_path: Path, payload: Path) -> None:
    data = payload.read_bytes()
    sink = FileSink(tmp_path / "b.tar")
    with pytest.raises(LockMismatch, match="changed size"), TarWriter(sink, 0) as w:
        w.add_file("blobs/x", payload, size=len(data) - 1, sha256=sha(data[:-1]), what="weights")
    sink.abort()


def test_an_unwritable_folder_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(OutputError, match="cannot write"):
        FileSink(tmp_path / "missing-folder" / "b.tar")


def test_the_reader_reads_members_in_place_across_parts(tmp_path: Path, payload: Path) -> None:
    write_tree(PartsSink(tmp_path, lambda i: f"b.airgap.tar.{i:03d}", 1024 * 1024), payload)
    with open_bundle(tmp_path / "b.airgap.tar.001") as b:
        assert len(b.parts) > 2
        members = b.members()
        assert members["blobs/x"].size == payload.stat().st_size
        assert b.read("airgap/bundle.json", 100) == b'{"a": 1}\n'
        with b.open_member("blobs/x") as fh:
            assert fh.read() == payload.read_bytes()
        with pytest.raises(BundleFormatError, match="more than"):
            b.read("blobs/x", 10)


def test_concat_file_seeks_across_boundaries(tmp_path: Path) -> None:
    files = []
    for i, chunk in enumerate([b"abc", b"", b"defgh", b"ij"]):
        p = tmp_path / f"{i}"
        p.write_bytes(chunk)
        files.append(p)
    with ConcatFile(files) as f:
        f.seek(2)
        assert f.read(5) == b"cdefg"
        f.seek(-1, 2)
        assert f.read() == b"j"


def test_a_missing_part_is_named(tmp_path: Path, payload: Path) -> None:
    write_tree(PartsSink(tmp_path, lambda i: f"b.airgap.tar.{i:03d}", 1024 * 1024), payload)
    (tmp_path / "b.airgap.tar.001").unlink()
    parts, _ = parts_of(tmp_path / "b.airgap.tar.000")
    assert "b.airgap.tar.001" not in [p.name for p in parts]


def test_not_a_bundle(tmp_path: Path) -> None:
    junk = tmp_path / "junk.airgap.tar"
    junk.write_bytes(b"\x89PNG" + b"\0" * 2000)
    with pytest.raises(BundleFormatError), open_bundle(junk) as b:
        b.members()
    with pytest.raises(BundleFormatError, match="no such bundle"):
        open_bundle(tmp_path / "none.tar")


@pytest.mark.parametrize(
    "text",
    [b'{"airgapHave": 1', b'  \n{"parts": []}', b"[1, 2]", b'{"version": 1, "keys": {}}'],
)
def test_a_json_document_is_named_as_one_not_as_a_damaged_archive(
    tmp_path: Path, text: bytes
) -> None:
    doc = tmp_path / "have.json"
    doc.write_bytes(text)
    with pytest.raises(BundleFormatError, match="a JSON document, not a bundle") as info:
        open_bundle(doc)
    assert "have-list" in (info.value.hint or "")


def test_a_tar_whose_first_member_begins_like_json_is_still_read_as_a_tar(tmp_path: Path) -> None:
    path = tmp_path / "odd.airgap.tar"
    src = tmp_path / "x"
    src.write_bytes(b"data")
    with tarfile.open(path, "w", format=tarfile.USTAR_FORMAT) as tf:
        tf.add(src, arcname="{odd}")
    with open_bundle(path) as b:
        assert "{odd}" in b.members()


H = [c * 64 for c in "abc"]


@pytest.mark.parametrize(
    ("names", "first", "order"),
    [
        (["oci-layout", f"blobs/sha256/{H[1]}", "airgap/bundle.json", f"blobs/sha256/{H[0]}"], [],
         ["blobs", "blobs/sha256", f"blobs/sha256/{H[0]}", f"blobs/sha256/{H[1]}", "airgap",
          "airgap/bundle.json", "oci-layout"]),
        ([f"blobs/sha256/{h}" for h in H], [f"blobs/sha256/{H[2]}", f"blobs/sha256/{H[0]}"],
         ["blobs", "blobs/sha256", f"blobs/sha256/{H[2]}", f"blobs/sha256/{H[0]}",
          f"blobs/sha256/{H[1]}"]),  # the model files first, in the lock's order
        ([f"blobs/sha256/{H[0]}"], [f"blobs/sha256/{H[1]}", f"blobs/sha256/{H[0]}",
                                    f"blobs/sha256/{H[0]}"],
         ["blobs", "blobs/sha256", f"blobs/sha256/{H[0]}"]),  # not carried (a delta), twice
        (["index.json", "airgap/a/b"], [], ["airgap", "airgap/a", "airgap/a/b", "index.json"]),
    ],
)  # fmt: skip
def test_the_archive_order_puts_the_blobs_first(
    names: list[str], first: list[str], order: list[str]
) -> None:
    from packager.bundle.layout import archive_order

    assert archive_order(names, first) == order


def test_a_blob_written_as_it_is_hashed_is_named_by_its_digest_and_stored_once(
    tmp_path: Path, payload: Path
) -> None:
    twin = tmp_path / "twin.bin"
    twin.write_bytes(payload.read_bytes())
    small = tmp_path / "small.bin"
    small.write_bytes(b"small")
    sink = FileSink(tmp_path / "one.tar")
    written: set[str] = set()
    with TarWriter(sink, None) as w:
        w.add_dir("blobs")
        got = [
            w.add_hashed_file(p, size=p.stat().st_size, what=p.name, written=written, head=4)
            for p in (payload, twin, small)
        ]
        kept = [(g.sha256, g.kept) for g in got]
        w.set_mtime(1_700_000_000)
        w.close()
    sink.commit()
    assert [g.head for g in got] == [payload.read_bytes()[:4]] * 2 + [b"smal"]  # the first read
    assert kept == [(sha(payload.read_bytes()), True), (sha(payload.read_bytes()), False),
                    (sha(b"small"), True)]  # fmt: skip
    with tarfile.open(tmp_path / "one.tar") as tf:
        members = tf.getmembers()
        assert [m.name for m in members] == ["blobs", f"blobs/sha256/{kept[0][0]}",
                                             f"blobs/sha256/{kept[2][0]}"]  # fmt: skip
        assert {m.mtime for m in members} == {1_700_000_000}
        f = tf.extractfile(members[1])
        assert f is not None and f.read() == payload.read_bytes()
    # the same members written the usual way, digests known: the same bytes
    sink2 = FileSink(tmp_path / "two.tar")
    with TarWriter(sink2, 1_700_000_000) as w:
        w.add_dir("blobs")
        for p in (payload, small):
            d = p.read_bytes()
            w.add_file(f"blobs/sha256/{sha(d)}", p, size=len(d), sha256=sha(d), what=p.name)
        w.close()
    sink2.commit()
    assert (tmp_path / "one.tar").read_bytes() == (tmp_path / "two.tar").read_bytes()


def test_a_file_that_grows_while_it_is_hashed_in_aborts(tmp_path: Path, payload: Path) -> None:
    sink = FileSink(tmp_path / "one.tar")
    with (
        pytest.raises(LockMismatch, match="changed size while it was read"),
        TarWriter(sink, None) as w,
    ):
        w.add_hashed_file(payload, size=payload.stat().st_size - 1, what="weights", written=set())
    sink.abort()
    assert list(tmp_path.iterdir()) == [payload]


def tarfile_header(name: str, size: int, mtime: int, directory: bool) -> bytes:
    info = tarfile.TarInfo(name)
    info.size, info.mtime = size, mtime
    info.mode = 0o755 if directory else 0o644
    info.type = tarfile.DIRTYPE if directory else tarfile.REGTYPE
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    return info.tobuf(tarfile.USTAR_FORMAT, "utf-8", "strict")


@pytest.mark.parametrize(
    "name",
    [
        "a",
        "blobs/sha256/" + "0" * 64,
        "x" * 100,  # fills the name field
        "x" * 99 + "/",
        "x" * 101,  # split into prefix and name (tarfile writes it)
        "d/" * 60 + "f",
        "é" * 50,  # 100 bytes of UTF-8
        "é" * 51,
        "weights/ü/",
    ],
)
@pytest.mark.parametrize("size", [0, 1, 2048, 8**11 - 1, 8**11])
@pytest.mark.parametrize("directory", [False, True])
def test_the_hand_built_header_is_tarfiles(name: str, size: int, directory: bool) -> None:
    from packager.bundle.archive import ustar_header

    for mtime in (0, 1_700_000_000):
        try:
            want: bytes | type[Exception] = tarfile_header(name, size, mtime, directory)
        except ValueError as exc:  # a number or name ustar cannot hold: refused the same way
            want = type(exc)
        try:
            got: bytes | type[Exception] = ustar_header(name, size, mtime, directory=directory)
        except ValueError as exc:
            got = type(exc)
        assert got == want


def _one_member_tar(path: Path, size_field: bytes) -> None:
    """A tar of one 5-byte member whose header's size field is ``size_field`` (checksum right)."""
    header = bytearray(tarfile_header("f", 5, 1_700_000_000, False))
    header[124:136] = size_field.ljust(12, b"\0")[:12]
    header[148:156] = b" " * 8
    header[148:156] = b"%06o\0 " % sum(header)
    path.write_bytes(bytes(header) + b"hello".ljust(512, b"\0") + b"\0" * 1024)


@pytest.mark.parametrize(
    ("field", "size"),
    [
        (b"00000000005\0", 5),
        (b"5 ", 5),  # space-terminated, as old tars write it
        (b"\x80" + (5).to_bytes(11, "big"), 5),  # GNU base-256
        (b"0000000005x\0", None),
        (b"00000000\xd9\0", None),  # a non-ASCII digit
        (b"-0000000005\0", None),
        (b"0000000009\0", None),  # 9 is no octal digit
    ],
)
def test_a_tar_number_is_octal_or_base_256_and_nothing_else(
    tmp_path: Path, field: bytes, size: int | None
) -> None:
    from packager.bundle.reader import scan_tar

    tar = tmp_path / "one.tar"
    _one_member_tar(tar, field)
    with ConcatFile([tar]) as raw:
        if size is None:
            with pytest.raises(BundleFormatError, match="at byte 0 has a bad size field"):
                scan_tar(raw)
        else:
            assert [(e.name, e.size) for e in scan_tar(raw).entries] == [("f", size)]
