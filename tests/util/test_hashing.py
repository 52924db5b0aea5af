"""packager.util.hashing: many files hashed at once, small ones in the calling thread."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from packager.errors import InputError
from packager.util.hashing import SERIAL_MAX, FileDigest, sha256_files


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
        heads={p: (3, lambda b, p=p: heads.__setitem__(p, b)) for p in paths[:4]},
        sizes={p: len(files[p]) for p in paths} if with_sizes else None,
    )
    assert list(got) == paths
    for p, data in files.items():
        assert got[p] == FileDigest(hashlib.sha256(data).hexdigest(), len(data))
    assert sum(seen) == sum(len(d) for d in files.values())
    assert heads == {p: files[p][:3] for p in paths[:4]}


def test_a_small_file_that_cannot_be_read_is_named(files: dict[Path, bytes]) -> None:
    gone = next(iter(files))
    gone.unlink()
    with pytest.raises(InputError, match="cannot read") as exc:
        sha256_files(list(files), sizes={p: len(d) for p, d in files.items()})
    assert str(gone) in exc.value.message
