"""packager.util.hashing: many files hashed at once, small ones in the calling thread."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from packager.errors import InputError
from packager.util.hashing import SERIAL_MAX, FileDigest, sha256_file_head, sha256_files


@pytest.fixture
def files(tmp_path: Path) -> dict[Path, bytes]:
    sizes = [0, 1, 2048, SERIAL_MAX, SERIAL_MAX + 1, 3 * 1024 * 1024, 5, 700]
    out = {}
    for i, n in enumerate(sizes):
        p = tmp_path / f"f{i}"
        data = bytes((i * 7 + j) % 251 for j in range(n))
        p.write_bytes(data)
        out[p] = data
    return out


@pytest.mark.parametrize("with_sizes", [False, True])
def test_every_file_gets_its_own_digest_in_the_order_given(
    files: dict[Path, bytes], with_sizes: bool
) -> None:
    paths = list(reversed(files))
    seen: list[int] = []
    heads: dict[Path, bytes] = {}
    got = sha256_files(
        paths,
        progress=seen.append,
        heads={**{p: 3 for p in paths[:4]}, paths[4]: 0},
        on_head=heads.__setitem__,
        sizes={p: len(files[p]) for p in paths} if with_sizes else None,
    )
    assert list(got) == paths
    for p, data in files.items():
        assert got[p] == FileDigest(hashlib.sha256(data).hexdigest(), len(data))
    assert sum(seen) == sum(len(d) for d in files.values())
    assert heads == {**{p: files[p][:3] for p in paths[:4]}, paths[4]: b""}


def test_a_small_file_that_cannot_be_read_is_named(files: dict[Path, bytes]) -> None:
    gone = next(iter(files))
    gone.unlink()
    with pytest.raises(InputError, match="cannot read") as exc:
        sha256_files(list(files), sizes={p: len(d) for p, d in files.items()})
    assert str(gone) in exc.value.message


@pytest.mark.parametrize("stated", [0, 1, 2047, 2048, 2049, 64 * 1024, 5 * 1024 * 1024])
def test_a_stated_size_that_is_out_of_date_still_gives_the_digest_of_every_byte(
    tmp_path: Path, stated: int
) -> None:
    """The size a caller stat'ed only sizes the reads: a file that grew or shrank since is read
    to its end all the same."""
    data = bytes(range(256)) * 8  # 2,048 bytes
    p = tmp_path / "f"
    p.write_bytes(data)
    got, first = sha256_file_head(p, 100, size=stated)
    assert got == FileDigest(hashlib.sha256(data).hexdigest(), len(data))
    assert first == data[:100]


@pytest.mark.parametrize("off", [-2048, -1, 1, 5000])
def test_a_small_file_whose_stated_size_is_out_of_date_is_read_to_its_end(
    tmp_path: Path, off: int
) -> None:
    data = bytes(range(256)) * 8
    files = {tmp_path / f"f{i}": data[: 100 * i] for i in range(1, 6)}
    for p, d in files.items():
        p.write_bytes(d)
    odd = tmp_path / "f3"
    sizes = {p: len(d) for p, d in files.items()} | {odd: max(0, len(files[odd]) + off)}
    heads: dict[Path, bytes] = {}
    got = sha256_files(list(files), sizes=sizes, heads={odd: 10}, on_head=heads.__setitem__)
    assert got == {p: FileDigest(hashlib.sha256(d).hexdigest(), len(d)) for p, d in files.items()}
    assert heads == {odd: files[odd][:10]}
