"""PTX text: ``.version``, ``.target`` and the ``.entry`` kernels with their parameter sizes.

PTX for ``.target sm_XY`` is what nvcc calls ``compute_XY``: the driver JIT-compiles it on any
compute capability >= X.Y (``sm_90a`` PTX only on 9.0, ``sm_100f`` on the 10.x family).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from packager.compat.cuda import CudaArch
from packager.kernels.errors import KernelFormatError

_VERSION = re.compile(r"^\s*\.version\s+(\d+)\.(\d+)", re.M)
_TARGET = re.compile(r"^\s*\.target\s+([^\n/]+)", re.M)
_ADDRESS = re.compile(r"^\s*\.address_size\s+(\d+)", re.M)
_ENTRY = re.compile(
    r"^\s*(?:\.(?:visible|weak|extern)\s+)*\.entry\s+([A-Za-z_$%][\w$%.]*)\s*\(?", re.M
)
_PARAM = re.compile(
    r"\.param\s+(?:\.align\s+\d+\s+)?\.([busf])(8|16|32|64)\b[^,)]*?([A-Za-z_$%][\w$%]*)\s*(?:\[(\d+)\])?\s*(?:[,)])"
)
_SM = re.compile(r"^sm_(\d+)([af]?)\Z")
MAX_PTX_BYTES = 256 * 1024 * 1024


@dataclass(frozen=True)
class Ptx:
    version: str | None  # PTX ISA version, "9.0"
    target: str  # as written: "sm_90a"
    arch: CudaArch  # compute_90a
    address_size: int | None
    kernels: tuple[str, ...]
    params: dict[str, tuple[int, ...]]


def looks_like_ptx(data: bytes) -> bool:
    head = data[:8192].lstrip(b"\0")
    return b".version" in head and b".target" in head


def read_ptx(data: bytes, name: str) -> Ptx:
    if len(data) > MAX_PTX_BYTES:
        raise KernelFormatError(f"{name}: {len(data)} bytes of PTX, above the limit")
    text = data.rstrip(b"\0").decode("utf-8", "replace")
    if "\0" in text:
        raise KernelFormatError(f"{name}: binary data inside PTX text")
    t = _TARGET.search(text)
    if t is None:
        raise KernelFormatError(
            f"{name}: no .target directive: not PTX",
            hint="PTX text starts with .version and .target",
        )
    target = t.group(1).split(",")[0].strip()
    m = _SM.match(target)
    if m is None:
        raise KernelFormatError(f"{name}: PTX .target {target!r} is not sm_XY")
    sm = int(m.group(1))
    arch = CudaArch(True, sm // 10, sm % 10, m.group(2))
    v = _VERSION.search(text)
    a = _ADDRESS.search(text)
    kernels: list[str] = []
    params: dict[str, tuple[int, ...]] = {}
    for e in _ENTRY.finditer(text):
        kname = e.group(1)
        kernels.append(kname)
        sizes = _params(text, e.end())
        if sizes is not None:
            params[kname] = sizes
    return Ptx(
        f"{v.group(1)}.{v.group(2)}" if v else None,
        target,
        arch,
        int(a.group(1)) if a else None,
        tuple(dict.fromkeys(kernels)),
        params,
    )


def _params(text: str, start: int) -> tuple[int, ...] | None:
    """Sizes of the parameters in the list that opens at ``start`` (just after ``name(``)."""
    if start > 0 and text[start - 1] != "(":
        paren = text.find("(", start, start + 64)
        if paren < 0:
            return ()
        start = paren + 1
    end = text.find(")", start)
    if end < 0:
        return None
    body = text[start : end + 1]
    sizes = []
    for m in _PARAM.finditer(body):
        size = int(m.group(2)) // 8
        if m.group(4):
            size *= int(m.group(4))
        sizes.append(size)
    if body.count(".param") != len(sizes):
        return None  # a parameter form this reader does not know: say nothing
    return tuple(sizes)
