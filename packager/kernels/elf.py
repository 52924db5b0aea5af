"""A bounded ELF reader: just what kernel inspection needs (header, sections, symbols).

Every offset and size read from the file is checked against the file's length before use, so a
truncated or hostile file ends in ``KernelFormatError`` naming the file and the byte, never in an
IndexError or in reading past the data.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from packager.kernels.errors import KernelFormatError

ELF_MAGIC = b"\x7fELF"
EM_CUDA = 190
SHT_SYMTAB, SHT_NOBITS, SHT_DYNSYM = 2, 8, 11
STT_FUNC = 2
STB_GLOBAL, STB_WEAK = 1, 2
#: cubin symbols of kernels (``__global__`` functions) carry this bit in st_other
STO_CUDA_ENTRY = 0x10
MAX_SECTIONS = 1 << 16
MAX_SYMBOLS = 1 << 22

_MACHINES = {
    0: "none",
    3: "x86",
    8: "MIPS",
    20: "PowerPC",
    21: "PowerPC64",
    22: "S390",
    40: "ARM",
    62: "x86-64",
    183: "AArch64",
    190: "CUDA",
    224: "AMDGPU",
    243: "RISC-V",
    258: "LoongArch",
}


def machine_name(machine: int) -> str:
    return _MACHINES.get(machine, f"machine {machine}")


@dataclass(frozen=True)
class Section:
    index: int
    name: str
    type: int
    flags: int
    offset: int
    size: int
    link: int
    info: int
    entsize: int


@dataclass(frozen=True)
class Symbol:
    name: str
    type: int
    bind: int
    other: int
    shndx: int
    value: int
    size: int


class ElfFile:
    """One ELF image held in memory (a cubin, a host object or a shared library)."""

    def __init__(self, data: bytes, name: str) -> None:
        self.data = data
        self.name = name
        if len(data) < 16 or data[:4] != ELF_MAGIC:
            raise KernelFormatError(f"{name}: not an ELF file (no \\x7fELF magic)")
        ei_class, ei_data = data[4], data[5]
        if ei_class not in (1, 2) or ei_data not in (1, 2):
            raise KernelFormatError(
                f"{name}: ELF header with class {ei_class} and data encoding {ei_data}"
            )
        self.is64 = ei_class == 2
        self.endian = "<" if ei_data == 1 else ">"
        self.osabi = data[7]
        self.abi_version = data[8]
        hsize = 64 if self.is64 else 52
        self._need(0, hsize, "the ELF header")
        e = self.endian
        if self.is64:
            (
                self.type,
                self.machine,
                _ver,
                _entry,
                _phoff,
                self.shoff,
                self.flags,
                _ehsize,
                _phentsize,
                _phnum,
                self.shentsize,
                self.shnum,
                self.shstrndx,
            ) = struct.unpack_from(e + "HHIQQQIHHHHHH", data, 16)
        else:
            (
                self.type,
                self.machine,
                _ver,
                _entry,
                _phoff,
                self.shoff,
                self.flags,
                _ehsize,
                _phentsize,
                _phnum,
                self.shentsize,
                self.shnum,
                self.shstrndx,
            ) = struct.unpack_from(e + "HHIIIIIHHHHHH", data, 16)
        self.sections = self._read_sections()
        self._by_name = {s.name: s for s in self.sections}

    # ------------------------------------------------------------------ bounds

    def _need(self, offset: int, size: int, what: str) -> None:
        if offset < 0 or size < 0 or offset + size > len(self.data):
            raise KernelFormatError(
                f"{self.name}: {what} lies at bytes {offset}..{offset + size}, past the end of "
                f"the file ({len(self.data)} bytes): the file is truncated or damaged",
                hint="copy the kernel file again from where it was built",
            )

    def _read_sections(self) -> list[Section]:
        if self.shoff == 0 or self.shnum == 0:
            return []
        want = 64 if self.is64 else 40
        if self.shentsize < want:
            raise KernelFormatError(f"{self.name}: ELF section header size {self.shentsize}")
        if self.shnum > MAX_SECTIONS:
            raise KernelFormatError(f"{self.name}: {self.shnum} ELF sections")
        self._need(self.shoff, self.shnum * self.shentsize, "the ELF section header table")
        fmt = self.endian + ("IIQQQQIIQQ" if self.is64 else "IIIIIIIIII")
        raw = []
        for i in range(self.shnum):
            name, typ, flags, _addr, off, size, link, info, _align, entsize = struct.unpack_from(
                fmt, self.data, self.shoff + i * self.shentsize
            )
            raw.append((name, typ, flags, off, size, link, info, entsize))
        names = b""
        if 0 < self.shstrndx < len(raw):
            _, styp, _, soff, ssize, *_ = raw[self.shstrndx]
            if styp != SHT_NOBITS:
                self._need(soff, ssize, "the section name table")
                names = self.data[soff : soff + ssize]
        out = []
        for i, (name, typ, flags, off, size, link, info, entsize) in enumerate(raw):
            if typ != SHT_NOBITS and i != 0:
                self._need(off, size, f"section {i}")
            out.append(Section(i, _cstr(names, name), typ, flags, off, size, link, info, entsize))
        return out

    # ------------------------------------------------------------------ access

    def section(self, name: str) -> Section | None:
        return self._by_name.get(name)

    def section_data(self, section: Section) -> bytes:
        if section.type == SHT_NOBITS:
            return b""
        return self.data[section.offset : section.offset + section.size]

    def symbols(self) -> list[Symbol]:
        """Symbols of .symtab (or .dynsym when the file is stripped)."""
        tab = next((s for s in self.sections if s.type == SHT_SYMTAB), None)
        if tab is None:
            tab = next((s for s in self.sections if s.type == SHT_DYNSYM), None)
        if tab is None:
            return []
        entsize = 24 if self.is64 else 16
        if tab.entsize not in (0, entsize) or tab.size % entsize:
            raise KernelFormatError(f"{self.name}: symbol table {tab.name} with bad entry size")
        count = tab.size // entsize
        if count > MAX_SYMBOLS:
            raise KernelFormatError(f"{self.name}: {count} symbols")
        strtab = b""
        if 0 < tab.link < len(self.sections):
            strtab = self.section_data(self.sections[tab.link])
        out = []
        for i in range(count):
            off = tab.offset + i * entsize
            if self.is64:
                name, info, other, shndx, value, size = struct.unpack_from(
                    self.endian + "IBBHQQ", self.data, off
                )
            else:
                name, value, size, info, other, shndx = struct.unpack_from(
                    self.endian + "IIIBBH", self.data, off
                )
            out.append(Symbol(_cstr(strtab, name), info & 15, info >> 4, other, shndx, value, size))
        return out

    def extent(self) -> int:
        """Bytes the image spans: the furthest section or the section header table's end."""
        end = self.shoff + self.shnum * self.shentsize if self.shoff else 0
        for s in self.sections:
            if s.type != SHT_NOBITS:
                end = max(end, s.offset + s.size)
        return end


def _cstr(table: bytes, offset: int) -> str:
    if offset <= 0 or offset >= len(table):
        return ""
    end = table.find(b"\0", offset)
    raw = table[offset:] if end < 0 else table[offset:end]
    return raw.decode("utf-8", "replace")
