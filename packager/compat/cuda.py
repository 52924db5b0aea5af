"""Which CUDA code runs on which compute capability (compat-facts.md, "Kernel binaries").

A cubin for ``sm_XY`` runs on compute capability X.y with y >= Y (same major only); an
arch-specific cubin (``sm_90a``) only on exactly X.Y. PTX for ``compute_XY`` is JIT-compiled by the
driver on any compute capability >= X.Y (arch-specific PTX, ``compute_90a``, only on X.Y;
family-specific code, ``sm_100f``/``compute_100f``, only on the same major: 10.0 and 10.3, not 12.0).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from packager.compat.versions import Version
from packager.util.compat import StrEnum

_TARGET = re.compile(r"^(sm|compute)_(\d+)(\d)([af]?)\Z")


class Coverage(StrEnum):
    NATIVE = "native"  # a cubin (SASS) for the chip
    PTX_JIT = "ptx-jit"  # only PTX the driver compiles at first load
    NONE = "none"


@dataclass(frozen=True)
class CudaArch:
    """One compiled form in a kernel file: SASS (``sm_90``) or PTX (``compute_90``)."""

    ptx: bool
    major: int
    minor: int
    suffix: str = ""  # "a" arch-specific, "f" family-specific

    @classmethod
    def parse(cls, text: str) -> CudaArch:
        m = _TARGET.match(text.strip().lower())
        if not m:
            raise ValueError(f"not a CUDA target: {text!r} (expected sm_XY, sm_XYa or compute_XY)")
        return cls(m.group(1) == "compute", int(m.group(2)), int(m.group(3)), m.group(4))

    def __str__(self) -> str:
        return f"{'compute' if self.ptx else 'sm'}_{self.major}{self.minor}{self.suffix}"

    def runs_on(self, cc: Version) -> bool:
        major, minor = cc.release[0], (cc.release[1] if len(cc.release) > 1 else 0)
        if self.suffix == "a":
            return (major, minor) == (self.major, self.minor)
        if self.suffix == "f":  # family-specific (sm_100f, compute_100f): the same major only
            return major == self.major and minor >= self.minor
        if self.ptx:
            return (major, minor) >= (self.major, self.minor)
        return major == self.major and minor >= self.minor


def coverage(archs: Iterable[CudaArch], cc: Version) -> Coverage:
    archs = list(archs)
    if any(not a.ptx and a.runs_on(cc) for a in archs):
        return Coverage.NATIVE
    if any(a.ptx and a.runs_on(cc) for a in archs):
        return Coverage.PTX_JIT
    return Coverage.NONE


def sm_name(cc: Version) -> str:
    minor = cc.release[1] if len(cc.release) > 1 else 0
    return f"sm_{cc.release[0]}{minor}"
