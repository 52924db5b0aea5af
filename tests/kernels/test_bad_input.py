"""Damaged and wrong files: each ends in a clear error naming the file and what was wrong."""

from __future__ import annotations

import contextlib
import random
import struct
from pathlib import Path

import pytest

from packager.errors import InputError
from packager.kernels import fatbin
from packager.kernels.errors import KernelFormatError
from packager.kernels.inspection import inspect_bytes, inspect_file
from tests.kernels.support import FIXTURES, findings, manifest, run, show

PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x02\x00\x00\x00"


def entries(data: bytes) -> list[fatbin.FatbinEntry]:
    (fb,) = fatbin.parse_fatbins(data, 0, len(data), "x")
    return list(fb.entries)


# ----------------------------------------------------------------------------- not CUDA at all


def test_kernel_format_error_is_an_input_error() -> None:
    assert issubclass(KernelFormatError, InputError) and KernelFormatError.exit_code == 2


@pytest.mark.parametrize(
    ("data", "says"),
    [
        (PNG, "it is a PNG image"),
        (b"PK\x03\x04" + b"\0" * 40, "zip archive"),
        (b"hello, world\n" * 4, "it is text, but not PTX"),
        (b"\x00\x01\x02\x03" * 8, "it starts with bytes 00 01 02 03"),
    ],
)
def test_non_cuda_file_declared_as_a_fatbin(tmp_path: Path, data: bytes, says: str) -> None:
    p = tmp_path / "k.fatbin"
    p.write_bytes(data)
    with pytest.raises(KernelFormatError) as exc:
        inspect_file(p, "cuda-fatbin")
    msg = str(exc.value)
    assert (
        str(p) in msg and "declared as cuda-fatbin" in msg and says in msg and "0xBA55ED50" in msg
    )
    assert exc.value.hint


def test_host_binary_without_cuda_declared_as_a_fatbin() -> None:
    with pytest.raises(
        KernelFormatError, match=r"/bin/ls: a x86-64 .*declared as cuda-fatbin with no CUDA code"
    ):
        inspect_file("/bin/ls", "cuda-fatbin")


def test_empty_file(tmp_path: Path) -> None:
    (tmp_path / "e").write_bytes(b"")
    with pytest.raises(KernelFormatError, match="is empty"):
        inspect_file(tmp_path / "e")


def test_a_folder_or_missing_file(tmp_path: Path) -> None:
    with pytest.raises(KernelFormatError, match="not a regular file"):
        inspect_file(tmp_path)
    with pytest.raises(KernelFormatError, match="cannot read it"):
        inspect_file(tmp_path / "nope.fatbin")


# ----------------------------------------------------------------------------- truncated


@pytest.mark.parametrize("keep", [8, 40, 1000, -1])
def test_truncated_fatbin(keep: int) -> None:
    data = (FIXTURES / "two.fatbin").read_bytes()
    cut = data[:keep]
    with pytest.raises(KernelFormatError, match="truncated") as exc:
        inspect_bytes(cut, "two.fatbin", "cuda-fatbin")
    assert "two.fatbin" in str(exc.value)


def test_fatbin_declaring_more_than_the_file_holds() -> None:
    data = bytearray((FIXTURES / "two.fatbin").read_bytes())
    struct.pack_into("<Q", data, 8, 1 << 40)
    with pytest.raises(
        KernelFormatError, match=r"declares 1099511627776 bytes of entries, but only \d+ follow"
    ):
        inspect_bytes(bytes(data), "big.fatbin")


def test_entry_payload_past_the_container() -> None:
    data = bytearray((FIXTURES / "two.fatbin").read_bytes())
    struct.pack_into("<Q", data, 16 + 8, 1 << 33)  # entry #0 payload size
    with pytest.raises(
        KernelFormatError, match="entry #0 at byte 16: its 8589934592-byte payload runs past"
    ):
        inspect_bytes(bytes(data), "two.fatbin")


@pytest.mark.parametrize("keep", [30, 64, 3000])
def test_truncated_cubin(keep: int) -> None:
    data = (FIXTURES / "sm90.cubin").read_bytes()[:keep]
    with pytest.raises(KernelFormatError, match=r"past the end of the file|truncated"):
        inspect_bytes(data, "sm90.cubin")


def test_truncated_shared_library() -> None:
    data = (FIXTURES / "libvadd.so").read_bytes()
    with pytest.raises(KernelFormatError, match=r"libvadd\.so"):
        inspect_bytes(data[: len(data) // 2], "libvadd.so")


# ----------------------------------------------------------------------------- compressed entries


@pytest.mark.parametrize("file", ["two.fatbin", "two_lz4.fatbin"])
def test_compressed_entry_that_does_not_decompress(file: str) -> None:
    data = bytearray((FIXTURES / file).read_bytes())
    e = entries(bytes(data))[1]
    start = e.payload_offset + (8 if e.compression == "zstd" else 0)  # zstd: keep the frame header
    data[start : e.payload_offset + e.compressed_size] = b"\xff" * (
        e.payload_offset + e.compressed_size - start
    )
    info = inspect_bytes(bytes(data), file)
    assert not info.ok
    (problem,) = info.problems
    assert (
        f"{file}: fatbin at byte 0, entry #1 (elf sm_90, {e.compression}-compressed)" in problem
        and "does not decompress" in problem
    )
    assert e.compression in problem
    bad = info.images[1]
    assert bad.error and bad.kernels is None and not bad.runs
    assert [str(a) for a in info.archs()] == [
        "sm_80",
        "compute_90",
    ]  # the intact entries still count
    assert "ERROR: " in info.render_text()


def test_zstd_entry_whose_frame_disagrees_with_the_entry() -> None:
    data = bytearray((FIXTURES / "two.fatbin").read_bytes())
    e = entries(bytes(data))[0]
    struct.pack_into("<Q", data, e.offset + 56, e.decompressed_size + 1)  # declared size
    info = inspect_bytes(bytes(data), "two.fatbin")
    (problem,) = info.problems
    assert "does not decompress" in problem
    assert (
        f"frame declares {e.decompressed_size} bytes, the entry {e.decompressed_size + 1}"
        in problem
    )


@pytest.mark.parametrize(
    ("field", "value", "says"),
    [
        (16, 0, "declares a compressed size of 0"),
        (16, 1 << 20, "is larger than its payload"),
        (56, 0, "declares a decompressed size of 0"),
        (56, 1 << 40, "above the 1 GiB limit"),
    ],
)
def test_compressed_entry_with_inconsistent_sizes(field: int, value: int, says: str) -> None:
    data = bytearray((FIXTURES / "two.fatbin").read_bytes())
    e = entries(bytes(data))[2]
    struct.pack_into("<I" if field == 16 else "<Q", data, e.offset + field, value)
    info = inspect_bytes(bytes(data), "two.fatbin")
    (problem,) = info.problems
    assert "entry #2 (ptx compute_90, zstd-compressed)" in problem and says in problem


def test_entry_header_and_cubin_disagree() -> None:
    data = bytearray((FIXTURES / "two.fatbin").read_bytes())
    e = entries(bytes(data))[0]
    struct.pack_into("<I", data, e.offset + 28, 86)
    info = inspect_bytes(bytes(data), "two.fatbin")
    (problem,) = info.problems
    assert "the entry header says sm_86 but its cubin is sm_80" in problem


def test_validate_reports_damage_as_AG405(tmp_path: Path) -> None:
    data = bytearray((FIXTURES / "two.fatbin").read_bytes())
    e = entries(bytes(data))[0]
    data[e.payload_offset + 8 : e.payload_offset + e.compressed_size] = bytes(e.compressed_size - 8)
    r = run(
        manifest(
            tmp_path,
            [{"name": "v", "kind": "cuda-fatbin", "path": "k.fatbin", "entry": "vadd"}],
            chips=["a100"],
            files={"k.fatbin": bytes(data)},
        )
    )
    (f,) = findings(r, "AG405")
    assert (
        "entry #0 (elf sm_80, zstd-compressed): the payload does not decompress" in f.message
        and f.json_path == "$.kernels[0].path"
    )
    assert not r.valid, show(r)


@pytest.mark.parametrize("kind", ["cuda-fatbin", "cuda-so"])
def test_validate_non_cuda_file(tmp_path: Path, kind: str) -> None:
    r = run(
        manifest(
            tmp_path,
            [{"name": "v", "kind": kind, "path": "k.bin", "entry": "vadd"}],
            files={"k.bin": PNG},
        )
    )
    (f,) = findings(r, "AG405")
    assert f.severity.value == "error" and "PNG" in f.message and f"declared as {kind}" in f.message


# ----------------------------------------------------------------------------- no crash on garbage


@pytest.mark.parametrize(
    "file", ["two.fatbin", "two_lz4.fatbin", "sm80.cubin", "libvadd.so", "compute80.ptx"]
)
def test_mutated_files_never_crash(file: str) -> None:
    """Random byte damage ends in a result or a KernelFormatError, never another exception."""
    original = (FIXTURES / file).read_bytes()
    rng = random.Random(file)
    for _ in range(60):
        data = bytearray(original)
        for _ in range(rng.randint(1, 8)):
            data[rng.randrange(len(data))] = rng.randrange(256)
        if rng.random() < 0.3:
            data = data[: rng.randrange(1, len(data))]
        with contextlib.suppress(KernelFormatError):
            inspect_bytes(bytes(data), file)
