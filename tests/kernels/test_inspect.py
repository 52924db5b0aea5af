"""What inspection reads from real binaries: ELF flags, fatbin entries, PTX, host libraries."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import pytest

from packager.compat.cuda import CudaArch
from packager.kernels import cubin, fatbin
from packager.kernels.inspection import inspect_bytes, inspect_file
from tests.support.cli import cli
from tests.support.reports import report_problem

VADD_PARAMS = (8, 8, 8, 4)  # const float*, const float*, float*, int
KERNELS = ["_Z4axpyfPKfPfi", "scale", "vadd"]


# ----------------------------------------------------------------------------- cubins


def test_cuda13_cubin_header_is_the_v2_layout(kernel_bins: Path) -> None:
    data = (kernel_bins / "sm80.cubin").read_bytes()
    assert data[7] == 0x41 and data[8] == 8  # EI_OSABI, EI_ABIVERSION of CUDA 13
    (e_flags,) = struct.unpack_from("<I", data, 48)
    assert e_flags == 0x06005004  # SM 0x50 in bits 8..15
    c = cubin.read_cubin(data, "sm80.cubin")
    assert (str(c.arch), c.layout, c.abi_version) == ("sm_80", "v2", 8)


@pytest.mark.parametrize(
    ("abi", "flags", "arch"),
    [
        # CUDA 11/12 (ABI version 7): SM in the low byte, 0x800 the arch-specific bit
        (7, 0x00500550, "sm_80"),
        (7, 0x00560556, "sm_86"),
        (7, 0x005A0D5A, "sm_90a"),
        (7, 0x005A055A, "sm_90"),
        (7, 0x004B054B, "sm_75"),
        # CUDA 13 (ABI version 8): SM in bits 8..15, bit 3 the arch-specific bit
        (8, 0x06005A04, "sm_90"),
        (8, 0x0600640A, "sm_100a"),
        (8, 0x06007802, "sm_120"),
        (8, 0x06006702, "sm_103"),
    ],
)
def test_e_flags_both_layouts(abi: int, flags: int, arch: str) -> None:
    f = cubin.decode_e_flags(abi, flags)
    assert str(cubin.sm_arch(f.sm, suffix="a" if f.arch_specific else "")) == arch


def test_an_old_layout_cubin_reads_as_its_sm(kernel_bins: Path) -> None:
    """A CUDA 13 cubin rewritten to the ABI-7 header CUDA 12 wrote for sm_90a."""
    data = bytearray((kernel_bins / "sm90.cubin").read_bytes())
    data[7], data[8] = 0x33, 7
    struct.pack_into("<I", data, 48, 0x005A0D5A)
    info = inspect_bytes(bytes(data), "old.cubin")
    assert [str(a) for a in info.archs()] == ["sm_90a"]
    assert info.images[0].detail["e_flags_layout"] == "v1"


def test_sm90a_is_read_from_nv_compat(kernel_bins: Path) -> None:
    """CUDA 13 writes the same e_flags for sm_90 and sm_90a; .nv.compat attribute 9 differs."""
    plain, arch_specific = (
        (kernel_bins / "sm90.cubin").read_bytes(),
        (kernel_bins / "sm90a.cubin").read_bytes(),
    )
    assert plain[48:52] == arch_specific[48:52]
    assert str(cubin.read_cubin(plain, "a").arch) == "sm_90"
    assert str(cubin.read_cubin(arch_specific, "b").arch) == "sm_90a"


@pytest.mark.parametrize("sm", ["100", "100a", "100f", "120"])
def test_blackwell_cubins(nvcc_bins: Path, sm: str) -> None:
    """sm_100, sm_100a and sm_100f share e_flags 0x06006402: .nv.compat and the ptxas line tell."""
    data = (nvcc_bins / f"sm{sm}.cubin").read_bytes()
    c = cubin.read_cubin(data, sm)
    assert str(c.arch) == f"sm_{sm}"
    assert c.e_flags == (0x06007802 if sm == "120" else 0x06006402)


def test_cubin_kernels_and_parameter_sizes(kernel_bins: Path) -> None:
    info = inspect_file(kernel_bins / "sm90.cubin")
    assert info.format == "cubin"
    assert info.kernels() == KERNELS
    assert info.params_of("vadd") == VADD_PARAMS
    assert info.params_of("scale") == (8, 4, 4)
    assert info.params_of("_Z4axpyfPKfPfi") == (4, 8, 8, 4)


def test_a_host_elf_is_not_a_cubin() -> None:
    with pytest.raises(Exception, match="not a cubin"):
        cubin.read_cubin(Path("/bin/ls").read_bytes(), "/bin/ls")


# ----------------------------------------------------------------------------- PTX


def test_ptx_text(kernel_bins: Path) -> None:
    info = inspect_file(kernel_bins / "compute80.ptx")
    (img,) = info.images
    assert (info.format, img.kind, str(img.arch)) == ("ptx", "ptx", "compute_80")
    assert img.detail["ptx_isa"] == "9.0" and img.detail["target"] == "sm_80"
    assert info.kernels() == KERNELS
    assert info.params_of("vadd") == VADD_PARAMS
    assert info.params_of("_Z4axpyfPKfPfi") == (4, 8, 8, 4)


def test_ptx_targets_with_suffixes() -> None:
    text = b".version 8.5\n.target sm_90a\n.address_size 64\n.visible .entry k(\n.param .u64 k_0\n)\n{\nret;\n}\n"
    info = inspect_bytes(text, "k.ptx")
    assert str(info.images[0].arch) == "compute_90a" and info.kernels() == ["k"]
    text = text.replace(b"sm_90a", b"sm_52, debug")
    assert str(inspect_bytes(text, "k.ptx").images[0].arch) == "compute_52"


# ----------------------------------------------------------------------------- fatbins


def test_fatbin_entries_zstd(kernel_bins: Path) -> None:
    info = inspect_file(kernel_bins / "two.fatbin")
    assert info.format == "fatbin" and info.ok
    assert [(i.kind, str(i.arch), i.compression) for i in info.images] == [
        ("elf", "sm_80", "zstd"),
        ("elf", "sm_90", "zstd"),
        ("ptx", "compute_90", "zstd"),
    ]
    assert all(i.kernels is not None and "vadd" in i.kernels for i in info.images)
    assert info.images[2].detail["ptx_isa"] == "9.0"
    assert info.containers == ({"offset": 0, "size": info.size, "version": 1, "entries": 3},)


def test_fatbin_entries_lz4(kernel_bins: Path) -> None:
    info = inspect_file(kernel_bins / "two_lz4.fatbin")
    assert [(i.kind, str(i.arch), i.compression) for i in info.images] == [
        ("elf", "sm_80", "lz4"),
        ("elf", "sm_90", "lz4"),
        ("ptx", "compute_90", "lz4"),
    ]
    assert info.kernels() == KERNELS and info.ok


def test_decompressed_entries_are_the_uncompressed_build(nvcc_bins: Path) -> None:
    """zstd and LZ4 payloads decode to exactly the bytes of the uncompressed fatbin's entries."""

    def payloads(name: str) -> list[bytes]:
        data = (nvcc_bins / name).read_bytes()
        (fb,) = fatbin.parse_fatbins(data, 0, len(data), name)
        # PTX: the uncompressed payload keeps its NUL terminator and padding, decompressed not
        return [
            e.payload(data) if e.kind == fatbin.KIND_ELF else e.payload(data).rstrip(b"\0")
            for e in fb.entries
        ]

    raw = payloads("two_raw.fatbin")
    assert payloads("two.fatbin") == raw
    assert payloads("two_lz4.fatbin") == raw
    assert payloads("two_default.fatbin") == raw
    assert raw[0] == (nvcc_bins / "sm80.cubin").read_bytes()


def test_fatbin_arch_specific_flag(nvcc_bins: Path) -> None:
    info = inspect_file(nvcc_bins / "sm90a.fatbin")
    assert [str(i.arch) for i in info.images] == ["sm_90a", "compute_90a"]
    flags = [int(i.detail["flags"], 16) for i in info.images]
    assert all(f & fatbin.FLAG_ARCH_SPECIFIC for f in flags)


def test_fatbin_header_fields(kernel_bins: Path) -> None:
    data = (kernel_bins / "two.fatbin").read_bytes()
    magic, version, hsize, size = struct.unpack_from("<IHHQ", data, 0)
    assert (magic, version, hsize, size + hsize) == (0xBA55ED50, 1, 16, len(data))
    (fb,) = fatbin.parse_fatbins(data, 0, len(data), "two.fatbin")
    e = fb.entries[0]
    assert (e.kind, e.arch_number, e.header_size) == (fatbin.KIND_ELF, 80, 64)
    assert e.flags & fatbin.FLAG_COMPRESS_ZSTD and e.flags & fatbin.FLAG_64BIT
    assert 0 < e.compressed_size <= e.payload_size and e.decompressed_size > e.compressed_size


# ----------------------------------------------------------------------------- host ELF


def test_fatbin_inside_a_shared_library(kernel_bins: Path) -> None:
    info = inspect_file(kernel_bins / "libvadd.so", "cuda-so")
    assert info.format == "host-elf" and info.host == "x86-64 shared library"
    assert [str(a) for a in info.archs()] == ["sm_80", "sm_90", "compute_90"]
    assert info.kernels() == KERNELS


def test_static_runtime_library_has_two_fatbins(nvcc_bins: Path) -> None:
    info = inspect_file(nvcc_bins / "libvadd_cudart.so")
    assert len(info.containers) == 2
    ours = [i for i in info.images if i.kernels]
    assert {str(i.arch) for i in ours} == {"sm_80", "sm_90", "compute_90"}
    assert info.images_with("vadd") == ours


def test_host_object_found_by_magic_without_sections(kernel_bins: Path) -> None:
    """Section headers gone (as some packers leave a library): the fatbin is found by its magic."""
    data = bytearray((kernel_bins / "libvadd.so").read_bytes())
    struct.pack_into("<Q", data, 0x28, 0)  # e_shoff
    struct.pack_into("<H", data, 0x3C, 0)  # e_shnum
    info = inspect_bytes(bytes(data), "stripped.so")
    assert info.kernels() == KERNELS
    assert any("by their magic" in n for n in info.notes)


# ----------------------------------------------------------------------------- output


def test_json_and_text(kernel_bins: Path) -> None:
    info = inspect_file(kernel_bins / "two.fatbin")
    doc = info.to_json()
    json.dumps(doc)
    assert doc["sass"] == ["sm_80", "sm_90"] and doc["ptx"] == ["compute_90"]
    assert doc["kernels"] == KERNELS and doc["ok"] is True
    assert doc["images"][0]["params"]["vadd"] == list(VADD_PARAMS)
    text = info.render_text()
    assert "SASS (cubins): sm_80, sm_90" in text and "PTX (JIT):     compute_90" in text
    assert "zstd -> " in text


@pytest.mark.parametrize(
    "name",
    ["sm80.cubin", "sm90a.cubin", "compute80.ptx", "two.fatbin", "two_lz4.fatbin", "libvadd.so"],
)
def test_kernel_inspect_json_keeps_its_report_schema(kernel_bins: Path, name: str) -> None:
    """`airgap kernels inspect FILE --json` by the CLI (schemas/kernel-report, checked by
    tests.support.cli): each real binary reads whole, and a report without its archs fails."""
    r = cli("kernels", "inspect", str(kernel_bins / name), "--json")
    doc = json.loads(r.stdout)
    assert r.returncode == 0 and doc["ok"] is True and doc["sass"] + doc["ptx"], r.stderr
    broken = json.dumps({k: v for k, v in doc.items() if k != "sass"})
    assert "'sass' is a required" in (
        report_problem(["kernels", "inspect", "--json"], broken) or ""
    )


def test_arch_ordering_and_equality() -> None:
    from packager.kernels.inspection import _sorted_archs

    archs = [CudaArch.parse(t) for t in ("compute_90", "sm_90a", "sm_80", "sm_100", "sm_90")]
    assert [str(a) for a in _sorted_archs(archs)] == [
        "sm_80",
        "sm_90",
        "sm_90a",
        "sm_100",
        "compute_90",
    ]
