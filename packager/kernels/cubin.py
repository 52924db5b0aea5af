"""cubins: CUDA ELF images (e_machine EM_CUDA = 190) holding SASS for one SM.

The SM version sits in the ELF header flags, in one of two layouts, chosen by EI_ABIVERSION:

* ABI version 7 (EI_OSABI 0x33; CUDA up to 12.x for sm_90 and older): ``e_flags & 0xff`` is the
  SM (0x50 = sm_80, 0x5a = sm_90), 0x100/0x200 texture modes, 0x400 64-bit addresses, 0x800
  (EF_CUDA_ACCELERATORS_V1) the arch-specific ``a`` variant, bits 16..23 the virtual (PTX) SM.
  Example: an sm_80 cubin of CUDA 11/12 has e_flags 0x00500550, sm_90a 0x005a0d5a.
* ABI version 8 (EI_OSABI 0x41; every cubin CUDA 13.0 writes, and CUDA 12.8+ for sm_100 and up):
  ``(e_flags >> 8) & 0xff`` is the SM, bit 3 (EF_CUDA_ACCELERATORS) the ``a`` variant. Measured
  with nvcc 13.0.88 here: sm_75 0x06004b04, sm_80 0x06005004, sm_86 0x06005604, sm_90 and sm_90a
  both 0x06005a04, sm_100/sm_100a/sm_100f all 0x06006402, sm_120 0x06007802.

As the measurement shows, CUDA 13 does not set the ``a`` bit for sm_90a or sm_100a: the variant
is recorded in the ``.nv.compat`` section instead, as attribute 0x09 with value 1 (records of 4
bytes: format, attribute, 16-bit value; format 4 is followed by a 16-bit size and that many
bytes). sm_90 cubins carry ``02 09 00 00``, sm_90a cubins ``02 09 01 00``. Both places are read.
``sm_100f`` (family) cubins are byte-identical to ``sm_100`` except for the ptxas command line in
``.note.nv.tkinfo``; the family suffix is taken from there when it names this SM.

Kernels (``__global__`` functions) are STT_FUNC symbols with STO_CUDA_ENTRY (0x10) in st_other,
each with a ``.text.<name>`` section; their parameter sizes are in ``.nv.info.<name>``
(EIATTR_KPARAM_INFO = 0x17: index u32, ordinal u16, offset u16, flags u32 with size << 18).
"""

from __future__ import annotations

import re
import struct
from dataclasses import dataclass

from packager.compat.cuda import CudaArch
from packager.kernels.elf import (
    EM_CUDA,
    STB_GLOBAL,
    STB_WEAK,
    STO_CUDA_ENTRY,
    STT_FUNC,
    ElfFile,
    machine_name,
)
from packager.kernels.errors import KernelFormatError

EF_CUDA_SM_V1 = 0xFF
EF_CUDA_ACCELERATORS_V1 = 0x800
EF_CUDA_VIRTUAL_SM = 0xFF0000
EF_CUDA_SM_MASK_V2 = 0xFF00
EF_CUDA_ACCELERATORS_V2 = 0x8
ABI_V1, ABI_V2 = 7, 8
#: SM numbers NVIDIA has assigned (LLVM EF_CUDA_SM*), to tell the layouts apart when the ABI
#: version byte is neither 7 nor 8
KNOWN_SM = frozenset(
    {
        20,
        21,
        30,
        32,
        35,
        37,
        50,
        52,
        53,
        60,
        61,
        62,
        70,
        72,
        75,
        80,
        86,
        87,
        88,
        89,
        90,
        100,
        101,
        103,
        110,
        120,
        121,
    }
)
COMPAT_ARCH_SPECIFIC = 0x09
EIATTR_KPARAM_INFO = 0x17
_TKINFO_ARCH = re.compile(rb"-arch[= ]+(sm_\d+[af]?)")


@dataclass(frozen=True)
class SmFlags:
    sm: int
    arch_specific: bool
    virtual_sm: int
    layout: str  # "v1" (ABI 7) or "v2" (ABI 8)


def decode_e_flags(abi_version: int, e_flags: int) -> SmFlags:
    """The SM a cubin's header names (see the module docstring for both layouts)."""
    if abi_version == ABI_V1:
        layout = "v1"
    elif abi_version >= ABI_V2:
        layout = "v2"
    else:  # unknown: a low byte that is a known SM means the old layout
        layout = "v1" if (e_flags & EF_CUDA_SM_V1) in KNOWN_SM else "v2"
    virtual = (e_flags & EF_CUDA_VIRTUAL_SM) >> 16
    if layout == "v1":
        return SmFlags(
            e_flags & EF_CUDA_SM_V1, bool(e_flags & EF_CUDA_ACCELERATORS_V1), virtual, layout
        )
    return SmFlags(
        (e_flags & EF_CUDA_SM_MASK_V2) >> 8,
        bool(e_flags & EF_CUDA_ACCELERATORS_V2),
        virtual,
        layout,
    )


def sm_arch(sm: int, *, ptx: bool = False, suffix: str = "") -> CudaArch:
    """sm_90 from 90, sm_100 from 100, sm_121 from 121."""
    return CudaArch(ptx, sm // 10, sm % 10, suffix)


@dataclass(frozen=True)
class Cubin:
    arch: CudaArch
    e_flags: int
    abi_version: int
    layout: str
    kernels: tuple[str, ...]
    params: dict[str, tuple[int, ...]]  # kernel -> parameter sizes in bytes, in order
    size: int


def is_cubin(data: bytes) -> bool:
    return len(data) >= 20 and data[:4] == b"\x7fELF" and _machine(data) == EM_CUDA


def _machine(data: bytes) -> int:
    endian = "<" if data[5] != 2 else ">"
    return int(struct.unpack_from(endian + "H", data, 18)[0])


def read_cubin(data: bytes, name: str) -> Cubin:
    elf = ElfFile(data, name)
    if elf.machine != EM_CUDA:
        raise KernelFormatError(
            f"{name}: an ELF file for {machine_name(elf.machine)}, not a cubin "
            f"(e_machine {elf.machine}, a cubin has EM_CUDA = {EM_CUDA})"
        )
    flags = decode_e_flags(elf.abi_version, elf.flags)
    if flags.sm not in KNOWN_SM and not 20 <= flags.sm <= 255:
        raise KernelFormatError(
            f"{name}: cubin header flags {elf.flags:#010x} (ABI version {elf.abi_version}) "
            f"name no SM version"
        )
    suffix = "a" if flags.arch_specific or _compat_arch_specific(elf) else ""
    if not suffix:
        tk = elf.section(".note.nv.tkinfo")
        if tk is not None:
            m = _TKINFO_ARCH.search(elf.section_data(tk))
            if m and m.group(1).decode() == f"sm_{flags.sm}f":
                suffix = "f"
            elif m and m.group(1).decode() == f"sm_{flags.sm}a":
                suffix = "a"
    kernels, params = _kernels(elf)
    return Cubin(
        sm_arch(flags.sm, suffix=suffix),
        elf.flags,
        elf.abi_version,
        flags.layout,
        kernels,
        params,
        elf.extent(),
    )


def nv_attributes(raw: bytes) -> list[tuple[int, int, bytes]]:
    """(format, attribute, value) records of a .nv.info / .nv.compat section."""
    out = []
    pos = 0
    while pos + 4 <= len(raw):
        fmt, attr = raw[pos], raw[pos + 1]
        (val,) = struct.unpack_from("<H", raw, pos + 2)
        pos += 4
        if fmt == 4:
            if pos + val > len(raw):
                break
            out.append((fmt, attr, raw[pos : pos + val]))
            pos += val
        elif fmt in (1, 2, 3):
            out.append((fmt, attr, struct.pack("<H", val)))
        else:
            break
    return out


def _compat_arch_specific(elf: ElfFile) -> bool:
    sec = elf.section(".nv.compat")
    if sec is None:
        return False
    for fmt, attr, value in nv_attributes(elf.section_data(sec)):
        if attr == COMPAT_ARCH_SPECIFIC and fmt in (2, 3):
            return int.from_bytes(value, "little") != 0
    return False


def _kernels(elf: ElfFile) -> tuple[tuple[str, ...], dict[str, tuple[int, ...]]]:
    funcs = [s for s in elf.symbols() if s.type == STT_FUNC and s.name]
    entries = [s.name for s in funcs if s.other & STO_CUDA_ENTRY]
    if not entries:  # older cubins: global functions that have their own .text section
        entries = [
            s.name
            for s in funcs
            if s.bind in (STB_GLOBAL, STB_WEAK) and elf.section(f".text.{s.name}") is not None
        ]
    names = tuple(dict.fromkeys(entries))
    params: dict[str, tuple[int, ...]] = {}
    for k in names:
        sec = elf.section(f".nv.info.{k}")
        if sec is None:
            continue
        found: dict[int, int] = {}
        for fmt, attr, value in nv_attributes(elf.section_data(sec)):
            if attr == EIATTR_KPARAM_INFO and fmt == 4 and len(value) >= 12:
                _index, ordinal, _offset, bits = struct.unpack_from("<IHHI", value, 0)
                found[ordinal] = bits >> 18
        if found and sorted(found) == list(range(len(found))):
            params[k] = tuple(found[i] for i in range(len(found)))
    return names, params
