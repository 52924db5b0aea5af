"""Inspection of kernel binaries, coverage rules and test-vector checks (see DESIGN.md).

* ``inspect``: what a CUDA file holds (cubin, fatbin, PTX, host ELF with fatbins), read from bytes;
* ``checks``: NATIVE / PTX_JIT / NONE per chip from the binary, entry symbol, Ascend metadata,
  test vectors, as issues with stable codes AG405..AG419;
* ``cubin``, ``fatbin``, ``ptx``, ``elf``: the formats; ``zstd``, ``lz4``: the decompressors
  fatbinary uses; ``ascend``: the op package's kernel metadata.

The site-side runner of test vectors is ``packager.probe.kernel_runner`` (stdlib only).
"""

from packager.kernels.checks import (
    ChipCoverage,
    KernelCheck,
    KernelIssue,
    KernelValidation,
    check_kernel,
    validate_kernels,
)
from packager.kernels.errors import KernelFormatError
from packager.kernels.inspection import Image, KernelInfo, inspect_bytes, inspect_file

__all__ = [
    "ChipCoverage",
    "Image",
    "KernelCheck",
    "KernelFormatError",
    "KernelInfo",
    "KernelIssue",
    "KernelValidation",
    "check_kernel",
    "inspect_bytes",
    "inspect_file",
    "validate_kernels",
]
