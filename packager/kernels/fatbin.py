"""Fatbin containers (magic 0xBA55ED50) and the entries they hold.

Layout, read from the bytes nvcc 13.0 writes (and matching public reverse engineering of older
releases); all fields little-endian:

Container header, 16 bytes::

    0  u32 magic 0xBA55ED50     4  u16 version (1)     6  u16 header size (16)
    8  u64 size of the entries that follow the header

Entry header (64 bytes; 72 with an object name, 80 for PTX, 112 with a .nv.compat copy)::

    0  u16 kind: 1 PTX, 2 ELF (cubin), 8 LTO IR
    2  u16 version (0x0101)     4  u32 header size     8  u64 payload size (padded)
    16 u32 compressed size (0 when not compressed)
    20 u32 (64 for PTX)         24 u16 minor, 26 u16 major (PTX ISA 9.0 for PTX; 1.8 for ELF)
    28 u32 SM arch (80, 90, 100, ...)
    32 u32 object name offset   36 u32 object name length (``-G`` builds: "vadd.cu")
    40 u64 flags                48 u64 (0)
    56 u64 decompressed size (0 when not compressed)

Flags seen: 0x1 64-bit, 0x2 debug (-G), 0x10 Linux host, 0x2000 LZ4-compressed payload (CUDA
11/12 ``-compress-all``; CUDA 13 ``-compress-mode=speed``), 0x8000 Zstandard-compressed payload
(CUDA 13's default for PTX and for everything with ``-compress-all``), 0x100000 arch-specific
(``sm_90a``/``compute_90a``), 0x200000 family-specific (``sm_100f``), 0x10000 on LTO IR entries
(payload is neither zstd nor LZ4: reported as opaque). The payload follows the entry header; the
next entry follows the payload. Several containers may follow one another (a host library's
``.nv_fatbin`` section holds one per translation unit, 8-byte aligned).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from packager.compat.cuda import CudaArch
from packager.kernels import lz4, zstd
from packager.kernels.cubin import sm_arch
from packager.kernels.errors import KernelFormatError

FATBIN_MAGIC = 0xBA55ED50
MAGIC_BYTES = struct.pack("<I", FATBIN_MAGIC)
HEADER_SIZE = 16
ENTRY_MIN_HEADER = 64
ENTRY_MAX_HEADER = 4096

KIND_PTX, KIND_ELF, KIND_LTO = 1, 2, 8
KIND_NAMES = {KIND_PTX: "ptx", KIND_ELF: "elf", KIND_LTO: "lto-ir"}

FLAG_64BIT = 0x1
FLAG_DEBUG = 0x2
FLAG_LINUX = 0x10
FLAG_COMPRESS_LZ4 = 0x2000
FLAG_COMPRESS_ZSTD = 0x8000
FLAG_OPAQUE = 0x10000
FLAG_ARCH_SPECIFIC = 0x100000
FLAG_FAMILY_SPECIFIC = 0x200000

#: a decompressed payload larger than this is refused (a kernel image of 1 GiB is not one)
MAX_DECOMPRESSED = 1 << 30


@dataclass(frozen=True)
class FatbinEntry:
    index: int  # 0-based within its container
    offset: int  # of the entry header, in the file
    kind: int
    arch_number: int  # 80, 90, 100 ...
    flags: int
    header_size: int
    payload_offset: int
    payload_size: int
    compressed_size: int
    decompressed_size: int
    object_name: str | None
    isa_version: str | None  # the PTX ISA version for PTX entries ("9.0")

    @property
    def kind_name(self) -> str:
        return KIND_NAMES.get(self.kind, f"kind {self.kind}")

    @property
    def compression(self) -> str | None:
        if self.flags & FLAG_OPAQUE:
            return "opaque"
        if self.flags & FLAG_COMPRESS_ZSTD:
            return "zstd"
        if self.flags & FLAG_COMPRESS_LZ4:
            return "lz4"
        return None

    @property
    def arch(self) -> CudaArch | None:
        """sm_90 / compute_90a ...: what this entry can run as (None for LTO IR and unknowns)."""
        if self.kind not in (KIND_PTX, KIND_ELF) or self.arch_number < 10:
            return None
        suffix = ""
        if self.flags & FLAG_ARCH_SPECIFIC:
            suffix = "a"
        elif self.flags & FLAG_FAMILY_SPECIFIC:
            suffix = "f"
        return sm_arch(self.arch_number, ptx=self.kind == KIND_PTX, suffix=suffix)

    def describe(self) -> str:
        """``entry #2 (ptx compute_90, zstd-compressed)``"""
        arch = str(self.arch) if self.arch else f"arch {self.arch_number}"
        comp = f", {self.compression}-compressed" if self.compression else ""
        return f"entry #{self.index} ({self.kind_name} {arch}{comp})"

    def size_problem(self) -> str | None:
        """Why the declared sizes of a compressed entry cannot be right, or None."""
        if self.compression in (None, "opaque"):
            return None
        if self.compressed_size == 0:
            return "it is flagged compressed but declares a compressed size of 0"
        if self.compressed_size > self.payload_size:
            return (
                f"its compressed size ({self.compressed_size} bytes) is larger than its payload "
                f"({self.payload_size} bytes)"
            )
        if self.decompressed_size == 0:
            return "it is flagged compressed but declares a decompressed size of 0"
        if self.decompressed_size > MAX_DECOMPRESSED:
            return f"it declares {self.decompressed_size} decompressed bytes, above the 1 GiB limit"
        return None

    def payload(self, data: bytes) -> bytes:
        """The entry's image (decompressed); raises KernelFormatError when it cannot be had."""
        raw = data[self.payload_offset : self.payload_offset + self.payload_size]
        comp = self.compression
        if comp is None:
            return raw
        if comp == "opaque":
            raise KernelFormatError(f"{self.describe()}: payload in a form airgap does not decode")
        problem = self.size_problem()
        if problem:
            raise KernelFormatError(f"{self.describe()}: {problem}")
        packed = raw[: self.compressed_size]
        try:
            if comp == "zstd":
                declared = zstd.frame_content_size(packed)
                if declared is not None and declared != self.decompressed_size:
                    raise zstd.ZstdError(
                        f"its zstd frame declares {declared} bytes, the entry {self.decompressed_size}"
                    )
                out = zstd.decompress(packed, self.decompressed_size)
            else:
                out = lz4.decompress_block(packed, self.decompressed_size)
        except (zstd.ZstdError, lz4.Lz4Error) as exc:
            raise KernelFormatError(
                f"{self.describe()}: the payload does not decompress: {exc}",
                hint="the file is damaged: rebuild or copy it again",
            ) from exc
        if len(out) != self.decompressed_size:
            raise KernelFormatError(
                f"{self.describe()}: decompresses to {len(out)} bytes, "
                f"not the declared {self.decompressed_size}"
            )
        return out


@dataclass(frozen=True)
class Fatbin:
    offset: int  # in the file
    version: int
    header_size: int
    size: int  # header + entries
    entries: tuple[FatbinEntry, ...]


def find_magic(data: bytes, start: int = 0, end: int | None = None) -> list[int]:
    """Offsets of the fatbin magic in ``data[start:end]``, 8-byte aligned ones only."""
    stop = len(data) if end is None else end
    out = []
    pos = data.find(MAGIC_BYTES, start, stop)
    while pos >= 0:
        if pos % 8 == 0:
            out.append(pos)
        pos = data.find(MAGIC_BYTES, pos + 1, stop)
    return out


def parse_fatbin(data: bytes, offset: int, name: str, limit: int | None = None) -> Fatbin:
    """The container at ``offset``; ``limit`` is where the region holding it ends."""
    end_of_region = len(data) if limit is None else limit
    if offset + HEADER_SIZE > end_of_region:
        raise KernelFormatError(
            f"{name}: a fatbin header needs {HEADER_SIZE} bytes at byte {offset}, "
            f"only {max(end_of_region - offset, 0)} are there: the file is truncated",
            hint="copy the kernel file again from where it was built",
        )
    magic, version, hsize, fsize = struct.unpack_from("<IHHQ", data, offset)
    if magic != FATBIN_MAGIC:
        raise KernelFormatError(f"{name}: no fatbin magic 0xBA55ED50 at byte {offset}")
    if hsize < HEADER_SIZE or hsize > ENTRY_MAX_HEADER:
        raise KernelFormatError(f"{name}: fatbin at byte {offset} has a header size of {hsize}")
    end = offset + hsize + fsize
    if end > end_of_region:
        raise KernelFormatError(
            f"{name}: the fatbin at byte {offset} declares {fsize} bytes of entries, but only "
            f"{max(end_of_region - offset - hsize, 0)} follow its header: the file is truncated",
            hint="copy the kernel file again from where it was built",
        )
    entries: list[FatbinEntry] = []
    pos = offset + hsize
    while pos < end:
        if end - pos < 16 and not any(data[pos:end]):
            break  # zero padding at the end of the container
        where = f"{name}: fatbin entry #{len(entries)} at byte {pos}"
        if pos + ENTRY_MIN_HEADER > end:
            raise KernelFormatError(f"{where}: its header runs past the container's end ({end})")
        kind, _ever, ehsize, psize = struct.unpack_from("<HHIQ", data, pos)
        if ehsize < ENTRY_MIN_HEADER or ehsize > ENTRY_MAX_HEADER:
            raise KernelFormatError(f"{where}: header size {ehsize} (expected 64..4096)")
        if pos + ehsize + psize > end:
            raise KernelFormatError(
                f"{where}: its {psize}-byte payload runs past the container's end: "
                "the file is truncated or damaged",
                hint="copy the kernel file again from where it was built",
            )
        csize, _x, minor, major, arch, name_off, name_len, flags, _z, dsize = struct.unpack_from(
            "<IIHHIIIQQQ", data, pos + 16
        )
        obj = None
        if name_len and name_off >= 64 and name_off + name_len <= ehsize:
            obj = (
                data[pos + name_off : pos + name_off + name_len]
                .rstrip(b"\0")
                .decode("utf-8", "replace")
            )
        entries.append(
            FatbinEntry(
                index=len(entries),
                offset=pos,
                kind=kind,
                arch_number=arch,
                flags=flags,
                header_size=ehsize,
                payload_offset=pos + ehsize,
                payload_size=psize,
                compressed_size=csize,
                decompressed_size=dsize,
                object_name=obj,
                isa_version=f"{major}.{minor}" if kind == KIND_PTX else None,
            )
        )
        pos += ehsize + psize
    if not entries:
        raise KernelFormatError(f"{name}: the fatbin at byte {offset} holds no entries")
    return Fatbin(offset, version, hsize, end - offset, tuple(entries))


def parse_fatbins(data: bytes, start: int, end: int, name: str) -> list[Fatbin]:
    """Every container in ``data[start:end]``, one after another (8-byte aligned)."""
    out: list[Fatbin] = []
    pos = start
    while pos < end:
        if end - pos < 4:
            break
        if data[pos : pos + 4] != MAGIC_BYTES:
            if data[pos] == 0:  # alignment padding between containers
                pos += 1
                continue
            raise KernelFormatError(
                f"{name}: bytes at {pos} inside the fatbin region are not a fatbin header"
            )
        fb = parse_fatbin(data, pos, name, end)
        out.append(fb)
        pos = fb.offset + fb.size
    return out
