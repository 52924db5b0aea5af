"""packager.bundle.reader: small members are read in place with pread on the parts (opened
once), across a part boundary too, and give the same bytes and digests as the streamed path."""

from __future__ import annotations

import hashlib
import io
import tarfile
from pathlib import Path

import pytest

from packager.bundle import reader
from packager.bundle.reader import ConcatFile, TarBundle


def _tar(members: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.USTAR_FORMAT) as tf:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return out.getvalue()


def _split(data: bytes, cuts: list[int], where: Path) -> list[Path]:
    """``data`` as part files cut at ``cuts`` (empty parts where two cuts are equal)."""
    bounds = [0, *cuts, len(data)]
    paths = []
    for i, (a, b) in enumerate(zip(bounds, bounds[1:])):
        p = where / f"b.airgap.tar.{i:03d}"
        p.write_bytes(data[a:b])
        paths.append(p)
    return paths


MEMBERS = {f"blobs/sha256/{i:064x}": bytes([i]) * (700 * i + 1) for i in range(1, 40)}


@pytest.mark.parametrize(
    "cuts",
    [
        [],
        [1000],
        [1000, 1000, 1000],  # empty parts in the middle
        [512 + 100, 20_000, 20_001],  # inside the first member's content, then 1-byte part
        list(range(3000, 600_000, 7001)),  # every member of size > 7 KB spans parts
    ],
)
def test_small_members_read_in_place_match_the_streamed_bytes(
    tmp_path: Path, cuts: list[int]
) -> None:
    data = _tar(MEMBERS)
    cuts = [c for c in cuts if c < len(data)]
    with TarBundle(tmp_path / "b.airgap.tar", _split(data, cuts, tmp_path)) as b:
        for name, content in MEMBERS.items():
            assert b.read_small(name) == content
            assert b.hash_member(name) == (hashlib.sha256(content).hexdigest(), len(content))
            with b.open_fresh(name) as fh:
                assert fh.read() == content


def test_a_member_spanning_two_parts_is_hashed_by_pread(tmp_path: Path) -> None:
    data = _tar(MEMBERS)
    m_at = data.index(MEMBERS["blobs/sha256/" + f"{5:064x}"])
    parts = _split(data, [m_at + 10], tmp_path)
    with TarBundle(tmp_path / "b.airgap.tar", parts) as b:
        name = "blobs/sha256/" + f"{5:064x}"
        m = b.members()[name]
        assert m.offset < b._raw.starts[1] < m.offset + m.size  # it does span the cut
        want = MEMBERS[name]
        assert b.hash_member(name) == (hashlib.sha256(want).hexdigest(), len(want))


def test_a_large_member_is_streamed_and_a_shrunk_part_reads_short(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(reader, "SMALL_MEMBER", 1000)
    data = _tar(MEMBERS)
    (part,) = _split(data, [], tmp_path)
    with TarBundle(part, [part]) as b:
        name = "blobs/sha256/" + f"{3:064x}"
        assert b.read_small(name) is None  # 2101 bytes: streamed
        assert b.hash_member(name)[0] == hashlib.sha256(MEMBERS[name]).hexdigest()
        small = "blobs/sha256/" + f"{1:064x}"
        last = list(MEMBERS)[-1]
        b.members()
        with part.open("r+b") as fh:  # the archive shrinks after it was scanned
            fh.truncate(b.members()[last].offset + 5)
        assert b.read_small(small) == MEMBERS[small]
        assert len(b._raw.pread(b.members()[last].offset, 10_000)) == 5


def test_concat_reads_find_their_part_at_each_boundary(tmp_path: Path) -> None:
    data = bytes(range(256)) * 40
    parts = _split(data, [0, 100, 100, 5000, len(data)], tmp_path)
    with ConcatFile(parts) as raw:
        for at in (0, 99, 100, 101, 4999, 5000, len(data) - 1):
            raw.seek(at)
            assert raw.read(300) == data[at : at + 300]
            assert raw.pread(at, 300) == data[at : at + 300]
        assert raw.pread(len(data), 10) == b""


NAMES = list(MEMBERS)


@pytest.mark.parametrize(
    ("order", "small_member", "run_bytes"),
    [
        (NAMES, 1024 * 1024, 4 * 1024 * 1024),  # every member in one run
        (NAMES[::-1], 1024 * 1024, 4 * 1024 * 1024),  # backwards: one read each
        (NAMES[::3] + NAMES[1::3], 1024 * 1024, 4 * 1024 * 1024),  # gaps of two members
        (NAMES, 10_000, 4 * 1024 * 1024),  # the large ones streamed between runs
        (NAMES, 1024 * 1024, 30_000),  # runs cut by their size
        (NAMES[:1], 1024 * 1024, 1),  # a run of one
        ([], 1024 * 1024, 4 * 1024 * 1024),
    ],
    ids=["in-order", "backwards", "every-third", "large-between", "short-runs", "one", "none"],
)
@pytest.mark.parametrize("cuts", [[], list(range(3000, 600_000, 7001))], ids=["one-part", "parts"])
def test_members_read_in_runs_give_each_members_own_digest(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    order: list[str],
    small_member: int,
    run_bytes: int,
    cuts: list[int],
) -> None:
    monkeypatch.setattr(reader, "SMALL_MEMBER", small_member)
    monkeypatch.setattr(reader, "RUN_BYTES", run_bytes)
    data = _tar(MEMBERS)
    parts = _split(data, [c for c in cuts if c < len(data)], tmp_path)
    with TarBundle(tmp_path / "b.airgap.tar", parts) as b:
        want = [(n, hashlib.sha256(MEMBERS[n]).hexdigest(), len(MEMBERS[n])) for n in order]
        assert list(b.hash_members(order)) == want


def test_a_run_over_a_shrunk_archive_hashes_what_it_holds(tmp_path: Path) -> None:
    data = _tar(MEMBERS)
    (part,) = _split(data, [], tmp_path)
    with TarBundle(part, [part]) as b:
        last = NAMES[-1]
        b.members()
        with part.open("r+b") as fh:  # the archive shrinks after it was scanned
            fh.truncate(b.members()[last].offset + 5)
        got = {n: (h, size) for n, h, size in b.hash_members(NAMES)}
        assert got[last] == (hashlib.sha256(MEMBERS[last][:5]).hexdigest(), 5)  # short: named
        first = MEMBERS[NAMES[0]]
        assert got[NAMES[0]] == (hashlib.sha256(first).hexdigest(), len(first))
