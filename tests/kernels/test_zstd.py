"""The pure-Python Zstandard and LZ4 decoders, against the real zstd and lz4 tools."""

from __future__ import annotations

import random
import shutil
import subprocess
from pathlib import Path

import pytest

from packager.kernels import lz4, zstd
from tests.kernels.support import FIXTURES
from tests.support.services import unavailable


def _inputs() -> dict[str, bytes]:
    rng = random.Random(7)
    return {
        "empty": b"",
        "one-byte": b"a",
        "repeats": b"hello world " * 2000,
        "random": rng.randbytes(5000),
        "dna": bytes(rng.choice(b"ACGT") for _ in range(200_000)),
        "cubin": (FIXTURES / "sm90.cubin").read_bytes() * 3,
        "library": (FIXTURES / "libvadd.so").read_bytes(),
        "ptx": (FIXTURES / "compute80.ptx").read_bytes() * 20,
    }


INPUTS = _inputs()
LEVELS = ["-1", "-3", "-9", "-19", "--ultra -22", "--fast=3", "-6 --long=20"]


@pytest.fixture(scope="module")
def zstd_cli() -> str:
    tool = shutil.which("zstd")
    if tool is None:
        unavailable("the zstd tool is not installed (scripts/services.sh installs it)")
    return tool


@pytest.mark.parametrize("level", LEVELS)
@pytest.mark.parametrize("checksum", ["-C", "--no-check"])
def test_zstd_matches_the_reference_tool(
    tmp_path: Path, zstd_cli: str, level: str, checksum: str
) -> None:
    for name, data in INPUTS.items():
        src = tmp_path / name
        src.write_bytes(data)
        subprocess.run(
            [zstd_cli, "-q", "-f", *level.split(), checksum, str(src), "-o", f"{src}.zst"],
            check=True,
        )
        packed = Path(f"{src}.zst").read_bytes()
        assert zstd.decompress(packed, len(data) + 1) == data, (name, level)


def test_zstd_several_frames_and_skippable_frames(tmp_path: Path, zstd_cli: str) -> None:
    parts = []
    for i, data in enumerate([b"first " * 100, b"second " * 50]):
        (tmp_path / f"p{i}").write_bytes(data)
        subprocess.run(
            [zstd_cli, "-q", "-f", str(tmp_path / f"p{i}"), "-o", str(tmp_path / f"p{i}.zst")],
            check=True,
        )
        parts.append((tmp_path / f"p{i}.zst").read_bytes())
    skippable = (0x184D2A50).to_bytes(4, "little") + (3).to_bytes(4, "little") + b"xyz"
    assert (
        zstd.decompress(parts[0] + skippable + parts[1], 10_000)
        == b"first " * 100 + b"second " * 50
    )


def test_xxh64_known_values() -> None:
    assert zstd.xxh64(b"") == 0xEF46DB3751D8E999
    assert zstd.xxh64(b"a") == 0xD24EC4F1A98C6E5B
    assert zstd.xxh64(b"abc") == 0x44BC2CF5AD770999


def _frame(tmp_path: Path, data: bytes, *args: str) -> bytes:
    tool = shutil.which("zstd")
    if tool is None:
        unavailable("the zstd tool is not installed (scripts/services.sh installs it)")
    (tmp_path / "in").write_bytes(data)
    subprocess.run(
        [tool, "-q", "-f", *args, str(tmp_path / "in"), "-o", str(tmp_path / "in.zst")], check=True
    )
    return (tmp_path / "in.zst").read_bytes()


def test_zstd_refuses_damage(tmp_path: Path) -> None:
    data = INPUTS["ptx"]
    frame = _frame(tmp_path, data, "-C", "-19")
    with pytest.raises(zstd.ZstdError, match="not a Zstandard frame"):
        zstd.decompress(b"\x00" + frame, len(data))
    with pytest.raises(zstd.ZstdError, match="above the limit"):
        zstd.decompress(frame, len(data) - 1)
    with pytest.raises(zstd.ZstdError):
        zstd.decompress(frame[: len(frame) // 2], len(data))
    damaged = bytearray(frame)
    damaged[-2] ^= 0xFF  # in the checksum
    with pytest.raises(zstd.ZstdError, match="checksum"):
        zstd.decompress(bytes(damaged), len(data))
    rng = random.Random(3)
    for _ in range(200):  # random damage: a ZstdError or (rarely) other bytes, never a crash
        d = bytearray(frame)
        d[rng.randrange(6, len(d))] = rng.randrange(256)
        try:
            out = zstd.decompress(bytes(d), len(data))
        except zstd.ZstdError:
            continue
        assert len(out) == len(data)


def test_zstd_frame_content_size() -> None:
    fatbin = (FIXTURES / "two.fatbin").read_bytes()
    pos = fatbin.find(b"\x28\xb5\x2f\xfd")
    assert zstd.frame_content_size(fatbin[pos:]) == len((FIXTURES / "sm80.cubin").read_bytes())


# ----------------------------------------------------------------------------- LZ4


def test_lz4_hand_made_blocks() -> None:
    # "abc" literal, then a 9-byte match at offset 3 (overlapping copy), then "xyz"
    block = bytes([0x35]) + b"abc" + (3).to_bytes(2, "little") + bytes([0x30]) + b"xyz"
    assert lz4.decompress_block(block, 15) == b"abcabcabcabcxyz"
    long_lit = bytes([0xF0, 255, 5]) + b"L" * 275
    assert lz4.decompress_block(long_lit, 275) == b"L" * 275


@pytest.mark.parametrize(
    ("block", "size", "says"),
    [
        (b"", 1, "empty"),
        (bytes([0x50]) + b"ab", 5, "literals run past"),
        (bytes([0x10]) + b"a" + (5).to_bytes(2, "little"), 10, "outside the decoded data"),
        (bytes([0x30]) + b"abc", 2, "more than the declared"),
        (bytes([0x30]) + b"abc", 4, "not the declared 4"),
        (bytes([0x30]) + b"abc" + b"\x01", 3, "bytes after the end"),
    ],
)
def test_lz4_refuses_damage(block: bytes, size: int, says: str) -> None:
    with pytest.raises(lz4.Lz4Error, match=says):
        lz4.decompress_block(block, size)
