"""What a CUDA kernel file holds, read from its bytes: ``airgap kernels inspect FILE``.

``inspect_file(path)`` recognizes, by content (the declared kind only shapes the messages):

* a cubin: an ELF with e_machine EM_CUDA (SASS for one SM; see ``cubin``),
* a fatbin: containers with magic 0xBA55ED50 holding PTX / ELF entries (see ``fatbin``),
* PTX text (``.version``, ``.target sm_XY``, ``.entry`` kernels),
* a host ELF object or shared library that embeds fatbins: its ``.nv_fatbin`` (or
  ``__nv_relfatbin``) section, else every 8-byte aligned fatbin magic that parses.

It returns a ``KernelInfo``: one ``Image`` per compiled form (with its arch, compression and the
kernels it defines), and ``problems`` for what is damaged (an entry that does not decompress, an
entry whose header and cubin disagree). A file that is not CUDA at all, or is truncated, raises
``KernelFormatError`` (an InputError: exit 2) naming the file and what was wrong.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from packager.compat.cuda import CudaArch
from packager.kernels import cubin as _cubin
from packager.kernels import fatbin as _fatbin
from packager.kernels import ptx as _ptx
from packager.kernels.elf import ElfFile, machine_name
from packager.kernels.errors import KernelFormatError

#: decompressed bytes one inspection decodes at most (pure-Python zstd runs ~1.5 MB/s)
DEFAULT_DECOMPRESS_BUDGET = 64 * 1024 * 1024
MAX_FILE_BYTES = 8 * 1024**3

FORMAT_FOR_KIND = {
    "cuda-cubin": "cubin",
    "cuda-fatbin": "fatbin",
    "cuda-ptx": "ptx",
    "cuda-so": "host-elf",
}
FORMAT_NAMES = {
    "cubin": "CUDA cubin (ELF, EM_CUDA)",
    "fatbin": "CUDA fatbin",
    "ptx": "PTX text",
    "host-elf": "host ELF embedding CUDA fatbins",
}


@dataclass(frozen=True)
class Image:
    """One compiled form in the file: a cubin (SASS), a PTX text, or an entry left undecoded."""

    kind: str  # "elf" | "ptx" | "lto-ir" | "unknown"
    arch: CudaArch | None
    where: str  # "file" or "fatbin@0 #1"
    stored_size: int
    size: int | None  # the image's size (after decompression); None when not decoded
    compression: str | None = None  # None | "zstd" | "lz4" | "opaque"
    kernels: tuple[str, ...] | None = None  # None: not known (not decoded)
    params: dict[str, tuple[int, ...]] = field(default_factory=dict)
    detail: dict[str, Any] = field(default_factory=dict)
    error: str | None = None

    @property
    def runs(self) -> bool:
        """Whether this image is code a driver can load (a cubin or PTX, intact)."""
        return self.arch is not None and self.kind in ("elf", "ptx") and self.error is None

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "arch": str(self.arch) if self.arch else None,
            "where": self.where,
            "stored_size": self.stored_size,
            "size": self.size,
            "compression": self.compression,
            "kernels": list(self.kernels) if self.kernels is not None else None,
            "params": {k: list(v) for k, v in self.params.items()},
            **self.detail,
            "error": self.error,
        }


@dataclass(frozen=True)
class KernelInfo:
    path: str
    format: str  # cubin | fatbin | ptx | host-elf
    size: int
    sha256: str
    images: tuple[Image, ...]
    containers: tuple[dict[str, Any], ...] = ()
    host: str | None = None  # "x86-64 shared library"
    problems: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return not self.problems

    def archs(self) -> list[CudaArch]:
        return _sorted_archs(i.arch for i in self.images if i.runs and i.arch is not None)

    def kernels(self) -> list[str]:
        names: dict[str, None] = {}
        for i in self.images:
            for k in i.kernels or ():
                names[k] = None
        return sorted(names)

    def undecoded(self) -> list[Image]:
        """Loadable images whose kernels are unknown (compressed past the budget, damaged)."""
        return [i for i in self.images if i.kind in ("elf", "ptx") and i.kernels is None]

    def has_kernel(self, name: str) -> bool | None:
        """True / False, or None when it cannot be told (some image could not be decoded)."""
        if name in self.kernels():
            return True
        return None if self.undecoded() else False

    def images_with(self, name: str) -> list[Image]:
        """Intact images that define ``name`` (or might: undecoded ones are included)."""
        return [i for i in self.images if i.runs and (i.kernels is None or name in i.kernels)]

    def params_of(self, name: str) -> tuple[int, ...] | None:
        for i in self.images:
            if name in i.params:
                return i.params[name]
        return None

    def to_json(self) -> dict[str, Any]:
        archs = self.archs()
        return {
            "path": self.path,
            "format": self.format,
            "size": self.size,
            "sha256": self.sha256,
            "host": self.host,
            "sass": [str(a) for a in archs if not a.ptx],
            "ptx": [str(a) for a in archs if a.ptx],
            "kernels": self.kernels(),
            "containers": list(self.containers),
            "images": [i.to_json() for i in self.images],
            "problems": list(self.problems),
            "notes": list(self.notes),
            "ok": self.ok,
        }

    def render_text(self) -> str:
        archs = self.archs()
        sass = ", ".join(str(a) for a in archs if not a.ptx) or "none"
        ptx = ", ".join(str(a) for a in archs if a.ptx) or "none"
        head = FORMAT_NAMES.get(self.format, self.format)
        if self.host:
            head += f" ({self.host})"
        lines = [
            f"{self.path}: {head}, {self.size} bytes, sha256 {self.sha256}",
            f"  SASS (cubins): {sass}",
            f"  PTX (JIT):     {ptx}",
            f"  kernels:       {', '.join(self.kernels()) or 'none found'}",
        ]
        for img in self.images:
            arch = str(img.arch) if img.arch else "-"
            size = f"{img.stored_size} bytes"
            if img.compression:
                size += f" {img.compression}" + (f" -> {img.size}" if img.size is not None else "")
            ks = "?" if img.kernels is None else (", ".join(img.kernels) or "-")
            extra = ""
            if img.detail.get("ptx_isa"):
                extra = f"  PTX ISA {img.detail['ptx_isa']}"
            lines.append(
                f"  {img.where:<16} {img.kind:<6} {arch:<12} {size:<24} kernels: {ks}{extra}"
            )
            if img.error:
                lines.append(f"    error: {img.error}")
        for n in self.notes:
            lines.append(f"  note: {n}")
        for p in self.problems:
            lines.append(f"  ERROR: {p}")
        return "\n".join(lines)


def _sorted_archs(archs: Any) -> list[CudaArch]:
    uniq = {str(a): a for a in archs}
    return sorted(uniq.values(), key=lambda a: (a.ptx, a.major, a.minor, a.suffix))


# ----------------------------------------------------------------------------- entry points


def inspect_file(
    path: Path | str,
    declared_kind: str | None = None,
    *,
    decompress_budget: int = DEFAULT_DECOMPRESS_BUDGET,
) -> KernelInfo:
    """Reads ``path`` and inspects it; raises KernelFormatError (InputError) when it cannot."""
    p = Path(path)
    try:
        size = p.stat().st_size
        if not p.is_file():
            raise KernelFormatError(f"{p}: not a regular file")
        if size > MAX_FILE_BYTES:
            raise KernelFormatError(f"{p}: {size} bytes, above the {MAX_FILE_BYTES} airgap reads")
        data = p.read_bytes()
    except OSError as exc:
        raise KernelFormatError(f"{p}: cannot read it: {exc.strerror or exc}") from exc
    return inspect_bytes(data, str(p), declared_kind, decompress_budget=decompress_budget)


def inspect_bytes(
    data: bytes,
    name: str,
    declared_kind: str | None = None,
    *,
    decompress_budget: int = DEFAULT_DECOMPRESS_BUDGET,
) -> KernelInfo:
    digest = hashlib.sha256(data).hexdigest()
    as_declared = f" declared as {declared_kind}" if declared_kind else ""
    if not data:
        raise KernelFormatError(
            f"{name}: the file is empty{as_declared}",
            hint="point the kernel's path at the compiled binary (nvcc -fatbin / -cubin / -ptx)",
        )
    if data[:4] == b"\x7fELF":
        if _cubin.is_cubin(data):
            return _inspect_cubin(data, name, digest)
        return _inspect_host(data, name, digest, decompress_budget, as_declared)
    if data[:4] == _fatbin.MAGIC_BYTES:
        return _inspect_fatbin_file(data, name, digest, decompress_budget)
    if _ptx.looks_like_ptx(data):
        ptx = _ptx.read_ptx(data, name)
        img = Image(
            "ptx",
            ptx.arch,
            "file",
            len(data),
            len(data),
            None,
            ptx.kernels,
            ptx.params,
            {"ptx_isa": ptx.version, "target": ptx.target},
        )
        return KernelInfo(name, "ptx", len(data), digest, (img,))
    raise KernelFormatError(
        f"{name}: not a CUDA kernel binary{as_declared}: {sniff(data)}; a fatbin starts with "
        "the magic 0xBA55ED50 (bytes 50 ed 55 ba), a cubin is an ELF for EM_CUDA, PTX is text "
        "with .version and .target",
        hint="build the kernel with nvcc -fatbin (or -cubin, -ptx) and point the path at it",
    )


def sniff(data: bytes) -> str:
    """A few words on what the bytes look like instead."""
    signatures = [
        (b"\x89PNG\r\n\x1a\n", "it is a PNG image"),
        (b"\xff\xd8\xff", "it is a JPEG image"),
        (b"GIF8", "it is a GIF image"),
        (b"%PDF", "it is a PDF document"),
        (b"PK\x03\x04", "it is a zip archive (a wheel or jar?)"),
        (b"\x1f\x8b", "it is gzip-compressed"),
        (b"\x28\xb5\x2f\xfd", "it is a bare Zstandard frame"),
        (b"BZh", "it is bzip2-compressed"),
        (b"\xfd7zXZ\x00", "it is xz-compressed"),
        (b"MZ", "it is a Windows PE executable"),
        (b"\xcf\xfa\xed\xfe", "it is a Mach-O executable"),
        (b"\x93NUMPY", "it is a NumPy .npy array"),
        (b"#!", "it is a script"),
    ]
    for magic, text in signatures:
        if data.startswith(magic):
            return text
    if len(data) >= 262 and data[257:262] == b"ustar":
        return "it is a tar archive"
    head = data[:512]
    if head and all(32 <= b < 127 or b in (9, 10, 13) for b in head):
        return "it is text, but not PTX (no .version / .target)"
    return f"it starts with bytes {data[:8].hex(' ')}"


# ----------------------------------------------------------------------------- cubin and PTX


def _cubin_image(
    payload: bytes, where: str, name: str, stored: int, compression: str | None
) -> Image:
    c = _cubin.read_cubin(payload, name)
    return Image(
        "elf",
        c.arch,
        where,
        stored,
        len(payload),
        compression,
        c.kernels,
        c.params,
        {
            "e_flags": f"{c.e_flags:#010x}",
            "elf_abi_version": c.abi_version,
            "e_flags_layout": c.layout,
        },
    )


def _inspect_cubin(data: bytes, name: str, digest: str) -> KernelInfo:
    img = _cubin_image(data, "file", name, len(data), None)
    return KernelInfo(name, "cubin", len(data), digest, (img,))


# ----------------------------------------------------------------------------- fatbins


class _Budget:
    def __init__(self, total: int) -> None:
        self.total = total
        self.left = total


def _inspect_fatbin_file(data: bytes, name: str, digest: str, budget: int) -> KernelInfo:
    containers = _fatbin.parse_fatbins(data, 0, len(data), name)
    images, problems, notes = _entries(data, name, containers, _Budget(budget))
    return KernelInfo(
        name,
        "fatbin",
        len(data),
        digest,
        tuple(images),
        _container_json(containers),
        None,
        tuple(problems),
        tuple(notes),
    )


def _container_json(containers: list[_fatbin.Fatbin]) -> tuple[dict[str, Any], ...]:
    return tuple(
        {"offset": c.offset, "size": c.size, "version": c.version, "entries": len(c.entries)}
        for c in containers
    )


def _entries(
    data: bytes, name: str, containers: list[_fatbin.Fatbin], budget: _Budget
) -> tuple[list[Image], list[str], list[str]]:
    images: list[Image] = []
    problems: list[str] = []
    notes: list[str] = []
    skipped = 0
    for fb in containers:
        for e in fb.entries:
            where = f"fatbin@{fb.offset} #{e.index}"
            detail: dict[str, Any] = {"flags": f"{e.flags:#x}", "offset": e.offset}
            if e.object_name:
                detail["object"] = e.object_name
            if e.isa_version:
                detail["ptx_isa"] = e.isa_version
            kind = {
                _fatbin.KIND_ELF: "elf",
                _fatbin.KIND_PTX: "ptx",
                _fatbin.KIND_LTO: "lto-ir",
            }.get(e.kind, "unknown")
            comp = e.compression
            base = Image(
                kind,
                e.arch,
                where,
                e.payload_size,
                None if comp else e.payload_size,
                comp,
                None,
                {},
                detail,
            )
            if kind not in ("elf", "ptx"):
                notes.append(
                    f"{where}: {e.kind_name} entry for arch {e.arch_number} "
                    "(link-time code: it runs on no GPU by itself)"
                )
                images.append(base)
                continue
            if e.arch is None:
                msg = f"{name}: {where}: {e.kind_name} entry names no SM arch ({e.arch_number})"
                problems.append(msg)
                images.append(_with(base, error=msg))
                continue
            size_problem = e.size_problem()
            if size_problem:
                msg = f"{name}: fatbin at byte {fb.offset}, {e.describe()}: {size_problem}"
                problems.append(msg)
                images.append(_with(base, error=msg))
                continue
            if comp == "opaque":
                notes.append(f"{where}: payload in a form airgap does not decode; kernels unknown")
                images.append(base)
                continue
            if comp and e.decompressed_size > budget.left:
                skipped += 1
                images.append(base)
                continue
            try:
                payload = e.payload(data)
            except KernelFormatError as exc:
                msg = f"{name}: fatbin at byte {fb.offset}, {exc.message}"
                problems.append(msg)
                images.append(_with(base, error=msg))
                continue
            if comp:
                budget.left -= len(payload)
            images.append(_decode_entry(e, payload, where, name, detail, problems))
    if skipped:
        notes.append(
            f"{skipped} compressed entr{'y' if skipped == 1 else 'ies'} not decompressed "
            f"(over the {budget.total >> 20} MiB inspection budget): kernels unknown"
        )
    return images, problems, notes


def _with(img: Image, **changes: Any) -> Image:
    values = {f: getattr(img, f) for f in img.__dataclass_fields__}
    values.update(changes)
    return Image(**values)


def _decode_entry(
    e: _fatbin.FatbinEntry,
    payload: bytes,
    where: str,
    name: str,
    detail: dict[str, Any],
    problems: list[str],
) -> Image:
    label = f"{name}: {where}"
    comp = e.compression
    assert e.arch is not None
    if e.kind == _fatbin.KIND_ELF:
        try:
            c = _cubin.read_cubin(payload, label)
        except KernelFormatError as exc:
            problems.append(exc.message)
            return Image(
                "elf",
                e.arch,
                where,
                e.payload_size,
                len(payload),
                comp,
                None,
                {},
                detail,
                exc.message,
            )
        detail = {
            **detail,
            "e_flags": f"{c.e_flags:#010x}",
            "elf_abi_version": c.abi_version,
            "e_flags_layout": c.layout,
        }
        arch = e.arch
        if (c.arch.major, c.arch.minor) != (arch.major, arch.minor):
            msg = f"{label}: the entry header says {arch} but its cubin is {c.arch}"
            problems.append(msg)
            return Image(
                "elf",
                arch,
                where,
                e.payload_size,
                len(payload),
                comp,
                c.kernels,
                c.params,
                detail,
                msg,
            )
        if c.arch.suffix and not arch.suffix:
            arch = c.arch
        return Image(
            "elf", arch, where, e.payload_size, len(payload), comp, c.kernels, c.params, detail
        )
    try:
        p = _ptx.read_ptx(payload, label)
    except KernelFormatError as exc:
        problems.append(exc.message)
        return Image(
            "ptx", e.arch, where, e.payload_size, len(payload), comp, None, {}, detail, exc.message
        )
    detail = {**detail, "target": p.target}
    if p.arch != e.arch and (p.arch.major, p.arch.minor) != (e.arch.major, e.arch.minor):
        msg = f"{label}: the entry header says {e.arch} but its PTX targets {p.target}"
        problems.append(msg)
        return Image(
            "ptx",
            e.arch,
            where,
            e.payload_size,
            len(payload),
            comp,
            p.kernels,
            p.params,
            detail,
            msg,
        )
    return Image(
        "ptx", e.arch, where, e.payload_size, len(payload), comp, p.kernels, p.params, detail
    )


# ----------------------------------------------------------------------------- host ELF


def _inspect_host(data: bytes, name: str, digest: str, budget: int, as_declared: str) -> KernelInfo:
    elf = ElfFile(data, name)
    kind = {1: "object", 2: "executable", 3: "shared library"}.get(elf.type, f"ELF type {elf.type}")
    host = f"{machine_name(elf.machine)} {kind}"
    regions = [s for s in elf.sections if s.name in (".nv_fatbin", "__nv_relfatbin")]
    containers: list[_fatbin.Fatbin] = []
    notes: list[str] = []
    if regions:
        for s in regions:
            containers.extend(_fatbin.parse_fatbins(data, s.offset, s.offset + s.size, name))
            if s.name == "__nv_relfatbin":
                notes.append("relocatable device code (__nv_relfatbin): linked at build time")
    else:
        for off in _fatbin.find_magic(data):
            try:
                containers.append(_fatbin.parse_fatbin(data, off, name))
            except KernelFormatError as exc:
                notes.append(f"fatbin magic at byte {off} is not a fatbin: {exc.message}")
        if containers:
            notes.append("no .nv_fatbin section: fatbins found by their magic")
    if not containers:
        raise KernelFormatError(
            f"{name}: a {host}{as_declared} with no CUDA code: no .nv_fatbin section and no "
            "fatbin (magic 0xBA55ED50) inside",
            hint="build it with nvcc (device code for the GPUs), or point the path at the fatbin",
        )
    images, problems, more = _entries(data, name, containers, _Budget(budget))
    return KernelInfo(
        name,
        "host-elf",
        len(data),
        digest,
        tuple(images),
        _container_json(containers),
        host,
        tuple(problems),
        tuple(notes + more),
    )
